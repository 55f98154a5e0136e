"""PURE: the answers of the day-two commands, and the words for how a live stack runs.

`logs` is a code snippet within Slack's limits (a section holds 3000 characters, a message 50
blocks; we stop at MAX_BODY in all): the newest lines are kept and the answer says how many
older ones were cut. Its lines were masked by the deployer; here they are only escaped, so
nothing in a log can become a mention, a link or the end of the code block.
`status --check` says what the URL answered just now (how the stack runs, "running for 3 h ·
release 4 · expires ...", is `StackStatus.life`, shared with the CLI).
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.blocks import (
    MAX_BODY,
    MAX_SECTION,
    Block,
    Message,
    chunked,
    context,
    escape,
    header,
    message,
    section,
    when,
)
from bot.messages import utc
from deployer import StackLogs, StackStatus

FENCE = "```"
_BACKTICKS = re.compile(r"`(?=`)")  # a backtick followed by another
MAX_LINE = 1000  # one log line, at most: a longer one is cut (its end marked)


# -- how a live stack runs --------------------------------------------------------------------
# -- status --check ---------------------------------------------------------------------------
def check_message(status: StackStatus, now: datetime | None = None) -> Message:
    """What the stack's URL answered just now, how long it has run, its release."""
    name, url = f"*{escape(status.name)}*", escape(status.url)
    probe = status.probe
    if status.owner is None:
        line = f":information_source: {name} is not live: not probed"
    elif status.stopped_at is not None:
        stopped = when(status.stopped_at)
        line = f":double_vertical_bar: {name} is stopped since {stopped}: not probed"
    elif probe is None:
        line = f":information_source: {name} was not probed"
    else:
        icon = ":white_check_mark:" if probe.ready else ":x:"
        line = f"{icon} {url} {escape(probe.words)}"
    blocks = [header(f"aistack: check {status.name}"), section(line)]
    about = [escape(status.life(now)), f"probed {utc(probe.at):%H:%M:%S} UTC" if probe else ""]
    if any(about):
        blocks.append(context(*about))
    return message(line, blocks)


# -- logs -------------------------------------------------------------------------------------
def logs_message(logs: StackLogs) -> Message:
    """The snippet, newest lines kept; or why there is none (no fault: said plainly)."""
    what = "build log" if logs.build else "logs"
    if logs.absent is not None:
        line = f":information_source: {escape(logs.absent)}"
        return message(line, [section(line)])
    if not logs.lines:
        line = f":information_source: The {_source(logs)} of *{escape(logs.stack)}* is empty."
        return message(line, [section(line)])
    sections, shown = code_sections(list(logs.lines))
    cut = len(logs.lines) - shown
    about = [
        f"last {shown} lines of its {_source(logs)}",
        f"{cut} older lines cut to fit Slack; ask for fewer with --tail" if cut else "",
        f"values of its environment shown as •••• ({logs.masked})" if logs.masked else "",
        "only you can see this",
    ]
    blocks = [header(f"aistack: {what} of {logs.stack}"), context(*about), *sections]
    return message(f"{what.capitalize()} of {escape(logs.stack)}: last {shown} lines", blocks)


def _source(logs: StackLogs) -> str:
    return "live release's build log" if logs.build else "container output"


def code_sections(lines: list[str]) -> tuple[list[Block], int]:
    """The newest lines that fit, in code sections of at most MAX_SECTION characters and
    MAX_BODY in all, oldest first; and how many lines they hold."""
    room = MAX_SECTION - 2 * len(FENCE) - 2
    # the header and context need their room
    chunks = chunked([_code_line(x) for x in lines], room, MAX_BODY - 100, keep_last=True)
    blocks = [section(f"{FENCE}\n" + "\n".join(chunk) + f"\n{FENCE}") for chunk in chunks]
    return blocks, sum(len(chunk) for chunk in chunks)


def _code_line(line: str) -> str:
    """Escaped, cut to MAX_LINE, and unable to close the code block (a zero-width space
    splits any run of backticks)."""
    shown = _BACKTICKS.sub("`\u200b", escape(line))
    return (shown if len(shown) <= MAX_LINE else shown[: MAX_LINE - 1] + "…") or " "
