"""PURE: how the card of a stop, start or restart reads once it ran.

Such an operation gets its own card (the live card of the deploy stays as it is). It
changes nothing a failure would undo, so a failure says what it means for the stack ("nothing
changed", or started but not answering), never "rolled back"; and it offers no button: Retry
on a card asks for a deploy, and the command is one line to type again.
"""

from __future__ import annotations

from bot.blocks import duration, escape
from deployer import Deployment, Operation, PhaseRecord, PhaseState

CONTAINER_OPS = frozenset({Operation.STOP, Operation.START, Operation.RESTART})
_ICONS = {
    Operation.STOP: ":double_vertical_bar:",
    Operation.START: ":arrow_forward:",
    Operation.RESTART: ":arrows_counterclockwise:",
}
# What a failure while waiting for the URL leaves: the call itself went through
_NOT_ANSWERING = {
    Operation.START: "the container was started but does not answer",
    Operation.RESTART: "the container was restarted but does not answer",
}


def done_line(dep: Deployment) -> str:
    """alice is stopped (its data kept) / running again / restarted, and where it answers."""
    name, url = f"*{escape(dep.stack)}*", escape(dep.spec.url)
    said = {
        Operation.STOP: f"{name} is stopped; its data is kept; "
        f"`/aistack start {escape(dep.stack)}` starts it",
        Operation.START: f"{name} is running again and answers at {url}",
        Operation.RESTART: f"{name} restarted and answers at {url}",
    }
    return f"{_ICONS[dep.operation]} {said[dep.operation]}"


def succeeded_line(dep: Deployment, elapsed: float) -> str:
    return f"{done_line(dep)} · took {duration(elapsed)}"


def failed_line(dep: Deployment, phases: list[PhaseRecord]) -> str:
    """`Stop of alice failed: <reason>; nothing changed`."""
    failed = next((r for r in phases if r.state is PhaseState.FAILED), None)
    reason = escape((failed.error if failed else None) or dep.error or "unknown error")
    health = failed is not None and failed.name == "health"
    after = _NOT_ANSWERING.get(dep.operation, "") if health else ""
    what = f"{str(dep.operation).capitalize()} of *{escape(dep.stack)}* failed"
    return f":x: {what}: {reason}; {after or 'nothing changed'}"


def takeover_line(dep: Deployment, owner: str) -> str:
    """The request card's first line when the stack is someone else's: `owner` is a mention."""
    return f":warning: This {dep.operation}s {owner}'s live stack\n"
