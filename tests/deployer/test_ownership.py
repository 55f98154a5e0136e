"""Ownership and allowed images, in the engine: the owner is whoever first made a stack live
(a redeploy by someone else keeps it) until a transfer; it is read from the store, not found
by walking the audit trail; the owner's own request closes the others waiting; and a stack
runs only images that AISTACK_ALLOWED_IMAGES allows, checked again when the job runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.adapters.stores.memory import MemoryStore
from deployer.core.models import Event
from deployer.core.states import DeploymentState, Operation
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.testing import RecordingNotifier
from tests.deployer.cli_helpers import aistack, cli_env

S = DeploymentState
EVIL = "docker.io/evil/miner:latest"
DIGEST = "sha256:" + "a" * 64


async def test_a_redeploy_keeps_the_owner_a_transfer_changes_it_a_destroy_ends_it(
    deployer: Deployer,
) -> None:
    await deployer.deploy("alice", requester="U1")
    again = await deployer.deploy("alice", requester="U2")
    assert again.state is S.SUCCEEDED
    assert await deployer.owner("alice") == "U1"  # was U2: the last deployer took it over
    listed = {s.name: s for s in await deployer.list_stacks()}
    assert listed["alice"].owner == (await deployer.status("alice")).owner == "U1"

    await deployer.transfer("alice", owner="U1", to="U3", by="U9")
    moved = (await deployer.history("alice"))[-1]
    assert (moved.kind, moved.actor, moved.data["from"], moved.data["to"]) == (
        "stack.transferred", "U9", "U1", "U3",
    )  # fmt: skip
    await deployer.deploy("alice", requester="U1")
    assert await deployer.owner("alice") == "U3"

    await deployer.destroy("alice", requester="U3")
    assert await deployer.owner("alice") is None
    await deployer.deploy("alice", requester="U2")
    assert await deployer.owner("alice") == "U2"  # a new life, a new owner


async def test_owners_are_read_without_walking_the_audit_trail(
    deployer: Deployer, memory_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deployer.deploy("alice", requester="U1")
    await deployer.deploy("bob", requester="U2")

    async def walked(stack: str) -> list[Event]:
        raise AssertionError(f"the events of {stack} were read to find its owner")

    monkeypatch.setattr(memory_store, "events", walked)
    listed = await deployer.list_stacks()
    assert [(s.name, s.owner) for s in listed] == [("alice", "U1"), ("bob", "U2")]
    assert (await deployer.status("alice")).owner == "U1"


async def test_the_owners_own_request_closes_the_others_waiting(deployer: Deployer) -> None:
    await deployer.deploy("alice", requester="U1")
    destroy = await deployer.request("alice", requester="U2", operation=Operation.DESTROY)
    redeploy = await deployer.request("alice", requester="U3")  # beside it: nothing is held
    assert await deployer.supersede(redeploy) == []  # U3 does not own it: closes nothing

    own = await deployer.request("alice", requester="U1", operation=Operation.DESTROY)
    closed = await deployer.supersede(own)
    assert {d.id for d in closed} == {destroy.id, redeploy.id}
    for dep in closed:
        assert (dep.state, dep.approver) == (S.REJECTED, "U1")
        assert dep.error == "superseded by U1's own destroy"
    assert (await deployer.get(own.id)).state is S.REQUESTED


async def test_every_waiting_request_expires_not_only_the_latest(
    deployer: Deployer, memory_store: MemoryStore
) -> None:
    first = await deployer.request("alice", requester="U1")
    second = await deployer.request("alice", requester="U2")
    expired = await deployer.expire_requests(-1)  # a TTL already past for both
    assert {d.id for d in expired} == {first.id, second.id}
    assert await memory_store.awaiting_approval() == []


# -- allowed images --------------------------------------------------------------------------
async def test_an_image_from_elsewhere_fails_its_preflight_and_makes_nothing(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    dep = await deployer.deploy("alice", requester="U1", image=EVIL)
    assert dep.state is S.ROLLED_BACK
    assert dep.error is not None and EVIL in dep.error and "ghcr.io/sst/opencode:*" in dep.error
    failed = [e.phase for e in notifier.events if e.kind == "phase.failed"]
    assert failed == ["preflight"]
    assert not any(sandbox.resources().values())
    assert await deployer.owner("alice") is None


async def test_allowed_images_default_to_the_default_images_repository(sandbox: Sandbox) -> None:
    settings = sandbox.settings()
    assert settings.stack.image_patterns == ("ghcr.io/sst/opencode:*",)
    for image in ("ghcr.io/sst/opencode:0.3", "ghcr.io/sst/opencode",  # a bare name is :latest
                  f"ghcr.io/sst/opencode:0.3@{DIGEST}"):  # fmt: skip
        assert settings.stack.image_refusal(image) is None, image
    for image in (EVIL, "ghcr.io/sst/opencode-fork:1", "ghcr.io/sst/opencode.evil.io/x:1",
                  f"ghcr.io/sst/opencode@{DIGEST}"):  # fmt: skip
        refused = settings.stack.image_refusal(image)
        assert refused is not None and image in refused and "ghcr.io/sst/opencode:*" in refused
    ported = sandbox.settings(stack_image="localhost:5000/team/agent")  # a port is not a tag
    assert ported.stack.image_patterns == ("localhost:5000/team/agent:*",)


async def test_allowed_images_come_from_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISTACK_ALLOWED_IMAGES", " ghcr.io/sst/*, nginx:1.* ,")
    settings = sandbox.settings()
    assert settings.stack.image_patterns == ("ghcr.io/sst/*", "nginx:1.*")
    assert settings.stack.image_refusal("nginx:1.27") is None
    assert settings.stack.image_refusal("nginx:latest") is not None
    assert sandbox.settings(allowed_images="*").stack.image_refusal(EVIL) is None


async def test_the_cli_refuses_an_image_from_elsewhere_with_exit_2(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = cli_env(sandbox, tmp_path / "aistack.db")
    result = await aistack(env, "deploy", "alice", "--image", EVIL)
    assert result.code == 2, result.output
    assert EVIL in result.output and "ghcr.io/sst/opencode:*" in result.output
    history = await aistack(env, "history", "alice")
    assert history.code == 6, history.output  # nothing was recorded
    assert not any(sandbox.resources().values())
