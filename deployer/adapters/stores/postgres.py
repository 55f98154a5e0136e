"""PostgresStore: the Store port on PostgreSQL (asyncpg pool), shared by every replica.

Each method is one short transaction. Every write runs to its end even if its caller is
cancelled (`runs_to_end`): asyncpg would answer the cancellation with a cancel request and
return at once, while the COMMIT it had sent could still land later, after the caller had
moved on (a rollback reading the phases would miss one). Claims lock the candidate row with
`FOR UPDATE SKIP LOCKED`, then take the lease with a conditional upsert that re-reads the
lease as committed, so two replicas never hold the same job. Connection failures become
TransientError; the DSN (it may hold a password) never appears in an error text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from deployer.clock import SystemClock
from deployer.core.models import Deployment, Event, PhaseRecord
from deployer.core.states import DeploymentState, check_transition
from deployer.errors import IllegalTransition, NotFound, StackBusy
from deployer.ports import Clock, LiveStack
from deployer.storage import describe_dsn, runs_to_end, translated, utc

from .common import (
    DEPLOYMENT_COLUMNS,
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
from .migrations import migrate_postgres

_INSERT = f"""INSERT INTO deployments ({", ".join(DEPLOYMENT_COLUMNS)})
VALUES ({", ".join(f"${n}" for n in range(1, len(DEPLOYMENT_COLUMNS) + 1))})
RETURNING *"""

_TRANSITION = """UPDATE deployments
   SET state = $4, version = version + 1, updated_at = $5, active_stack = $6, retry_at = $10,
       rollback_attempts = rollback_attempts + $11,
       error = coalesce($7, error), leftovers = coalesce($8, leftovers),
       approver = coalesce($9, approver)
 WHERE id = $1 AND version = $2 AND state = $3
