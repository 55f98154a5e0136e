"""SqliteStore: the Store port on one SQLite file (aiosqlite; WAL, busy_timeout, foreign keys).

One connection per store, in autocommit mode, used by one coroutine at a time (an asyncio
lock). Every write runs inside `BEGIN IMMEDIATE`, so it holds SQLite's single write lock from
its first read: check-and-write sequences (claim, create with a dedup key) cannot interleave,
even with another process on the same file. aiosqlite runs the statements on the connection's
thread, which carries on when the awaiting coroutine is cancelled; so every use of the
connection runs to its end (`runs_to_end`, `finish`) and the lock is never given up while that
thread is still busy. Timestamps are UTC ISO text (text order = time).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from deployer.clock import SystemClock
from deployer.core.models import Deployment, Event, PhaseRecord
from deployer.core.states import DeploymentState, check_transition
from deployer.errors import IllegalTransition, NotFound, StackBusy, TransientError
from deployer.ports import Clock, LiveStack
from deployer.storage import enable_wal, finish, is_busy, iso, runs_to_end

from .common import (
    active_stack,
    busy_message,
    busy_unknown,
    deployment_from_row,
    deployment_values,
    ends_live,
    event_from_row,
    failed_rollbacks,
    live_from_row,
    makes_live,
    not_transferred,
    phase_from_row,
    stale_message,
)
from .migrations import migrate_sqlite

_INSERT = """INSERT INTO deployments (id, stack, operation, state, version, requester, approver,
    channel, spec, created_at, updated_at, error, leftovers, active_stack)
VALUES (:id, :stack, :operation, :state, :version, :requester, :approver,
    :channel, :spec, :created_at, :updated_at, :error, :leftovers, :active_stack)
RETURNING *"""

_TRANSITION = """UPDATE deployments
   SET state = :target, version = version + 1, updated_at = :now,
       active_stack = :active_stack, retry_at = :retry_at,
       rollback_attempts = rollback_attempts + :failed,
       error = coalesce(:error, error), leftovers = coalesce(:leftovers, leftovers),
       approver = coalesce(:approver, approver)
 WHERE id = :id AND version = :version AND state = :state
RETURNING *"""

# A deploy that succeeded: the stack is live and made of it; an owner it had is kept.
_MAKE_LIVE = """INSERT INTO live_stacks (stack, owner, owner_since, deployment_id)
VALUES (?, ?, ?, ?)
ON CONFLICT (stack) DO UPDATE SET deployment_id = excluded.deployment_id"""

_TRANSFER = """UPDATE live_stacks SET owner = ?, owner_since = ?
 WHERE stack = ? AND owner = ?
RETURNING *"""

_LATEST = """SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY stack ORDER BY created_at DESC, id DESC) AS n
      FROM deployments
) AS ranked WHERE n = 1 ORDER BY stack"""

_SAVE_PHASE = """INSERT INTO phases (deployment_id, name, state, attempt, outputs,
    started_at, finished_at, error)
VALUES (:deployment_id, :name, :state, :attempt, :outputs, :started_at, :finished_at, :error)
ON CONFLICT (deployment_id, name) DO UPDATE SET
    state = excluded.state, attempt = excluded.attempt, outputs = excluded.outputs,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    error = excluded.error"""

_APPEND_EVENT = """INSERT INTO events (deployment_id, stack, kind, at, actor, phase, state,
    duration, idx, total, data)
