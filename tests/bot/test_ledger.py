"""The CardLedger contract: what every ledger (memory, SQLite, PostgreSQL) promises the bot.

Each ledger opens on the database of a deployer store, as the bot does, and learns of
deployments through the store's reads only: the requests below are made as the deployer
makes them, each with its events in the same write (what the ledger follows).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.ledger import Card, CardLedger, MemoryLedger, PostgresLedger, SqliteLedger, open_ledger
from deployer.adapters.stores import open_store
from deployer.adapters.stores.memory import MemoryStore
from deployer.adapters.stores.postgres import PostgresStore
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.core.models import Event
from deployer.core.states import DeploymentState
from deployer.errors import ConfigError, NotFound
from deployer.ports import Store
from deployer.testing import ManualClock
from tests.bot.ledgers import T0, Database, ids, make, moved, request, said, with_schema
from tests.deployer.conftest import PG_URL, fresh_schema, released_before

S = DeploymentState


# -- cards -----------------------------------------------------------------------------------


async def test_a_card_is_set_once_posted_and_kept_across_transitions(db: Database) -> None:
    store, ledger = await db.replica()
    d = await request(store, channel="C42")
    assert await ledger.card(d.id) is None
    placed = await ledger.set_card(d.id, "C42", "1764195000.000100", d.version)
    await moved(store, d, S.APPROVED)
    assert placed == Card(d.id, "C42", "1764195000.000100", 0)
    assert await ledger.card(d.id) == placed and (await store.get(d.id)).channel == "C42"
    with pytest.raises(NotFound):
        await ledger.set_card("nope", "C1", "1.2", 0)


async def test_cards_never_posted_are_found_until_set(db: Database) -> None:
    store, ledger = await db.replica()
    unposted = await request(store, "alice", channel="C1")
    await request(store, "bob")  # no channel: the CLI's, it has no card
    assert await ledger.unposted_cards() == [Card(unposted.id, "C1")]
    await ledger.set_card(unposted.id, "C1", "1.1", unposted.version)
    assert await ledger.unposted_cards() == []


async def test_cards_behind_their_deployment_are_found_until_marked(db: Database) -> None:
    store, ledger = await db.replica()
    job = await request(store, "alice", channel="C1", state=S.QUEUED)
    assert await ledger.stale_cards() == []  # no card posted yet
    await ledger.set_card(job.id, "C1", "1700000000.000100", -1)  # it showed nothing yet
    assert ids(await ledger.stale_cards()) == [job.id]
    await ledger.mark_card(job.id, job.version)
    assert await ledger.stale_cards() == []
    running = await moved(store, job, S.RUNNING)
    assert ids(await ledger.stale_cards()) == [job.id]
    await ledger.mark_card(job.id, running.version)
    await ledger.mark_card(job.id, job.version)  # a late, older draw does not win
    assert await ledger.stale_cards() == []
    assert (await ledger.card(job.id)) == Card(job.id, "C1", "1700000000.000100", 1)


# -- leases, the thread's outbox, the channels' pace -----------------------------------------


def later(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_a_lease_is_held_by_one_owner_until_released_or_expired(db: Database) -> None:
    store, ledger = await db.replica()
    d = await request(store)
    assert await ledger.take_lease(d.id, "thread", "a", 10, T0)
    assert not await ledger.take_lease(d.id, "thread", "b", 10, later(0.1))
    assert await ledger.take_lease(d.id, "card", "b", 10, T0)  # another kind: its own
    assert await ledger.take_lease(d.id, "thread", "a", 10, later(0.1))  # renewed
    assert not await ledger.take_lease(d.id, "thread", "b", 10, T0 + timedelta(seconds=9))
    assert await ledger.take_lease(d.id, "thread", "b", 10, later(1))  # a's expired
    await ledger.release_lease(d.id, "thread", "a")  # not a's any more: kept
    assert not await ledger.take_lease(d.id, "thread", "a", 10, later(1))
    await ledger.release_lease(d.id, "thread", "b")
    assert await ledger.take_lease(d.id, "thread", "a", 10, later(1))


async def test_racing_replicas_take_a_lease_once(db: Database) -> None:
    (store, one), (_, two) = await db.replica(), await db.replica()
    d = await request(store)
    won = await asyncio.gather(*(ledger.take_lease(d.id, "card", f"r{n}", 10, T0)
                                 for n, ledger in enumerate([one, two] * 4)))  # fmt: skip
    assert won.count(True) == 1


async def test_the_thread_cursor_finds_replies_not_posted_and_only_goes_forward(
    db: Database,
) -> None:
    store, ledger = await db.replica()
    d = await request(store, channel="C1")
    await store.append_event(said(d, "deployment.approved"))
    first, last = [e.seq or 0 for e in await store.events_for(d.id)]
    assert await ledger.replies_posted(d.id) == 0
    assert await ledger.unposted_replies() == []  # no card yet: nothing to reply under
    await ledger.set_card(d.id, "C1", "1.1", d.version)
    assert await ledger.unposted_replies() == [d.id]
    await ledger.mark_replies_posted(d.id, first)
    assert await ledger.unposted_replies() == [d.id]
    await ledger.mark_replies_posted(d.id, last)
    await ledger.mark_replies_posted(d.id, first)  # late and behind: ignored
    assert await ledger.replies_posted(d.id) == last
    assert await ledger.unposted_replies() == []
    await store.append_event(said(d, "phase.done"))  # news after the cursor: due again
    assert await ledger.unposted_replies() == [d.id]


async def test_post_slots_of_a_channel_are_one_interval_apart_whoever_asks(db: Database) -> None:
    (_, one), (_, two) = await db.replica(), await db.replica()
    slots = [await ledger.reserve_post_slot("C1", 1.0, T0) for ledger in (one, two, one)]
    assert slots == [T0, later(1 / 60), later(2 / 60)]
    assert await two.reserve_post_slot("C2", 1.0, T0) == T0  # another channel: its own pace
    assert await one.reserve_post_slot("C1", 1.0, later(10)) == later(10)  # idle: at once
    raced = await asyncio.gather(*(s.reserve_post_slot("C3", 1.0, T0) for s in [one, two] * 3))
    assert sorted(raced) == [T0 + timedelta(seconds=n) for n in range(6)]


# -- following the event log -----------------------------------------------------------------


class LateLog:
    """The store's reads, with some events not visible yet: written by a transaction that
    took its id before another's and commits after it (PostgreSQL allows it)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.hidden: set[int] = set()
        self.asked: list[int] = []  # the cursor of each events_after

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        self.asked.append(seq)
        return [e for e in await self.store.events_after(seq, limit) if e.seq not in self.hidden]


