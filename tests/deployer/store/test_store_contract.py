"""The Store contract: what every store (memory, SQLite, PostgreSQL) promises an operator."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployer.adapters.stores import common as store_common
from deployer.adapters.stores import open_store
from deployer.adapters.stores.postgres import PostgresStore
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.core.models import Deployment, Event, PhaseRecord, StackSpec
from deployer.core.states import ACTIVE, DeploymentState, Operation, PhaseState
from deployer.errors import ConfigError, IllegalTransition, NotFound, StackBusy, TransientError
from deployer.ports import LiveStack, Store
from deployer.testing import ManualClock
from tests.deployer.conftest import PG_URL, Backend, fresh_schema, released_before

S = DeploymentState
T0 = datetime(2026, 11, 26, 22, 10, tzinfo=UTC)
LEASE = 30.0


def make(stack: str = "alice", *, at: datetime = T0, **fields: object) -> Deployment:
    spec = StackSpec(
        name=stack,
        project_name=f"ai-stack-{stack}",
        app_name=f"opencode-{stack}",
        host=f"{stack}.ai.example.com",
        image="ghcr.io/sst/opencode:latest",
        container_port=4096,
        env={"MODEL": "gpt"},
    )
    values: dict[str, object] = {
        "stack": stack,
        "spec": spec,
        "requester": "U123",
        "created_at": at,
        "updated_at": at,
    }
    return Deployment.model_validate(values | fields)


async def walk(store: Store, d: Deployment, *states: DeploymentState) -> Deployment:
    for state in states:
        d = await store.transition(d, state)
    return d


async def queued(store: Store, stack: str, at: datetime = T0) -> Deployment:
    return await store.create(make(stack, at=at, state=S.QUEUED))


# -- deployments -----------------------------------------------------------------------------


async def test_create_get_latest_and_list_latest(store: Store) -> None:
    first = await store.create(make("alice", at=T0))
    await store.transition(first, S.REJECTED)
    second = await store.create(make("alice", at=T0 + timedelta(minutes=1)))
    bob = await store.create(make("bob"))

    assert first == make("alice", at=T0, id=first.id)
    assert await store.get(second.id) == second
    assert await store.latest("alice") == second
    assert await store.latest("nobody") is None
    assert [d.id for d in await store.list_latest()] == [second.id, bob.id]


async def test_timestamps_come_back_as_aware_utc(store: Store) -> None:
    d = await store.create(make())
    got = await store.get(d.id)
    assert got.created_at == T0 and got.created_at.utcoffset() == timedelta(0)
    moved = await store.transition(got, S.APPROVED)
    assert moved.updated_at.utcoffset() == timedelta(0) and moved.updated_at > T0


async def test_unknown_deployment_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get("nope")
    with pytest.raises(NotFound):
        await store.transition(make(id="nope"), S.APPROVED)


async def test_second_active_deployment_is_refused_naming_the_holder(store: Store) -> None:
    holder = await walk(store, await store.create(make()), S.APPROVED, S.QUEUED, S.RUNNING)

    with pytest.raises(StackBusy) as refused:
        await store.create(make(requester="U999"))

    assert re.fullmatch(
        r"alice is busy: deploy requested by U123 is running since "
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC",
        str(refused.value),
    )
    assert await store.latest("alice") == holder
    assert len(await store.list_latest()) == 1
    await store.create(make("bob"))  # other stacks are not affected


async def test_terminal_state_frees_the_stack(store: Store) -> None:
    first = await store.create(make())
    await store.transition(first, S.REJECTED)
    second = await store.create(make(at=T0 + timedelta(seconds=1)))
    done = await walk(store, second, S.APPROVED, S.QUEUED, S.RUNNING, S.SUCCEEDED)
    destroy = await store.create(make(at=T0 + timedelta(seconds=2), operation=Operation.DESTROY))
    assert done.state == S.SUCCEEDED and destroy.operation == Operation.DESTROY


async def test_rollback_failed_still_holds_the_stack(store: Store) -> None:
    d = await walk(store, await store.create(make()), S.APPROVED, S.QUEUED, S.RUNNING)
    await walk(store, d, S.ROLLING_BACK, S.ROLLBACK_FAILED)

    with pytest.raises(StackBusy, match="rollback_failed"):
        await store.create(make())


async def test_transitions_follow_the_table(store: Store) -> None:
    d = await store.create(make())
    with pytest.raises(IllegalTransition, match="cannot go from requested to running"):
        await store.transition(d, S.RUNNING)
    assert await store.get(d.id) == d

    approved = await store.transition(d, S.APPROVED, approver="U777")
    assert (approved.state, approved.version, approved.approver) == (S.APPROVED, 1, "U777")
    run = await walk(store, approved, S.QUEUED, S.RUNNING)
    failed = await walk(store, run, S.ROLLING_BACK)
    failed = await store.transition(
        failed, S.ROLLBACK_FAILED, error="dns: 503", leftovers=["dns record alice.ai"]
    )
    assert failed == await store.get(d.id)
    assert (failed.version, failed.error, failed.leftovers) == (
        5,
        "dns: 503",
        ("dns record alice.ai",),
    )
    assert failed.approver == "U777"  # kept when not given


async def test_stale_transition_is_refused_and_changes_nothing(store: Store) -> None:
    d = await store.create(make())
    moved = await store.transition(d, S.APPROVED)

    with pytest.raises(IllegalTransition, match="stale"):
        await store.transition(d, S.REJECTED)
    assert await store.get(d.id) == moved


async def test_concurrent_transitions_exactly_one_wins(store: Store) -> None:
    d = await store.create(make())
    results = await asyncio.gather(
        store.transition(d, S.APPROVED, approver="U1"),
        store.transition(d, S.REJECTED, approver="U2"),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Deployment)]
    losers = [r for r in results if isinstance(r, IllegalTransition)]
    assert len(winners) == 1 and len(losers) == 1 and "stale" in str(losers[0])
    assert await store.get(d.id) == winners[0]


async def test_dedup_key_replay_returns_the_same_deployment(store: Store) -> None:
    first = await store.create(make(), dedup_key="trigger-1")
    again = await store.create(make(requester="U999"), dedup_key="trigger-1")
    assert again == first

    racing = await asyncio.gather(
        *(store.create(make("bob"), dedup_key="trigger-2") for _ in range(3))
    )
    assert len({d.id for d in racing}) == 1
    assert len(await store.list_latest()) == 2


async def test_retried_create_of_the_same_deployment_is_idempotent(store: Store) -> None:
    d = make()
    assert await store.create(d) == await store.create(d) == d


# -- requests, holds and live stacks ---------------------------------------------------------

DEPLOYED = (S.APPROVED, S.QUEUED, S.RUNNING, S.SUCCEEDED)
DESTROYED = (S.APPROVED, S.QUEUED, S.DESTROYING, S.DESTROYED)


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_requests_waiting_for_approval_hold_nothing(store: Store) -> None:
    mine = await store.create(make(requester="U1"))
    theirs = await store.create(make(requester="U2", at=later(1)))  # beside it, not refused
    assert [d.id for d in await store.awaiting_approval("alice")] == [mine.id, theirs.id]

    approved = await store.transition(theirs, S.APPROVED)  # the approved one holds the stack
    with pytest.raises(StackBusy, match="alice is busy: deploy requested by U2 is approved"):
        await store.transition(mine, S.APPROVED)
    assert await store.get(mine.id) == mine  # refused: still waiting, unchanged
    with pytest.raises(StackBusy, match="requested by U2"):
        await store.create(make(requester="U3", at=later(2)))  # held: no new request either

    await store.transition(mine, S.REJECTED)  # saying no needs no hold
    await walk(store, approved, S.QUEUED, S.RUNNING, S.SUCCEEDED)
    await store.create(make(requester="U3", at=later(3)))  # free again


async def test_awaiting_approval_lists_every_waiting_request_oldest_first(store: Store) -> None:
    second = await store.create(make("alice", at=later(2), requester="U2"))
    first = await store.create(make("alice", at=T0, requester="U1"))
    bob = await store.create(make("bob", at=later(1)))
    await store.transition(await store.create(make("carol")), S.REJECTED)  # decided: not listed
    await queued(store, "dave")  # approved and queued: not waiting for approval

    assert [d.id for d in await store.awaiting_approval()] == [first.id, bob.id, second.id]
    assert await store.awaiting_approval("alice") == [first, second]
    assert await store.awaiting_approval("nobody") == []


async def test_the_first_successful_deploy_owns_the_stack_until_a_destroy(store: Store) -> None:
    assert await store.live("alice") is None
    made = await walk(store, await store.create(make(requester="U1")), *DEPLOYED)
    live = await store.live("alice")
    assert live is not None and (live.stack, live.owner, live.deployment_id) == (
        "alice",
        "U1",
        made.id,
    )

    redeploy = await walk(store, await store.create(make(requester="U2", at=later(1))), *DEPLOYED)
    kept = await store.live("alice")  # made of the redeploy, still U1's
    assert kept == replace(live, deployment_id=redeploy.id)

    failed = await store.create(make(requester="U3", at=later(2)))
    await walk(store, failed, S.APPROVED, S.QUEUED, S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK)
    stuck = await store.create(make(requester="U3", at=later(3), operation=Operation.DESTROY))
    stuck = await walk(store, stuck, S.APPROVED, S.QUEUED, S.DESTROYING, S.ROLLBACK_FAILED)
    assert await store.live("alice") == kept  # neither a failed redeploy nor a failed destroy

    await walk(store, stuck, S.DESTROYING, S.DESTROYED)
    assert await store.live("alice") is None
    await walk(store, await store.create(make(requester="U3", at=later(4))), *DEPLOYED)
    fresh = await store.live("alice")
    assert fresh is not None and fresh.owner == "U3"  # a new life, a new owner


async def test_transfer_is_compare_and_set_and_audited_in_the_same_write(store: Store) -> None:
    made = await walk(store, await store.create(make(requester="U1")), *DEPLOYED)
    before = await store.live("alice")
    assert before is not None
    said = Event(deployment_id=made.id, stack="alice", kind="stack.transferred", actor="U9",
                 data={"from": "U1", "to": "U2"})  # fmt: skip

    moved = await store.transfer("alice", "U1", "U2", said)
    assert (moved.owner, moved.deployment_id) == ("U2", made.id)
    assert moved.owner_since >= before.owner_since
    assert await store.live("alice") == moved
    assert [(e.kind, e.actor, e.data) for e in await store.events("alice")] == [
        ("stack.transferred", "U9", {"from": "U1", "to": "U2"})
    ]

    with pytest.raises(IllegalTransition, match="alice belongs to U2 now, not U1"):
        await store.transfer("alice", "U1", "U3", said)  # decided on a stale owner
    with pytest.raises(NotFound, match="bob is not live"):
        await store.transfer("bob", "U1", "U2", said)
    assert await store.live("alice") == moved and len(await store.events("alice")) == 1

    await walk(store, await store.create(make(requester="U1", at=later(1))), *DEPLOYED)
    after = await store.live("alice")
    assert after is not None and after.owner == "U2"  # a redeploy keeps the new owner


# -- phases and events -----------------------------------------------------------------------


async def test_phases_upsert_and_keep_their_order(store: Store) -> None:
    d = await store.create(make())
    for name in ("preflight", "project", "dns"):
        await store.save_phase(PhaseRecord(deployment_id=d.id, name=name))
    done = PhaseRecord(
        deployment_id=d.id,
        name="project",
        state=PhaseState.DONE,
        attempt=2,
        outputs={"project_id": "p1"},
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
    )
    await store.save_phase(done)

    phases = await store.phases(d.id)
    assert [p.name for p in phases] == ["preflight", "project", "dns"]
    assert phases[1] == done and phases[1].duration == 3.0
    assert await store.phases("other") == []


async def test_phase_of_unknown_deployment_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.save_phase(PhaseRecord(deployment_id="nope", name="preflight"))


async def test_events_are_appended_in_order(store: Store) -> None:
    a, b = await store.create(make("alice")), await store.create(make("bob"))
    kinds = ["deployment.requested", "deployment.approved", "phase.done", "deployment.succeeded"]
    for n, kind in enumerate(kinds):
        await store.append_event(
            Event(
                deployment_id=a.id,
                stack="alice",
                kind=kind,
                at=T0,
                index=n,
                total=4,
                phase="dns" if kind == "phase.done" else None,
                duration=0.5,
                data={"n": n},
            )
        )
        await store.append_event(Event(deployment_id=b.id, stack="bob", kind=kind, at=T0))

    alice = await store.events("alice")
    assert [e.kind for e in alice] == kinds
    seqs = [e.seq or 0 for e in await store.events_for(a.id)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4 and seqs[0] > 0  # the log's order
    assert alice[2].model_copy(update={"seq": None}) == Event(
        deployment_id=a.id,
        stack="alice",
        kind="phase.done",
        at=T0,
        index=2,
        total=4,
        phase="dns",
        duration=0.5,
        data={"n": 2},
    )
    assert await store.events_for(b.id) == await store.events("bob")
    assert await store.events("carol") == []


async def test_events_after_is_a_cursor_on_the_whole_log(store: Store) -> None:
    a, b = await store.create(make("alice")), await store.create(make("bob"))
    kinds = ("phase.running", "phase.done", "undo.done")  # any three, in this order
    for kind in kinds:
        for d in (a, b):
            await store.append_event(Event(deployment_id=d.id, stack=d.stack, kind=kind))
    log = await store.events_after(0)
    assert [(e.stack, e.kind) for e in log] == [(s, kind) for kind in kinds
                                                for s in ("alice", "bob")]  # fmt: skip
    assert [e.seq for e in log] == sorted({e.seq for e in log})
    assert await store.events_after(log[1].seq or 0, limit=2) == log[2:4]
    assert await store.events_after(log[-1].seq or 0) == []


# -- the work queue --------------------------------------------------------------------------


async def test_queued_job_is_claimed_once_until_its_lease_expires(store: Store) -> None:
    await store.create(make("waiting"))  # requested: not work yet
    job = await queued(store, "alice")

    got = await store.claim("w1", LEASE, T0)
    assert got == job
    assert await store.claim("w2", LEASE, T0 + timedelta(seconds=29)) is None
    assert await store.claim("w2", LEASE, T0 + timedelta(seconds=30)) == job


async def test_running_job_of_a_dead_worker_is_resumed_after_expiry(store: Store) -> None:
    job = await queued(store, "alice")
    assert await store.claim("w1", LEASE, T0) == job
    running = await store.transition(job, S.RUNNING)

    assert await store.claim("w2", LEASE, T0 + timedelta(seconds=10)) is None
    assert await store.claim("w2", LEASE, T0 + timedelta(seconds=31)) == running
    done = await store.transition(running, S.SUCCEEDED)
    await store.release(done.id, "w2")
    assert await store.claim("w3", LEASE, T0 + timedelta(hours=1)) is None


async def test_release_hands_the_job_over_at_once(store: Store) -> None:
    job = await queued(store, "alice")
    await store.claim("w1", LEASE, T0)
    await store.release(job.id, "w2")  # not the owner: nothing happens
    assert await store.claim("w2", LEASE, T0) is None
    await store.release(job.id, "w1")
    assert await store.claim("w2", LEASE, T0) == job


async def test_heartbeat_extends_the_lease_and_reports_a_lost_one(store: Store) -> None:
    job = await queued(store, "alice")
    await store.claim("w1", LEASE, T0)

    assert await store.heartbeat(job.id, "w1", LEASE, T0 + timedelta(seconds=20)) is True
    assert await store.claim("w2", LEASE, T0 + timedelta(seconds=40)) is None
    assert await store.claim("w2", LEASE, T0 + timedelta(seconds=51)) == job
    assert await store.heartbeat(job.id, "w1", LEASE, T0 + timedelta(seconds=52)) is False
    assert await store.heartbeat(job.id, "w2", LEASE, T0 + timedelta(seconds=52)) is True


async def test_oldest_job_is_claimed_first(store: Store) -> None:
    late = await queued(store, "late", T0 + timedelta(minutes=1))
    early = await queued(store, "early", T0)
    assert await store.claim("w", LEASE, T0) == early
    assert await store.claim("w", LEASE, T0) == late


async def test_rollback_failed_is_claimable_only_when_its_retry_is_due(store: Store) -> None:
    job = await queued(store, "alice")
    stuck = await walk(store, job, S.RUNNING, S.ROLLING_BACK, S.ROLLBACK_FAILED)
    assert await store.claim("w", LEASE, T0) is None  # no retry scheduled

    await store.schedule_retry(stuck.id, T0 + timedelta(minutes=5))
    assert await store.claim("w", LEASE, T0 + timedelta(minutes=4)) is None
    assert await store.claim("w", LEASE, T0 + timedelta(minutes=5)) == stuck
    await store.release(stuck.id, "w")

    await store.give_up(stuck.id)
    assert await store.claim("w", LEASE, T0 + timedelta(hours=1)) is None
    with pytest.raises(NotFound):
        await store.schedule_retry("nope", T0)


async def test_retry_is_cleared_by_the_next_transition(store: Store) -> None:
    job = await queued(store, "alice")
    stuck = await walk(store, job, S.RUNNING, S.ROLLING_BACK, S.ROLLBACK_FAILED)
    await store.schedule_retry(stuck.id, T0)
    again = await walk(store, stuck, S.ROLLING_BACK)
    await store.claim("w", LEASE, T0)
    await store.release(again.id, "w")
    await store.transition(again, S.ROLLBACK_FAILED)
    assert await store.claim("w", LEASE, T0 + timedelta(days=1)) is None


async def test_a_failed_rollback_can_schedule_its_retry_in_the_same_write(store: Store) -> None:
    job = await queued(store, "alice")
    rolling = await walk(store, job, S.RUNNING, S.ROLLING_BACK)
    stuck = await store.transition(
        rolling, S.ROLLBACK_FAILED, leftovers=["x"], retry_at=T0 + timedelta(minutes=1)
    )
    assert await store.claim("w", LEASE, T0) is None
    assert await store.claim("w", LEASE, T0 + timedelta(minutes=1)) == stuck


async def test_each_failed_rollback_or_teardown_is_counted_in_its_transition(
    store: Store,
) -> None:
    job = await queued(store, "alice")
    assert job.rollback_attempts == 0
    stuck = await walk(store, job, S.RUNNING, S.ROLLING_BACK, S.ROLLBACK_FAILED)
    assert stuck.rollback_attempts == 1
    again = await walk(store, stuck, S.ROLLING_BACK, S.ROLLBACK_FAILED)
    assert again.rollback_attempts == 2 and await store.get(again.id) == again
    done = await walk(store, again, S.ROLLING_BACK, S.ROLLED_BACK)
    assert done.rollback_attempts == 2  # what it took stays on the record
    teardown = await store.create(make("bob", state=S.QUEUED, operation=Operation.DESTROY))
    left = await walk(store, teardown, S.DESTROYING, S.ROLLBACK_FAILED)
    assert left.rollback_attempts == 1


async def test_queued_before_lists_jobs_waiting_too_long(store: Store) -> None:
    old = await queued(store, "old", T0)
    await queued(store, "fresh", T0 + timedelta(minutes=10))
    await store.create(make("asking", at=T0))  # requested, not queued

    assert await store.queued_before(T0 + timedelta(minutes=5)) == [old]


async def test_racing_claimers_take_each_job_exactly_once(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    jobs = {(await queued(one, f"s{n:02d}", T0 + timedelta(seconds=n))).id for n in range(50)}

    async def drain(store: Store, owner: str) -> list[str]:
        taken = []
        while (job := await store.claim(owner, LEASE, T0 + timedelta(minutes=5))) is not None:
            taken.append(job.id)
        return taken

    results = await asyncio.gather(*(drain(s, f"w{n}") for n, s in enumerate([one, two] * 2)))
    claimed = [job for taken in results for job in taken]
    assert sorted(claimed) == sorted(jobs)


# -- schema ----------------------------------------------------------------------------------


def applied(store: Store) -> list[int]:
    """The migration versions this store applied when it opened."""
    assert isinstance(store, SqliteStore | PostgresStore)
    return store.applied_migrations


with_schema = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@with_schema
async def test_migrations_run_twice_are_a_no_op(backend: Backend) -> None:
    first = await backend.open()
    d = await first.create(make())
    second = await backend.open()

    assert applied(first) == [1, 2, 3, 4, 5, 6, 7]
    assert applied(second) == []
    assert await second.get(d.id) == d


async def _lived(store: Store, stack: str, *lives: tuple[str, str, int]) -> list[Deployment]:
    """Rows and audit events as a previous release left them: (requester, kind, minute)."""
    made = []
    for requester, kind, minute in lives:
        state = S.DESTROYED if kind == "deployment.destroyed" else S(kind.split(".")[1])
        dep = await store.create(make(stack, at=later(minute), requester=requester, state=state))
        await store.append_event(Event(deployment_id=dep.id, stack=stack, kind=kind,
                                       at=later(minute)))  # fmt: skip
        made.append(dep)
    return made


@with_schema
async def test_upgrading_frees_waiting_requests_and_finds_each_live_owner(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    released_before(monkeypatch, 3)
    monkeypatch.setattr(store_common, "HOLDING", ACTIVE)  # then, a request held its stack
    old = await backend.open()
    assert applied(old) == [1, 2]
    waiting = await old.create(make("carol", requester="U1"))
    with pytest.raises(StackBusy):
        await old.create(make("carol", requester="U2"))
    ok, gone, destroyed = "deployment.succeeded", "deployment.rolled_back", "deployment.destroyed"
    alice = await _lived(old, "alice", ("U1", ok, 0), ("U2", ok, 1), ("U3", gone, 2))
    await _lived(old, "bob", ("U1", ok, 0), ("U2", destroyed, 1))
    dave = await _lived(old, "dave", ("U1", ok, 0), ("U2", destroyed, 1), ("U3", ok, 2))
    await _lived(old, "erin", ("U1", gone, 0))
    monkeypatch.undo()  # this release opens the same database

    new = await backend.open()
    assert applied(new) == [3, 4, 5, 6, 7]
    assert await new.live("alice") == LiveStack("alice", "U1", T0, alice[1].id)
    assert await new.live("dave") == LiveStack("dave", "U3", later(2), dave[2].id)
    assert await new.live("bob") is None and await new.live("erin") is None
    beside = await new.create(make("carol", requester="U2", at=later(1)))
    assert await new.awaiting_approval("carol") == [waiting, beside]


@with_schema
async def test_upgrading_counts_the_failed_rollbacks_the_audit_trail_holds(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    released_before(monkeypatch, 6)
    old = await backend.open()
    twice = await old.create(make("alice", state=S.ROLLBACK_FAILED))
    never = await old.create(make("bob", state=S.ROLLED_BACK))
    for dep, kinds in (
        (twice, ["deployment.rollback_failed", "deployment.rolling_back"] * 2),
        (never, ["deployment.rolling_back", "deployment.rolled_back"]),
    ):
        for kind in kinds:
            await old.append_event(Event(deployment_id=dep.id, stack=dep.stack, kind=kind))
    monkeypatch.undo()

    new = await backend.open()
    assert applied(new) == [6, 7]
    assert (await new.get(twice.id)).rollback_attempts == 2
    assert (await new.get(never.id)).rollback_attempts == 0


@with_schema
async def test_two_stores_opening_the_same_database_at_once(backend: Backend) -> None:
    one, two = await asyncio.gather(backend.open(), backend.open())
    assert sorted([applied(one), applied(two)]) == [[], [1, 2, 3, 4, 5, 6, 7]]
    d = await one.create(make(state=S.QUEUED))  # holds the stack (a request would not)
    with pytest.raises(StackBusy):
        await two.create(make())
    assert await two.get(d.id) == d


# -- open_store ------------------------------------------------------------------------------


async def test_open_store_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = await open_store("memory://")
    absolute = await open_store(f"sqlite:///{tmp_path}/abs.db")
    monkeypatch.chdir(tmp_path)
    relative = await open_store("sqlite:///./rel.db")
    for store in (memory, absolute, relative):
        await store.create(make())
        await store.close()
    assert (tmp_path / "abs.db").is_file() and (tmp_path / "rel.db").is_file()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root:hunter2@db/aistack", "scheme 'mysql'"),
        ("aistack.db", "no scheme"),
        ("sqlite://", "must look like"),
        ("sqlite:////no/such/dir/aistack.db", "not a directory"),
    ],
)
async def test_open_store_refuses_a_bad_url(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="AISTACK_DATABASE_URL") as refused:
        await open_store(url)
    assert says in str(refused.value) and "hunter2" not in str(refused.value)


async def test_open_store_for_postgres_urls() -> None:
    async with fresh_schema() as schema:
        joiner = "&" if "?" in PG_URL else "?"
        for scheme in ("postgresql", "postgres"):
            url = scheme + PG_URL[PG_URL.index("://") :] + f"{joiner}search_path={schema}"
            store = await open_store(url)
            assert isinstance(store, PostgresStore)
            await store.close()


@pytest.mark.parametrize("scheme", ["memory", "sqlite", "postgres"])
async def test_a_store_stamps_its_writes_with_the_clock_it_is_given(
    scheme: str, tmp_path: Path
) -> None:
    clock = ManualClock(T0 + timedelta(days=1))
    async with AsyncExitStack() as stack:
        if scheme == "postgres":
            schema = await stack.enter_async_context(fresh_schema())
            url = PG_URL + ("&" if "?" in PG_URL else "?") + f"search_path={schema}"
        else:
            url = f"sqlite:///{tmp_path}/clocked.db" if scheme == "sqlite" else "memory://"
        store = await open_store(url, clock=clock)
        stack.push_async_callback(store.close)

        made = await walk(store, await store.create(make(requester="U1")), *DEPLOYED)
        live = await store.live("alice")
        assert made.updated_at == clock.now()
        assert live is not None and live.owner_since == clock.now()

        clock.advance(60)
        said = Event(deployment_id=made.id, stack="alice", kind="stack.transferred", actor="U9")
        moved = await store.transfer("alice", "U1", "U2", said)
        assert moved.owner_since == clock.now() and await store.live("alice") == moved


async def test_unreachable_postgres_is_transient_and_keeps_the_password_out() -> None:
    with pytest.raises(TransientError) as refused:
        await PostgresStore.open("postgresql://aistack:hunter2@127.0.0.1:1/aistack")
    assert "127.0.0.1:1/aistack" in str(refused.value) and "hunter2" not in str(refused.value)


# -- cancellation ----------------------------------------------------------------------------

# Far more event-loop turns than any write here takes; the loop ends at the first write that
# finishes before its cancellation arrives.
MAX_TURNS = 2_000


async def _write(store: Store, dep: Deployment, kind: str) -> None:
    """The two writes a saga phase makes: a phase record and a state change, each audited."""
    if kind == "save_phase":
        record = PhaseRecord(deployment_id=dep.id, name="project", state=PhaseState.RUNNING)
        await store.save_phase(
            record, Event(deployment_id=dep.id, stack=dep.stack, kind="phase.running")
        )
    else:
        await store.transition(
            dep,
            S.RUNNING,
            event=Event(deployment_id=dep.id, stack=dep.stack, kind="deployment.running"),
        )


async def _written(store: Store, dep: Deployment, kind: str) -> bool:
    """Whether the write is there; never half of it (a phase without its audit event)."""
    events = await store.events_for(dep.id)
    if kind == "save_phase":
        made = bool(await store.phases(dep.id))
    else:
        current = await store.get(dep.id)
        made = current.state == S.RUNNING
        assert current.version == dep.version + made
    assert len(events) == made, (made, events)
    return made


async def _cancel(write: asyncio.Task[None], *, again: bool) -> None:
    """Cancel once (a TaskGroup whose other phase failed), or at every turn until the write
    ends (a timeout or a shutdown on top of it: the clean-up itself is interrupted)."""
    write.cancel()
    while again and not write.done():
        await asyncio.sleep(0)
        write.cancel()
    await asyncio.wait([write])


@pytest.mark.parametrize("again", [False, True], ids=["once", "again"])
@pytest.mark.parametrize("kind", ["save_phase", "transition"])
async def test_a_cancelled_write_is_all_or_nothing_and_the_store_goes_on(
    store: Store, kind: str, again: bool
) -> None:
    outcomes = []
    for turns in range(MAX_TURNS):
        dep = await queued(store, f"s{turns}")
        write = asyncio.create_task(_write(store, dep, kind))
        for _ in range(turns):
            await asyncio.sleep(0)
        finished_first = write.done()
        await _cancel(write, again=again)
        if not write.cancelled():
            write.result()  # a write that ended on its own must have succeeded
        outcomes.append(await _written(store, dep, kind))
        after = PhaseRecord(deployment_id=dep.id, name="after")  # the next write works
        await store.save_phase(
            after, Event(deployment_id=dep.id, stack=dep.stack, kind="phase.running")
        )
        assert [p.name for p in await store.phases(dep.id)][-1] == "after"
        if finished_first:
            break
    assert outcomes[0] is False and outcomes[-1] is True, outcomes


# -- what a click decided, in one write ------------------------------------------------------


def requested_events(d: Deployment, *kinds: str) -> list[Event]:
    return [Event(deployment_id=d.id, stack=d.stack, kind=f"deployment.{k}", state=k, at=T0)
            for k in kinds]  # fmt: skip


async def test_create_stores_its_events_in_the_same_write_and_once(store: Store) -> None:
    draft = make(state=S.QUEUED, version=2, approver="U123", channel="C1")
    events = requested_events(draft, "requested", "approved", "queued")

    made = await store.create(draft, dedup_key="click-1", events=events)
    again = await store.create(make(), dedup_key="click-1", events=events)  # a replay

    assert made == again == await store.get(draft.id)
    assert (made.state, made.version, made.channel) == (S.QUEUED, 2, "C1")
    stored = await store.events_for(draft.id)
    assert [e.kind for e in stored] == ["deployment.requested", "deployment.approved",
                                        "deployment.queued"]  # fmt: skip
    assert await store.claim("w", LEASE, T0) == made  # queued: the worker takes it


async def test_a_refused_create_stores_none_of_its_events(store: Store) -> None:
    await store.create(make(state=S.QUEUED))
    draft = make(state=S.QUEUED, version=2)
    with pytest.raises(StackBusy):
        await store.create(draft, events=requested_events(draft, "requested", "approved"))
    assert await store.events_for(draft.id) == []
