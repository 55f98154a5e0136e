"""A stack's lifetime through the Deployer and the saga, on a calendar the test moves: the
expiry a request sets or keeps, `--for` and extend within the maximum, and the lifecycle
sweep's reminder, stop at expiry and destroy after the grace, each once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.core.events import EventKind
from deployer.core.states import DeploymentState, Operation
from deployer.errors import LifetimeTooLong, NotFound
from deployer.expiry import SweepReport
from deployer.ports import LiveStack, Store
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.testing import ManualClock, RecordingCourier, RecordingNotifier
from tests.conftest import TEST_SETTINGS

S, K = DeploymentState, EventKind
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR, DAY = 3600.0, 86400.0


@asynccontextmanager
async def opened(
    sandbox: Sandbox, store: Store, clock: ManualClock,
    notifier: RecordingNotifier | None = None, **settings: Any,
) -> AsyncIterator[Deployer]:  # fmt: skip
    """A deployer (one process) on `store`, its time the test's calendar."""
    values = sandbox.settings(**(TEST_SETTINGS | settings))
    async with open_deployer(values, notifier or RecordingNotifier(), store=store, clock=clock,
                             courier=RecordingCourier()) as deployer:  # fmt: skip
        yield deployer


async def drain(deployer: Deployer) -> None:
    """Run what is queued until nothing is left (a worker of this process)."""
    worker = deployer.worker()
    while await worker.run_once() is not None:
        pass


async def live(store: Store, stack: str = "alice") -> LiveStack:
    found = await store.live(stack)
    assert found is not None, f"{stack} is not live"
    return found


async def operations(store: Store, stack: str = "alice") -> list[Operation]:
    ids = dict.fromkeys(e.deployment_id for e in await store.events(stack))
    return [(await store.get(i)).operation for i in ids]


async def counted(store: Store, kind: EventKind, stack: str = "alice") -> int:
    return sum(e.kind == kind for e in await store.events(stack))


@pytest.fixture
def calendar() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def world(
    sandbox: Sandbox, calendar: ManualClock
) -> AsyncIterator[tuple[Deployer, MemoryStore]]:
    store = MemoryStore(clock=calendar)
    async with opened(sandbox, store, calendar) as deployer:
        yield deployer, store


World = tuple[Deployer, MemoryStore]


