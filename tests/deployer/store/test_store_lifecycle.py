"""The store's part of a stack's life, on every backend: numbered releases, stopped and
running, the expiry a deployment's lifetime sets, extending it, and one reminder per expiry
however many replicas ask at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from deployer.core.models import Deployment, Event
from deployer.core.states import DeploymentState, Operation
from deployer.ports import Store
from deployer.testing import ManualClock
from tests.deployer.conftest import Backend
from tests.deployer.store.test_store_contract import DEPLOYED, T0, later, make, walk

S = DeploymentState
DAY = 86400.0
DONE = (S.APPROVED, S.QUEUED, S.RUNNING, S.SUCCEEDED)


async def run(store: Store, operation: Operation, minute: int, **fields: object) -> Deployment:
    made = await store.create(make(operation=operation, at=later(minute), **fields))
    return await walk(store, made, *DONE)


def said(dep: Deployment, kind: str) -> Event:
    return Event(deployment_id=dep.id, stack=dep.stack, kind=kind, actor="aistack")


async def test_each_successful_deploy_is_the_next_release(store: Store) -> None:
    first = await walk(store, await store.create(make()), *DEPLOYED)
    failed = await store.create(make(at=later(1)))
    await walk(store, failed, S.APPROVED, S.QUEUED, S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK)
    await run(store, Operation.STOP, 2)
    back = await run(store, Operation.DEPLOY, 3, restores=1)
    await walk(store, await store.create(make("bob", at=later(4))), *DEPLOYED)

    assert (first.release, back.release, back.restores) == (1, 2, 1)
    assert [(d.id, d.release) for d in await store.releases("alice")] == [
        (first.id, 1), (back.id, 2),
    ]  # fmt: skip
    assert await store.get(back.id) == back
    assert [d.release for d in await store.releases("bob")] == [1]
    assert await store.releases("nobody") == []


async def test_a_stop_marks_the_stack_stopped_until_a_start_restart_or_deploy(
    backend: Backend,
) -> None:
    clock = ManualClock(T0)
    store = await backend.open(clock)
    await walk(store, await store.create(make()), *DEPLOYED)
    for minute, (operation, stopped) in enumerate(
        [(Operation.STOP, True), (Operation.START, False), (Operation.STOP, True),
         (Operation.RESTART, False), (Operation.STOP, True), (Operation.DEPLOY, False)],
        start=1,
    ):  # fmt: skip
        clock.advance(60)
        await run(store, operation, minute)
        live = await store.live("alice")
        assert live is not None
        assert live.stopped_at == (clock.now() if stopped else None), operation

    failed = await store.create(make(operation=Operation.STOP, at=later(9)))
    await walk(store, failed, S.APPROVED, S.QUEUED, S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK)
    live = await store.live("alice")
    assert live is not None and live.stopped_at is None  # a failed stop changes nothing


async def test_a_lifetime_sets_the_expiry_and_no_lifetime_keeps_it(backend: Backend) -> None:
    clock = ManualClock(T0)
    store = await backend.open(clock)
    await walk(store, await store.create(make(lifetime=7 * DAY)), *DEPLOYED)
    expiry = T0 + timedelta(days=7)
    assert (await store.live("alice")).expires_at == expiry  # type: ignore[union-attr]

    clock.advance(3600)
    await walk(store, await store.create(make(at=later(60))), *DEPLOYED)  # an upgrade
    assert (await store.live("alice")).expires_at == expiry  # type: ignore[union-attr]

    await run(store, Operation.STOP, 61)
    clock.advance(3600)
    await run(store, Operation.START, 62, lifetime=DAY)
    live = await store.live("alice")
    assert live is not None and live.expires_at == clock.now() + timedelta(days=1)
    assert live.stopped_at is None


async def test_one_reminder_per_expiry_and_extending_makes_it_due_again(
    backend: Backend,
) -> None:
    clock = ManualClock(T0)
    one, two = await backend.open(clock), await backend.open(clock)
    made = await walk(one, await one.create(make(lifetime=DAY)), *DEPLOYED)
    expiry = T0 + timedelta(days=1)

    sent = await asyncio.gather(
        *(store.mark_noticed("alice", expiry, said(made, "stack.expiry_notice"))
          for store in (one, two, one, two))
    )  # fmt: skip
    assert sorted(sent) == [False, False, False, True]
    assert not await one.mark_noticed(
        "alice", expiry + timedelta(days=1), said(made, "stack.expiry_notice")
    )
    live = await two.live("alice")
    assert live is not None and live.noticed_for == expiry

    later_expiry = expiry + timedelta(days=2)
    extended = await two.extend("alice", later_expiry, said(made, "stack.extended"))
    assert (extended.expires_at, extended.noticed_for) == (later_expiry, None)
    assert await one.live("alice") == extended
    assert await one.mark_noticed("alice", later_expiry, said(made, "stack.expiry_notice"))
    kinds = [e.kind for e in await one.events("alice")]
    assert kinds == ["stack.expiry_notice", "stack.extended", "stack.expiry_notice"]
