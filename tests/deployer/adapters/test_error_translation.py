"""How the adapters translate what goes wrong on the wire into the error tree.

aioresponses stands in for the network (nothing listens on the 127.0.0.1 addresses below).
Each case is one failure, served on every attempt: a timeout, a reset, a cut-off body, a
proxy's HTML page on 200, a 502, a 429, a 401, and the upstream's own error bodies. The tests
pin the error type, its status and code, and a message that says what happened without the
credentials. One request stands for all of an adapter's requests: they share the translation.
What the adapters then do (adopt, roll back) is for the sandbox fakes.
"""

from __future__ import annotations

import errno
import re
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.abc import AbstractStreamWriter
from aioresponses import aioresponses
from pydantic import SecretStr
from yarl import URL

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.hetzner import HetznerDns
from deployer.adapters.probe import HttpProbe
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.errors import (
    AuthError,
    Gone,
    PermanentUpstreamError,
    TransientUpstreamError,
    UpstreamError,
)
from deployer.ports import ProbeResult
from deployer.testing import FakeClock, RecordedSleeps

DOKPLOY = "http://127.0.0.1:3000"
HETZNER = "http://127.0.0.1:8081/v1"
ZONE = "example.test"
STACK_URL = "https://alice.localhost"
PROBED = "http://alice.localhost:8080/"  # the probe's target: our scheme, the override port
API_KEY = "dk-test-key-never-in-messages"
TOKEN = "hz-test-token-never-in-messages"
TWO_ATTEMPTS = RetryPolicy(attempts=2, initial=1.0, maximum=1.0, deadline=60.0)


# -- serving one failure -------------------------------------------------------------------

# aiohttp 3.14 added a required `stream_writer` that aioresponses 0.7.9 does not pass; a sent
# request only reads its output size from it.
_SENT = cast(AbstractStreamWriter, SimpleNamespace(output_size=0))


class _Reply(ClientResponse):
    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _SENT)
        super().__init__(method, url, **kwargs)


class _CutOff(_Reply):
    """Status and headers arrived, then the connection closed before the body was complete."""

    async def read(self) -> bytes:
        raise aiohttp.ClientPayloadError("Response payload is not completed")


