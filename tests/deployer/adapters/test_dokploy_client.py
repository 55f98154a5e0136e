"""DokployPaas over HTTP against the sandbox fake, faults included; sleep is injected.

Recorded body shapes come from a canned server on 127.0.0.1; aioresponses here only raises
the connector errors no loopback server can cause (test_error_translation.py pins the rest of
the translation, with the reply class aioresponses needs under aiohttp 3.14).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses
from pydantic import SecretStr

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.errors import AuthError, PermanentError, TransientError, UpstreamUnavailable
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import API_KEY, Sandbox
from deployer.testing import RecordedSleeps


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


def client(
    sandbox: Sandbox,
    sleeps: RecordedSleeps,
    *,
    key: str = API_KEY,
    fail_max: int = 5,
    timeout: float = 0.5,
) -> DokployPaas:
    upstream = Upstream("Dokploy", RetryPolicy(attempts=4), sleep=sleeps, fail_max=fail_max)
    return DokployPaas(sandbox.urls["dokploy"], SecretStr(key), upstream, timeout)


@pytest.fixture
async def paas(sandbox: Sandbox, sleeps: RecordedSleeps) -> AsyncIterator[DokployPaas]:
    paas = client(sandbox, sleeps)
    yield paas
    await paas.close()


async def test_ensure_calls_find_before_they_create(paas: DokployPaas, sandbox: Sandbox) -> None:
    project = await paas.ensure_project("ai-stack-alice", "x")
    assert await paas.ensure_project("ai-stack-alice", "x") == project
    app = await paas.ensure_application(project, "opencode-alice")
    assert app.app_name.startswith("opencode-alice-")  # Dokploy adds a suffix; we keep it
    assert await paas.ensure_application(project, "opencode-alice") == app
    domain = await paas.ensure_domain(app.application_id, "alice.ai.example.test", 4096, True)
    assert (
        await paas.ensure_domain(app.application_id, "alice.ai.example.test", 4096, True) == domain
    )
    snapshot = sandbox.dokploy.snapshot()
    assert len(snapshot["projects"]) == len(snapshot["applications"]) == 1
    assert len(snapshot["domains"]) == 1


async def test_deploy_is_watched_through_deployment_all(paas: DokployPaas) -> None:
    project = await paas.ensure_project("ai-stack-alice", "x")
    app = await paas.ensure_application(project, "opencode-alice")
    await paas.configure_image(app.application_id, "nginx:alpine", {"A": "1"})
    known = await paas.deployment_ids(app.application_id)
    await paas.start_deploy(app.application_id, "aistack test")  # empty 200 body
    run = None
    for _ in range(200):
        run = await paas.newest_deployment(app.application_id, known)
        if run and run.status == "done":
            break
        await asyncio.sleep(0.005)
    assert run is not None and run.status == "done"


async def test_deletes_of_missing_resources_say_already_gone(paas: DokployPaas) -> None:
    missing = "doesNotExist000000000"
    assert await paas.delete_application(missing) is False
    assert await paas.remove_project(missing) is False
    assert await paas.delete_domain(missing) is False


async def test_5xx_is_retried_then_succeeds(
    paas: DokployPaas, sandbox: Sandbox, sleeps: RecordedSleeps
) -> None:
    sandbox.dokploy.faults.fail_ops["project.all"] = FailRule(status=500, times=2)
    assert await paas.count_projects() == 0
    assert sleeps.waits == [1, 2]


async def test_429_waits_for_retry_after(
    paas: DokployPaas, sandbox: Sandbox, sleeps: RecordedSleeps
) -> None:
    sandbox.dokploy.faults.retry_after = 3
    sandbox.dokploy.faults.burst_429 = 1
    assert await paas.count_projects() == 0
    assert sleeps.waits == [3]


async def test_hang_past_the_timeout_is_transient_and_retried(
    sandbox: Sandbox, sleeps: RecordedSleeps
) -> None:
    paas = client(sandbox, sleeps, timeout=0.2)
    sandbox.dokploy.faults.hang_ops["project.all"] = 1
    try:
        assert await paas.count_projects() == 0
    finally:
        await paas.close()
    assert sleeps.waits == [1]


async def test_outage_opens_the_breaker_and_fails_fast(
    sandbox: Sandbox, sleeps: RecordedSleeps
) -> None:
    paas = client(sandbox, sleeps, fail_max=3)
    sandbox.dokploy.faults.error_rate = 1.0
    try:
        with pytest.raises(UpstreamUnavailable, match="Dokploy is unavailable"):
            await paas.count_projects()
        calls = len(sandbox.dokploy.calls)
        with pytest.raises(UpstreamUnavailable):
            await paas.count_projects()
        assert len(sandbox.dokploy.calls) == calls  # the open breaker sent nothing
    finally:
        await paas.close()


async def test_bare_401_says_the_key_is_invalid_expired_or_rate_limited(
    sandbox: Sandbox, sleeps: RecordedSleeps
) -> None:
    paas = client(sandbox, sleeps, key="wrong-key-value")
    try:
        with pytest.raises(AuthError, match="invalid, expired or rate-limited") as caught:
            await paas.count_projects()
    finally:
        await paas.close()
    assert "wrong-key-value" not in str(caught.value)
    assert sleeps.waits == []  # not retried: a 401 will not pass by waiting


async def test_validation_errors_are_permanent_with_dokploy_message(paas: DokployPaas) -> None:
    project = await paas.ensure_project("ai-stack-alice", "x")
    app = await paas.ensure_application(project, "opencode-alice")
    with pytest.raises(PermanentError, match=r"domain\.create: 400 BAD_REQUEST") as caught:
        await paas.ensure_domain(app.application_id, "bad_host.example", 4096, True)
    assert not isinstance(caught.value, TransientError)


async def test_lost_create_response_is_found_on_retry(paas: DokployPaas, sandbox: Sandbox) -> None:
    sandbox.dokploy.faults.lose_response_ops["project.create"] = 1
    project = await paas.ensure_project("ai-stack-alice", "x")
    names = [p["name"] for p in sandbox.dokploy.snapshot()["projects"]]
    assert names == ["ai-stack-alice"]
    assert project.project_id == sandbox.dokploy.snapshot()["projects"][0]["projectId"]


async def test_stacks_reads_what_dokploy_holds(paas: DokployPaas) -> None:
    project = await paas.ensure_project("ai-stack-alice", "x")
    await paas.ensure_application(project, "opencode-alice")
    await paas.ensure_project("unrelated", "x")
    views = await paas.stacks("ai-stack-")
    assert [(v.project_name, v.application_status) for v in views] == [("ai-stack-alice", "idle")]


# -- helpers: a canned Dokploy, a port nobody listens on -------------------------------


class Canned:
    """A local server (127.0.0.1, port 0) that answers each procedure with a canned reply:
    the body shapes of the recordings. It keeps the query of every request."""

    def __init__(self) -> None:
        self.url = ""
        self.queries: list[dict[str, str]] = []
        self._replies: dict[str, tuple[int, str]] = {}

    def answer(self, procedure: str, status: int, body: Any) -> None:
        self._replies[f"/api/{procedure}"] = (status, json.dumps(body))

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        status, text = self._replies.get(request.path, (404, '{"message":"Not found"}'))
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def canned() -> AsyncIterator[Canned]:
    server = Canned()
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def at(url: str, sleeps: RecordedSleeps, policy: RetryPolicy | None = None) -> DokployPaas:
    upstream = Upstream("Dokploy", policy or RetryPolicy(attempts=4), sleep=sleeps)
    return DokployPaas(url, SecretStr(API_KEY), upstream, 0.5)


def endpoint(procedure: str, base: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"{base}/api/{procedure}") + r"(\?.*)?$")


# -- unreachable Dokploy: the address and the cause, fast when a person waits ---------------


async def test_refused_names_the_address_and_quick_gives_up_within_the_short_policy(
    sleeps: RecordedSleeps,
) -> None:
    port = closed_port()
    paas = at(f"http://127.0.0.1:{port}", sleeps)
    try:
        with pytest.raises(TransientError) as caught:
            await paas.count_projects(quick=True)
    finally:
        await paas.close()
    assert not isinstance(caught.value, UpstreamUnavailable)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert sleeps.waits == [0.5]  # two attempts, half a second apart: then it says so


async def test_refused_opens_the_breaker_no_sooner_than_fail_max_and_keeps_the_cause(
    sleeps: RecordedSleeps,
) -> None:
    port = closed_port()
    paas = at(f"http://127.0.0.1:{port}", sleeps, RetryPolicy(attempts=5))
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await paas.count_projects()
    finally:
        await paas.close()
    assert sleeps.waits == [1, 2, 4, 8]  # five refusals, as many as fail_max, opened it
    assert f"last error: Dokploy: connection failed to 127.0.0.1:{port}" in str(caught.value)
    assert "connection refused" in str(caught.value)


class _Key:
    """What aiohttp's connector errors read from their connection key."""

    host, port, ssl, is_ssl = "dokploy.example.test", 443, True, True


