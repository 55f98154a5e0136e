"""PostgresStore: the Store port on PostgreSQL (asyncpg pool), shared by every replica.

Each method is one short transaction. Every write runs to its end even if its caller is
cancelled (`runs_to_end`): asyncpg would answer the cancellation with a cancel request and
return at once, while the COMMIT it had sent could still land later, after the caller had
moved on (a rollback reading the phases would miss one). Claims lock the candidate row with
`FOR UPDATE SKIP LOCKED`, then take the lease with a conditional upsert that re-reads the
lease as committed, so two replicas never hold the same job. Connection failures become
TransientError; the DSN (it may hold a password) never appears in an error text. The SQL it
runs (statements, and the helpers that run them inside a transaction) is in postgres_sql.py.
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

from . import postgres_sql as sql
from .common import (
    active_stack,
    busy_message,
    deployment_from_row,
    deployment_values,
    event_from_row,
    failed_rollbacks,
    live_from_row,
    not_transferred,
    phase_from_row,
    stale_message,
)
from .migrations import migrate_postgres

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

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        with translated("PostgreSQL"):
            return list(await self._pool.fetch(query, *args))

    # -- deployments ---------------------------------------------------------------------

    @runs_to_end
    async def create(
        self, deployment: Deployment, *, dedup_key: str | None = None,
        events: Sequence[Event] = (),
    ) -> Deployment:  # fmt: skip
        values = deployment_values(deployment)
        async with self._tx() as conn:
            if dedup_key is not None and (known := await sql.by_key(conn, dedup_key)):
                return known
            if (known := await sql.by_id(conn, deployment.id)) is not None:
                return known  # a retried create: already done
            # Read committed: an approval landing just after this look lets a request in
            # beside the holder; harmless, its own approval is then refused by the index.
            if (holder := await sql.holder(conn, deployment.stack)) is not None:
                raise StackBusy(busy_message(holder))
            try:
                async with conn.transaction():  # a savepoint: undone alone on a conflict
                    row = await conn.fetchrow(sql.INSERT, *(values[c] for c in sql.INSERT_COLUMNS))
                    if dedup_key is not None:
                        await conn.execute(
                            """INSERT INTO dedup_keys (key, deployment_id, created_at)
                               VALUES ($1, $2, $3)""",
                            dedup_key,
                            deployment.id,
                            self._clock.now(),
                        )
            except asyncpg.UniqueViolationError:
                return await sql.after_conflict(conn, deployment, dedup_key)
            for event in events:
                await sql.append(conn, event)
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
        return [deployment_from_row(row) for row in await self._fetch(sql.LATEST)]

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
                    row = await conn.fetchrow(sql.TRANSITION, *args)
                    if row is not None:
                        now = self._clock.now()
                        row = await sql.keep_live(conn, deployment, target, now) or row
                    if row is not None and event is not None:
                        await sql.append(conn, event)
            except asyncpg.UniqueViolationError:
                raise StackBusy(await sql.busy_text(conn, deployment.stack)) from None
            if row is None:
                current = await sql.current(conn, deployment.id)
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

    async def live_stacks(self) -> list[LiveStack]:
        rows = await self._fetch("SELECT * FROM live_stacks ORDER BY stack")
        return [live_from_row(row) for row in rows]

    async def releases(self, stack: str) -> list[Deployment]:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE stack = $1 AND release IS NOT NULL
                ORDER BY release""",
            stack,
        )
        return [deployment_from_row(row) for row in rows]

    @runs_to_end
    async def extend(self, stack: str, expires_at: datetime, event: Event) -> LiveStack:
        async with self._tx() as conn:
            row = await conn.fetchrow(sql.EXTEND, stack, utc(expires_at))
            if row is None:
                raise NotFound(f"{stack} is not live: there is nothing to extend")
            await sql.append(conn, event)
        return live_from_row(row)

    @runs_to_end
    async def mark_noticed(self, stack: str, expires_at: datetime, event: Event) -> bool:
        async with self._tx() as conn:
            if await conn.fetchrow(sql.MARK_NOTICED, stack, utc(expires_at)) is None:
                return False
            await sql.append(conn, event)
        return True

    @runs_to_end
    async def transfer(self, stack: str, owner: str, to: str, event: Event) -> LiveStack:
        async with self._tx() as conn:
            row = await conn.fetchrow(sql.TRANSFER, stack, owner, to, self._clock.now())
            if row is None:
                kept = await conn.fetchrow("SELECT * FROM live_stacks WHERE stack = $1", stack)
                raise not_transferred(stack, owner, None if kept is None else live_from_row(kept))
            await sql.append(conn, event)
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
                await conn.execute(sql.SAVE_PHASE, *args)
                if event is not None:
                    await sql.append(conn, event)
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
            await sql.append(conn, event)

    async def events(self, stack: str) -> list[Event]:
        query = f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE stack = $1 ORDER BY id"
        return [event_from_row(row) for row in await self._fetch(query, stack)]

    async def events_for(self, deployment_id: str) -> list[Event]:
        query = f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE deployment_id = $1 ORDER BY id"
        return [event_from_row(row) for row in await self._fetch(query, deployment_id)]

    async def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        query = f"SELECT {sql.EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
        return [event_from_row(row) for row in await self._fetch(query, seq, limit)]

    # -- the work queue ------------------------------------------------------------------

    @runs_to_end
    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None:
        """Claim the oldest job that needs work; None when there is none left to take."""
        now = utc(now)
        expires_at = now + timedelta(seconds=lease_seconds)
        for _ in range(_CLAIM_ATTEMPTS):
            async with self._tx() as conn:
                row = await conn.fetchrow(sql.CLAIMABLE, now)
                if row is None:
                    return None
                if await conn.fetchval(sql.TAKE_LEASE, row["id"], owner, expires_at, now):
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