@dataclass(frozen=True)
class Wire:
    """One answer, or one failure instead of an answer."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    exception: Exception | None = None
    reply: type[ClientResponse] = _Reply

    def serve(self, mocked: aioresponses, method: str, url: str) -> None:
        mocked.add(
            re.compile(re.escape(url) + r"(\?.*)?$"),
            method,
            status=self.status,
            body=self.body,
            content_type=self.content_type,
            headers=self.headers,
            exception=self.exception,
            response_class=self.reply,
            repeat=True,
        )


def coded(status: int, body: str) -> Wire:
    return Wire(status=status, body=body)


HTML = "<html><head><title>Sign in</title></head><body>Corporate proxy</body></html>"
TIMEOUT = Wire(exception=TimeoutError())
RESET = Wire(exception=aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"))
DISCONNECTED = Wire(exception=aiohttp.ServerDisconnectedError())
CUT_OFF = Wire(body='{"id": "abc", "na', reply=_CutOff)
PROXY_PAGE = Wire(body=HTML, content_type="text/html")
BAD_GATEWAY = Wire(status=502, body="<html>502 Bad Gateway</html>", content_type="text/html")


@dataclass(frozen=True)
class Expected:
    kind: type[UpstreamError]
    status: int | None
    code: str | None
    said: str  # the message, or its start when the rest is the upstream's own words


TRANSIENT, PERMANENT = TransientUpstreamError, PermanentUpstreamError


def case(
    name: str,
    wire: Wire,
    kind: type[UpstreamError],
    status: int | None,
    code: str | None,
    said: str,
) -> Any:
    return pytest.param(wire, Expected(kind, status, code, said), id=name)


def transport_cases(upstream: str, address: str, request: str) -> list[Any]:
    """No answer, or an answer broken off: the same words for every upstream."""
    failed = f"{upstream}: connection failed to {address} ({request})"
    return [
        case("timeout", TIMEOUT, TRANSIENT, None, None,
             f"{upstream}: no answer from {address} within 0.5 s ({request}): timeout"),
        case("reset", RESET, TRANSIENT, None, None, f"{failed}: Connection reset by peer"),
        case("disconnected", DISCONNECTED, TRANSIENT, None, None,
             f"{failed}: ServerDisconnectedError"),
        case("cut-off-body", CUT_OFF, TRANSIENT, None, None, f"{failed}: the answer was cut off"),
    ]  # fmt: skip


def assert_translated(caught: BaseException, expected: Expected, secret: str) -> None:
    assert type(caught) is expected.kind
    assert isinstance(caught, UpstreamError)
    assert (caught.status, caught.code) == (expected.status, expected.code)
    assert str(caught).startswith(expected.said), str(caught)
    assert secret not in "".join(traceback.format_exception(caught))


def retried_once(sleeps: RecordedSleeps, kind: type[UpstreamError]) -> bool:
    """Transient errors get the second attempt, permanent ones do not."""
    return len(sleeps.waits) == (1 if issubclass(kind, TransientUpstreamError) else 0)


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


# -- Dokploy -------------------------------------------------------------------------------

D_WHERE = "Dokploy application.one"
D_KEY_HINT = "the API key is invalid, expired or rate-limited"
SQL_500 = (  # recording 79's kind of message: the statement and its parameters
    '{"message": "Failed query: update \\"security\\" set \\"password\\" = $1\\n'
    'params: hunter2-not-for-logs", "code": "INTERNAL_SERVER_ERROR"}'
)
VALIDATION_400 = (
    '{"message": "Input validation failed", "code": "BAD_REQUEST", "issues": '
    '[{"path": ["applicationId"], "message": "Too small: expected string to have >=1 characters"}]}'
)
CONFLICT_409 = '{"message": "Application with this \'AppName\' already exists", "code": "CONFLICT"}'

DOKPLOY_CASES = [
    *transport_cases("Dokploy", "127.0.0.1:3000", "GET api/application.one"),
    case("html-on-200", PROXY_PAGE, PERMANENT, 200, None,
         f"{D_WHERE}: 200 with a body that is not JSON (text/html): a proxy or another site "
         "answered instead of the API; check AISTACK_DOKPLOY_URL"),
    case("html-502", BAD_GATEWAY, TRANSIENT, 502, None, f"{D_WHERE}: 502 server error"),
    case("bare-401", coded(401, '{"message": "Unauthorized"}'), AuthError, 401, None,
         f"{D_WHERE}: 401 Unauthorized: {D_KEY_HINT}"),
    case("trpc-401", coded(401, '{"message": "Not authorized", "code": "UNAUTHORIZED"}'),
         AuthError, 401, "UNAUTHORIZED",
         f"{D_WHERE}: 401 UNAUTHORIZED: Not authorized: {D_KEY_HINT}"),
    case("404-NOT_FOUND", coded(404, '{"message": "Application not found", "code": "NOT_FOUND"}'),
         Gone, 404, "NOT_FOUND", f"{D_WHERE}: Application not found"),
    case("400-BAD_REQUEST", coded(400, VALIDATION_400), PERMANENT, 400, "BAD_REQUEST",
         f"{D_WHERE}: 400 BAD_REQUEST: Input validation failed: applicationId: Too small"),
    case("409-CONFLICT", coded(409, CONFLICT_409), PERMANENT, 409, "CONFLICT",
         f"{D_WHERE}: 409 CONFLICT: Application with this 'AppName' already exists"),
    case("500-with-sql", coded(500, SQL_500), TRANSIENT, 500, "INTERNAL_SERVER_ERROR",
         f"{D_WHERE}: 500 INTERNAL_SERVER_ERROR"),
]  # fmt: skip


@pytest.fixture
async def paas(sleeps: RecordedSleeps) -> AsyncIterator[DokployPaas]:
    upstream = Upstream("Dokploy", TWO_ATTEMPTS, sleep=sleeps)
    paas = DokployPaas(DOKPLOY, SecretStr(API_KEY), upstream, 0.5)
    yield paas
    await paas.close()


@pytest.mark.parametrize(("wire", "expected"), DOKPLOY_CASES)
async def test_dokploy_translation(
    paas: DokployPaas, sleeps: RecordedSleeps, wire: Wire, expected: Expected
) -> None:
    with aioresponses() as mocked:
        wire.serve(mocked, "GET", f"{DOKPLOY}/api/application.one")
        with pytest.raises(UpstreamError) as caught:
            await paas.app_settings("app1")
    assert_translated(caught.value, expected, API_KEY)
    assert "hunter2" not in str(caught.value)  # a failed query's parameters stay unsaid
    assert retried_once(sleeps, expected.kind)


async def test_dokploy_429_waits_as_long_as_retry_after_says(
    paas: DokployPaas, sleeps: RecordedSleeps
) -> None:
    with aioresponses() as mocked:
        limited = Wire(status=429, headers={"Retry-After": "7"})
        limited.serve(mocked, "GET", f"{DOKPLOY}/api/application.one")
        with pytest.raises(TransientUpstreamError) as caught:
            await paas.app_settings("app1")
    assert_translated(caught.value, Expected(TRANSIENT, 429, None, f"{D_WHERE}: 429"), API_KEY)
    assert caught.value.retry_after == 7
    assert sleeps.waits == [7]


async def test_dokploy_delete_of_what_is_gone_is_already_done(
    paas: DokployPaas, sleeps: RecordedSleeps
) -> None:
    gone = coded(404, '{"message": "Application not found", "code": "NOT_FOUND"}')
    with aioresponses() as mocked:
        gone.serve(mocked, "POST", f"{DOKPLOY}/api/application.delete")
        assert await paas.delete_application("app1") is False
    assert sleeps.waits == []


# -- Hetzner DNS ---------------------------------------------------------------------------

H_WHERE = f"Hetzner DNS GET /zones/{ZONE}"


def hetzner_error(status: int, code: str, message: str, **headers: str) -> Wire:
    """Hetzner's error body (spec §A.4)."""
    body = f'{{"error": {{"code": "{code}", "message": "{message}", "details": null}}}}'
    return Wire(status=status, body=body, headers=headers)


