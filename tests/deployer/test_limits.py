"""AISTACK_STACK_MEMORY and AISTACK_STACK_CPUS: in the plan, on the application as Dokploy
takes them (strings of whole bytes and NanoCPUs), and put back by a failed redeploy."""

from __future__ import annotations

import pytest

from deployer import ConfigError, DeploymentState, Operation, load_settings
from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.testing import FakeClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS

S = DeploymentState


async def test_the_limits_reach_the_application_as_dokploy_takes_them(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    plan = deployer.plan(deployer.spec("alice"), Operation.DEPLOY)
    assert any(line.endswith("limited to 4 GiB memory, 2 CPUs") for line in plan)
    assert (await deployer.deploy("alice", requester="U1")).state is S.SUCCEEDED
    (app,) = sandbox.dokploy.store.applications.values()
    assert (app["memoryLimit"], app["cpuLimit"]) == ("4294967296", "2000000000")


async def test_no_limits_means_no_update_call(sandbox: Sandbox) -> None:
    settings = sandbox.settings(**(TEST_SETTINGS | {"stack_memory": "none", "stack_cpus": "none"}))
    async with open_deployer(settings, RecordingNotifier(), store=MemoryStore(),
                             clock=FakeClock()) as deployer:  # fmt: skip
        assert not any("limited" in line for line in deployer.plan(deployer.spec("alice")))
        await deployer.deploy("alice", requester="U1")
    assert "application.update" not in [op for _, op in sandbox.dokploy.calls]
    (app,) = sandbox.dokploy.store.applications.values()
    assert (app["memoryLimit"], app["cpuLimit"]) == (None, None)


async def test_a_failed_redeploy_puts_the_previous_limits_back(sandbox: Sandbox) -> None:
    store, clock = MemoryStore(), FakeClock()
    first = sandbox.settings(**(TEST_SETTINGS | {"stack_memory": "1Gi", "stack_cpus": "1"}))
    async with open_deployer(first, RecordingNotifier(), store=store, clock=clock) as deployer:
        await deployer.deploy("alice", requester="U1")
    sandbox.dokploy.fail_images.add("nginx:broken")
    tighter = sandbox.settings(**(TEST_SETTINGS | {"stack_memory": "512Mi", "stack_cpus": "0.5"}))
    async with open_deployer(tighter, RecordingNotifier(), store=store, clock=clock) as deployer:
        redeploy = await deployer.deploy("alice", requester="U1", image="nginx:broken")
    assert redeploy.state is S.ROLLED_BACK
    (app,) = sandbox.dokploy.store.applications.values()
    assert (app["memoryLimit"], app["cpuLimit"]) == (str(1024**3), "1000000000")


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [("AISTACK_STACK_MEMORY", "lots", "AISTACK_STACK_MEMORY must be a size such as 4Gi"),
     ("AISTACK_STACK_CPUS", "two", "AISTACK_STACK_CPUS must be a number of CPUs")],
)  # fmt: skip
def test_a_limit_that_cannot_be_read_stops_start_up_naming_the_variable(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    for key, setting in sandbox.env().items():
        monkeypatch.setenv(key, setting)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=said):
        load_settings(_env_file=None)
