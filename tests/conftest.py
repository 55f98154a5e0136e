"""Shared fixtures: the sandbox on 127.0.0.1, a clock that never waits, a recording notifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.settings import DeployerSettings
from deployer.testing import FakeClock, RecordingNotifier

# Fast but bounded: small real timeouts so a hang is noticed in a fraction of a second.
TEST_SETTINGS: dict[str, Any] = {
    "http_timeout": 0.5,
    "deploy_timeout": 10.0,
    "phase_timeout": 10.0,
    "health_timeout": 30.0,
    "allowed_images": "ghcr.io/sst/opencode:*, nginx:*",  # tests redeploy nginx images too
    "max_stacks_per_user": 50,  # one requester makes many stacks here; quota tests set theirs
}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(deploy_delay=0.01) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def settings(sandbox: Sandbox) -> DeployerSettings:
    return sandbox.settings(**TEST_SETTINGS)


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def deployer(
    settings: DeployerSettings,
    notifier: RecordingNotifier,
    clock: FakeClock,
    memory_store: MemoryStore,
) -> AsyncIterator[Deployer]:
    async with open_deployer(settings, notifier, store=memory_store, clock=clock) as running:
        yield running