HETZNER_CASES = [
    *transport_cases("Hetzner DNS", "127.0.0.1:8081", f"GET v1/zones/{ZONE}"),
    case("html-on-200", PROXY_PAGE, PERMANENT, 200, None,
         f"{H_WHERE}: 200 with a body that is not JSON (text/html): a proxy or another site "
         "answered instead of the API; check AISTACK_HETZNER_URL"),
    case("html-502", BAD_GATEWAY, TRANSIENT, 502, None, f"{H_WHERE}: 502"),
    case("401-unauthorized", hetzner_error(401, "unauthorized", "the token is invalid"),
         AuthError, 401, "unauthorized", f"{H_WHERE}: 401 unauthorized: the token is invalid, "
         "revoked or read-only; check AISTACK_HETZNER_TOKEN"),
    case("404-not_found", hetzner_error(404, "not_found", "Zone not found"),
         Gone, 404, "not_found", f"{H_WHERE}: 404 not_found: Zone not found"),
    case("409-uniqueness_error", hetzner_error(409, "uniqueness_error", "already exists"),
         PERMANENT, 409, "uniqueness_error", f"{H_WHERE}: 409 uniqueness_error: already exists"),
    case("409-conflict", hetzner_error(409, "conflict", "the resource changed"),
         TRANSIENT, 409, "conflict", f"{H_WHERE}: 409 conflict: the resource changed"),
    case("410-deprecated_api_endpoint", hetzner_error(410, "deprecated_api_endpoint", "retired"),
         PERMANENT, 410, "deprecated_api_endpoint", f"{H_WHERE}: 410 deprecated_api_endpoint"),
    case("422-invalid_input", hetzner_error(422, "invalid_input", "invalid ttl"),
         PERMANENT, 422, "invalid_input", f"{H_WHERE}: 422 invalid_input: invalid ttl"),
    case("423-locked", hetzner_error(423, "locked", "an action is running"),
         TRANSIENT, 423, "locked", f"{H_WHERE}: 423 locked: an action is running"),
    case("503-unavailable", hetzner_error(503, "unavailable", "try again"),
         TRANSIENT, 503, "unavailable", f"{H_WHERE}: 503 unavailable: try again"),
]  # fmt: skip