async def test_a_new_stack_lives_the_ttl_or_what_was_asked_and_a_redeploy_keeps_it(
    world: World, calendar: ManualClock
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    await deployer.deploy("bob", requester="U1", lifetime=3 * DAY)
    assert (await live(store)).expires_at == T0 + timedelta(days=7)
    assert (await live(store, "bob")).expires_at == T0 + timedelta(days=3)

    calendar.advance(HOUR)
    upgraded = await deployer.deploy("alice", requester="U1", image="nginx:1")
    assert upgraded.lifetime is None  # a redeploy keeps the expiry
    assert (await live(store)).expires_at == T0 + timedelta(days=7)
    await deployer.deploy("alice", requester="U1", lifetime=DAY)  # --for sets a new one
    assert (await live(store)).expires_at == calendar.now() + timedelta(days=1)


async def test_for_past_the_maximum_is_refused_before_anything_is_recorded(
    world: World,
) -> None:
    deployer, store = world
    with pytest.raises(LifetimeTooLong) as refused:
        await deployer.request("alice", requester="U1", lifetime=31 * DAY)
    assert str(refused.value) == (
        "31 days is longer than a stack may live here: at most 30 days (AISTACK_STACK_TTL_MAX)"
    )
    assert await store.latest("alice") is None and await store.events("alice") == []


async def test_the_owner_is_reminded_once_before_the_expiry(
    world: World, calendar: ManualClock
) -> None:
    deployer, store = world
    made = await deployer.deploy("alice", requester="U1")
    calendar.advance(6 * DAY - 1)
    assert await deployer.sweep_lifetimes() == SweepReport()  # not yet within 24 h
    calendar.advance(1)
    assert (await deployer.sweep_lifetimes()).reminded == ["alice"]
    calendar.advance(HOUR)
    assert await deployer.sweep_lifetimes() == SweepReport()  # once per expiry
    (notice,) = [e for e in await store.events("alice") if e.kind == K.STACK_EXPIRY_NOTICE]
    assert notice.deployment_id == made.id  # the live deployment's: its card's thread
    assert notice.data == {
        "owner": "U1", "expires_at": (T0 + timedelta(days=7)).isoformat(), "stopped": False,
        "destroy_at": (T0 + timedelta(days=10)).isoformat(), "grace": "3 days",
        "extend_by": "1 week",
    }  # fmt: skip


async def test_at_expiry_it_is_stopped_and_after_the_grace_destroyed(
    world: World, calendar: ManualClock, sandbox: Sandbox
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    calendar.advance(7 * DAY)
    (stop,) = (await deployer.sweep_lifetimes()).stopped
    assert (stop.operation, stop.state, stop.approver) == (Operation.STOP, S.QUEUED, "aistack")
    first, *_ = await store.events_for(stop.id)
    assert (first.kind, first.actor) == (K.STACK_EXPIRED, "aistack")  # why, in the same write
    assert first.data["destroy_at"] == (calendar.now() + timedelta(days=3)).isoformat()
    await drain(deployer)
    assert (await live(store)).stopped_at == calendar.now()
    assert sandbox.dokploy.snapshot()["applications"][0]["applicationStatus"] == "idle"

    calendar.advance(3 * DAY - 1)
    assert await deployer.sweep_lifetimes() == SweepReport()  # the grace is not over
    calendar.advance(1)
    (destroy,) = (await deployer.sweep_lifetimes()).destroyed
    first, *_ = await store.events_for(destroy.id)
    assert first.kind == K.STACK_GRACE_ENDED  # the message first
    await drain(deployer)
    assert await store.live("alice") is None
    assert sandbox.resources()["projects"] == []
    assert await operations(store) == [Operation.DEPLOY, Operation.STOP, Operation.DESTROY]


async def test_extending_moves_the_expiry_and_makes_the_reminder_due_again(
    world: World, calendar: ManualClock
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    calendar.advance(6 * DAY + HOUR)
    assert (await deployer.sweep_lifetimes()).reminded == ["alice"]

    extended = await deployer.extend("alice", by="U1")
    assert extended.expires_at == calendar.now() + timedelta(days=7)
    assert extended.noticed_for is None
    (event,) = [e for e in await store.events("alice") if e.kind == K.STACK_EXTENDED]
    assert (event.actor, event.data["from"], event.data["to"]) == (
        "U1", (T0 + timedelta(days=7)).isoformat(), extended.expires_at.isoformat(),
    )  # fmt: skip
    assert await deployer.sweep_lifetimes() == SweepReport()
    calendar.advance(6 * DAY)
    assert (await deployer.sweep_lifetimes()).reminded == ["alice"]  # the new expiry's

    shorter = await deployer.extend("alice", by="U2", lifetime=2 * HOUR)  # --for: as asked
    assert shorter.expires_at == calendar.now() + timedelta(hours=2)


async def test_extend_refuses_past_the_maximum_and_a_stack_that_is_not_live(
    world: World,
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    with pytest.raises(LifetimeTooLong, match=r"^5 weeks is longer .* at most 30 days"):
        await deployer.extend("alice", by="U1", lifetime=35 * DAY)
    with pytest.raises(NotFound, match="bob is not live: there is nothing to extend"):
        await deployer.extend("bob", by="U1")
    assert await counted(store, K.STACK_EXTENDED) == 0


async def test_a_start_after_the_expiry_gives_a_fresh_lifetime(
    world: World, calendar: ManualClock
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    calendar.advance(7 * DAY)
    await deployer.sweep_lifetimes()
    await drain(deployer)
    calendar.advance(DAY)
    await deployer.request("alice", requester="U1", operation=Operation.START, approved=True)
    await drain(deployer)
    started = await live(store)
    assert started.stopped_at is None
    assert started.expires_at == calendar.now() + timedelta(days=7)  # not stopped again at once
    assert await deployer.sweep_lifetimes() == SweepReport()


async def test_a_stack_another_operation_holds_is_left_for_a_later_round(
    world: World, calendar: ManualClock
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    calendar.advance(7 * DAY - HOUR)
    upgrade = await deployer.request("alice", requester="U1", image="nginx:1", approved=True)
    calendar.advance(HOUR)
    assert (await deployer.sweep_lifetimes()).busy == ["alice"]  # the upgrade holds it
    await drain(deployer)  # it was asked before the expiry: it keeps it
    assert (await store.get(upgrade.id)).state is S.SUCCEEDED
    assert [d.operation for d in (await deployer.sweep_lifetimes()).stopped] == [Operation.STOP]


async def test_a_stop_at_expiry_that_failed_is_tried_again_an_hour_later(
    world: World, calendar: ManualClock, sandbox: Sandbox
) -> None:
    deployer, store = world
    await deployer.deploy("alice", requester="U1")
    calendar.advance(7 * DAY)
    sandbox.dokploy.faults.fail_ops["application.stop"] = FailRule(status=400, times=1)
    (failed,) = (await deployer.sweep_lifetimes()).stopped
    await drain(deployer)
    assert (await store.get(failed.id)).state is S.ROLLED_BACK
    calendar.advance(HOUR - 1)
    assert await deployer.sweep_lifetimes() == SweepReport()
    calendar.advance(1)
    (again,) = (await deployer.sweep_lifetimes()).stopped
    await drain(deployer)
    assert (await store.get(again.id)).state is S.SUCCEEDED
    assert (await live(store)).stopped_at is not None
    assert await deployer.sweep_lifetimes() == SweepReport()


async def test_with_no_ttl_stacks_never_expire_unless_asked(
    sandbox: Sandbox, calendar: ManualClock
) -> None:
    store = MemoryStore(clock=calendar)
    async with opened(sandbox, store, calendar, stack_ttl="none") as deployer:
        await deployer.deploy("alice", requester="U1")
        await deployer.deploy("bob", requester="U1", lifetime=DAY)
        assert (await live(store)).expires_at is None
        calendar.advance(400 * DAY)
        assert [d.stack for d in (await deployer.sweep_lifetimes()).stopped] == ["bob"]
        extended = await deployer.extend("alice", by="U1")  # the most allowed, then
        assert extended.expires_at == calendar.now() + timedelta(days=30)


async def test_the_sweep_runs_at_start_and_stops_with_its_event(
    sandbox: Sandbox, calendar: ManualClock
) -> None:
    store, seen = MemoryStore(clock=calendar), RecordingNotifier()
    async with opened(sandbox, store, calendar, seen) as deployer:
        await deployer.deploy("alice", requester="U1")
        calendar.advance(6 * DAY + HOUR)
        stop = asyncio.Event()
        sweeping = asyncio.create_task(deployer.keep_lifetimes(stop))
        async with asyncio.timeout(10):
            await seen.wait_for(K.STACK_EXPIRY_NOTICE)
            stop.set()
            await sweeping
    assert await counted(store, K.STACK_EXPIRY_NOTICE) == 1