def _tls_failure() -> Exception:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    return aiohttp.ClientConnectorCertificateError(_Key(), error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (
            lambda: aiohttp.ClientConnectorDNSError(
                _Key(),  # type: ignore[arg-type]
                socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            ),
            "DNS failure: name not resolved (Name or service not known)",
        ),
        (_tls_failure, "TLS failure: certificate rejected (self-signed certificate)"),
        (
            lambda: aiohttp.ClientConnectorSSLError(
                _Key(),  # type: ignore[arg-type]
                ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
            ),
            "TLS failure",
        ),
    ],
    ids=["dns", "certificate", "tls"],
)
async def test_dns_and_tls_failures_are_named_with_the_address(
    sleeps: RecordedSleeps, failure: Callable[[], Exception], cause: str
) -> None:
    base = "https://dokploy.example.test"
    paas = at(base, sleeps)
    try:
        with aioresponses() as mocked:
            mocked.get(endpoint("project.all", base), exception=failure(), repeat=True)
            with pytest.raises(TransientError) as caught:
                await paas.count_projects(quick=True)
    finally:
        await paas.close()
    assert str(caught.value).startswith(
        "Dokploy: connection failed to dokploy.example.test:443 (GET api/project.all): "
    )
    assert cause in str(caught.value)


async def test_silent_dokploy_is_named_with_the_time_it_was_given(
    sandbox: Sandbox, sleeps: RecordedSleeps
) -> None:
    paas = client(sandbox, sleeps, timeout=0.2)
    sandbox.dokploy.faults.hang_ops["project.all"] = 2
    try:
        with pytest.raises(TransientError) as caught:
            await paas.count_projects(quick=True)
    finally:
        await paas.close()
    address = sandbox.urls["dokploy"].removeprefix("http://")
    assert f"no answer from {address} within 0.2 s (GET api/project.all)" in str(caught.value)
    assert sleeps.waits == [0.5]


