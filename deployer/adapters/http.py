"""The HTTP boundary shared by the adapters: one session per upstream, aiohttp errors
translated into the aistack error tree, bodies parsed only when there is one.

A failure to reach the upstream names `host:port` and the cause (refused, name not resolved,
TLS, timeout): "connection failed" alone sends an operator hunting. Never the query string
or credentials: they may hold tokens.
"""

from __future__ import annotations

import errno
import json
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import BaseModel, ConfigDict
from yarl import URL

from deployer.errors import PermanentUpstreamError, TransientUpstreamError

MAX_ERROR_TEXT = 200
# The per-request limit of a check a person waits for (with resilience.QUICK): a silent
# upstream must not hold preflight for the session's whole timeout.
QUICK_TIMEOUT = 3.0
_ERRNO = re.compile(r"\[Errno (\d+)\]")


class UpstreamModel(BaseModel):
    """A response body as we read it: the fields we use; anything else the upstream adds is
    ignored, so a new server version does not break us."""

    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    def json(self) -> Any:
        """The parsed body; an empty body (Dokploy's deploy answer) is None."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def new_session(timeout: float, headers: Mapping[str, str]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout), headers=dict(headers)
    )


async def send(
    session: aiohttp.ClientSession,
    upstream: str,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    time_limit: float | None = None,
) -> HttpReply:
    """One request; connection failures and timeouts become TransientError naming host:port
    and the cause. `time_limit` (seconds) shortens the session's timeout for this request."""
    limit = _shorter(session.timeout.total, time_limit)
    # Only when asked: aiohttp reads `timeout=None` as "no timeout", not "the session's".
    extra: dict[str, Any] = {}
    if time_limit is not None:
        extra["timeout"] = aiohttp.ClientTimeout(total=limit)
    try:
        async with session.request(method, url, params=params, json=body, **extra) as response:
            text = await response.text()
            return HttpReply(response.status, response.headers, text)
    except TimeoutError:
        within = f" within {limit:g} s" if limit else ""
        raise TransientUpstreamError(
            f"{upstream}: no answer from {_address(url)}{within} ({method} {_path(url)}): timeout"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise TransientUpstreamError(
            f"{upstream}: connection failed to {_address(url)} ({method} {_path(url)}): "
            f"{_connect_cause(exc)}"
        ) from None
    except aiohttp.ClientError as exc:
        raise TransientUpstreamError(
            f"{upstream}: connection failed to {_address(url)} ({method} {_path(url)}): "
            f"{broken_off(exc)}"
        ) from None


def json_body(reply: HttpReply, where: str, url_setting: str) -> Any:
    """The parsed body of a success; None when empty. A body that is not JSON (an HTML page
    from a proxy or a login portal) means the URL leads somewhere else than the API: retrying
    will not change that. Its text is not shown: it is not the upstream's word."""
    if not reply.text.strip():
        return None
    try:
        return json.loads(reply.text)
    except ValueError:
        kind = reply.headers.get("Content-Type", "no content type").partition(";")[0]
        raise PermanentUpstreamError(
            f"{where}: {reply.status} with a body that is not JSON ({kind}): a proxy or another "
            f"site answered instead of the API; check {url_setting}",
            status=reply.status,
        ) from None


def trimmed(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Upstream error text, shortened: it may echo SQL and its parameters (Dokploy 500s)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def broken_off(exc: aiohttp.ClientError) -> str:
    """Why a request got no full answer once connected: the answer cut off (a truncated body),
    the OS's word for its errno (Connection reset by peer), or else the kind of failure. Not
    the error's own text: aiohttp puts the URL, query included, in some of them."""
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer was cut off"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return type(exc).__name__


def _shorter(session: float | None, request: float | None) -> float | None:
    return min((t for t in (session, request) if t), default=None)


def _connect_cause(exc: aiohttp.ClientConnectorError) -> str:
    """Why the connection was not made, in an operator's words (no addresses beyond ours)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS failure: name not resolved ({_reason(exc.os_error)})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS failure: certificate rejected ({_reason(exc.certificate_error)})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS failure ({_reason(exc.os_error)})"
    return _os_cause(exc.os_error)


def _os_cause(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return "connection refused"
    # With several addresses (IPv4 and IPv6) asyncio folds the failures into one OSError
    # whose text lists each "[Errno N]": refused on all of them is still a refusal.
    numbers = set(_ERRNO.findall(str(error)))
    if numbers == {str(errno.ECONNREFUSED)}:
        return "connection refused"
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        return "timeout while connecting"
    return _reason(error)


def _reason(error: BaseException) -> str:
    """The short reason of an OS or TLS error: its message, not its repr or addresses."""
    # ssl sets `verify_message` and `reason` on what it raises; not every SSLError has them.
    for detail in ("verify_message", "reason"):
        if isinstance(error, ssl.SSLError) and getattr(error, detail, None):
            return str(getattr(error, detail))
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return trimmed(str(error), 120) or type(error).__name__


def _address(url: str) -> str:
    """host:port of a URL (the scheme's port when none is given); no credentials or query."""
    parsed = URL(url)
    host = f"[{parsed.host}]" if parsed.host and ":" in parsed.host else parsed.host
    return f"{host}:{parsed.port}"


def _path(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