@pytest.fixture
async def dns(sleeps: RecordedSleeps) -> AsyncIterator[HetznerDns]:
    upstream = Upstream("Hetzner DNS", TWO_ATTEMPTS, sleep=sleeps)
    dns = HetznerDns(HETZNER, SecretStr(TOKEN), ZONE, upstream, 0.5, clock=FakeClock())
    yield dns
    await dns.close()


@pytest.mark.parametrize(("wire", "expected"), HETZNER_CASES)
async def test_hetzner_translation(
    dns: HetznerDns, sleeps: RecordedSleeps, wire: Wire, expected: Expected
) -> None:
    with aioresponses() as mocked:
        wire.serve(mocked, "GET", f"{HETZNER}/zones/{ZONE}")
        with pytest.raises(UpstreamError) as caught:
            await dns.zone()
    assert_translated(caught.value, expected, TOKEN)
    assert retried_once(sleeps, expected.kind)


async def test_hetzner_429_waits_until_ratelimit_reset(
    dns: HetznerDns, sleeps: RecordedSleeps
) -> None:
    """Hetzner's hint is RateLimit-Reset, a UNIX time (spec §A.6; it documents no Retry-After)."""
    reset = str(int(time.time()) + 30)
    limited = hetzner_error(
        429, "rate_limit_exceeded", "limit reached", **{"RateLimit-Reset": reset}
    )
    with aioresponses() as mocked:
        limited.serve(mocked, "GET", f"{HETZNER}/zones/{ZONE}")
        with pytest.raises(TransientUpstreamError) as caught:
            await dns.zone()
    said = f"{H_WHERE}: 429 rate_limit_exceeded: limit reached"
    assert_translated(caught.value, Expected(TRANSIENT, 429, "rate_limit_exceeded", said), TOKEN)
    assert len(sleeps.waits) == 1 and 28 <= sleeps.waits[0] <= 30


async def test_hetzner_delete_of_what_is_gone_is_already_done(
    dns: HetznerDns, sleeps: RecordedSleeps
) -> None:
    gone = hetzner_error(404, "not_found", "RRSet not found")
    with aioresponses() as mocked:
        gone.serve(mocked, "DELETE", f"{HETZNER}/zones/{ZONE}/rrsets/alice.ai/A")
        assert await dns.delete_a_record("alice.ai") is False
    assert sleeps.waits == []


# -- HttpProbe: never an error, a verdict on the stack -------------------------------------

PROBE_CASES = [
    pytest.param(TIMEOUT, ProbeResult(False, "no answer in time"), id="timeout"),
    pytest.param(RESET, ProbeResult(False, "no answer (Connection reset by peer)"), id="reset"),
    pytest.param(
        DISCONNECTED, ProbeResult(False, "no answer (ServerDisconnectedError)"), id="disconnected"
    ),
    # The probe judges by status alone and does not read the body.
    pytest.param(CUT_OFF, ProbeResult(True, "HTTP 200"), id="cut-off-body"),
    pytest.param(PROXY_PAGE, ProbeResult(True, "HTTP 200"), id="html-on-200"),
    pytest.param(BAD_GATEWAY, ProbeResult(False, "HTTP 502: the stack is not up yet"), id="502"),
    pytest.param(
        Wire(status=429, headers={"Retry-After": "7"}),
        ProbeResult(False, "HTTP 429: not an accepted status"),
        id="429",
    ),
    pytest.param(
        coded(401, '{"message": "Unauthorized"}'), ProbeResult(True, "HTTP 401"), id="401"
    ),
]


@pytest.mark.parametrize(("wire", "expected"), PROBE_CASES)
async def test_probe_translation(wire: Wire, expected: ProbeResult) -> None:
    # The accepted statuses are the settings' default: a stack behind a login answers 401.
    probe = HttpProbe(
        accepted=(200, 301, 302, 401), timeout=0.5, scheme="http", resolve="127.0.0.1:8080"
    )
    try:
        with aioresponses() as mocked:
            wire.serve(mocked, "GET", PROBED)
            result = await probe.check(STACK_URL)
    finally:
        await probe.close()
    assert result == expected
