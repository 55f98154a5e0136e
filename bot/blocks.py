"""Block Kit building blocks: escaping, mentions, durations, and Slack's size limits.

Every message goes through `message()` and long text through `pack()`, so nothing built here
can exceed the limits of ../shared/specs/slack.md §6.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Block = dict[str, Any]
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_TEXT = 4000
MAX_BUTTON = 75
MAX_HEADER = 150
MAX_CONTEXT = 2000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
# Lists and history stop well before 50 full sections: readable, and clear of Slack's
# undocumented cap on a message's total size.
MAX_BODY = 12000

_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP = re.compile(r"S[A-Z0-9]{2,}")
_KEEP = re.compile(r"<(?:@[UW][A-Z0-9]{2,}|!subteam\^S[A-Z0-9]{2,}|#C[A-Z0-9]{2,})>")


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[Block]


# -- text -----------------------------------------------------------------------------------
def escape(text: str) -> str:
    """mrkdwn-escape: & < > lose their meaning, so nothing becomes a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(who: str | None) -> str:
    """`<@U…>` for a user id, `<!subteam^S…>` for a user group, escaped text otherwise."""
    if who and _USER.fullmatch(who):
        return f"<@{who}>"
    if who and _GROUP.fullmatch(who):
        return f"<!subteam^{who}>"
    return escape(who or "someone")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float) -> str:
    """0.4 s, 12 s, 1 min 02 s, 2 h 05 min."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def clock(seconds: float) -> str:
    """0:12, 12:05, 1:02:03."""
    minutes, secs = divmod(int(max(seconds, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def keep_mentions(text: str) -> str:
    """Escape all but well-formed user, group and channel mentions (for our own texts)."""
    parts, last = [], 0
    for match in _KEEP.finditer(text):
        parts += [escape(text[last : match.start()]), match.group()]
        last = match.end()
    return "".join([*parts, escape(text[last:])])


# -- blocks ---------------------------------------------------------------------------------
def plain(text: str, limit: int) -> dict[str, str]:
    """plain_text shows no mentions; it is escaped anyway: one rule for every text field."""
    return {"type": "plain_text", "text": truncate(escape(text), limit)}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER)}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}}


def context(*parts: str) -> Block:
    text = truncate(" · ".join(p for p in parts if p), MAX_CONTEXT)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def button(label: str, action_id: str, value: str, style: str) -> Block:
    text = plain(label, MAX_BUTTON)
    return {"type": "button", "action_id": action_id, "value": value, "style": style, "text": text}


def confirm(title: str, text: str, yes: str, no: str = "Cancel") -> Block:
    """A button's "are you sure?" dialog: Slack sends the click only once it is confirmed."""
    return {
        "title": plain(title, MAX_CONFIRM_TITLE),
        "text": {"type": "mrkdwn", "text": truncate(text, MAX_CONFIRM_TEXT)},
        "confirm": plain(yes, MAX_CONFIRM_BUTTON),
        "deny": plain(no, MAX_CONFIRM_BUTTON),
        "style": "danger",
    }


def actions(*buttons: Block) -> Block:
    return {"type": "actions", "block_id": "actions", "elements": list(buttons)}


def message(text: str, blocks: list[Block]) -> Message:
    """The message-wide limits: text non-empty and short, at most 50 blocks, unique ids."""
    kept, seen = blocks[:MAX_BLOCKS], set()
    for index, block in enumerate(kept):
        block_id = str(block.get("block_id") or f"b{index}")
        while block_id in seen:
            block_id = f"{block_id}-{index}"
        block["block_id"] = block_id
        seen.add(block_id)
    return Message(truncate(text.strip() or "aistack", MAX_TEXT), kept)


def pack(lines: Sequence[str], *, keep_last: bool = False) -> tuple[list[Block], int]:
    """Lines in as few sections as the limits allow, and how many were left out.

    keep_last keeps the last (newest) lines when they do not all fit."""
    chunks = chunked([truncate(x, MAX_SECTION) for x in lines], MAX_SECTION, MAX_BODY,
                     keep_last=keep_last)  # fmt: skip
    left = len(lines) - sum(len(chunk) for chunk in chunks)
    return [section("\n".join(chunk)) for chunk in chunks], left


def chunked(
    lines: Sequence[str], room: int, budget: int, *, keep_last: bool = False
) -> list[list[str]]:
    """Lines (each at most `room` long) in order, in chunks of at most `room` characters and
    `budget` in all; when they do not all fit, the first ones are kept, or the last ones."""
    chunks: list[list[str]] = [[]]
    size = used = 0
    for line in lines[::-1] if keep_last else lines:
        if used + len(line) + 1 > budget:
            break
        if chunks[-1] and size + len(line) + 1 > room:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size, used = size + len(line) + 1, used + len(line) + 1
    if keep_last:
        chunks = [chunk[::-1] for chunk in chunks[::-1]]
    return [chunk for chunk in chunks if chunk]


def when(at: datetime | None) -> str:
    """A moment as every answer says it (and the deployer's console): `2026-12-07 10:00 UTC`."""
    if at is None:
        return "?"
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return f"{at:%Y-%m-%d %H:%M} UTC"
