"""Block Kit test helpers: walk a message's blocks, list every text, check Slack's limits.

Limits from ../shared/specs/slack.md §6. `check_limits` raises AssertionError naming the
block (by index and JSON-ish path) that breaks a rule, so a failing test says where.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

Blocks = Sequence[Mapping[str, Any]]

MAX_BLOCKS = 50
MAX_TEXT = 4000
LIMITS = {
    "header": 150,
    "section": 3000,
    "field": 2000,
    "button": 75,
    "value": 2000,
    "url": 3000,
    "id": 255,
    "confirm_title": 100,
    "confirm_text": 300,
    "confirm_button": 30,
}
# What may stand between < and > in text we send: a user, group or channel mention.
SAFE_MARKUP = re.compile(r"<(?:@[UW][A-Z0-9]{2,}|!subteam\^S[A-Z0-9]{2,}|#C[A-Z0-9]{2,})>")


class MessageLike(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def blocks(self) -> list[dict[str, Any]]: ...


def texts(blocks: Blocks) -> Iterator[str]:
    """Every string under a "text" key, at any depth (sections, fields, buttons, dialogs)."""
    yield from _walk(list(blocks))


def _walk(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def all_texts(message: MessageLike) -> list[str]:
    """The top-level text and every text in the blocks."""
    return [message.text, *texts(message.blocks)]


def buttons(blocks: Blocks) -> list[Mapping[str, Any]]:
    return [e for b in blocks if b.get("type") == "actions" for e in b.get("elements", [])]


def action_ids(blocks: Blocks) -> list[str]:
    return [str(b["action_id"]) for b in buttons(blocks)]


def unsafe_markup(text: str) -> list[str]:
    """Every raw `<…>` (or stray `<`, `>`) that is not a well-formed user/group/channel mention.

    Escaped text has none: `&lt;!channel&gt;` shows literally and notifies nobody."""
    return re.findall(r"<[^<>]*>?|>", SAFE_MARKUP.sub("", text))


def check_message(message: MessageLike) -> None:
    check_limits(message.text, message.blocks)


def check_limits(text: str, blocks: Blocks) -> None:
    """Assert Slack's limits: text, block count, unique block ids, and each block's own."""
    assert text.strip(), "top-level text is empty"
    assert len(text) <= MAX_TEXT, f"top-level text has {len(text)} characters"
    assert len(blocks) <= MAX_BLOCKS, f"{len(blocks)} blocks"
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids)), f"duplicate block_id in {ids}"
    for index, block in enumerate(blocks):
        where = f"blocks[{index}] ({block.get('type')})"
        assert len(str(block.get("block_id", ""))) <= LIMITS["id"], f"{where}: block_id too long"
        _check_block(where, block)


def _check_block(where: str, block: Mapping[str, Any]) -> None:
    kind = block.get("type")
    if kind == "header":
        assert block["text"]["type"] == "plain_text", f"{where}: header must be plain_text"
        _at_most(where, "text", block["text"]["text"], LIMITS["header"])
    elif kind == "section":
        if "text" in block:
            _at_most(where, "text", block["text"]["text"], LIMITS["section"])
        fields = block.get("fields", [])
        assert len(fields) <= 10, f"{where}: {len(fields)} fields"
        for field in fields:
            _at_most(where, "field", field["text"], LIMITS["field"])
    elif kind == "context":
        assert 1 <= len(block["elements"]) <= 10, f"{where}: context needs 1-10 elements"
        for element in block["elements"]:
            _at_most(where, "context text", element.get("text", ""), LIMITS["section"])
    elif kind == "actions":
        _check_actions(where, block)


def _check_actions(where: str, block: Mapping[str, Any]) -> None:
    elements = block["elements"]
    assert 1 <= len(elements) <= 25, f"{where}: actions needs 1-25 elements"
    seen = [e["action_id"] for e in elements]
    assert len(seen) == len(set(seen)), f"{where}: duplicate action_id in {seen}"
    for button in elements:
        assert button["text"]["type"] == "plain_text", f"{where}: button text must be plain_text"
        _at_most(where, "button text", button["text"]["text"], LIMITS["button"])
        _at_most(where, "button value", button.get("value", ""), LIMITS["value"])
        _at_most(where, "button url", button.get("url", ""), LIMITS["url"])
        _at_most(where, "action_id", button["action_id"], LIMITS["id"])
        assert button.get("style", "primary") in ("primary", "danger"), f"{where}: bad style"
        if "confirm" in button:
            _check_confirm(where, button["confirm"])


def _check_confirm(where: str, confirm: Mapping[str, Any]) -> None:
    _at_most(where, "confirm title", confirm["title"]["text"], LIMITS["confirm_title"])
    _at_most(where, "confirm text", confirm["text"]["text"], LIMITS["confirm_text"])
    _at_most(where, "confirm button", confirm["confirm"]["text"], LIMITS["confirm_button"])
    _at_most(where, "deny button", confirm["deny"]["text"], LIMITS["confirm_button"])


def _at_most(where: str, what: str, value: str, limit: int) -> None:
    assert len(value) <= limit, f"{where}: {what} has {len(value)} characters (max {limit})"
