"""Input validation for the fake Dokploy server: OpenAPI request schemas run through jsonschema.

`load_procedures` reads the packaged subset of Dokploy's OpenAPI document into one `Procedure`
(HTTP method and request schema) per tRPC procedure, and `validate` runs a request's input
through that schema, rewording each jsonschema error the way zod v4 words its issues (codes,
messages, paths, order), plus the few Dokploy refinements the document cannot express. Taking
the schemas from the spec itself keeps the fake from drifting; `dokploy.py` serves HTTP.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]

from deployer.sandbox.dokploy_tables import APP_KEYS, Row

OPENAPI_NAME = "dokploy-openapi.json"
# Dokploy refinements that the OpenAPI document cannot express (recordings 55-57).
HOSTNAME = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
HOSTNAME_MESSAGE = (
    "Invalid domain name. Use only letters, numbers, hyphens and dots (e.g. example.com). "
    "Underscores are not allowed."
)
PORT_MESSAGES = {"too_small": "Port must be at least 1", "too_big": "Port must be 65535 or below"}
# Schemas built with zod's `.required()`: a missing key reads "expected nonoptional".
NONOPTIONAL = {"application.saveDockerProvider", "application.saveEnvironment"}
# zod reports issues in its own field order; the packaged document lists fields sorted.
# Schemas derived from a table follow its columns (recording 86).
FIELD_ORDER: dict[str, list[str]] = {"application.update": APP_KEYS}
# A query-string number, as @dokploy/trpc-openapi coerces it for a numeric field (`tail=50`).
QUERY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Procedure:
    method: str  # GET for tRPC queries, POST for mutations
    schema: Row | None  # the request body schema, or the query parameters as one object


def _openapi_path() -> Path:
    """The packaged subset of Dokploy's OpenAPI document (the procedures this fake serves)."""
    return Path(__file__).parent / "specs" / OPENAPI_NAME


@functools.cache
def load_procedures(path: Path) -> dict[str, Procedure]:
    """Every `/<router>.<procedure>` of the OpenAPI document, with its request schema."""
    doc = json.loads(path.read_text())
    out: dict[str, Procedure] = {}
    for route, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                # two upload procedures take multipart/form-data; the fake has neither
                schema = op["requestBody"]["content"].get("application/json", {}).get("schema")
            elif op.get("parameters"):
                params = op["parameters"]
                schema = {
                    "type": "object",
                    "properties": {p["name"]: p["schema"] for p in params},
                    "required": [p["name"] for p in params if p.get("required")],
                }
            else:
                schema = None
            out[route.lstrip("/")] = Procedure(method.upper(), schema)
    return out


# -- validation: jsonschema errors reworded as zod v4 issues ----------------------------------


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def _expected(schema: Row) -> str:
    """The type zod names in its messages; nullable fields name their non-null branch."""
    if "anyOf" in schema:
        return _expected(next(b for b in schema["anyOf"] if b != {"type": "null"}))
    kind = schema.get("type", "string")
    return "number" if kind == "integer" else str(kind)


def _invalid_type(expected: str, received: str, path: list[Any]) -> Row:
    message = f"Invalid input: expected {expected}, received {received}"
    return {"expected": expected, "code": "invalid_type", "path": path, "message": message}


# jsonschema keyword -> (zod issue code, origin, limit key, message word, comparison)
BOUNDS = {
    "minLength": ("too_small", "string", "minimum", "Too small", ">="),
    "maxLength": ("too_big", "string", "maximum", "Too big", "<="),
    "minimum": ("too_small", "number", "minimum", "Too small", ">="),
    "maximum": ("too_big", "number", "maximum", "Too big", "<="),
}


def _translate(err: ValidationError, nonoptional: bool) -> list[Row]:
    path, kind, value = list(err.absolute_path), err.validator, err.validator_value
    if kind == "required":
        props = err.schema.get("properties", {})
        missing = [k for k in value if k not in err.instance]
        return [
            _invalid_type("nonoptional" if nonoptional else _expected(props.get(k, {})),
                          "undefined", [*path, k])
            for k in missing
        ]  # fmt: skip
    if kind == "anyOf":  # a nullable field: report what its non-null branch says
        branch = next(i for i, b in enumerate(value) if b != {"type": "null"})
        inner = [e for e in err.context if e.relative_schema_path[0] == branch]
        return [issue for e in inner for issue in _translate(e, False)]
    if kind == "type":
        if "enum" in err.schema:  # zod reports a bad enum value once, as invalid_value
            return []
        return [_invalid_type(_expected(err.schema), _type_name(err.instance), path)]
    if kind in BOUNDS:
        code, origin, key, word, sign = BOUNDS[kind]
        rule = f"to have {sign}{value} characters" if origin == "string" else f"to be {sign}{value}"
        message = f"{word}: expected {origin} {rule}"
        return [dict(origin=origin, code=code, **{key: value}, inclusive=True, path=path,
                     message=message)]  # fmt: skip
    if kind == "enum":
        message = "Invalid option: expected one of " + "|".join(json.dumps(v) for v in value)
        return [{"code": "invalid_value", "values": value, "path": path, "message": message}]
    if kind == "pattern":
        message = f"Invalid string: must match pattern /{value}/"
        return [dict(origin="string", code="invalid_format", format="regex",
                     pattern=f"/{value}/", path=path, message=message)]  # fmt: skip
    return [{"code": "custom", "path": path, "message": err.message}]


def coerce_query(schema: Row, data: Row) -> Row:
    """Query parameters arrive as text; those the schema types as numbers are read as numbers
    first, as the real REST route does (recording 97 sends `tail=50`). Text that is no number
    stays text, so validation refuses it."""
    fields = schema.get("properties", {})
    return {key: _as_number(value) if _numeric(fields.get(key, {})) else value
            for key, value in data.items()}  # fmt: skip


def _numeric(field: Row) -> bool:
    return field.get("type") in ("integer", "number")


def _as_number(value: Any) -> Any:
    if not isinstance(value, str) or not QUERY_NUMBER.fullmatch(value):
        return value
    return float(value) if "." in value else int(value)


def validate(procedure: str, schema: Row, data: Any) -> list[Row]:
    """The zod-style issues for `data`, in the schema's field order (zod checks in that order)."""
    issues: list[Row] = []
    seen: set[tuple[Any, ...]] = set()
    for err in Draft202012Validator(schema).iter_errors(data):
        top_level = not err.absolute_path
        for issue in _translate(err, procedure in NONOPTIONAL and top_level):
            key = (*issue["path"], issue["code"])
            if key not in seen:
                seen.add(key)
                issues.append(issue)
    if procedure == "domain.create" and isinstance(data, dict):
        for issue in issues:
            if issue["path"] == ["port"] and issue["code"] in PORT_MESSAGES:
                issue["message"] = PORT_MESSAGES[issue["code"]]
        host = data.get("host")
        if isinstance(host, str) and host and not HOSTNAME.fullmatch(host):
            issues.append({"code": "custom", "path": ["host"], "message": HOSTNAME_MESSAGE})
    first = FIELD_ORDER.get(procedure, [])
    fields = [*first, *(name for name in schema.get("properties", {}) if name not in first)]
    order = {name: i for i, name in enumerate(fields)}
    issues.sort(key=lambda issue: order.get(issue["path"][0], -1) if issue["path"] else -1)
    return issues
