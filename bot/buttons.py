"""The listeners' part for the cards' buttons: Approve, Reject, Destroy, Roll back, Retry
and Retry rollback, each checked (state, approval TTL, access.py's rule, the channel rule)
and answered to the clicker alone. Mixed into Listeners (bot/listeners.py), which registers
the buttons, parses the click and provides the deployer, the policy, Slack and the requests
below; the reminder's buttons are bot/lifetimes.py's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from bot import answers as a
from bot.access import AccessPolicy, Decision
from bot.directory import Directory
from bot.settings import BotSettings
from bot.slack_api import SlackWriter
from deployer import (
    AistackError,
    Clock,
    Deployer,
    Deployment,
    DeploymentState,
    IllegalTransition,
    NotFound,
    Operation,
    StackBusy,
)

if TYPE_CHECKING:
    from bot.listeners import Click, ClickHandler

S = DeploymentState
log = structlog.get_logger("aistack.bot.listeners")  # the listeners' logger: same events
Respond = Callable[..., Awaitable[Any]]
Rule = Callable[[str, frozenset[str], Deployment, str | None], Decision]  # ..., the owner


class CardButtons:
    _d: Deployer
    _clock: Clock
    _s: BotSettings
    _policy: AccessPolicy
    _dir: Directory
    _slack: SlackWriter
    _request: Callable[..., Awaitable[None]]  # (name, user, channel, trigger, respond, *, image)
    _request_change: Callable[[str, Operation, str, str, str | None, Respond], Awaitable[None]]
    _request_rollback: Callable[[str, int | None, str, str, str | None, Respond], Awaitable[None]]

    async def _clicked(self, handler: ClickHandler, click: Click) -> None:
        try:
            dep = await self._d.get(click.deployment_id)
            await handler(click, dep)
        except NotFound:
            await self._tell(click, "That deployment no longer exists.")
        except AistackError as exc:
            await self._tell(click, str(exc))
        except Exception:
            log.exception("button failed", deployment_id=click.deployment_id)
            await self._tell(click, "Something went wrong on our side; the team has the details.")

    async def _approve(self, click: Click, dep: Deployment) -> None:
        if not await self._decidable(click, dep, self._policy.may_approve):
            return
        try:
            await self._d.approve(dep, click.user)
        except IllegalTransition:  # another approver, or a double click, got there first
            await self._tell(click, _already(await self._d.get(dep.id)))
        except StackBusy as exc:  # another request was approved first and holds the stack
            await self._tell(click, f"Not approved: {exc}. This request stays open: approve "
                             "it once that is done, or reject it.")  # fmt: skip

    async def _reject(self, click: Click, dep: Deployment) -> None:
        if not await self._decidable(click, dep, self._policy.may_reject):
            return
        try:
            await self._d.reject(dep, click.user)
        except IllegalTransition:
            await self._tell(click, _already(await self._d.get(dep.id)))

    async def _decidable(self, click: Click, dep: Deployment, rule: Rule) -> bool:
        if dep.state is not S.REQUESTED:
            await self._tell(click, _already(dep))
            return False
        if self._clock.now() - dep.created_at > timedelta(seconds=self._s.approval_ttl):
            await self._d.expire_requests(self._s.approval_ttl)
            await self._tell(click, "This request expired before anyone approved it.")
            return False
        owner = await self._d.owner(dep.stack)
        decision = rule(click.user, await self._dir.groups_of(click.user), dep, owner)
        if not decision.allowed:
            await self._tell(click, decision.reason)
        return decision.allowed

    async def _destroy(self, click: Click, dep: Deployment) -> None:
        channel = dep.channel or click.channel  # a reminder's, in a DM: the stack's channel
        if await self._takes_requests(click, channel):
            await self._request_change(dep.stack, Operation.DESTROY, click.user, channel,
                                       None, self._ephemeral(click))  # fmt: skip

    async def _roll_back(self, click: Click, dep: Deployment) -> None:
        if await self._takes_requests(click):
            await self._request_rollback(dep.stack, None, click.user, click.channel, None,
                                         self._ephemeral(click))  # fmt: skip

    async def _retry(self, click: Click, dep: Deployment) -> None:
        if not await self._takes_requests(click):
            return
        if dep.restores is not None:  # a failed roll back is retried as one, to that release
            await self._request_rollback(dep.stack, dep.restores, click.user, click.channel,
                                         None, self._ephemeral(click))  # fmt: skip
            return
        await self._request(dep.stack, click.user, click.channel, None,
                            self._ephemeral(click), image=dep.spec.image)  # fmt: skip

    async def _takes_requests(self, click: Click, channel: str | None = None) -> bool:
        """A button that starts a new request obeys the channel rule, as the command does
        (for the channel its card goes to)."""
        allowed = self._policy.in_channel(channel or click.channel)
        if not allowed.allowed:
            await self._tell(click, allowed.reason)
        return allowed.allowed

    async def _retry_rollback(self, click: Click, dep: Deployment) -> None:
        groups = await self._dir.groups_of(click.user)
        owner = await self._d.owner(dep.stack)
        decision = self._policy.may_retry_rollback(click.user, groups, dep, owner)
        if not decision.allowed:
            await self._tell(click, decision.reason)
        elif dep.state is not S.ROLLBACK_FAILED:
            await self._tell(click, _already(dep))
        else:
            await self._d.retry_rollback(dep, click.user)
            message = a.notice("Retrying the rollback now; progress goes to the thread.")
            await self._slack.ephemeral(click.channel, click.user, message.text, message.blocks)

    def _ephemeral(self, click: Click) -> Respond:
        async def respond(*, text: str, blocks: Any = None, **_: Any) -> None:
            await self._slack.ephemeral(click.channel, click.user, text, blocks)

        return respond

    async def _tell(self, click: Click, text: str) -> None:
        message = a.refusal(text)
        await self._slack.ephemeral(click.channel, click.user, message.text, message.blocks)


def _already(dep: Deployment) -> str:
    if dep.state in (S.APPROVED, S.QUEUED, S.RUNNING, S.SUCCEEDED, S.DESTROYING, S.DESTROYED):
        who = f"<@{dep.approver}>" if dep.approver and dep.approver[:1] in "UW" else "someone"
        return f"Already approved by {who}; it is {dep.state} now."
    return f"This request is already {dep.state}; nothing to decide."
