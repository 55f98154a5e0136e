"""How Dokploy's answers become values or aistack errors (spec §2, recordings 15-22, 79, 97).

Two 401 forms, validation issues named by field, server errors kept vague (their text may
echo SQL with its parameters), NOT_FOUND as "already gone" for deletes, and the tail of a
build log for a failed deployment's message.
"""

from __future__ import annotations

import re
from typing import Any

from deployer.adapters.http import HttpReply, json_body, trimmed
from deployer.errors import AuthError, Gone, PermanentUpstreamError, TransientUpstreamError

NAME = "Dokploy"

# Dokploy answers an unknown, an expired and a rate-limited key alike (spec §1): name all three.
_KEY_HINT = (
    "the API key is invalid, expired or rate-limited (Dokploy answers all three the same way; "
    "a key made through the API is limited to 10 requests a day unless its rate limit is "
    "turned off, rateLimitEnabled false); check AISTACK_DOKPLOY_API_KEY"
)
_DB_REFUSED = "database refused the insert/update"
MAX_ISSUES = 5
LOG_LINES_SHOWN = 3
MAX_LOG_TEXT = 300
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def checked(procedure: str, reply: HttpReply) -> Any:
    """Translate Dokploy's answer (spec §2) into a value or an aistack error."""
    where = f"{NAME} {procedure}"
    if reply.status < 400:
        return json_body(reply, where, "AISTACK_DOKPLOY_URL")
    body = reply.json()
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    code = str(fields.get("code") or "")
    message = str(fields.get("message") or "") if isinstance(body, dict) else reply.text
    named = code or None
    if reply.status == 401:
        raise AuthError(_unauthorized(where, code, message), status=reply.status, code=named)
    if reply.status == 429 or reply.status >= 500:
        # A 500 message may echo SQL and its parameters: never pass it on.
        raise TransientUpstreamError(
            f"{where}: {reply.status} {code or 'server error'}",
            status=reply.status,
            code=named,
            retry_after=retry_after(reply),
        )
    if reply.status == 404 and code == "NOT_FOUND":
        raise Gone(f"{where}: {_said(message)}", status=reply.status, code=named)
    head = " ".join(filter(None, (str(reply.status), code)))
    raise PermanentUpstreamError(
        f"{where}: {head}: {_detail(fields, message)}".rstrip(": "), status=reply.status, code=named
    )


def _unauthorized(where: str, code: str, message: str) -> str:
    """Both 401 forms: the auth gate's bare `{"message":"Unauthorized"}`, and tRPC's
    UNAUTHORIZED from inside a handler (a permission check, or the key's organization)."""
    if not code:
        return f"{where}: 401 Unauthorized: {_KEY_HINT}"
    said = _said(message)
    return f"{where}: 401 {code}: {said + ': ' if said else ''}{_KEY_HINT}"


def _said(message: str) -> str:
    """Dokploy's message, trimmed. A failed SQL statement is named, never echoed: its text
    lists the bound parameters, passwords included (recording 79)."""
    before, failed, _ = message.partition("Failed query")
    if not failed:
        return trimmed(message)
    before = before.strip().rstrip(":").strip()
    return f"{trimmed(before)}: {_DB_REFUSED}" if before else _DB_REFUSED


def _detail(fields: dict[str, Any], message: str) -> str:
    """The message, and for `Input validation failed` each field with Dokploy's word on it."""
    said = _said(message)
    issues = _issue_pairs(fields.get("issues")) or _field_errors(fields.get("data"))
    if not issues:
        return said
    shown = [f"{path}: {trimmed(text, 100)}" for path, text in issues[:MAX_ISSUES]]
    if len(issues) > MAX_ISSUES:
        shown.append(f"and {len(issues) - MAX_ISSUES} more")
    return f"{said}: {'; '.join(shown)}"


def _issue_pairs(issues: Any) -> list[tuple[str, str]]:
    if not isinstance(issues, list):
        return []
    return [
        (_field(issue.get("path")), str(issue.get("message", "")))
        for issue in issues
        if isinstance(issue, dict)
    ]


def _field(path: Any) -> str:
    if isinstance(path, list) and path:
        return ".".join(str(part) for part in path)
    return "input"


def _field_errors(data: Any) -> list[tuple[str, str]]:
    """zod's flattened form (`data.zodError.fieldErrors`), for a body without `issues`."""
    zod = data.get("zodError") if isinstance(data, dict) else None
    by_field = zod.get("fieldErrors") if isinstance(zod, dict) else None
    if not isinstance(by_field, dict):
        return []
    return [
        (str(name), str(text))
        for name, texts in by_field.items()
        if isinstance(texts, list)
        for text in texts
    ]


def log_tail(raw: Any) -> str:
    """The last non-empty lines of a build log (one JSON string of lines, recording 97) on one
    line; when long, the end is kept: it is where the log says what failed."""
    if not isinstance(raw, str):
        return ""
    lines = [line.strip() for line in _ANSI.sub("", raw).splitlines()]
    text = " ".join(" / ".join([line for line in lines if line][-LOG_LINES_SHOWN:]).split())
    return text if len(text) <= MAX_LOG_TEXT else "..." + text[-MAX_LOG_TEXT:]


def retry_after(reply: HttpReply) -> float | None:
    value = reply.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
