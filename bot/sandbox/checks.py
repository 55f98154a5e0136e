"""What the Slack fake checks on every call: arguments against the packaged OpenAPI subset, and
the Block Kit limits Slack enforces (../shared/specs/slack.md §3 and §6).

Each check returns a list of problems (empty means fine); the fake answers and records them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).parent / "specs" / "slack-web-openapi-subset.json"

JSON_ARRAYS = frozenset({"blocks", "attachments"})  # JSON arrays, or JSON text in form bodies
JSON_OBJECTS = frozenset({"view"})  # a JSON object, or its JSON text (the spec says string)
BOOLEANS = frozenset({"true", "false", "1", "0"})  # slack_sdk sends bools in forms as "1"/"0"

RESPONSE_URL_USES = 5  # a response_url takes up to 5 messages (§2.1)
MAX_BLOCKS = 50
MAX_TEXT = 4000  # top-level `text`: Slack truncates at 40,000; the bot aims for 4,000 (§3)

# (block type, key) -> limit: characters of a text object, items of a list
_TEXT_LIMITS = {("section", "text"): 3000, ("header", "text"): 150}
_COUNT_LIMITS = {
    ("section", "fields"): 10,
    ("context", "elements"): 10,
    ("actions", "elements"): 25,
}
_BUTTON_LIMITS = {"value": 2000, "url": 3000, "action_id": 255}
_CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool


# Slack takes `team_id` on every method (org-wide installs); Bolt builds each listener's client
# with `team_id=context.team_id`, and slack_sdk then adds it to every call (`default_params`).
ANY_METHOD = {"team_id": Param("team_id", "string", False)}


def load_methods(path: Path = SPEC_PATH) -> dict[str, dict[str, Param]]:
    """Method name -> its parameters by name, from a Swagger 2.0 document, plus ANY_METHOD."""
    doc = json.loads(path.read_text())
    methods: dict[str, dict[str, Param]] = {}
    for route, item in doc["paths"].items():
        params = dict(ANY_METHOD)
        for operation in item.values():
            for p in operation.get("parameters", []):
                params[p["name"]] = Param(
                    p["name"], p.get("type", "string"), bool(p.get("required"))
                )
        methods[route.lstrip("/")] = params
    return methods


def check_arguments(
    params: Mapping[str, Param], args: Mapping[str, Any], *, token_in_header: bool
) -> list[str]:
    """Unknown names, missing required ones (a bearer header stands for `token`), wrong types."""
    problems = [f"unknown argument `{name}`" for name in args if name not in params]
    for p in params.values():
        if p.required and p.name not in args and not (p.name == "token" and token_in_header):
            problems.append(f"missing required argument `{p.name}`")
    for name, value in args.items():
        param = params.get(name)
        if param is not None and not _type_ok(param, value):
            problems.append(f"`{name}` is not a valid {param.type}: {str(value)[:60]!r}")
    return problems


def _type_ok(p: Param, value: Any) -> bool:
    if p.name in JSON_ARRAYS:
        return json_array(value) is not None
    if p.name in JSON_OBJECTS:
        return json_object(value) is not None
    if p.type == "boolean":
        return isinstance(value, bool) or (isinstance(value, str) and value.lower() in BOOLEANS)
    if p.type == "integer":
        if isinstance(value, str):
            return value.removeprefix("-").isdigit()
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def json_object(value: Any) -> dict[str, Any] | None:
    """An object, given as such or as JSON text; None when it is anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def json_array(value: Any) -> list[dict[str, Any]] | None:
    """A list of objects, given as such or as JSON text; None when it is anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    return None


def message_problems(args: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """Slack's error code for a message it would refuse (or None), and every problem found."""
    text, blocks = args.get("text"), json_array(args.get("blocks", []))
    if not text and not blocks and not args.get("attachments"):
        return "no_text", ["no text, blocks or attachments"]
    problems = [] if text else ["`text` missing: always pass the fallback text"]
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return "msg_too_long", [*problems, f"text is {len(text)} characters; keep to {MAX_TEXT}"]
    errors = block_errors(blocks or [])
    return ("invalid_blocks" if errors else None), problems + errors


def response_problems(payload: Mapping[str, Any], *, uses: int) -> tuple[str | None, list[str]]:
    """A post to a response_url: the error for bad blocks (or None), and every problem found."""
    problems = []
    if uses > RESPONSE_URL_USES:
        problems.append(f"used {uses} times; Slack accepts {RESPONSE_URL_USES}")
    blocks = json_array(payload.get("blocks", []))
    errors = ["must be an array of objects [json-pointer:/blocks]"] if blocks is None else []
    errors += block_errors(blocks or [])
    return ("invalid_blocks" if errors else None), problems + errors


def block_errors(blocks: list[dict[str, Any]]) -> list[str]:
    """Slack-style `invalid_blocks` messages, each ending in a JSON pointer."""
    errors = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        kind = block.get("type")
        if not isinstance(kind, str):
            errors.append(f"missing required field: type [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                errors.append(f"duplicate block_id `{block_id}` [json-pointer:{at}/block_id]")
            seen.add(block_id)
            errors += _too_long(block_id, 255, f"{at}/block_id")
        if kind == "section" and "text" not in block and "fields" not in block:
            errors.append(f"must provide text or fields [json-pointer:{at}]")
        for (k, key), limit in _TEXT_LIMITS.items():
            if k == kind:
                errors += _text_too_long(block.get(key), limit, f"{at}/{key}")
        for (k, key), limit in _COUNT_LIMITS.items():
            items = block.get(key) if k == kind else None
            if isinstance(items, list) and len(items) > limit:
                errors.append(f"no more than {limit} items allowed [json-pointer:{at}/{key}]")
        if kind == "section":
            for j, f in enumerate(block.get("fields") or []):
                errors += _text_too_long(f, 2000, f"{at}/fields/{j}")
        errors += _element_errors(block, at)
    return errors


def _element_errors(block: dict[str, Any], at: str) -> list[str]:
    """Buttons in an actions block or a section accessory; action_id unique within the block."""
    elements = block.get("elements") if block["type"] == "actions" else [block.get("accessory")]
    errors = []
    action_ids: set[str] = set()
    for j, el in enumerate(elements or []):
        if not isinstance(el, dict):
            continue
        where = f"{at}/elements/{j}" if block["type"] == "actions" else f"{at}/accessory"
        action_id = el.get("action_id")
        if action_id is not None:
            if action_id in action_ids:
                errors.append(f"duplicate action_id `{action_id}` [json-pointer:{where}/action_id]")
            action_ids.add(action_id)
        if el.get("type") != "button":
            continue
        errors += _text_too_long(el.get("text"), 75, f"{where}/text")
        for key, limit in _BUTTON_LIMITS.items():
            errors += _too_long(el.get(key), limit, f"{where}/{key}")
        confirm = el.get("confirm")
        if isinstance(confirm, dict):
            for key, limit in _CONFIRM_LIMITS.items():
                errors += _text_too_long(confirm.get(key), limit, f"{where}/confirm/{key}")
    return errors


def _text_too_long(obj: Any, limit: int, at: str) -> list[str]:
    if isinstance(obj, dict):
        return _too_long(obj.get("text"), limit, f"{at}/text")
    return []


def _too_long(value: Any, limit: int, at: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{at}]"]
    return []