async def test_an_event_committed_late_is_still_read_within_the_grace() -> None:
    store, clock = MemoryStore(), ManualClock(T0)
    log = LateLog(store)
    ledger = MemoryLedger(log, clock=clock, grace=60)  # type: ignore[arg-type]
    late = await request(store, "alice", channel="C1")
    log.hidden = {e.seq or 0 for e in await store.events_for(late.id)}
    early = await request(store, "bob", channel="C1")
    assert ids(await ledger.unposted_cards()) == [early.id]
    clock.advance(59)
    assert ids(await ledger.unposted_cards()) == [early.id]  # still read again from the start
    log.hidden.clear()  # its transaction commits
    assert sorted(ids(await ledger.unposted_cards())) == sorted([late.id, early.id])
    clock.advance(61)  # every write that could still land below has ended
    await ledger.unposted_cards()  # reads them a last time, then moves the cursor past them
    await ledger.unposted_cards()
    assert log.asked[-2:] == [0, (await store.events_for(early.id))[-1].seq]


async def test_the_cursor_moves_past_what_it_read_once_the_grace_is_over(db: Database) -> None:
    clock = ManualClock(T0)
    store = await db.store()
    log = LateLog(store)  # nothing hidden: it records where each read starts
    ledger = await db.ledger(log, clock=clock, grace=60)
    ann = await request(store, "ann", channel="C1")
    assert ids(await ledger.unposted_cards()) == [ann.id]
    await ledger.set_card(ann.id, "C1", "1.1", ann.version)
    for _ in range(2):  # a read sets the mark; once the grace is over, the next moves to it
        clock.advance(61)
        assert await ledger.unposted_cards() == []
    assert await ledger.unposted_replies() == [ann.id]  # its first reply is still due
    assert log.asked[-1] == (await store.events_for(ann.id))[-1].seq  # past ann's events
    bob = await request(store, "bob", channel="C1")  # read from the cursor on
    ann = await moved(store, ann, S.REJECTED)
    assert ids(await ledger.unposted_cards()) == [bob.id]
    assert ids(await ledger.stale_cards()) == [ann.id]
    again = await db.ledger(store)  # another replica, or a restart: the same cursor and cards
    assert ids(await again.unposted_cards()) == [bob.id]


# SQLite commits its writes one at a time, in the order of their ids: PostgreSQL alone may not
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_request_committed_after_a_later_one_gets_its_card(db: Database) -> None:
    store, ledger = await db.replica()
    conn = await asyncpg.connect(PG_URL, server_settings=db.search_path)
    try:
        slow = make("alice", channel="C1")
        async with conn.transaction():  # takes its event id first, commits last
            await conn.execute(_INSERT_DEPLOYMENT, slow.id, slow.spec.model_dump_json(), T0)
            await conn.execute(_INSERT_EVENT, slow.id, T0)
            early = await request(store, "bob", channel="C1")
            assert ids(await ledger.unposted_cards()) == [early.id]
    finally:
        await conn.close()
    assert sorted(ids(await ledger.unposted_cards())) == sorted([slow.id, early.id])


