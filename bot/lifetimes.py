"""The listeners' part for a stack's lifetime: `/aistack extend` and the reminder's Extend
and Stop now buttons (its Destroy is the card's). Mixed into Listeners (bot/listeners.py),
which provides the deployer, the policy, Slack and the shared answers below.

Who may extend is access.py's rule (the owner without asking, an approver too); how long is
the deployer's (at most AISTACK_STACK_TTL_MAX, refused saying so). A reminder's buttons carry
the live deployment: from a direct message, whatever they start goes to the stack's channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot import answers as a
from bot import reminders
from bot.access import AccessPolicy
from bot.directory import Directory
from bot.slack_api import SlackWriter
from deployer import Deployer, Deployment, NotFound, Operation

if TYPE_CHECKING:
    from bot.listeners import Click

Respond = Callable[..., Awaitable[Any]]


class AccessDenied(Exception):
    """A refusal of access.py, raised where an answer is built, said to the asker."""


class LifetimeClicks:
    _d: Deployer
    _policy: AccessPolicy
    _dir: Directory
    _slack: SlackWriter
    _tell: Callable[[Click, str], Awaitable[None]]
    _takes_requests: Callable[[Click, str | None], Awaitable[bool]]
    _ephemeral: Callable[[Click], Respond]
    _request_change: Callable[[str, Operation, str, str, str | None, Respond], Awaitable[None]]

    async def _extend(self, name: str, user: str, lifetime: float | None) -> str:
        """Extend a live stack for its owner or an approver: what to say (AccessDenied
        otherwise; LifetimeTooLong past the maximum, NotFound when it is not live)."""
        stack = self._d.spec(name).name
        owner = await self._d.owner(stack)
        if owner is None:
            raise NotFound(f"{stack} is not live: there is nothing to extend")
        decision = self._policy.may_extend(user, await self._dir.groups_of(user), owner)
        if not decision.allowed:
            raise AccessDenied(decision.reason)
        live = await self._d.extend(stack, by=user, lifetime=lifetime)
        return reminders.extended_answer(live.stack, live.expires_at, user, live.stopped_at)

    async def _extend_click(self, click: Click, dep: Deployment) -> None:
        """Extend on a reminder: the default lifetime from now, answered to the clicker."""
        try:
            said = await self._extend(dep.stack, click.user, None)
        except AccessDenied as exc:
            await self._tell(click, str(exc))
            return
        message = a.notice(said)
        await self._slack.ephemeral(click.channel, click.user, message.text, message.blocks)

    async def _stop_click(self, click: Click, dep: Deployment) -> None:
        """Stop now on a reminder (a direct message, or the card's thread): the stop's card
        goes where the stack's card is; the owner's stop goes ahead at once, anyone else's
        waits for approval."""
        channel = dep.channel or click.channel
        if await self._takes_requests(click, channel):
            await self._request_change(dep.stack, Operation.STOP, click.user, channel, None,
                                       self._ephemeral(click))  # fmt: skip
