"""The worker and the queue: leases, sharing, retries, stale jobs, one run per stack."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from deployer.assemble import open_deployer
from deployer.core.models import Deployment
from deployer.core.states import TERMINAL, DeploymentState
from deployer.engine.journal import Journal
from deployer.engine.worker import Worker
from deployer.errors import StackBusy
from deployer.sandbox.server import Sandbox
from deployer.testing import FakeClock, ManualClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS
from tests.deployer.conftest import Backend

S = DeploymentState


async def test_two_simultaneous_deploys_of_one_name_exactly_one_runs(
    backend: Backend, sandbox: Sandbox
) -> None:
    # Waiting requests hold nothing (a stranger's must not block the owner); approval takes
    # the hold, so of two approved at once exactly one goes ahead.
    store = await backend.open()
    settings = sandbox.settings(**TEST_SETTINGS)
    async with open_deployer(settings, RecordingNotifier(), store=store) as deployer:
        first = await deployer.request("alice", requester="U1")
        second = await deployer.request("alice", requester="U2")
        results = await asyncio.gather(
            deployer.approve(first, "U9"), deployer.approve(second, "U9"), return_exceptions=True
        )
    made = [r for r in results if isinstance(r, Deployment)]
    refused = [r for r in results if isinstance(r, StackBusy)]
    assert len(made) == 1 and len(refused) == 1
    holder = made[0].requester
    assert f"alice is busy: deploy requested by {holder} is" in str(refused[0])


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_workers_on_postgres_share_50_jobs_each_run_once(
    backend: Backend, sandbox: Sandbox
) -> None:
    names = [f"user{i:02d}" for i in range(50)]
    settings = sandbox.settings(**TEST_SETTINGS)
    seen = RecordingNotifier()
    async with open_deployer(settings, seen, store=await backend.open()) as deployer:
        for name in names:
            await deployer.approve(await deployer.request(name, requester="U1"), "U2")
    runs: dict[str, list[str]] = {"a": [], "b": []}

    async def work(owner: str) -> None:
        store = await backend.open()  # its own pool: as another replica would have
        async with open_deployer(settings, seen, store=store, clock=FakeClock()) as deployer:
            worker = deployer.worker(owner=owner)
            while (done := await worker.run_once()) is not None:
                runs[owner].append(done.stack)

    await asyncio.gather(work("a"), work("b"))
    assert sorted(runs["a"] + runs["b"]) == names  # every job once, none twice
    assert runs["a"] and runs["b"]  # and the two really shared them
    started = Counter(e.stack for e in seen.events if e.kind == "deployment.running")
    assert set(started.values()) == {1}
    store = await backend.open()
    assert all([(await store.latest(n)).state is S.SUCCEEDED for n in names])  # type: ignore[union-attr]


class Blocked:
    """A run that waits until released (or cancelled): the worker's lease is what is tested."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False

    async def __call__(self, dep: Deployment) -> Deployment:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return dep


async def _queued(journal: Journal, sandbox: Sandbox, name: str = "alice") -> Deployment:
    dep = Deployment(stack=name, spec=sandbox.settings().stack.spec_for(name))
    dep = await journal.store.create(dep)
    dep = await journal.move(dep, S.APPROVED)
    return await journal.move(dep, S.QUEUED)


async def test_a_worker_that_loses_its_lease_stops_and_another_resumes(
    backend: Backend, sandbox: Sandbox
) -> None:
    store = await backend.open()
    beats = asyncio.Event()

    async def tick(_: float) -> None:
        beats.set()
        await asyncio.sleep(0.01)

    clock = ManualClock(on_sleep=tick)
    journal = Journal(store, RecordingNotifier(), clock)
    dep = await _queued(journal, sandbox)
    limits = sandbox.settings(lease_seconds=5, heartbeat_seconds=1).worker
    first = Worker(journal, Blocked(), limits, owner="a")
    run = first._run  # the Blocked instance
    task = asyncio.create_task(first.run_once())
    await run.started.wait()  # type: ignore[attr-defined]
    clock.advance(10)  # "a" stalls past its lease; "b" takes over
    taken = await store.claim("b", 5, clock.now())
    assert taken is not None and taken.id == dep.id
    assert await task is None  # "a" noticed at its next heartbeat and let go
    assert run.cancelled  # type: ignore[attr-defined]


