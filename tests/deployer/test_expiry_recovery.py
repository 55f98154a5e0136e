"""The timed steps of a stack's life survive a crash and happen once with several workers:
a sweep killed between its steps, then a new process on the same database, does each step
exactly once (no second stop, no lost destroy); two sweepers and two workers on PostgreSQL,
side by side, do each timed step exactly once."""

from __future__ import annotations

import asyncio

import pytest

from deployer.core.events import EventKind
from deployer.core.models import Event
from deployer.core.states import Operation
from deployer.expiry import SweepReport
from deployer.sandbox.server import Sandbox
from deployer.testing import ManualClock
from tests.deployer.conftest import Backend
from tests.deployer.test_expiry import DAY, HOUR, T0, counted, drain, live, opened, operations

K = EventKind


class Killed(BaseException):
    """The process dies here (a BaseException: nothing on the way catches it)."""


class KillAt:
    """A notifier that kills the process when it hears the first event of `kind`: after the
    write that stored it, before anything that follows it."""

    def __init__(self, kind: EventKind) -> None:
        self.kind = kind
        self.fired = False

    async def notify(self, event: Event) -> None:
        if event.kind == self.kind and not self.fired:
            self.fired = True
            raise Killed(str(event.kind))


async def test_a_sweep_killed_after_the_reminder_was_recorded_does_not_send_another(
    backend: Backend, sandbox: Sandbox
) -> None:
    clock = ManualClock(T0)
    async with opened(sandbox, await backend.open(clock), clock,
                      KillAt(K.STACK_EXPIRY_NOTICE)) as first:  # fmt: skip
        await first.deploy("alice", requester="U1")
        clock.advance(6 * DAY + HOUR)
        with pytest.raises(Killed):
            await first.sweep_lifetimes()
    store = await backend.open(clock)  # a new process on the same database
    async with opened(sandbox, store, clock) as second:
        assert await second.sweep_lifetimes() == SweepReport()
    assert await counted(store, K.STACK_EXPIRY_NOTICE) == 1  # the bot posts it from the log


async def test_a_sweep_killed_after_one_stop_was_recorded_stops_each_stack_once(
    backend: Backend, sandbox: Sandbox
) -> None:
    clock = ManualClock(T0)
    async with opened(sandbox, await backend.open(clock), clock,
                      KillAt(K.STACK_EXPIRED)) as first:  # fmt: skip
        for name in ("alice", "bob"):
            await first.deploy(name, requester="U1")
        clock.advance(7 * DAY)
        with pytest.raises(Killed):  # alice's stop is recorded; bob's never asked for
            await first.sweep_lifetimes()
    store = await backend.open(clock)
    async with opened(sandbox, store, clock) as second:
        report = await second.sweep_lifetimes()
        assert [d.stack for d in report.stopped] == ["bob"] and report.busy == ["alice"]
        await drain(second)
        assert await second.sweep_lifetimes() == SweepReport()
    for name in ("alice", "bob"):
        assert (await live(store, name)).stopped_at == clock.now()
        assert await operations(store, name) == [Operation.DEPLOY, Operation.STOP]
        assert await counted(store, K.STACK_EXPIRED, name) == 1


async def test_killed_after_the_destroy_was_recorded_it_is_destroyed_once(
    backend: Backend, sandbox: Sandbox
) -> None:
    clock = ManualClock(T0)
    async with opened(sandbox, await backend.open(clock), clock,
                      KillAt(K.STACK_GRACE_ENDED)) as first:  # fmt: skip
        await first.deploy("alice", requester="U1")
        clock.advance(7 * DAY)
        await first.sweep_lifetimes()
        await drain(first)  # stopped at expiry
        clock.advance(3 * DAY)
        with pytest.raises(Killed):
            await first.sweep_lifetimes()
    store = await backend.open(clock)
    async with opened(sandbox, store, clock) as second:
        assert (await second.sweep_lifetimes()).busy == ["alice"]  # the destroy holds it
        await drain(second)
        assert await second.sweep_lifetimes() == SweepReport()
    assert await store.live("alice") is None and sandbox.resources()["projects"] == []
    assert await operations(store) == [Operation.DEPLOY, Operation.STOP, Operation.DESTROY]


async def test_a_process_that_died_before_the_grace_ended_loses_no_destroy(
    backend: Backend, sandbox: Sandbox
) -> None:
    clock = ManualClock(T0)
    async with opened(sandbox, await backend.open(clock), clock) as first:
        await first.deploy("alice", requester="U1")
        clock.advance(7 * DAY)
        await first.sweep_lifetimes()
        await drain(first)
    clock.advance(10 * DAY)  # nothing ran meanwhile: the due time is in the store
    store = await backend.open(clock)
    async with opened(sandbox, store, clock) as second:
        assert len((await second.sweep_lifetimes()).destroyed) == 1
        await drain(second)
    assert await store.live("alice") is None
    assert await counted(store, K.STACK_GRACE_ENDED) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_sweepers_and_two_workers_on_postgres_do_each_timed_step_once(
    backend: Backend, sandbox: Sandbox
) -> None:
    clock = ManualClock(T0)
    names = ("ann", "bea", "cid")
    async with (
        opened(sandbox, await backend.open(clock), clock) as one,
        opened(sandbox, await backend.open(clock), clock) as two,  # another replica
    ):
        for name in names:
            await one.deploy(name, requester="U1")
        for wait in (6 * DAY + HOUR, DAY - HOUR, 3 * DAY):  # reminders, expiry, grace
            clock.advance(wait)
            for _ in range(3):
                await asyncio.gather(one.sweep_lifetimes(), two.sweep_lifetimes())
            await asyncio.gather(drain(one), drain(two))
    store = await backend.open(clock)
    for name in names:
        assert await operations(store, name) == [
            Operation.DEPLOY, Operation.STOP, Operation.DESTROY,
        ], name  # fmt: skip
        for kind in (K.STACK_EXPIRY_NOTICE, K.STACK_EXPIRED, K.STACK_GRACE_ENDED):
            assert await counted(store, kind, name) == 1, (name, kind)
        assert await store.live(name) is None
    assert sandbox.resources()["projects"] == []