_INSERT_DEPLOYMENT = """INSERT INTO deployments (id, stack, operation, state, version, requester,
    channel, spec, created_at, updated_at)
VALUES ($1, 'alice', 'deploy', 'requested', 0, 'U1', 'C1', $2::text::jsonb, $3, $3)"""
_INSERT_EVENT = """INSERT INTO events (deployment_id, stack, kind, at, actor, data)
VALUES ($1, 'alice', 'deployment.requested', $2, 'U1', '{}'::jsonb)"""


# -- schema and upgrades ---------------------------------------------------------------------


def applied(ledger: CardLedger) -> list[int]:
    assert isinstance(ledger, SqliteLedger | PostgresLedger)
    return ledger.applied_migrations


@with_schema
async def test_migrations_run_twice_are_a_no_op_and_racing_opens_apply_them_once(
    db: Database,
) -> None:
    store = await db.store()
    one, two = await asyncio.gather(db.ledger(store), db.ledger(store))
    again = await db.ledger(store)
    assert sorted([applied(one), applied(two), applied(again)]) == [[], [], [1]]
    d = await request(store, channel="C1")
    await one.set_card(d.id, "C1", "1.1", 0)
    assert await two.card(d.id) == await again.card(d.id) == Card(d.id, "C1", "1.1", 0)


async def test_open_ledger_by_url(tmp_path: Path) -> None:
    memory = await open_store("memory://")
    assert isinstance(await open_ledger("memory://", memory), MemoryLedger)
    url = f"sqlite:///{tmp_path}/aistack.db"
    store = await open_store(url)
    ledger = await open_ledger(url, store)
    assert isinstance(ledger, SqliteLedger)
    await ledger.close()
    await store.close()
    with pytest.raises(ConfigError, match="AISTACK_DATABASE_URL"):
        await open_ledger("mysql://root:hunter2@db/aistack", memory)
    async with fresh_schema() as schema:
        joiner = "&" if "?" in PG_URL else "?"
        pg = f"{PG_URL}{joiner}search_path={schema}"
        store = await open_store(pg)
        ledger = await open_ledger(pg, store)
        assert isinstance(ledger, PostgresLedger)
        await ledger.close()
        await store.close()


@with_schema
async def test_upgrading_counts_existing_threads_as_posted(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    released_before(monkeypatch, 5)
    old = await db.store()
    d = await request(old, channel="C1")
    await db.execute(f"UPDATE deployments SET message_ts = '1.1' WHERE id = '{d.id}'")
    await old.append_event(said(d, "phase.done"))
    monkeypatch.undo()

    new = await db.store()
    ledger = await db.ledger(new)
    assert isinstance(new, SqliteStore | PostgresStore) and new.applied_migrations == [5, 6, 7]
    assert await ledger.unposted_replies() == []  # not posted again after the upgrade
    assert await ledger.replies_posted(d.id) == (await new.events_for(d.id))[-1].seq


@with_schema
async def test_an_upgraded_database_keeps_its_cards(db: Database) -> None:
    """What the previous release kept in `deployments` (message_ts, card_version) and in
    `slack_threads`, read by the ledger as it was: nothing posted twice, nothing lost."""
    store = await db.store()
    drawn, unposted, behind, owing = [await request(store, n, channel="C1")
                                      for n in ("ann", "bob", "cid", "dan")]  # fmt: skip
    cli = await request(store, "eve")  # no channel, no card
    behind = await moved(store, behind, S.REJECTED)
    await store.append_event(said(owing, "phase.done"))
    for d, ts, shown in ((drawn, "1.1", drawn.version), (behind, "1.3", behind.version - 1),
                         (owing, "1.4", owing.version)):  # fmt: skip
        await db.execute(f"""UPDATE deployments SET message_ts = '{ts}', card_version = {shown}
                              WHERE id = '{d.id}'""")  # fmt: skip
    first = (await store.events_for(owing.id))[0].seq
    await db.execute("""INSERT INTO slack_threads (deployment_id, posted_through)
                         SELECT deployment_id, max(id) FROM events GROUP BY deployment_id""")
    await db.execute(f"UPDATE slack_threads SET posted_through = {first} "
                     f"WHERE deployment_id = '{owing.id}'")  # fmt: skip

    ledger = await db.ledger(store)
    assert applied(ledger) == [1]
    assert await ledger.card(drawn.id) == Card(drawn.id, "C1", "1.1", drawn.version)
    assert await ledger.card(cli.id) is None
    assert ids(await ledger.unposted_cards()) == [unposted.id]
    assert ids(await ledger.stale_cards()) == [behind.id]
    assert await ledger.unposted_replies() == [owing.id]
    await moved(store, drawn, S.APPROVED)  # and what happens next is followed
    assert sorted(ids(await ledger.stale_cards())) == sorted([drawn.id, behind.id])
