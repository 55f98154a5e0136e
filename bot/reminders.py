"""PURE: a stack's lifetime in Slack: when it expires (the live card), the reminder before
it (the owner's direct message and a reply under the card, with Extend, Stop now and
Destroy), an extension said in the thread and answered to whoever asked, and why aistack
stops or destroys a stack (on that operation's own card).

Everything is drawn from an event's data (deployer/expiry.py writes it) or a live stack's
times, so a replica that did not sweep draws the same words. Times arrive as ISO text in the
events; one that cannot be read is shown as "?" rather than failing a whole reply.
"""

from __future__ import annotations

from datetime import datetime

from bot.blocks import (
    Block,
    Message,
    actions,
    button,
    confirm,
    context,
    escape,
    mention,
    message,
    section,
    when,
)
from deployer import Event, EventKind

K = EventKind
EXTEND, STOP, DESTROY = "aistack_extend", "aistack_stop", "aistack_destroy"


def _at(event: Event, key: str) -> datetime | None:
    raw = event.data.get(key)
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


# -- the live card -----------------------------------------------------------------------------
def expiry_line(expires_at: datetime | None) -> str | None:
    """The live card's line on when the stack expires; None when it never does."""
    if expires_at is None:
        return None
    return f":hourglass: Expires {when(expires_at)} · `/aistack extend` pushes it further"


# -- the reminder ------------------------------------------------------------------------------
def reminder_text(event: Event, *, yours: bool) -> str:
    """What happens at the expiry the reminder is about, and after it."""
    stack = f"*{escape(event.stack)}*"
    whose = f"Your stack {stack}" if yours else stack
    expires, grace = when(_at(event, "expires_at")), escape(str(event.data.get("grace", "?")))
    if event.data.get("stopped"):
        destroy = when(_at(event, "destroy_at"))
        return (f":hourglass: {whose} is stopped and expires {expires}: it is destroyed "
                f"{destroy} unless it is extended.")  # fmt: skip
    return (f":hourglass: {whose} expires {expires}. Then it is stopped, and destroyed "
            f"{grace} later unless it is started again or extended.")  # fmt: skip


def reminder(event: Event, *, yours: bool) -> Message:
    """The reminder with its buttons: in the owner's Messages tab (`yours`) and under the
    stack's card. Their value is the live deployment (the event's): the handlers act on
    its stack."""
    text = reminder_text(event, yours=yours)
    extend_by = escape(str(event.data.get("extend_by", "")))
    blocks = [section(text), actions(*_buttons(event))]
    owner = mention(str(event.data.get("owner", "")))
    extends = f"Extend: {extend_by} from now" if extend_by else "Extend"
    blocks.append(context(f"{extends}, no approval needed for {owner}"))
    return message(text, blocks)


def _buttons(event: Event) -> list[Block]:
    stack, value = event.stack, event.deployment_id
    extend = button("Extend", EXTEND, value, "primary")
    stop = button("Stop now", STOP, value, "primary")
    del stop["style"]  # a plain button: stopping is neither the suggested nor a danger
    destroy = button("Destroy", DESTROY, value, "danger")
    destroy["confirm"] = confirm(
        f"Destroy {stack}?", f"This removes *{escape(stack)}*, its domain and its DNS record. "
        "This cannot be undone.", "Destroy",
    )  # fmt: skip
    return [extend, destroy] if event.data.get("stopped") else [extend, stop, destroy]


# -- an extension ------------------------------------------------------------------------------
def extended_line(event: Event) -> str:
    """The thread's line for `stack.extended`."""
    return (f":hourglass: {mention(event.actor)} extended *{escape(event.stack)}*: it now "
            f"expires {when(_at(event, 'to'))} (was {when(_at(event, 'from'))})")  # fmt: skip


def extended_answer(stack: str, expires_at: datetime | None, by: str,
                    stopped_at: datetime | None) -> str:  # fmt: skip
    """The answer to whoever extended (the channel for the command, them for the button)."""
    line = f"*{escape(stack)}* now expires {when(expires_at)}; extended by {mention(by)}."
    if stopped_at is not None:
        line += f" It is stopped (since {when(stopped_at)}): `/aistack start {escape(stack)}`"
        line += " starts it."
    return line


# -- why aistack stops or destroys a stack -----------------------------------------------------
def cause_line(event: Event) -> str | None:
    """Why this operation was requested by aistack, for its card; None for other events."""
    stack, owner = f"*{escape(event.stack)}*", mention(str(event.data.get("owner", "")))
    grace = escape(str(event.data.get("grace", "?")))
    if event.kind == K.STACK_EXPIRED:
        return (f":hourglass: {stack} expired on {when(_at(event, 'expired_at'))}: aistack "
                "stops it. "
                f"{owner}: it is destroyed {when(_at(event, 'destroy_at'))} unless it is "
                f"started again (`/aistack start {escape(event.stack)}`) or extended "
                f"(`/aistack extend {escape(event.stack)}`).")  # fmt: skip
    if event.kind == K.STACK_GRACE_ENDED:
        return (f":wastebasket: {stack} was stopped on {when(_at(event, 'stopped_at'))} "
                f"(it expired {when(_at(event, 'expired_at'))}) and not started again: "
                f"aistack destroys it after a grace of {grace}. {owner} owned it.")  # fmt: skip
    return None
