"""AISTACK_MAX_STACKS_PER_USER and AISTACK_MAX_STACKS through the Deployer: a new stack past
either limit is refused before anything is recorded; a redeploy is not a new stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deployer import DeploymentState, Operation, QuotaExceeded
from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.testing import FakeClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS
from tests.deployer.cli_helpers import aistack, cli_env

S = DeploymentState


async def limited(sandbox: Sandbox, **limits: Any) -> AsyncIterator[Deployer]:
    settings = sandbox.settings(**(TEST_SETTINGS | limits))
    async with open_deployer(settings, RecordingNotifier(), store=MemoryStore(),
                             clock=FakeClock()) as deployer:  # fmt: skip
        yield deployer


@pytest.fixture
async def two_each(sandbox: Sandbox) -> AsyncIterator[Deployer]:
    async for deployer in limited(sandbox, max_stacks_per_user=2):
        yield deployer


async def test_a_third_stack_is_refused_and_nothing_is_recorded(two_each: Deployer) -> None:
    for name in ("ana", "ben"):
        assert (await two_each.deploy(name, requester="U1")).state is S.SUCCEEDED
    with pytest.raises(QuotaExceeded, match=r"U1 already holds 2 stacks \(ana, ben\)"):
        await two_each.request("cy", requester="U1")
    assert await two_each.latest("cy") is None
    assert (await two_each.deploy("cy", requester="U2")).state is S.SUCCEEDED  # someone else


async def test_a_redeploy_is_not_a_new_stack_and_a_destroy_frees_a_place(
    two_each: Deployer,
) -> None:
    for name in ("ana", "ben"):
        await two_each.deploy(name, requester="U1")
    again = await two_each.deploy("ana", requester="U1", image="nginx:1.27")
    assert again.state is S.SUCCEEDED  # at the limit, but ana is already held
    await two_each.destroy("ben", requester="U1")
    assert (await two_each.deploy("cy", requester="U1")).state is S.SUCCEEDED


async def test_approval_checks_again_what_was_made_while_the_request_waited(
    two_each: Deployer,
) -> None:
    await two_each.deploy("ana", requester="U1")
    waiting = await two_each.request("cy", requester="U1")  # one held: allowed to ask
    await two_each.deploy("ben", requester="U1")  # meanwhile, the second
    with pytest.raises(QuotaExceeded, match="AISTACK_MAX_STACKS_PER_USER is 2"):
        await two_each.approve(waiting, "U2")
    assert (await two_each.get(waiting.id)).state is S.REQUESTED  # still open to reject


async def test_stacks_on_their_way_count_as_held(two_each: Deployer) -> None:
    for name in ("ana", "ben"):
        await two_each.approve(await two_each.request(name, requester="U1"), "U2")  # queued
    with pytest.raises(QuotaExceeded, match=r"\(ana, ben\)"):
        await two_each.request("cy", requester="U1")


async def test_a_full_server_refuses_a_new_stack_naming_its_holders(sandbox: Sandbox) -> None:
    async for deployer in limited(sandbox, max_stacks=2):
        await deployer.deploy("ana", requester="U1")
        await deployer.deploy("ben", requester="U2")
        with pytest.raises(QuotaExceeded, match=r"AISTACK_MAX_STACKS is 2 \(most held by"):
            await deployer.request("cy", requester="U3")
        destroy = await deployer.request("ana", requester="U1", operation=Operation.DESTROY)
        assert destroy.state is S.REQUESTED  # removing is never limited


async def test_the_cli_says_who_holds_what_and_exits_5(sandbox: Sandbox, tmp_path: Path) -> None:
    env = cli_env(sandbox, tmp_path / "aistack.db") | {"AISTACK_MAX_STACKS_PER_USER": "1",
                                                        "USER": "ops"}  # fmt: skip
    assert (await aistack(env, "deploy", "ana")).code == 0
    refused = await aistack(env, "deploy", "ben")
    assert refused.code == 5
    assert "cli:ops already holds 1 stack (ana)" in refused.output
    assert "AISTACK_MAX_STACKS_PER_USER is 1" in refused.output