VALUES (:deployment_id, :stack, :kind, :at, :actor, :phase, :state,
    :duration, :index, :total, :data)"""

_EVENT_COLUMNS = (
    "id AS seq, deployment_id, stack, kind, at, actor, phase, state, duration, idx, total, data"
)


# Needs work and nobody holds a live lease (the states mirror common.LEASED_STATES).
_CLAIMABLE = """SELECT d.* FROM deployments AS d
  LEFT JOIN leases AS l ON l.deployment_id = d.id
 WHERE (l.expires_at IS NULL OR l.expires_at <= :now)
   AND (d.state IN ('queued', 'running', 'rolling_back', 'destroying')
        OR (d.state = 'rollback_failed' AND d.retry_at <= :now))
 ORDER BY d.created_at, d.id
 LIMIT 1"""

_TAKE_LEASE = """INSERT INTO leases (deployment_id, owner, expires_at, heartbeat_at)
VALUES (:id, :owner, :expires_at, :now)
ON CONFLICT (deployment_id) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at,
    heartbeat_at = excluded.heartbeat_at"""

Params = dict[str, Any] | tuple[Any, ...]
Row = dict[str, Any]


class SqliteStore:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        applied_migrations: list[int],
        *,
        clock: Clock | None = None,
    ) -> None:
        self._conn = conn
        self._clock = clock or SystemClock()  # stamps updated_at, owner_since, dedup keys
        self._lock = asyncio.Lock()
        self.applied_migrations = applied_migrations  # what this open applied (tests, logs)

    @classmethod
    async def open(
        cls, path: str | Path, *, busy_timeout_ms: int = 5000, clock: Clock | None = None
    ) -> SqliteStore:
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await enable_wal(conn)
            await conn.execute("PRAGMA foreign_keys = ON")
            return cls(conn, await migrate_sqlite(conn), clock=clock)
        except BaseException:
            await conn.close()
            raise

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction holding the database write lock from its start."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    await self._conn.rollback()
                if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                    raise TransientError(f"SQLite database is busy: {exc}") from exc
                raise

    async def _fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await finish(self._select(sql, params))

    async def _select(self, sql: str, params: Params) -> list[Row]:
        async with self._lock, self._conn.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    # -- deployments ---------------------------------------------------------------------

    @runs_to_end
    async def create(
        self, deployment: Deployment, *, dedup_key: str | None = None,
        events: Sequence[Event] = (),
    ) -> Deployment:  # fmt: skip
        async with self._tx() as conn:
            if dedup_key is not None and (known := await _by_key(conn, dedup_key)):
                return known
            if (known := await _by_id(conn, deployment.id)) is not None:
                return known  # a retried create: already done
            if (holder := await _holder(conn, deployment.stack)) is not None:
                raise StackBusy(busy_message(holder))
            try:
                row = await _one(conn, _INSERT, _deployment_params(deployment))
                if dedup_key is not None:
                    await conn.execute(
                        "INSERT INTO dedup_keys (key, deployment_id, created_at) VALUES (?, ?, ?)",
                        (dedup_key, deployment.id, iso(self._clock.now())),
                    )
            except sqlite3.IntegrityError:
                return await _after_conflict(conn, deployment, dedup_key)
            for event in events:
                await _append(conn, event)
        assert row is not None
        return deployment_from_row(row)

    async def get(self, deployment_id: str) -> Deployment:
        rows = await self._fetch("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        if not rows:
            raise NotFound(f"no deployment {deployment_id}")
        return deployment_from_row(rows[0])

    async def latest(self, stack: str) -> Deployment | None:
        rows = await self._fetch(
            "SELECT * FROM deployments WHERE stack = ? ORDER BY created_at DESC, id DESC LIMIT 1",
            (stack,),
        )
        return deployment_from_row(rows[0]) if rows else None

    async def list_latest(self) -> list[Deployment]:
        return [deployment_from_row(row) for row in await self._fetch(_LATEST)]

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
        async with self._tx() as conn:
            try:
                row = await _one(conn, _TRANSITION, params)
            except sqlite3.IntegrityError:
                raise StackBusy(await _busy_text(conn, deployment.stack)) from None
            if row is None:
                current = await _current(conn, deployment.id)
                raise IllegalTransition(stale_message(deployment, target, current))
            await _keep_live(conn, deployment, target, self._clock.now())
            if event is not None:
                await _append(conn, event)
        return deployment_from_row(row)

    async def awaiting_approval(self, stack: str | None = None) -> list[Deployment]:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE state = 'requested' AND coalesce(?, stack) = stack
                ORDER BY created_at, id""",
            (stack,),
        )
        return [deployment_from_row(row) for row in rows]

    async def live(self, stack: str) -> LiveStack | None:
        rows = await self._fetch("SELECT * FROM live_stacks WHERE stack = ?", (stack,))
        return live_from_row(rows[0]) if rows else None

    @runs_to_end
    async def transfer(self, stack: str, owner: str, to: str, event: Event) -> LiveStack:
        async with self._tx() as conn:
            row = await _one(conn, _TRANSFER, (to, iso(self._clock.now()), stack, owner))
            if row is None:
                kept = await _one(conn, "SELECT * FROM live_stacks WHERE stack = ?", (stack,))
                raise not_transferred(stack, owner, None if kept is None else live_from_row(kept))
            await _append(conn, event)
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
        async with self._tx() as conn:
            try:
                await conn.execute(_SAVE_PHASE, values)
            except sqlite3.IntegrityError:
                raise NotFound(f"no deployment {record.deployment_id}") from None
            if event is not None:
                await _append(conn, event)

    async def phases(self, deployment_id: str) -> list[PhaseRecord]:
        rows = await self._fetch(
            "SELECT * FROM phases WHERE deployment_id = ? ORDER BY rowid", (deployment_id,)
        )
        return [phase_from_row(row) for row in rows]

    @runs_to_end
    async def append_event(self, event: Event) -> None:
        async with self._tx() as conn:
            await _append(conn, event)

    async def events(self, stack: str) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE stack = ? ORDER BY id"
        return [event_from_row(row) for row in await self._fetch(sql, (stack,))]

    async def events_for(self, deployment_id: str) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE deployment_id = ? ORDER BY id"
        return [event_from_row(row) for row in await self._fetch(sql, (deployment_id,))]

    async def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?"
        return [event_from_row(row) for row in await self._fetch(sql, (seq, limit))]

    # -- the work queue ------------------------------------------------------------------

    @runs_to_end
    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None:
        expires_at = now + timedelta(seconds=lease_seconds)
        async with self._tx() as conn:
            row = await _one(conn, _CLAIMABLE, {"now": iso(now)})
            if row is None:
                return None
            lease = {"id": row["id"], "owner": owner, "expires_at": iso(expires_at)}
            await conn.execute(_TAKE_LEASE, lease | {"now": iso(now)})
        return deployment_from_row(row)

    @runs_to_end
    async def heartbeat(
        self, deployment_id: str, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        expires_at = iso(now + timedelta(seconds=lease_seconds))
        async with self._tx() as conn:
            row = await _one(
                conn,
                """UPDATE leases SET expires_at = ?, heartbeat_at = ?
                    WHERE deployment_id = ? AND owner = ? RETURNING owner""",
                (expires_at, iso(now), deployment_id, owner),
            )
        return row is not None

    @runs_to_end
    async def release(self, deployment_id: str, owner: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM leases WHERE deployment_id = ? AND owner = ?", (deployment_id, owner)
            )

    async def queued_before(self, cutoff: datetime) -> list[Deployment]:
        rows = await self._fetch(
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
        async with self._tx() as conn:
            row = await _one(
                conn,
                "UPDATE deployments SET retry_at = ? WHERE id = ? RETURNING id",
                (at, deployment_id),
            )
        if row is None:
            raise NotFound(f"no deployment {deployment_id}")


# -- helpers (each runs inside the caller's transaction) -------------------------------------


def _deployment_params(deployment: Deployment) -> dict[str, Any]:
    values = deployment_values(deployment)
    values["spec"], values["leftovers"] = (
        json.dumps(values["spec"]),
        json.dumps(values["leftovers"]),
    )
    values["created_at"], values["updated_at"] = (
        iso(deployment.created_at),
        iso(deployment.updated_at),
    )
    return values


async def _one(conn: aiosqlite.Connection, sql: str, params: Params) -> Row | None:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else dict(row)


async def _by_key(conn: aiosqlite.Connection, key: str) -> Deployment | None:
    row = await _one(
        conn,
        """SELECT d.* FROM dedup_keys AS k JOIN deployments AS d ON d.id = k.deployment_id
            WHERE k.key = ?""",
        (key,),
    )
    return None if row is None else deployment_from_row(row)


async def _by_id(conn: aiosqlite.Connection, deployment_id: str) -> Deployment | None:
    row = await _one(conn, "SELECT * FROM deployments WHERE id = ?", (deployment_id,))
    return None if row is None else deployment_from_row(row)


async def _holder(conn: aiosqlite.Connection, stack: str) -> Deployment | None:
    row = await _one(conn, "SELECT * FROM deployments WHERE active_stack = ?", (stack,))
    return None if row is None else deployment_from_row(row)


async def _keep_live(
    conn: aiosqlite.Connection, moved: Deployment, target: DeploymentState, now: datetime
) -> None:
    """The live stack follows the deployment, in the transition's own write (`now`: when a
    stack nobody owned yet becomes its requester's)."""
    if makes_live(moved, target):
        values = (moved.stack, moved.requester, iso(now), moved.id)
        await conn.execute(_MAKE_LIVE, values)
    elif ends_live(target):
        await conn.execute("DELETE FROM live_stacks WHERE stack = ?", (moved.stack,))


async def _current(conn: aiosqlite.Connection, deployment_id: str) -> Deployment:
    row = await _one(conn, "SELECT * FROM deployments WHERE id = ?", (deployment_id,))
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    return deployment_from_row(row)


async def _busy_text(conn: aiosqlite.Connection, stack: str) -> str:
    row = await _one(conn, "SELECT * FROM deployments WHERE active_stack = ?", (stack,))
    return busy_unknown(stack) if row is None else busy_message(deployment_from_row(row))


async def _after_conflict(
    conn: aiosqlite.Connection, deployment: Deployment, dedup_key: str | None
) -> Deployment:
    """The insert collided: a replayed request, a retried create, or the stack is held."""
    if dedup_key is not None and (known := await _by_key(conn, dedup_key)):
        return known
    row = await _one(conn, "SELECT * FROM deployments WHERE id = ?", (deployment.id,))
    if row is not None:
        return deployment_from_row(row)
    raise StackBusy(await _busy_text(conn, deployment.stack))


async def _append(conn: aiosqlite.Connection, event: Event) -> None:
    values = event.model_dump(mode="json")
    values["at"], values["data"] = iso(event.at), json.dumps(values["data"])
    await conn.execute(_APPEND_EVENT, values)
