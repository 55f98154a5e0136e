"""Slash command and button listeners: ack at once, authorize, hand over to the deployer.

Parsing is pure and happens before the ack, so a malformed command is answered in the ack
itself (ephemeral). Everything that does I/O runs after the ack in a tracked task, wrapped so
that every failure reaches the user as a clear message.

What a command or click decided is stored before anything is posted, in one write: the
request with the channel its card goes to, and (when it needs no approval) already approved
and queued. The card comes after; if the bot dies before it is posted, the notifier's sweep
posts it (bot/notifier.py post_unposted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot import answers as a
from bot import commands as c
from bot import messages as m
from bot import reminders
from bot.access import AccessPolicy
from bot.blocks import Message, escape, mention
from bot.buttons import CardButtons
from bot.day_two import check_message, logs_message
from bot.directory import Directory
from bot.lifetimes import AccessDenied, LifetimeClicks
from bot.notifier import NO_CARD, SlackNotifier
from bot.releases import releases_message
from bot.settings import BotSettings
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from deployer import (
    AistackError,
    Clock,
    Deployer,
    Deployment,
    DeploymentState,
    LifetimeTooLong,
    NotFound,
    Operation,
    QuotaExceeded,
    StackBusy,
)

S = DeploymentState
log = structlog.get_logger("aistack.bot.listeners")
Respond = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Click:
    user: str
    channel: str
    deployment_id: str


ClickHandler = Callable[[Click, Deployment], Awaitable[None]]


class Listeners(CardButtons, LifetimeClicks):
    def __init__(
        self,
        deployer: Deployer,
        settings: BotSettings,
        slack: SlackWriter,
        directory: Directory,
        tasks: Tasks,
        cards: SlackNotifier,
        clock: Clock,
    ) -> None:
        self._d = deployer
        self._clock = clock  # the approval TTL is measured on it
        self._cards = cards
        self._s = settings
        self._policy: AccessPolicy = settings.policy()
        self._slack = slack
        self._dir = directory
        self._tasks = tasks

    @property
    def _buttons(self) -> dict[str, ClickHandler]:
        return {
            "aistack_approve": self._approve,
            "aistack_reject": self._reject,
            "aistack_destroy": self._destroy,
            # Cards posted before the Destroy button got its own id still carry this one
            "aistack_rollback": self._destroy,
            "aistack_roll_back": self._roll_back,
            "aistack_retry": self._retry,
            "aistack_retry_rollback": self._retry_rollback,
            reminders.EXTEND: self._extend_click,
            reminders.STOP: self._stop_click,
        }

    def register(self, app: AsyncApp) -> None:
        app.command("/aistack")(self.on_command)
        for action in self._buttons:
            app.action(action)(self.on_click)

    # -- the slash command ------------------------------------------------------------------
    async def on_command(self, ack: Any, command: dict[str, Any], respond: Respond) -> None:
        user, channel = command["user_id"], command["channel_id"]
        try:
            parsed = c.parse(command.get("text", ""), validate_name=self._validate)
        except c.UsageError as exc:
            message = a.usage_error(exc.problem, exc.hint)
            await ack(text=message.text, blocks=message.blocks)
            return
        allowed = self._policy.in_channel(channel)
        if not allowed.allowed:
            await ack(text=a.refusal(allowed.reason).text)
            return
        await ack()
        work = self._command(parsed, user, channel, command.get("trigger_id"), respond)
        self._tasks.spawn(self._answering(work, respond), name=f"command:{user}")

    async def _command(
        self, cmd: c.Command, user: str, channel: str, trigger: str | None, respond: Respond
    ) -> None:
        match cmd:
            case c.Help():  # only the asker wants it: the channel does not
                await _say(respond, a.help_message(c.USAGE))
            case c.Deploy(name=name, image=image, dry_run=True):
                spec = self._d.spec(name, image)
                if not await self._image_refused(spec.image, respond):
                    await _say(respond, a.dry_run_message(spec, self._d.plan(spec)))
            case c.Deploy(name=name, image=image, lifetime=lifetime):
                await self._request(name, user, channel, trigger, respond, image=image,
                                    lifetime=lifetime)  # fmt: skip
            case c.Destroy(name=name):
                await self._request_change(name, Operation.DESTROY, user, channel, trigger,
                                           respond)  # fmt: skip
            case c.Container(verb=verb, name=name):
                await self._request_change(name, Operation(verb), user, channel, trigger,
                                           respond)  # fmt: skip
            case c.Rollback(name=name, to=to):
                await self._request_rollback(name, to, user, channel, trigger, respond)
            case c.Releases(name=name):
                await _say(respond, releases_message(name, await self._d.releases(name)),
                           public=True)  # fmt: skip
            case c.Extend(name=name, lifetime=lifetime):
                await _say(respond, a.notice(await self._extend(name, user, lifetime)),
                           public=True)  # fmt: skip
            case c.Transfer(name=name, to=to):
                await self._transfer(name, to, user, respond)
            case c.Credentials(name=name):
                await self._credentials(name, user, trigger, respond)
            case c.ListStacks(mine=True):  # the asker's own: answered to the asker alone
                stacks = await self._d.list_stacks()
                await _say(respond, a.list_message(stacks, mine_of=user, now=self._d.now()))
            case c.Status(name=None) | c.ListStacks():
                stacks = await self._d.list_stacks()
                await _say(respond, a.list_message(stacks, now=self._d.now()), public=True)
            case c.Status(name=str(name), check=True):
                checked = await self._d.check(name)
                await _say(respond, check_message(checked, self._d.now()), public=True)
            case c.Status(name=str(name)):
                status = await self._d.status(name)
                await _say(respond, a.status_message(status, now=self._d.now()), public=True)
            case c.Logs(name=name, tail=tail, build=build):
                await self._logs(name, tail, build, user, respond)
            case c.History(name=name):
                events = await self._d.history(name)
                await _say(respond, a.history_message(name, events), public=True)
            case c.Preflight():
                await _say(respond, a.preflight_message(await self._d.preflight()))

    async def _request(
        self, name: str, user: str, channel: str, trigger: str | None, respond: Respond,
        *, image: str | None = None, lifetime: float | None = None,
    ) -> None:  # fmt: skip
        refused = self._policy.may_request(user, await self._dir.groups_of(user))
        if not refused.allowed:
            await _say(respond, a.refusal(refused.reason))
            return
        if await self._image_refused(self._d.spec(name, image).image, respond):
            return
        # Someone else's live stack is never replaced unasked, even with approval off.
        owner = await self._d.owner(self._d.spec(name).name)
        needed = self._s.approval_required or owner not in (None, user)
        dep = await self._d.request(name, requester=user, image=image, dedup_key=trigger,
                                    channel=channel, approved=not needed,
                                    lifetime=lifetime)  # fmt: skip
        if await self._cards.card(dep.id) is None:  # not a replay of a request already carded
            await self._post_card(dep, respond, approval_required=needed)

    async def _request_change(
        self, name: str, operation: Operation, user: str, channel: str, trigger: str | None,
        respond: Respond,
    ) -> None:  # fmt: skip
        """A destroy, stop, start or restart: the owner's goes ahead at once, anyone else's
        waits for approval (and the owner may refuse it)."""
        owner = await self._d.owner(self._d.spec(name).name)
        direct = self._policy.may_change_directly(user, owner)
        dep = await self._d.request(
            name, requester=user, operation=operation, dedup_key=trigger, channel=channel,
            approved=direct,
        )  # fmt: skip
        if await self._cards.card(dep.id) is None:
            await self._post_card(dep, respond, approval_required=not direct)

    async def _request_rollback(
        self, name: str, to: int | None, user: str, channel: str, trigger: str | None,
        respond: Respond,
    ) -> None:  # fmt: skip
        """Put an earlier release back: like a destroy, the owner's goes ahead at once and
        anyone else's waits for approval. The stack is live: no quota applies."""
        owner = await self._d.owner(self._d.spec(name).name)
        direct = self._policy.may_change_directly(user, owner)
        dep = await self._d.request_rollback(name, requester=user, to=to, dedup_key=trigger,
                                             channel=channel, approved=direct)  # fmt: skip
        if await self._cards.card(dep.id) is None:
            await self._post_card(dep, respond, approval_required=not direct)

    async def _logs(self, name: str, tail: int, build: bool, user: str, respond: Respond) -> None:
        """To the asker alone: the owner's or an approver's (access.may_read_logs)."""
        owner = await self._d.owner(self._d.spec(name).name)
        decision = self._policy.may_read_logs(user, await self._dir.groups_of(user), owner)
        if not decision.allowed:
            await _say(respond, a.refusal(decision.reason))
            return
        await _say(respond, logs_message(await self._d.logs(name, tail=tail, build=build)))

    async def _image_refused(self, image: str, respond: Respond) -> bool:
        """An image outside AISTACK_ALLOWED_IMAGES is refused to the asker alone: no card."""
        if self._d.image_refusal(image) is None:
            return False
        allowed = ", ".join(f"`{p}`" for p in self._d.allowed_images)
        await _say(respond, a.refusal(f"The image `{image}` is not allowed here. Allowed "
                                      f"(AISTACK_ALLOWED_IMAGES): {allowed}"))  # fmt: skip
        return True

    async def _transfer(self, name: str, to: str, user: str, respond: Respond) -> None:
        stack = self._d.spec(name).name
        owner = await self._d.owner(stack)
        if owner is None:
            raise NotFound(f"{stack} is not live: nobody owns it, so there is nothing to transfer")
        decision = self._policy.may_transfer(user, await self._dir.groups_of(user), owner)
        if not decision.allowed or owner == to:
            await _say(
                respond, a.refusal(decision.reason or f"{mention(to)} already owns {stack}.")
            )
            return
        await self._d.transfer(stack, owner=owner, to=to, by=user)
        said = f"{stack} now belongs to {mention(to)} (it was {mention(owner)}'s)"
        await _say(respond, a.notice(f"{said}; transferred by {mention(user)}."), public=True)

    async def _credentials(
        self, name: str, user: str, trigger: str | None, respond: Respond
    ) -> None:
        """A new password for the stack's login, to its owner alone (a DM): asked for by the
        owner or an approver, at once. No card: nothing in the channel is about it."""
        stack = self._d.spec(name).name
        owner = await self._d.owner(stack)
        if owner is None:
            raise NotFound(f"{stack} is not live: it has no login to renew")
        decision = self._policy.may_renew_login(user, await self._dir.groups_of(user), owner)
        if not decision.allowed:
            await _say(respond, a.refusal(decision.reason))
            return
        await self._d.request(name, requester=user, operation=Operation.CREDENTIALS,
                              dedup_key=trigger, approved=True)  # fmt: skip
        to = "you" if owner == user else mention(owner)
        await _say(respond, a.notice(f"A new password for *{stack}* is on its way to "
                                     f"{to} in a direct message."))  # fmt: skip

    async def _post_card(
        self, dep: Deployment, respond: Respond, *, approval_required: bool
    ) -> None:
        """The request is stored; now its card (once, even if the sweep of another replica
        finds it unposted meanwhile). The owner's own request settles the others first."""
        closed = await self._d.supersede(dep)

        async def render(current: Deployment) -> Message:
            plan = self._d.plan(current.spec, current.operation, current.restores)
            expires = current.created_at + timedelta(seconds=self._s.approval_ttl)
            return m.request_card(current, plan, expires_at=expires,
                                  approval_required=approval_required,
                                  replaces=await self._d.takeover(current))  # fmt: skip

        try:
            await self._cards.post_card(dep.id, render)
        except SlackApiError as exc:
            if exc.response.get("error") not in NO_CARD:
                raise
            await self._no_card(dep, respond)
            return
        for other in closed:
            await self._say_superseded(other, dep)

    async def _no_card(self, dep: Deployment, respond: Respond) -> None:
        """A channel the bot cannot post in: a request waiting for approval could never be
        approved, so it ends; one approved already goes ahead, and the asker is told."""
        goes_on = ""
        if dep.state is S.REQUESTED:
            await self._d.expire(dep, "the request card could not be posted")
        else:
            goes_on = f" The {dep.operation} of {dep.stack} goes ahead: `/aistack status` shows it."
        await _say(respond, a.refusal(f"I cannot post in this channel: `/invite @aistack` "
                                      f"first.{goes_on}"))  # fmt: skip

    async def _say_superseded(self, closed: Deployment, by: Deployment) -> None:
        """Under the closed card: why, and to whom (a mention notifies them; an edit not)."""
        if (card := await self._cards.card(closed.id)) is None:
            return
        line = (f":no_entry_sign: {mention(closed.requester)}: this request is closed, "
                f"superseded by {mention(by.requester)}'s own {by.operation}.")  # fmt: skip
        try:
            await self._slack.post(card.channel, line, thread_ts=card.ts)
        except SlackApiError as exc:  # the request is closed either way; the card says so
            log.warning("superseded note not posted", deployment_id=closed.id, error=str(exc))

    # -- buttons (what each one does: bot/buttons.py) ---------------------------------------
    async def on_click(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = _click(body, action)
        handler = self._buttons.get(str(action.get("action_id")))
        if click is None or handler is None:  # not something our cards send
            log.warning("click ignored", action=str(action.get("action_id"))[:40])
            return
        self._tasks.spawn(self._clicked(handler, click), name=f"click:{action['action_id']}")

    # -- answering --------------------------------------------------------------------------
    async def _answering(self, work: Awaitable[None], respond: Respond) -> None:
        try:
            await work
        except StackBusy as exc:
            await _say(respond, a.busy_message(str(exc)))
        except (NotFound, QuotaExceeded, LifetimeTooLong, AccessDenied) as exc:  # our own words
            await _say(respond, a.refusal(str(exc)))
        except AistackError as exc:  # upstream text: escaped whole, no mention survives
            await _say(respond, a.refusal(f"That did not work: {escape(str(exc))}"))
        except Exception:
            log.exception("command failed")
            await _say(
                respond, a.refusal("Something went wrong on our side; the team has the details.")
            )

    def _validate(self, raw: str) -> str:
        return self._d.spec(raw).name


async def _say(respond: Respond, message: Message, *, public: bool = False) -> None:
    kind = "in_channel" if public else "ephemeral"
    await respond(text=message.text, blocks=message.blocks, response_type=kind)


def _click(body: dict[str, Any], action: dict[str, Any]) -> Click | None:
    """The click's who, where and which deployment, or None when the payload lacks them."""
    user, channel = body.get("user"), body.get("channel")
    if not isinstance(user, dict) or not isinstance(channel, dict):
        return None
    who, where, value = user.get("id"), channel.get("id"), action.get("value")
    if not (isinstance(who, str) and isinstance(where, str) and isinstance(value, str)):
        return None
    return Click(who, where, value)
