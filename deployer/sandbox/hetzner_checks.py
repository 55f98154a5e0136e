"""Input checks of the fake Hetzner Cloud DNS: request bodies, RRSet names, types, TTLs, records.

Bodies are checked by hand against the OpenAPI request schemas (unknown and required fields,
types, enums, bounds) and the rules the spec states in prose (lower-case name, no trailing dot
or zone suffix, distinct record values). Each `check_*` adds its messages to a `FieldErrors`,
which raises them all as one 422 `invalid_input` `ApiError`; `check_records` also parses the
records into `Record`s. The state model that calls these lives in `hetzner_state.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RR_TYPES = frozenset(
    {
        "A",
        "AAAA",
        "CAA",
        "CNAME",
        "DS",
        "HINFO",
        "HTTPS",
        "MX",
        "NS",
        "PTR",
        "RP",
        "SOA",
        "SRV",
        "SVCB",
        "TLSA",
        "TXT",
    }
)
MIN_TTL, MAX_TTL, MAX_RECORDS = 60, 2147483647, 50
ACTION_STATUSES = ("running", "success", "error")
ACTION_SORT_FIELDS = ("id", "command", "status", "started", "finished")


class ApiError(Exception):
    """A refusal rendered as `{"error": {code, message, details}}` with `status`."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class FieldErrors:
    """Collects per-field messages and raises one 422 `invalid_input` for all of them."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            fields = [{"name": k, "messages": v} for k, v in self.fields.items()]
            message = "invalid input in fields '" + "', '".join(self.fields) + "'"
            raise ApiError(422, "invalid_input", message, {"fields": fields})


@dataclass
class Record:
    value: str
    comment: str = ""


def check_keys(
    body: Any, allowed: set[str], required: set[str]
) -> tuple[dict[str, Any], FieldErrors]:
    errors = FieldErrors()
    if not isinstance(body, dict):
        errors.add("body", "must be a JSON object")
        errors.raise_if_any()
    for key in body:
        if key not in allowed:
            errors.add(key, "unknown field")
    for key in sorted(required - set(body)):
        errors.add(key, "is required")
    return body, errors


def check_name(errors: FieldErrors, name: Any, zone: str) -> None:
    if not isinstance(name, str) or not name:
        errors.add("name", "must be a non-empty string")
        return
    if name != name.lower():
        errors.add("name", "must be in lower case")
    if name.endswith("."):
        errors.add("name", "must not end with a dot")
    if name == zone or name.endswith("." + zone):
        errors.add("name", "must not end with the zone name")


def check_type(errors: FieldErrors, rr_type: Any) -> None:
    if rr_type not in RR_TYPES:
        errors.add("type", f"must be one of {', '.join(sorted(RR_TYPES))}")


def check_ttl(errors: FieldErrors, ttl: Any) -> None:
    if ttl is None:
        return
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        errors.add("ttl", "must be an integer or null")
    elif not MIN_TTL <= ttl <= MAX_TTL:
        errors.add("ttl", f"must be between {MIN_TTL} and {MAX_TTL}")


def check_labels(errors: FieldErrors, labels: Any) -> None:
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        errors.add("labels", "must be an object of strings")


def check_records(errors: FieldErrors, records: Any) -> list[Record]:
    if not isinstance(records, list):
        errors.add("records", "must be an array")
        return []
    if not records:
        errors.add("records", "must not be empty")
    if len(records) > MAX_RECORDS:
        errors.add("records", f"must not contain more than {MAX_RECORDS} records")
    parsed: list[Record] = []
    for item in records:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("value"), str)
            or not isinstance(item.get("comment", ""), str)
            or set(item) - {"value", "comment"}
        ):
            errors.add("records", "each record needs a string 'value' and optional 'comment'")
            return []
        parsed.append(Record(item["value"], item.get("comment", "")))
    if len({r.value for r in parsed}) != len(parsed):
        errors.add("records", "must only contain distinct values")
    return parsed


def check_action_query(
    errors: FieldErrors, statuses: list[str], sorts: list[str]
) -> list[tuple[str, bool]]:
    """`status` and `sort` of an action listing (both may repeat), as the spec's enums allow;
    the sort terms come back parsed as (field, descending), the first one the primary key."""
    if set(statuses) - set(ACTION_STATUSES):
        errors.add("status", f"must be one of {', '.join(ACTION_STATUSES)}")
    keys: list[tuple[str, bool]] = []
    for term in sorts:
        name, _, direction = term.partition(":")
        if name not in ACTION_SORT_FIELDS or term not in (name, f"{name}:asc", f"{name}:desc"):
            fields = ", ".join(ACTION_SORT_FIELDS)
            errors.add("sort", f"must be one of {fields}, optionally with :asc or :desc")
            continue
        keys.append((name, direction == "desc"))
    return keys
