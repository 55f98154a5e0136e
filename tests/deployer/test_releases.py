"""Releases, roll back and the upgrade that reverts, through the saga against the sandbox:
every successful deploy is a numbered release, a roll back deploys an earlier one's image,
environment and limits onto the live stack and waits for it to answer, and a deploy of a live
stack that does not answer puts the live release back and says which one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from deployer import (
    EventKind,
    NotFound,
    Operation,
    PermanentError,
    PhaseRecord,
    PhaseState,
    Release,
    Revert,
)
from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.core.models import Deployment, Event, StackSpec
from deployer.core.phases import PhaseName
from deployer.core.releases import env_fingerprint, reverted, rollback_target
from deployer.core.states import DeploymentState
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.testing import FakeClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS

S = DeploymentState
V1_ENV = {"API_TOKEN": "first-secret-value", "MODE": "mode-one-value"}
V2_ENV = {"API_TOKEN": "second-secret-value", "MODE": "mode-two-value"}
Opener = Callable[..., AbstractAsyncContextManager[Deployer]]


@pytest.fixture
def opened(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock, memory_store: MemoryStore
) -> Opener:
    """A deployer on one store and one sandbox, opened with settings of the moment (the env
    and limits a release was made with come from the settings then)."""
    store = memory_store

    @asynccontextmanager
    async def deployer_with(**settings: Any) -> AsyncIterator[Deployer]:
        chosen = sandbox.settings(**(TEST_SETTINGS | settings))
        async with open_deployer(chosen, notifier, store=store, clock=clock) as deployer:
            yield deployer

    return deployer_with


async def two_releases(opened: Opener) -> None:
    """alice live twice: release 1 (opencode, V1_ENV, 1 GiB), release 2 (nginx, V2_ENV)."""
    async with opened(stack_env=V1_ENV, stack_memory="1Gi") as deployer:
        assert (await deployer.deploy("alice", requester="U1")).release == 1
    async with opened(stack_env=V2_ENV) as deployer:
        upgrade = await deployer.deploy("alice", requester="U1", image="nginx:1.27")
        assert (upgrade.state, upgrade.release) == (S.SUCCEEDED, 2)


def the_app(sandbox: Sandbox) -> dict[str, Any]:
    (app,) = sandbox.dokploy.store.applications.values()
    return app


def events_of(notifier: RecordingNotifier, dep: Deployment, kind: EventKind) -> list[Event]:
    return [e for e in notifier.events if e.deployment_id == dep.id and e.kind == kind]


# -- roll back --------------------------------------------------------------------------------
async def test_a_roll_back_puts_the_previous_release_back_and_waits_until_it_answers(
    opened: Opener, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    await two_releases(opened)
    builds = len(sandbox.dokploy.store.deployments)
    async with opened(stack_env={"NOW": "other"}) as deployer:  # today's settings differ
        back = await deployer.rollback("alice", requester="U1")
        assert back.state is S.SUCCEEDED
        assert (back.operation, back.release, back.restores) == (Operation.DEPLOY, 3, 1)
        app = the_app(sandbox)
        assert app["dockerImage"] == "ghcr.io/sst/opencode:latest"
        assert sandbox.dokploy.container_env(app["applicationId"]) == V1_ENV
        assert app["memoryLimit"] == str(1024**3)
        assert len(sandbox.dokploy.store.deployments) == builds + 1  # deployed again
        assert "alice.ai.example.test" in sandbox.dokploy.live_hosts()
        done = [e.phase for e in events_of(notifier, back, EventKind.PHASE_DONE)]
        assert PhaseName.HEALTH in done  # it waited until the stack answered
        (asked,) = events_of(notifier, back, EventKind.DEPLOYMENT_REQUESTED)
        assert asked.data == {"image": "ghcr.io/sst/opencode:latest", "operation": "deploy",
                              "restores": 1}  # fmt: skip
        assert (await deployer.status("alice")).drift == ()
        assert await deployer.owner("alice") == "U1"


async def test_a_roll_back_to_a_release_by_number(opened: Opener, sandbox: Sandbox) -> None:
    await two_releases(opened)
    async with opened() as deployer:
        await deployer.deploy("alice", requester="U1", image="nginx:1.28")  # release 3
        back = await deployer.rollback("alice", requester="U1", to=2)
        assert (back.state, back.release, back.restores) == (S.SUCCEEDED, 4, 2)
        assert the_app(sandbox)["dockerImage"] == "nginx:1.27"
        assert sandbox.dokploy.container_env(the_app(sandbox)["applicationId"]) == V2_ENV
        again = await deployer.rollback("alice", requester="U1")  # the one before 4: 3
        assert (again.restores, the_app(sandbox)["dockerImage"]) == (3, "nginx:1.28")


async def test_releases_list_every_live_deploy_without_env_values(opened: Opener) -> None:
    await two_releases(opened)
    async with opened() as deployer:
        await deployer.rollback("alice", requester="U1")
        releases = await deployer.releases("alice")
    assert [(r.number, r.restores, r.live) for r in releases] == [
        (1, None, False), (2, None, False), (3, 1, True),
    ]  # fmt: skip
    first, _, third = releases
    assert first.env_fingerprint == third.env_fingerprint == env_fingerprint(V1_ENV)
    assert (first.memory_limit, first.container_port, first.requester) == (1024**3, 4096, "U1")
    shown = repr(releases)
    assert not any(value in shown for env in (V1_ENV, V2_ENV) for value in env.values())


@pytest.mark.parametrize(
    ("to", "says"),
    [(None, "alice has no release before release 1"),
     (1, "release 1 is what alice runs now"),
     (7, "alice has no release 7; its releases are 1")],
)  # fmt: skip
async def test_a_roll_back_with_nothing_to_put_back_is_refused_and_records_nothing(
    deployer: Deployer, to: int | None, says: str
) -> None:
    live = await deployer.deploy("alice", requester="U1")
    with pytest.raises(NotFound, match=says):
        await deployer.request_rollback("alice", requester="U1", to=to)
    assert (await deployer.latest("alice")) == live


async def test_a_stack_that_is_not_live_cannot_be_rolled_back(opened: Opener) -> None:
    await two_releases(opened)
    async with opened() as deployer:
        with pytest.raises(NotFound, match="bob is not live: there is nothing to roll back"):
            await deployer.request_rollback("bob", requester="U1")
        await deployer.destroy("alice", requester="U1")
        with pytest.raises(NotFound, match="alice is not live"):
            await deployer.request_rollback("alice", requester="U1")
        # its releases stay on record, none of them live
        assert [r.live for r in await deployer.releases("alice")] == [False, False]
        with pytest.raises(NotFound, match="bob has no releases"):
            await deployer.releases("bob")


async def test_a_roll_back_approved_after_its_stack_was_destroyed_makes_nothing(
    opened: Opener, sandbox: Sandbox
) -> None:
    await two_releases(opened)
    async with opened() as deployer:
        waiting = await deployer.request_rollback("alice", requester="U2")  # needs approval
        await deployer.destroy("alice", requester="U1")
        ended = await deployer.run(await deployer.approve(waiting, "U3"))
    assert ended.state is S.ROLLED_BACK
    assert "alice is not live any more" in (ended.error or "")
    assert not any(sandbox.resources().values())


async def test_a_roll_back_to_an_image_no_longer_allowed_is_refused(opened: Opener) -> None:
    await two_releases(opened)
    async with opened(allowed_images="ghcr.io/sst/opencode:*") as deployer:
        await deployer.deploy("alice", requester="U1")  # release 3
        with pytest.raises(PermanentError, match="release 2 cannot be put back: the image nginx"):
            await deployer.request_rollback("alice", requester="U1", to=2)


async def test_quota_never_limits_a_roll_back(opened: Opener) -> None:
    await two_releases(opened)
    async with opened(max_stacks_per_user=1, max_stacks=1) as deployer:
        back = await deployer.rollback("alice", requester="U1")
        assert back.state is S.SUCCEEDED


async def test_a_roll_back_that_does_not_answer_puts_the_live_release_back(
    opened: Opener, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    await two_releases(opened)
    sandbox.dokploy.silent_images.add("ghcr.io/sst/opencode:latest")  # release 1 crashes now
    async with opened() as deployer:
        back = await deployer.rollback("alice", requester="U1")
        assert back.state is S.ROLLED_BACK and "did not answer" in (back.error or "")
        (ended,) = events_of(notifier, back, EventKind.DEPLOYMENT_ROLLED_BACK)
        assert ended.data == {"reverted_to": 2, "redeployed": True, "restores": 1}
        assert the_app(sandbox)["dockerImage"] == "nginx:1.27"
        assert "alice.ai.example.test" not in sandbox.dokploy.silent_hosts()
        assert [r.number for r in await deployer.releases("alice") if r.live] == [2]


# -- upgrade ----------------------------------------------------------------------------------
async def test_an_upgrade_that_does_not_answer_reverts_to_the_live_release(
    opened: Opener, sandbox: Sandbox, notifier: RecordingNotifier, memory_store: MemoryStore
) -> None:
    async with opened(stack_env=V1_ENV) as deployer:
        await deployer.deploy("alice", requester="U1")
    sandbox.dokploy.silent_images.add("nginx:silent")
    async with opened(stack_env=V2_ENV) as deployer:
        upgrade = await deployer.deploy("alice", requester="U1", image="nginx:silent")
        assert upgrade.state is S.ROLLED_BACK and upgrade.release is None
        assert "did not answer within 30 s (last: HTTP 502" in (upgrade.error or "")
        (ended,) = events_of(notifier, upgrade, EventKind.DEPLOYMENT_ROLLED_BACK)
        assert ended.data == {"reverted_to": 1, "redeployed": True}
        app = the_app(sandbox)
        assert app["dockerImage"] == "ghcr.io/sst/opencode:latest"
        assert sandbox.dokploy.container_env(app["applicationId"]) == V1_ENV
        assert "alice.ai.example.test" in sandbox.dokploy.live_hosts()
        assert "alice.ai.example.test" not in sandbox.dokploy.silent_hosts()
        # what the card reads from the checkpoints is what the event says
        assert reverted(await memory_store.phases(upgrade.id)) == Revert(1, redeployed=True)
        assert [r.number for r in await deployer.releases("alice")] == [1]


async def test_an_upgrade_that_fails_before_its_deploy_says_nothing_reached_the_container(
    opened: Opener, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    async with opened(stack_env=V1_ENV) as deployer:
        await deployer.deploy("alice", requester="U1")
    builds = len(sandbox.dokploy.store.deployments)
    sandbox.dokploy.faults.fail_ops["application.deploy"] = FailRule(status=400, times=1)
    async with opened(stack_env=V2_ENV) as deployer:
        upgrade = await deployer.deploy("alice", requester="U1", image="nginx:1.27")
    assert upgrade.state is S.ROLLED_BACK
    (ended,) = events_of(notifier, upgrade, EventKind.DEPLOYMENT_ROLLED_BACK)
    assert ended.data == {"reverted_to": 1, "redeployed": False}
    assert len(sandbox.dokploy.store.deployments) == builds  # no build: nothing was deployed
    assert the_app(sandbox)["dockerImage"] == "ghcr.io/sst/opencode:latest"


async def test_a_first_deploy_that_fails_reverts_to_nothing(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    failed = await deployer.deploy("bob", requester="U1")
    (ended,) = events_of(notifier, failed, EventKind.DEPLOYMENT_ROLLED_BACK)
    assert failed.state is S.ROLLED_BACK and ended.data == {}


# -- the pure parts ---------------------------------------------------------------------------
def test_the_env_fingerprint_is_stable_short_and_says_no_value() -> None:
    print_ = env_fingerprint({"B": "2", "A": "1"})
    assert print_ == env_fingerprint({"A": "1", "B": "2"}) and len(print_) == 12
    assert print_ != env_fingerprint({"A": "1", "B": "3"})
    assert env_fingerprint({"A": "1=B"}) != env_fingerprint({"A=1": "B"})
    assert env_fingerprint({}) == "none"
    assert "secret" not in env_fingerprint({"TOKEN": "secret"})


def test_the_roll_back_target_is_the_release_before_the_live_one_or_the_one_asked() -> None:
    assert rollback_target([1, 2, 3], 3, None, "alice") == 2
    assert rollback_target([1, 2, 3, 4], 4, 1, "alice") == 1
    with pytest.raises(ValueError, match="its releases are 1-4"):
        rollback_target([1, 2, 3, 4], 4, 9, "alice")


def test_a_deployment_that_never_went_live_is_no_release() -> None:
    spec = StackSpec(name="a", project_name="p", app_name="a", host="h", image="i",
                     container_port=1)  # fmt: skip
    with pytest.raises(ValueError, match="is no release"):
        Release.of(Deployment(stack="a", spec=spec))


def test_no_revert_is_read_without_an_undone_image_or_a_live_release() -> None:
    def record(name: str, state: PhaseState, **outputs: str) -> PhaseRecord:
        return PhaseRecord(deployment_id="d", name=name, state=state, outputs=outputs)

    preflight = record("preflight", PhaseState.DONE, live_release="4")
    image = record("image", PhaseState.UNDONE)
    assert reverted([preflight, image]) is not None
    assert reverted([record("preflight", PhaseState.DONE), image]) is None  # nothing was live
    assert reverted([preflight, record("image", PhaseState.NOTHING_TO_UNDO)]) is None
