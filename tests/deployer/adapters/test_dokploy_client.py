"""DokployPaas over HTTP against the sandbox fake, faults included; sleep is injected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from deployer.adapters.dokploy import DokployPaas
from deployer.errors import AuthError, PermanentError, TransientError, UpstreamUnavailable
from deployer.resilience import RetryPolicy, Upstream
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import API_KEY, Sandbox
from tests.conftest import RecordedSleeps


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