async def test_rollback_failed_is_retried_later_with_growing_pauses(
    backend: Backend, sandbox: Sandbox
) -> None:
    store = await backend.open()
    clock = ManualClock()
    now = clock.now()
    # the journal decides the retry time, in the write that enters rollback_failed
    journal = Journal(store, RecordingNotifier(), clock, retry_initial=60, retry_max=3600)
    dep = await _queued(journal, sandbox)

    async def fail_rollback(d: Deployment) -> Deployment:
        d = await journal.move(d, S.RUNNING) if d.state is S.QUEUED else d
        d = await journal.move(d, S.ROLLING_BACK) if d.state is not S.ROLLING_BACK else d
        return await journal.move(d, S.ROLLBACK_FAILED, leftovers=["Dokploy project x"])

    worker = Worker(journal, fail_rollback, sandbox.settings().worker, owner="w")
    assert (await worker.run_once()).state is S.ROLLBACK_FAILED  # type: ignore[union-attr]
    assert await store.claim("w", 30, now + timedelta(seconds=59)) is None  # not yet due
    retried = await store.claim("w", 30, now + timedelta(seconds=61))
    assert retried is not None and retried.id == dep.id
    await store.release(dep.id, "w")
    now += timedelta(seconds=61)
    clock.advance(61)
    await worker.run_once()  # the retry fails again: the pause doubles
    assert await store.claim("w", 30, now + timedelta(seconds=119)) is None
    assert await store.claim("w", 30, now + timedelta(seconds=121)) is not None
    scheduled = [e for e in await store.events_for(dep.id) if e.kind == "rollback.retry_scheduled"]
    assert [e.data["attempt"] for e in scheduled] == [2, 3]


async def test_the_write_that_enters_rollback_failed_holds_its_retry_time(
    backend: Backend, sandbox: Sandbox
) -> None:
    # No worker runs after the write (as after a crash right then): the retry is due anyway.
    store = await backend.open()
    clock = ManualClock()
    now = clock.now()
    journal = Journal(store, RecordingNotifier(), clock, retry_initial=10, retry_max=15)
    rolling = await journal.move(await _queued(journal, sandbox), S.RUNNING)
    stuck = await journal.move(await journal.move(rolling, S.ROLLING_BACK), S.ROLLBACK_FAILED)
    assert await store.claim("w", 30, now + timedelta(seconds=9)) is None
    assert await store.claim("w", 30, now + timedelta(seconds=10)) == stuck
    await store.release(stuck.id, "w")
    again = await journal.move(await journal.move(stuck, S.ROLLING_BACK), S.ROLLBACK_FAILED)
    assert again.rollback_attempts == 2
    assert await store.claim("w", 30, now + timedelta(seconds=14)) is None  # 20 s, capped
    assert await store.claim("w", 30, now + timedelta(seconds=15)) == again
    scheduled = [
        e for e in await store.events_for(stuck.id) if e.kind == "rollback.retry_scheduled"
    ]
    assert [(e.data["attempt"], e.data["at"]) for e in scheduled] == [
        (2, (now + timedelta(seconds=10)).isoformat()),
        (3, (now + timedelta(seconds=15)).isoformat()),
    ]


async def test_a_job_queued_too_long_is_reported_once(backend: Backend, sandbox: Sandbox) -> None:
    store = await backend.open()
    notifier = RecordingNotifier()
    clock = ManualClock()
    journal = Journal(store, notifier, clock)
    await _queued(journal, sandbox)
    clock.advance(11 * 60)
    limits = sandbox.settings(queue_limit=600).worker
    worker = Worker(journal, Blocked(), limits)
    assert [d.stack for d in await worker.report_stale()] == ["alice"]
    assert await worker.report_stale() == []
    reports = [e for e in notifier.events if e.kind == "deployment.not_started"]
    assert len(reports) == 1 and "is a worker running?" in reports[0].data["error"]


async def test_every_job_ends_terminal_when_the_worker_runs_the_real_saga(
    backend: Backend, sandbox: Sandbox
) -> None:
    settings = sandbox.settings(**TEST_SETTINGS)
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    async with open_deployer(
        settings, RecordingNotifier(), store=await backend.open(), clock=FakeClock()
    ) as deployer:
        for name in ("alice", "bob"):
            await deployer.approve(await deployer.request(name, requester="U1"), "U2")
        worker = deployer.worker(owner="w")
        while await worker.run_once() is not None:
            pass
        states = {n: (await deployer.latest(n)).state for n in ("alice", "bob")}  # type: ignore[union-attr]
    assert states == {"alice": S.SUCCEEDED, "bob": S.ROLLED_BACK}
    assert all(s in TERMINAL for s in states.values())