RETURNING *"""

# A deploy that succeeded: the stack is live and made of it; an owner it had is kept.
_MAKE_LIVE = """INSERT INTO live_stacks (stack, owner, owner_since, deployment_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (stack) DO UPDATE SET deployment_id = excluded.deployment_id"""

_TRANSFER = """UPDATE live_stacks SET owner = $3, owner_since = $4
 WHERE stack = $1 AND owner = $2
RETURNING *"""

_LATEST = """SELECT DISTINCT ON (stack) * FROM deployments
 ORDER BY stack, created_at DESC, id DESC"""

_SAVE_PHASE = """INSERT INTO phases (deployment_id, name, state, attempt, outputs,
    started_at, finished_at, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (deployment_id, name) DO UPDATE SET
    state = excluded.state, attempt = excluded.attempt, outputs = excluded.outputs,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    error = excluded.error"""

_APPEND_EVENT = """INSERT INTO events (deployment_id, stack, kind, at, actor, phase, state,
    duration, idx, total, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""

_EVENT_COLUMNS = (
    "id AS seq, deployment_id, stack, kind, at, actor, phase, state, duration, idx, total, data"
)

# Needs work and nobody holds a live lease (the states mirror common.LEASED_STATES).
_CLAIMABLE = """SELECT d.* FROM deployments AS d
  LEFT JOIN leases AS l ON l.deployment_id = d.id
 WHERE (l.expires_at IS NULL OR l.expires_at <= $1)
   AND (d.state IN ('queued', 'running', 'rolling_back', 'destroying')
        OR (d.state = 'rollback_failed' AND d.retry_at <= $1))
 ORDER BY d.created_at, d.id
 LIMIT 1
 FOR UPDATE OF d SKIP LOCKED"""

# Takes the lease unless someone holds a live one: the arbiter when two claimers saw the
# same row in their snapshots (ON CONFLICT reads the latest committed lease).
_TAKE_LEASE = """INSERT INTO leases (deployment_id, owner, expires_at, heartbeat_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (deployment_id) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at,
    heartbeat_at = excluded.heartbeat_at
 WHERE leases.expires_at <= excluded.heartbeat_at
RETURNING deployment_id"""

_CLAIM_ATTEMPTS = 10


class PostgresStore:
    def __init__(
        self, pool: Any, applied_migrations: list[int], *, clock: Clock | None = None
    ) -> None:
        self._pool = pool
        self._clock = clock or SystemClock()  # stamps updated_at, owner_since, dedup keys
        self.applied_migrations = applied_migrations  # what this open applied (tests, logs)

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        server_settings: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> PostgresStore:
        with translated(describe_dsn(dsn)):
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=init_connection,
                timeout=connect_timeout,
                server_settings=dict(server_settings or {}),
            )
        try:
            with translated(describe_dsn(dsn)):
                async with pool.acquire() as conn:
                    return cls(pool, await migrate_postgres(conn), clock=clock)
        except BaseException:
            await pool.close()
            raise

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        with translated("PostgreSQL"):
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """A connection in autocommit mode: each statement is its own transaction."""
        with translated("PostgreSQL"):
            async with self._pool.acquire() as conn:
                yield conn

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        with translated("PostgreSQL"):
            return list(await self._pool.fetch(sql, *args))

    # -- deployments ---------------------------------------------------------------------

    @runs_to_end
    async def create(
        self, deployment: Deployment, *, dedup_key: str | None = None,
        events: Sequence[Event] = (),
    ) -> Deployment:  # fmt: skip
        values = deployment_values(deployment)
        async with self._tx() as conn:
            if dedup_key is not None and (known := await _by_key(conn, dedup_key)):
                return known
            if (known := await _by_id(conn, deployment.id)) is not None:
                return known  # a retried create: already done
            # Read committed: an approval landing just after this look lets a request in
            # beside the holder; harmless, its own approval is then refused by the index.
            if (holder := await _holder(conn, deployment.stack)) is not None:
                raise StackBusy(busy_message(holder))
            try:
                async with conn.transaction():  # a savepoint: undone alone on a conflict
                    row = await conn.fetchrow(_INSERT, *(values[c] for c in DEPLOYMENT_COLUMNS))
                    if dedup_key is not None:
                        await conn.execute(
                            """INSERT INTO dedup_keys (key, deployment_id, created_at)
                               VALUES ($1, $2, $3)""",
                            dedup_key,
                            deployment.id,
                            self._clock.now(),
                        )
            except asyncpg.UniqueViolationError:
                return await _after_conflict(conn, deployment, dedup_key)
            for event in events:
                await _append(conn, event)
        return deployment_from_row(row)

    async def get(self, deployment_id: str) -> Deployment:
        rows = await self._fetch("SELECT * FROM deployments WHERE id = $1", deployment_id)
        if not rows:
            raise NotFound(f"no deployment {deployment_id}")
        return deployment_from_row(rows[0])

    async def latest(self, stack: str) -> Deployment | None:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE stack = $1
                ORDER BY created_at DESC, id DESC LIMIT 1""",
            stack,
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
        args = (
            deployment.id,
            deployment.version,
            deployment.state,
            target,
            self._clock.now(),
            active_stack(deployment.stack, target),
            error,
            None if leftovers is None else list(leftovers),
            approver,
            None if retry_at is None else utc(retry_at),
            failed_rollbacks(target),
        )
        async with self._conn() as conn:
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(_TRANSITION, *args)
                    if row is not None:
                        await _keep_live(conn, deployment, target, self._clock.now())
                    if row is not None and event is not None:
                        await _append(conn, event)
            except asyncpg.UniqueViolationError:
                raise StackBusy(await _busy_text(conn, deployment.stack)) from None
            if row is None:
                current = await _current(conn, deployment.id)
                raise IllegalTransition(stale_message(deployment, target, current))
        return deployment_from_row(row)

    async def awaiting_approval(self, stack: str | None = None) -> list[Deployment]:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE state = 'requested'
                  AND ($1::text IS NULL OR stack = $1)
                ORDER BY created_at, id""",
            stack,
        )
        return [deployment_from_row(row) for row in rows]

    async def live(self, stack: str) -> LiveStack | None:
        rows = await self._fetch("SELECT * FROM live_stacks WHERE stack = $1", stack)
        return live_from_row(rows[0]) if rows else None

    @runs_to_end
    async def transfer(self, stack: str, owner: str, to: str, event: Event) -> LiveStack:
        async with self._tx() as conn:
            row = await conn.fetchrow(_TRANSFER, stack, owner, to, self._clock.now())
            if row is None:
                kept = await conn.fetchrow("SELECT * FROM live_stacks WHERE stack = $1", stack)
                raise not_transferred(stack, owner, None if kept is None else live_from_row(kept))
            await _append(conn, event)
        return live_from_row(row)

    # -- phases and events ---------------------------------------------------------------

    @runs_to_end
    async def save_phase(self, record: PhaseRecord, event: Event | None = None) -> None:
        started = None if record.started_at is None else utc(record.started_at)
        finished = None if record.finished_at is None else utc(record.finished_at)
        args = (
            record.deployment_id,
            record.name,
            record.state,
            record.attempt,
            dict(record.outputs),
            started,
            finished,
            record.error,
        )
        try:
            async with self._tx() as conn:
                await conn.execute(_SAVE_PHASE, *args)
                if event is not None:
                    await _append(conn, event)
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no deployment {record.deployment_id}") from None

    async def phases(self, deployment_id: str) -> list[PhaseRecord]:
        rows = await self._fetch(
            "SELECT * FROM phases WHERE deployment_id = $1 ORDER BY seq", deployment_id
        )
        return [phase_from_row(row) for row in rows]

    @runs_to_end
    async def append_event(self, event: Event) -> None:
        async with self._conn() as conn:
            await _append(conn, event)

    async def events(self, stack: str) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE stack = $1 ORDER BY id"
        return [event_from_row(row) for row in await self._fetch(sql, stack)]

    async def events_for(self, deployment_id: str) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE deployment_id = $1 ORDER BY id"
        return [event_from_row(row) for row in await self._fetch(sql, deployment_id)]

    async def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
        return [event_from_row(row) for row in await self._fetch(sql, seq, limit)]

    # -- the work queue ------------------------------------------------------------------

    @runs_to_end
    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None:
        """Claim the oldest job that needs work; None when there is none left to take."""
        now = utc(now)
        expires_at = now + timedelta(seconds=lease_seconds)
        for _ in range(_CLAIM_ATTEMPTS):
            async with self._tx() as conn:
                row = await conn.fetchrow(_CLAIMABLE, now)
                if row is None:
                    return None
                if await conn.fetchval(_TAKE_LEASE, row["id"], owner, expires_at, now):
                    return deployment_from_row(row)
            # Another replica took it between our snapshot and our lock: look again.
        return None

    @runs_to_end
    async def heartbeat(
        self, deployment_id: str, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        rows = await self._fetch(
            """UPDATE leases SET expires_at = $3, heartbeat_at = $4
                WHERE deployment_id = $1 AND owner = $2 RETURNING owner""",
            deployment_id,
            owner,
            utc(now) + timedelta(seconds=lease_seconds),
            utc(now),
        )
        return bool(rows)

    @runs_to_end
    async def release(self, deployment_id: str, owner: str) -> None:
        await self._fetch(
            "DELETE FROM leases WHERE deployment_id = $1 AND owner = $2", deployment_id, owner
        )

    async def queued_before(self, cutoff: datetime) -> list[Deployment]:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE state = 'queued' AND updated_at < $1
                ORDER BY updated_at, id""",
            utc(cutoff),
        )
        return [deployment_from_row(row) for row in rows]

    async def schedule_retry(self, deployment_id: str, at: datetime) -> None:
        await self._set_retry(deployment_id, utc(at))

    async def give_up(self, deployment_id: str) -> None:
        await self._set_retry(deployment_id, None)

    @runs_to_end
    async def _set_retry(self, deployment_id: str, at: datetime | None) -> None:
        rows = await self._fetch(
            "UPDATE deployments SET retry_at = $2 WHERE id = $1 RETURNING id", deployment_id, at
        )
        if not rows:
            raise NotFound(f"no deployment {deployment_id}")


# -- connection set-up and error translation -------------------------------------------------


async def init_connection(conn: Any) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# -- helpers (each runs inside the caller's transaction) -------------------------------------


async def _by_key(conn: Any, key: str) -> Deployment | None:
    row = await conn.fetchrow(
        """SELECT d.* FROM dedup_keys AS k JOIN deployments AS d ON d.id = k.deployment_id
            WHERE k.key = $1""",
        key,
    )
    return None if row is None else deployment_from_row(row)


async def _by_id(conn: Any, deployment_id: str) -> Deployment | None:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment_id)
    return None if row is None else deployment_from_row(row)


async def _holder(conn: Any, stack: str) -> Deployment | None:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE active_stack = $1", stack)
    return None if row is None else deployment_from_row(row)


async def _keep_live(conn: Any, moved: Deployment, target: DeploymentState, now: datetime) -> None:
    """The live stack follows the deployment, in the transition's own transaction (`now`:
    when a stack nobody owned yet becomes its requester's)."""
    if makes_live(moved, target):
        await conn.execute(_MAKE_LIVE, moved.stack, moved.requester, now, moved.id)
    elif ends_live(target):
        await conn.execute("DELETE FROM live_stacks WHERE stack = $1", moved.stack)


async def _current(conn: Any, deployment_id: str) -> Deployment:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment_id)
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    return deployment_from_row(row)


async def _busy_text(conn: Any, stack: str) -> str:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE active_stack = $1", stack)
    return busy_unknown(stack) if row is None else busy_message(deployment_from_row(row))


async def _after_conflict(conn: Any, deployment: Deployment, dedup_key: str | None) -> Deployment:
    """The insert collided: a replayed request, a retried create, or the stack is held."""
    if dedup_key is not None and (known := await _by_key(conn, dedup_key)):
        return known
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment.id)
    if row is not None:
        return deployment_from_row(row)
    raise StackBusy(await _busy_text(conn, deployment.stack))


async def _append(conn: Any, event: Event) -> None:
    data = event.model_dump(mode="json")["data"]
    await conn.execute(
        _APPEND_EVENT,
        event.deployment_id,
        event.stack,
        event.kind,
        utc(event.at),
        event.actor,
        event.phase,
        event.state,
        event.duration,
        event.index,
        event.total,
        data,
    )
