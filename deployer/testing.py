"""Test doubles for the deployer's ports, shared by the tests, the benches and the chaos run.

Never imported by production code (an import-linter contract holds that)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from deployer.clock import SystemClock
from deployer.core.models import Deployment, Event


class FakeClock:
    """Waiting takes no time: a sleep moves the sleeping task's own timeline on and yields to
    the loop (1 ms, so the sandbox's real-time work progresses). Each task keeps its own
    timeline, started from its parent's: a heartbeat's waits do not age a poll loop's
    deadline. It fakes waiting, not the calendar: `now()` is the real time (ManualClock is
    the calendar a test moves by hand)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._elapsed: ContextVar[float] = ContextVar(f"fake_clock_{id(self)}", default=0.0)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return self._elapsed.get()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._elapsed.set(self._elapsed.get() + seconds)
        await asyncio.sleep(0.001)


class ManualClock:
    """A calendar the test moves by hand (`at`, `advance`): what it stamps and compares stands
    still however slowly the machine runs. Sleeps go to `on_sleep` (a test's hook) or just
    yield (1 ms: a loop that sleeps does not spin); monotonic time is the calendar's."""

    def __init__(
        self,
        at: datetime | None = None,
        on_sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.at = at or datetime.now(UTC)
        self._origin = self.at
        self._on_sleep = on_sleep

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - self._origin).total_seconds()

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        if self._on_sleep is not None:
            await self._on_sleep(seconds)
        else:
            await asyncio.sleep(0.001)


class RecordedSleeps(SystemClock):
    """Real time, but a sleep records how long it was asked to wait and does not wait. Also
    a plain sleep function (`await sleeps(1.0)`) for what takes one."""

    def __init__(self, waits: list[float] | None = None) -> None:
        self.waits: list[float] = [] if waits is None else waits

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)  # a loop that sleeps still lets the others run

    async def __call__(self, seconds: float) -> None:
        await self.sleep(seconds)


@dataclass(frozen=True)
class Delivered:
    """A login a Courier handed to an owner (the password kept for the test to try it)."""

    deployment_id: str
    stack: str
    owner: str
    username: str
    password: str = field(repr=False)


class RecordingCourier:
    """A Courier that keeps what it delivered, in order."""

    def __init__(self) -> None:
        self.delivered: list[Delivered] = []

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None:
        self.delivered.append(Delivered(deployment.id, deployment.stack, owner, username,
                                        password))  # fmt: skip

    def logins(self, stack: str) -> list[Delivered]:
        return [d for d in self.delivered if d.stack == stack]


class RecordingNotifier(RecordingCourier):
    """Keeps every event; also the Courier (`open_deployer` takes the notifier as its
    courier when it is one), keeping every login it was handed."""

    def __init__(self) -> None:
        super().__init__()
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
