"""The login steps: HTTP basic auth on a stack's URL (Dokploy's security router).

The deploy's `security` phase gives a new stack a login before anything is deployed, so it
never serves without one; `rotate_credentials` sets a new password on a live stack. The login's
username is the stack's name. Its password is made here, sent to Dokploy and to the owner
(Delivery), and kept nowhere else: the checkpoints hold the login's id and username, and who
it went to.

Each stack also gets aistack's own login (core/probe_login.py: derived, stored nowhere), so
that its probe sees past Traefik's 401 to the container; both steps set it again, which also
mends it after the key it is derived from changed.

A crash after Dokploy has the password and before the owner does must not leave a password
nobody has: "existed" is checkpointed before the first change, so a resumed run knows it was
setting one and sets a fresh one, which it delivers. A redeploy keeps the live stack's login
as it is (its owner has the password); any other login of that name it finds (an adopted
application's) gets a new password, since nobody here knows the old one.
"""

from __future__ import annotations

import secrets

from deployer.core.probe_login import PROBE_USER
from deployer.engine.outputs import YES, PhaseOutputs
from deployer.engine.provenance import GONE, NEVER_MADE, fresh, kept, kept_it, removed, untouched
from deployer.engine.saga import PhaseContext, Undone
from deployer.engine.steps.base import Deps, Outputs, Phase
from deployer.errors import PermanentError

LOGIN_ID = "security_id"
LOGIN_USER = "security_username"
SENT_TO = "login_sent_to"  # who the password went to: the one output that says it was sent
PASSWORD_BYTES = 18  # 24 URL-safe characters


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


class _Login(Phase):
    """What both steps share: set a new password on the login and deliver it, once; keep
    aistack's probe login in place."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self._delivery = deps.delivery

    async def _probe_login(self, application_id: str, host: str) -> None:
        login = self._s.health.login(host)
        if login is None:
            return  # no logins here (AISTACK_STACK_AUTH=none): the probe sends none
        user, password = login
        found = await self._paas.find_basic_auth(application_id, user)
        if found is None:
            await self._paas.add_basic_auth(application_id, user, password)
        else:
            await self._paas.set_basic_auth(found, user, password)

    async def _set_and_send(
        self, ctx: PhaseContext, application_id: str, found: str | None
    ) -> Outputs:
        if SENT_TO in ctx.outputs:  # delivered before a crash: only the checkpoint is missing
            return {key: ctx.outputs[key] for key in (LOGIN_ID, LOGIN_USER, SENT_TO)}
        if self._delivery is None:
            raise PermanentError("aistack has no way to give the owner a password here")
        user, password = ctx.deployment.spec.name, new_password()
        if found is None:
            login_id = await self._paas.add_basic_auth(application_id, user, password)
        else:
            await self._paas.set_basic_auth(found, user, password)
            login_id = found
        await ctx.save({LOGIN_ID: login_id, LOGIN_USER: user})
        owner = await self._delivery.deliver(ctx.deployment, user, password)
        await ctx.save({SENT_TO: owner})
        return {LOGIN_ID: login_id, LOGIN_USER: user, SENT_TO: owner}


class SecurityStep(_Login):
    async def do(self, ctx: PhaseContext) -> Outputs:
        if self._s.stack.auth == "none":
            return {}  # AISTACK_STACK_AUTH=none: the URL stays open, as configured
        out, app = PhaseOutputs(ctx), ctx.outputs["application_id"]
        if SENT_TO in ctx.outputs:
            return await self._set_and_send(ctx, app, None)
        await self._probe_login(app, ctx.deployment.spec.host)
        user = ctx.deployment.spec.name
        new_app = fresh(out, "application", "security")  # made a moment ago: nothing inside
        found = None if new_app else await self._paas.find_basic_auth(app, user)
        resumed = out.existed("security") is not None  # it was setting a password: again
        if found is not None and not resumed and out.is_live("application_id"):
            # the live stack's own login: its owner has the password
            return {LOGIN_ID: found, LOGIN_USER: user, "security_existed": YES}
        if not resumed:
            await out.mark_existed("security", found is not None)
        return await self._set_and_send(ctx, app, found)

    async def undo(self, ctx: PhaseContext) -> Undone:
        user = ctx.deployment.spec.name
        if kept(ctx, "security"):
            return kept_it(f"login {user}")
        if untouched(ctx, "security"):
            return NEVER_MADE
        if not kept(ctx, "application"):
            return Undone("nothing to undo: the login goes with the application", changed=False)
        app = ctx.outputs["application_id"]
        probe = await self._paas.find_basic_auth(app, PROBE_USER)  # made with it: goes with it
        if probe is not None:
            await self._paas.remove_basic_auth(probe)
        login_id = ctx.outputs.get(LOGIN_ID) or await self._paas.find_basic_auth(app, user)
        if login_id is None:
            return GONE
        return removed(await self._paas.remove_basic_auth(login_id), f"login {user}")

    def leftover(self, ctx: PhaseContext) -> str:
        login_id = ctx.outputs.get(LOGIN_ID, "id unknown")
        return (
            f"Dokploy login {ctx.deployment.spec.name} on application "
            f"{ctx.deployment.spec.app_name} ({login_id})"
        )


class RotateStep(_Login):
    """A new password for the live stack's login (made now if it has none, as a stack
    deployed with AISTACK_STACK_AUTH=none), sent to its owner. Nothing to undo: the old
    password is kept nowhere to put back."""

    async def do(self, ctx: PhaseContext) -> Outputs:
        stack = ctx.deployment.stack
        app = (await self._recorded(stack)).get("application_id")
        if app is None:
            raise PermanentError(f"{stack} is not live in our records: it has no login to renew")
        if SENT_TO in ctx.outputs:
            return await self._set_and_send(ctx, app, None)
        await self._probe_login(app, ctx.deployment.spec.host)
        found = await self._paas.find_basic_auth(app, ctx.deployment.spec.name)
        return await self._set_and_send(ctx, app, found)

    def leftover(self, ctx: PhaseContext) -> str:
        return ""  # nothing made that a failure would leave behind
