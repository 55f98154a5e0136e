"""A stack's login in Slack: the password goes to its owner in a direct message, and nowhere
else (no channel, no thread, no log line).

`SlackCourier` is the deployer's Courier: one DM with the URL, the username and the password.
`LoginFailures` is a Notifier: a `credentials` request that failed is told to whoever asked,
in a DM too, since the request posts no card (the asker was told "on its way" at once).
"""

from __future__ import annotations

import re

import structlog

from bot.blocks import Message, context, escape, mention, message, section
from bot.slack_api import SlackWriter
from deployer import (
    Deployment,
    DeploymentReads,
    DeploymentState,
    Event,
    EventKind,
    Operation,
    PermanentError,
)

log = structlog.get_logger("aistack.bot.credentials")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_FAILED = frozenset(
    {EventKind.entering(DeploymentState.ROLLED_BACK),
     EventKind.entering(DeploymentState.ROLLBACK_FAILED)}
)  # fmt: skip


def login_message(dep: Deployment, username: str, password: str) -> Message:
    """The owner's DM: where, who, the password, and how to get a new one."""
    stack, url = escape(dep.stack), escape(dep.spec.url)
    why = (f"Asked for by {mention(dep.requester)}." if dep.operation is Operation.CREDENTIALS
           else "Made with the stack.")  # fmt: skip
    body = (
        f":closed_lock_with_key: The login for *{stack}* at {url}\n"
        f"User: `{escape(username)}`\nPassword: `{escape(password)}`"
    )
    keep = (f"{why} Keep it to yourself: it opens the stack. `/aistack credentials {stack}` "
            "makes a new one (this one then stops working).")  # fmt: skip
    return message(f"The login for {stack} at {url}", [section(body), context(keep)])


class SlackCourier:
    def __init__(self, slack: SlackWriter) -> None:
        self._slack = slack

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None:
        if not _SLACK_USER.fullmatch(owner):
            raise PermanentError(
                f"{deployment.stack}'s owner {owner} is not a Slack user, so no direct "
                f"message can reach them: `aistack credentials {deployment.stack}` prints a "
                "new password in the operator's terminal"
            )
        login = login_message(deployment, username, password)
        await self._slack.dm(owner, login.text, login.blocks)
        log.info("login sent", stack_name=deployment.stack, to=owner)


class LoginFailures:
    """Tells the asker when a new password could not be set or sent."""

    def __init__(self, slack: SlackWriter, reads: DeploymentReads) -> None:
        self._slack = slack
        self._reads = reads

    async def notify(self, event: Event) -> None:
        if event.kind not in _FAILED:
            return
        dep = await self._reads.get(event.deployment_id)
        if dep.operation is not Operation.CREDENTIALS or not _SLACK_USER.fullmatch(dep.requester):
            return
        line = (f":x: No new password for *{escape(dep.stack)}*: "
                f"{escape(dep.error or 'unknown error')}. The one before may no longer work: "
                f"`/aistack credentials {escape(dep.stack)}` tries again.")  # fmt: skip
        await self._slack.dm(dep.requester, line, [section(line)])