# -- what Dokploy says, said back usefully ---------------------------------------------------

BARE_401 = {"message": "Unauthorized"}  # the auth gate (recordings 15, 16, rate limit)
CODED_401 = {
    "message": "You are not authorized to access this project",
    "code": "UNAUTHORIZED",
    "data": {"code": "UNAUTHORIZED", "httpStatus": 401, "path": "project.all", "zodError": None},
}


@pytest.mark.parametrize("body", [BARE_401, CODED_401], ids=["auth-gate", "trpc"])
async def test_both_401_forms_say_invalid_expired_or_rate_limited(
    canned: Canned, sleeps: RecordedSleeps, body: dict[str, Any]
) -> None:
    canned.answer("project.all", 401, body)
    paas = at(canned.url, sleeps)
    try:
        with pytest.raises(AuthError) as caught:
            await paas.count_projects()
    finally:
        await paas.close()
    said = str(caught.value)
    assert "invalid, expired or rate-limited" in said
    assert "10 requests a day" in said and "rateLimitEnabled false" in said
    assert "AISTACK_DOKPLOY_API_KEY" in said and API_KEY not in said
    assert sleeps.waits == []


async def test_validation_errors_name_the_field_and_dokploy_message(paas: DokployPaas) -> None:
    project = await paas.ensure_project("ai-stack-alice", "x")
    app = await paas.ensure_application(project, "opencode-alice")
    with pytest.raises(PermanentError) as caught:
        await paas.ensure_domain(app.application_id, "alice.ai.example.test", 0, True)
    assert str(caught.value) == (
        "Dokploy domain.create: 400 BAD_REQUEST: Input validation failed: "
        "port: Port must be at least 1"
    )


