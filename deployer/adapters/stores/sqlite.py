"""SqliteStore: the Store port on one SQLite file (aiosqlite; WAL, busy_timeout, foreign keys).

One connection per store, in autocommit mode, used by one coroutine at a time (an asyncio
lock). Every write runs inside `BEGIN IMMEDIATE`, so it holds SQLite's single write lock from
its first read: check-and-write sequences (claim, create with a dedup key) cannot interleave,
even with another process on the same file. aiosqlite runs the statements on the connection's
thread, which carries on when the awaiting coroutine is cancelled; so every use of the
connection runs to its end (`runs_to_end`, `finish`) and the lock is never given up while that
thread is still busy. Timestamps are UTC ISO text (text order = time). The SQL it runs
(statements, and the helpers that run them inside a transaction) is in sqlite_sql.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from deployer.clock import SystemClock
from deployer.core.models import Deployment, Event, PhaseRecord
from deployer.core.states import DeploymentState, check_transition
from deployer.errors import IllegalTransition, NotFound, StackBusy
from deployer.ports import Clock, LiveStack
from deployer.storage import SqliteDatabase, iso, runs_to_end

from . import sqlite_sql as sql
from .common import (
    active_stack,
    busy_message,
    deployment_from_row,
    event_from_row,
    failed_rollbacks,
    live_from_row,
    not_transferred,
    phase_from_row,
    stale_message,
)
from .migrations import migrate_sqlite


class SqliteStore:
    def __init__(self, db: SqliteDatabase, *, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or SystemClock()  # stamps updated_at, owner_since, dedup keys
        self.applied_migrations = db.applied  # what this open applied (tests, logs)

    @classmethod
    async def open(
        cls, path: str | Path, *, busy_timeout_ms: int = 5000, clock: Clock | None = None
    ) -> SqliteStore:
        return cls(await SqliteDatabase.open(path, busy_timeout_ms, migrate_sqlite), clock=clock)

    async def close(self) -> None:
        await self._db.close()

    # -- deployments ---------------------------------------------------------------------

    @runs_to_end
    async def create(
        self, deployment: Deployment, *, dedup_key: str | None = None,
        events: Sequence[Event] = (),
    ) -> Deployment:  # fmt: skip
        async with self._db.write() as conn:
            if dedup_key is not None and (known := await sql.by_key(conn, dedup_key)):
                return known
            if (known := await sql.by_id(conn, deployment.id)) is not None:
                return known  # a retried create: already done
            if (holder := await sql.holder(conn, deployment.stack)) is not None:
                raise StackBusy(busy_message(holder))
            try:
                row = await sql.one(conn, sql.INSERT, sql.deployment_params(deployment))
                if dedup_key is not None:
                    await conn.execute(
                        "INSERT INTO dedup_keys (key, deployment_id, created_at) VALUES (?, ?, ?)",
                        (dedup_key, deployment.id, iso(self._clock.now())),
                    )
            except sqlite3.IntegrityError:
                return await sql.after_conflict(conn, deployment, dedup_key)
            for event in events:
                await sql.append(conn, event)
        assert row is not None
        return deployment_from_row(row)

    async def get(self, deployment_id: str) -> Deployment:
        rows = await self._db.rows("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        if not rows:
            raise NotFound(f"no deployment {deployment_id}")
        return deployment_from_row(rows[0])

    async def latest(self, stack: str) -> Deployment | None:
        rows = await self._db.rows(
            "SELECT * FROM deployments WHERE stack = ? ORDER BY created_at DESC, id DESC LIMIT 1",
            (stack,),
        )
        return deployment_from_row(rows[0]) if rows else None

    async def list_latest(self) -> list[Deployment]:
        return [deployment_from_row(row) for row in await self._db.rows(sql.LATEST)]

    @runs_to_end
    async def transition(
        self,
        deployment: Deployment,
        target: DeploymentState,
        *,
        error: str | None = None,
        leftovers: Sequence[str] | None = None,
        approver: str | None = None,
        event: Event | None = None,
        retry_at: datetime | None = None,
    ) -> Deployment:
        check_transition(deployment.state, target)
        params = {
            "retry_at": None if retry_at is None else iso(retry_at),
            "failed": failed_rollbacks(target),
            "id": deployment.id,
            "version": deployment.version,
            "state": deployment.state,
            "target": target,
            "now": iso(self._clock.now()),
            "error": error,
            "approver": approver,
            "active_stack": active_stack(deployment.stack, target),
            "leftovers": None if leftovers is None else json.dumps(list(leftovers)),
        }
        async with self._db.write() as conn:
            try:
                row = await sql.one(conn, sql.TRANSITION, params)
            except sqlite3.IntegrityError:
                raise StackBusy(await sql.busy_text(conn, deployment.stack)) from None
            if row is None:
                current = await sql.current(conn, deployment.id)
                raise IllegalTransition(stale_message(deployment, target, current))
            row = await sql.keep_live(conn, deployment, target, self._clock.now()) or row
            if event is not None:
                await sql.append(conn, event)
        return deployment_from_row(row)

    async def awaiting_approval(self, stack: str | None = None) -> list[Deployment]:
        rows = await self._db.rows(
            """SELECT * FROM deployments WHERE state = 'requested' AND coalesce(?, stack) = stack
                ORDER BY created_at, id""",
            (stack,),
        )
        return [deployment_from_row(row) for row in rows]

    async def live(self, stack: str) -> LiveStack | None:
        rows = await self._db.rows("SELECT * FROM live_stacks WHERE stack = ?", (stack,))
        return live_from_row(rows[0]) if rows else None

    async def live_stacks(self) -> list[LiveStack]:
        rows = await self._db.rows("SELECT * FROM live_stacks ORDER BY stack")
        return [live_from_row(row) for row in rows]

    async def releases(self, stack: str) -> list[Deployment]:
        rows = await self._db.rows(
            "SELECT * FROM deployments WHERE stack = ? AND release IS NOT NULL ORDER BY release",
            (stack,),
        )
        return [deployment_from_row(row) for row in rows]

    @runs_to_end
    async def extend(self, stack: str, expires_at: datetime, event: Event) -> LiveStack:
        async with self._db.write() as conn:
            row = await sql.one(conn, sql.EXTEND, (iso(expires_at), stack))
            if row is None:
                raise NotFound(f"{stack} is not live: there is nothing to extend")
            await sql.append(conn, event)
        return live_from_row(row)

    @runs_to_end
    async def mark_noticed(self, stack: str, expires_at: datetime, event: Event) -> bool:
        async with self._db.write() as conn:
            if await sql.one(conn, sql.MARK_NOTICED, (stack, iso(expires_at))) is None:
                return False
            await sql.append(conn, event)
        return True

    @runs_to_end
    async def transfer(self, stack: str, owner: str, to: str, event: Event) -> LiveStack:
        async with self._db.write() as conn:
            row = await sql.one(conn, sql.TRANSFER, (to, iso(self._clock.now()), stack, owner))
            if row is None:
                kept = await sql.one(conn, "SELECT * FROM live_stacks WHERE stack = ?", (stack,))
                raise not_transferred(stack, owner, None if kept is None else live_from_row(kept))
            await sql.append(conn, event)
        return live_from_row(row)

    # -- phases and events ---------------------------------------------------------------

    @runs_to_end
    async def save_phase(self, record: PhaseRecord, event: Event | None = None) -> None:
        values = record.model_dump(mode="json")
        values["outputs"] = json.dumps(values["outputs"])
        values["started_at"], values["finished_at"] = (
            iso(record.started_at),
            iso(record.finished_at),
        )
        async with self._db.write() as conn:
            try:
                await conn.execute(sql.SAVE_PHASE, values)
            except sqlite3.IntegrityError:
                raise NotFound(f"no deployment {record.deployment_id}") from None
            if event is not None:
                await sql.append(conn, event)

    async def phases(self, deployment_id: str) -> list[PhaseRecord]:
        rows = await self._db.rows(
            "SELECT * FROM phases WHERE deployment_id = ? ORDER BY rowid", (deployment_id,)
        )
        return [phase_from_row(row) for row in rows]

    @runs_to_end
    async def append_event(self, event: Event) -> None:
        async with self._db.write() as conn:
            await sql.append(conn, event)

    async def events(self, stack: str) -> list[Event]:
        query = f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE stack = ? ORDER BY id"
        return [event_from_row(row) for row in await self._db.rows(query, (stack,))]

    async def events_for(self, deployment_id: str) -> list[Event]:
        query = f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE deployment_id = ? ORDER BY id"
        return [event_from_row(row) for row in await self._db.rows(query, (deployment_id,))]

    async def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        query = f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?"
        return [event_from_row(row) for row in await self._db.rows(query, (seq, limit))]

    # -- the work queue ------------------------------------------------------------------

    @runs_to_end
    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None:
        expires_at = now + timedelta(seconds=lease_seconds)
        async with self._db.write() as conn:
            row = await sql.one(conn, sql.CLAIMABLE, {"now": iso(now)})
            if row is None:
                return None
            lease = {"id": row["id"], "owner": owner, "expires_at": iso(expires_at)}
            await conn.execute(sql.TAKE_LEASE, lease | {"now": iso(now)})
        return deployment_from_row(row)

    @runs_to_end
    async def heartbeat(
        self, deployment_id: str, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        expires_at = iso(now + timedelta(seconds=lease_seconds))
        async with self._db.write() as conn:
            row = await sql.one(
                conn,
                """UPDATE leases SET expires_at = ?, heartbeat_at = ?
                    WHERE deployment_id = ? AND owner = ? RETURNING owner""",
                (expires_at, iso(now), deployment_id, owner),
            )
        return row is not None

    @runs_to_end
    async def release(self, deployment_id: str, owner: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                "DELETE FROM leases WHERE deployment_id = ? AND owner = ?", (deployment_id, owner)
            )

    async def queued_before(self, cutoff: datetime) -> list[Deployment]:
        rows = await self._db.rows(
            """SELECT * FROM deployments WHERE state = 'queued' AND updated_at < ?
                ORDER BY updated_at, id""",
            (iso(cutoff),),
        )
        return [deployment_from_row(row) for row in rows]

    async def schedule_retry(self, deployment_id: str, at: datetime) -> None:
        await self._set_retry(deployment_id, iso(at))

    async def give_up(self, deployment_id: str) -> None:
        await self._set_retry(deployment_id, None)

    @runs_to_end
    async def _set_retry(self, deployment_id: str, at: str | None) -> None:
        async with self._db.write() as conn:
            row = await sql.one(
                conn,
                "UPDATE deployments SET retry_at = ? WHERE id = ? RETURNING id",
                (at, deployment_id),
            )
        if row is None:
            raise NotFound(f"no deployment {deployment_id}")
