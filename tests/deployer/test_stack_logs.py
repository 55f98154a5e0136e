"""`logs`: the container's output and the live release's build log, read from the Dokploy fake
through the real adapter, with the values of the stack's environment masked everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.core.states import DeploymentState, Operation
from deployer.errors import NotFound, PermanentUpstreamError
from deployer.sandbox.server import API_KEY, Sandbox
from deployer.service import Deployer
from deployer.stack_logs import MASK, MIN_MASKED, mask, secrets_of
from deployer.testing import FakeClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS

S = DeploymentState
SECRET = "sk-live-0123456789abcdef"  # an API key in the stack's environment
PEM = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT\n-----END KEY-----"
ENV = {"OPENAI_API_KEY": SECRET, "TLS_KEY": PEM, "DEBUG": "1", "MODE": "dev"}
NO_DOCKER = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."


@pytest.fixture
async def alice(
    sandbox: Sandbox, clock: FakeClock, notifier: RecordingNotifier
) -> AsyncIterator[Deployer]:
    """alice live, with secrets in its environment."""
    settings = sandbox.settings(stack_env=ENV, **TEST_SETTINGS)
    async with open_deployer(settings, notifier, store=MemoryStore(), clock=clock) as deployer:
        assert (await deployer.deploy("alice", requester="U1")).state is S.SUCCEEDED
        yield deployer


def every_text(logs: list[dict[str, object]]) -> str:
    return "\n".join(f"{k}={v!r}" for line in logs for k, v in line.items())


# -- masking, pure ------------------------------------------------------------------------------
def test_every_value_long_enough_is_masked_the_longest_first() -> None:
    text, count = mask("key=abcd1234 short=abcd debug=1 again abcd1234", ["abcd", "abcd1234", "1"])
    assert text == f"key={MASK} short={MASK} debug=1 again {MASK}"
    assert count == 3


def test_short_values_are_left_and_the_minimum_is_said() -> None:
    assert MIN_MASKED == 4
    assert secrets_of(["abc", "   ", "abcd"]) == ["abcd"]


def test_a_value_over_several_lines_is_masked_whole_and_line_by_line() -> None:
    whole, _ = mask(f"cert: {PEM}", [PEM])
    assert whole == f"cert: {MASK}"
    printed = "line: MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT"  # a log printed one line of it
    assert mask(printed, [PEM]) == (f"line: {MASK}", 1)


# -- container output ---------------------------------------------------------------------------
async def test_container_lines_come_masked_and_nothing_logs_a_secret(
    alice: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.container_prints(
        "opencode-alice", f"auth with {SECRET} ok", "mode dev, debug 1",
        "-----BEGIN KEY-----", "MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT",
    )  # fmt: skip
    with capture_logs() as logged:
        logs = await alice.logs("alice")
    assert logs.absent is None and not logs.build
    assert logs.lines[0].endswith(": started from ghcr.io/sst/opencode:latest")
    assert logs.lines[2:] == (f"auth with {MASK} ok", "mode dev, debug 1", MASK, MASK)
    assert logs.masked == 3
    assert SECRET not in "\n".join(logs.lines) and "MIIBVw" not in "\n".join(logs.lines)
    said = every_text(logged)
    assert "logs read" in said and SECRET not in said and "MIIBVw" not in said


async def test_tail_asks_dokploy_for_that_many_lines(alice: Deployer, sandbox: Sandbox) -> None:
    sandbox.dokploy.container_prints("opencode-alice", *(f"line {n}" for n in range(50)))
    logs = await alice.logs("alice", tail=5)
    assert logs.lines == tuple(f"line {n}" for n in range(45, 50))


async def test_a_stopped_stack_has_no_container_to_read(alice: Deployer, sandbox: Sandbox) -> None:
    await alice.change("alice", Operation.STOP, requester="U1")
    calls = len(sandbox.dokploy.calls)
    logs = await alice.logs("alice")
    assert logs.lines == () and logs.absent is not None
    assert logs.absent.startswith("alice is stopped (since ")
    assert len(sandbox.dokploy.calls) == calls  # our records say so: Dokploy is not asked


async def test_no_container_found_is_said_plainly_not_as_a_fault(
    alice: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.store.docker_error = NO_DOCKER  # readLogs: 500 No container or service found
    logs = await alice.logs("alice")
    assert logs.absent == (
        "alice has no running container (stopped, or Dokploy cannot reach Docker): no logs to show"
    )


async def test_a_stack_that_is_not_live_has_no_logs(alice: Deployer) -> None:
    await alice.destroy("alice", requester="U1")
    with pytest.raises(NotFound, match="alice is not live: there are no logs to show"):
        await alice.logs("alice")
    with pytest.raises(NotFound, match="bob is not live"):
        await alice.logs("bob")


# -- the build log ------------------------------------------------------------------------------
async def test_the_build_log_of_the_live_release(alice: Deployer) -> None:
    logs = await alice.logs("alice", build=True)
    assert logs.build and logs.lines == (
        "Initializing deployment",
        "Pulling ghcr.io/sst/opencode:latest",
        "Status: Downloaded newer image for ghcr.io/sst/opencode:latest",
        "Docker Deployed: ✅",
    )
    assert (await alice.logs("alice", build=True, tail=1)).lines == ("Docker Deployed: ✅",)


async def test_a_build_log_dokploy_dropped_is_said_plainly(
    alice: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.store.deployments.clear()  # Dokploy keeps only the newest deployments
    logs = await alice.logs("alice", build=True)
    assert logs.absent is not None and logs.absent.startswith(
        "Dokploy no longer has the build log of alice (deployment "
    )


async def test_a_stopped_stack_still_has_its_build_log(alice: Deployer) -> None:
    await alice.change("alice", Operation.STOP, requester="U1")
    assert (await alice.logs("alice", build=True)).lines[-1] == "Docker Deployed: ✅"


# -- the adapter's answers ----------------------------------------------------------------------
async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def paas(sandbox: Sandbox) -> AsyncIterator[DokployPaas]:
    upstream = Upstream("Dokploy", RetryPolicy(attempts=2), sleep=_no_sleep)
    client = DokployPaas(sandbox.urls["dokploy"], SecretStr(API_KEY), upstream, 2.0)
    yield client
    await client.close()


async def test_start_and_reload_without_docker_are_refused_once_without_dokploys_text(
    alice: Deployer, sandbox: Sandbox, paas: DokployPaas
) -> None:
    app = next(iter(sandbox.dokploy.store.applications.values()))
    sandbox.dokploy.store.docker_error = NO_DOCKER
    before = len(sandbox.dokploy.calls)
    with pytest.raises(PermanentUpstreamError) as started:
        await paas.start_application(app["applicationId"])
    with pytest.raises(PermanentUpstreamError) as reloaded:
        await paas.reload_application(app["applicationId"], app["appName"])
    assert str(started.value) == "Dokploy could not start the container (500 INTERNAL_SERVER_ERROR)"
    assert str(reloaded.value) == (
        "Dokploy could not restart the container (500 INTERNAL_SERVER_ERROR)"
    )
    assert started.value.status == 500 and started.value.code == "INTERNAL_SERVER_ERROR"
    assert len(sandbox.dokploy.calls) == before + 2  # not retried: Docker's no stays a no


async def test_an_unknown_deployment_has_no_build_log(paas: DokployPaas) -> None:
    assert await paas.deployment_log("doesNotExist000000000", 10) is None
