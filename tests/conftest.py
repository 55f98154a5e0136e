"""Shared fixtures: the sandbox on 127.0.0.1, a clock that never waits, a recording notifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from deployer.adapters.store_memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.models import Event
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.settings import DeployerSettings


class FakeClock:
    """Time moves only when someone sleeps; sleeping yields to the loop but takes no time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0.001)  # let the sandbox's own (real-time) work progress


class RecordedSleeps:
    """A sleep that records how long it was asked to wait, and does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._waiters: list[tuple[str, str | None, asyncio.Event]] = []

    async def notify(self, event: Event) -> None:
        self.events.append(event)
        for kind, phase, seen in self._waiters:
            if event.kind == kind and phase in (None, event.phase):
                seen.set()

    async def wait_for(self, kind: str, phase: str | None = None) -> None:
        """Return once an event of this kind (and phase) has been notified."""
        seen = asyncio.Event()
        self._waiters.append((kind, phase, seen))
        if any(e.kind == kind and phase in (None, e.phase) for e in self.events):
            return
        await seen.wait()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


# Fast but bounded: small real timeouts so a hang is noticed in a fraction of a second.
TEST_SETTINGS: dict[str, Any] = {
    "http_timeout": 0.5,
    "deploy_timeout": 10.0,
    "phase_timeout": 10.0,
    "health_timeout": 30.0,
    "allowed_images": "ghcr.io/sst/opencode:*, nginx:*",  # tests redeploy nginx images too
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
async def deployer(
    settings: DeployerSettings, notifier: RecordingNotifier, clock: FakeClock
) -> AsyncIterator[Deployer]:
    async with open_deployer(settings, notifier, store=MemoryStore(), clock=clock) as running:
        yield running
