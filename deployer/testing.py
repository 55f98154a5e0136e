"""Test doubles for the deployer's ports, shared by the tests, the benches and the chaos run.

Never imported by production code (an import-linter contract holds that)."""

from __future__ import annotations

import asyncio

from deployer.core.models import Event


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