def _invalid(issues: bool) -> dict[str, Any]:
    """Recording 86's body (four numbers sent as strings), with or without `issues`."""
    fields = ["memoryReservation", "memoryLimit", "cpuReservation", "cpuLimit"]
    text = "Invalid input: expected string, received number"
    body: dict[str, Any] = {
        "message": "Input validation failed",
        "code": "BAD_REQUEST",
        "data": {
            "code": "BAD_REQUEST",
            "httpStatus": 400,
            "path": "application.deploy",
            "zodError": {"formErrors": [], "fieldErrors": {f: [text] for f in fields}},
        },
    }
    if issues:
        body["issues"] = [
            {"expected": "string", "code": "invalid_type", "path": [f], "message": text}
            for f in fields
        ]
    return body


@pytest.mark.parametrize("issues", [True, False], ids=["issues", "zodError-only"])
async def test_every_invalid_field_is_named(
    canned: Canned, sleeps: RecordedSleeps, issues: bool
) -> None:
    canned.answer("application.deploy", 400, _invalid(issues))
    paas = at(canned.url, sleeps)
    try:
        with pytest.raises(PermanentError) as caught:
            await paas.start_deploy("app1", "t")
    finally:
        await paas.close()
    text = "Invalid input: expected string, received number"
    assert str(caught.value) == (
        "Dokploy application.deploy: 400 BAD_REQUEST: Input validation failed: "
        f"memoryReservation: {text}; memoryLimit: {text}; cpuReservation: {text}; "
        f"cpuLimit: {text}"
    )


async def test_a_failed_insert_is_named_without_echoing_its_parameters(
    canned: Canned, sleeps: RecordedSleeps
) -> None:
    """Recording 79: the duplicate's BAD_REQUEST quotes the INSERT and its parameters."""
    body = {
        "message": 'Failed query: insert into "security" ("securityId", "username", "password") '
        "values ($1, $2, $3)\nparams: bHfb-fFKl6,rec3admin,hunter2-not-for-logs",
        "code": "BAD_REQUEST",
        "data": {"code": "BAD_REQUEST", "httpStatus": 400, "zodError": None},
    }
    canned.answer("application.deploy", 400, body)
    paas = at(canned.url, sleeps)
    try:
        with pytest.raises(PermanentError) as caught:
            await paas.start_deploy("app1", "t")
    finally:
        await paas.close()
    assert str(caught.value) == (
        "Dokploy application.deploy: 400 BAD_REQUEST: database refused the insert/update"
    )


# -- the failure reason Dokploy keeps in the build log --------------------------------------

RECORDED_LOG = (  # recording 97: one JSON string of "\n"-separated lines
    "Initializing deployment\nPulling ghcr.io/sst/opencode:latest\n"
    "fake docker (audit stand-in): no Docker engine on this machine\n"
    "\u274c Pulling image failed\n\nError occurred \u274c, check the logs for details.\n"
)


async def test_deployment_log_tail_gives_the_last_lines_on_one_line(
    canned: Canned, sleeps: RecordedSleeps
) -> None:
    canned.answer("deployment.readLogs", 200, RECORDED_LOG)
    paas = at(canned.url, sleeps)
    try:
        tail = await paas.deployment_log_tail("dep1")
    finally:
        await paas.close()
    assert tail == (
        "fake docker (audit stand-in): no Docker engine on this machine / "
        "\u274c Pulling image failed / Error occurred \u274c, check the logs for details."
    )
    assert canned.queries == [{"deploymentId": "dep1", "tail": "20"}]


async def test_deployment_log_tail_is_empty_when_dokploy_has_no_such_log(
    paas: DokployPaas, sleeps: RecordedSleeps
) -> None:
    assert await paas.deployment_log_tail("doesNotExist000000000") == ""
    assert sleeps.waits == []  # a 404 is an answer, not a reason to retry
