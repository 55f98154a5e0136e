"""PostgresLedger: the card ledger on the deployer's PostgreSQL database, with a pool of its own.

Each method is one short statement or transaction, and every write runs to its end even if
its caller is cancelled (`runs_to_end`, as the PostgresStore's). Leases are one conditional
upsert (ON CONFLICT reads the latest committed row, so two replicas never both hold one); a
channel's slot is reserved under `SELECT ... FOR UPDATE` of its row. Connection failures
become TransientError; the DSN never appears in an error text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bot.ledger.follow import GRACE_SECONDS, LogFollower
from bot.ledger.migrations import migrate_postgres
from bot.ledger.port import Card, Cursor, next_post_slot
from deployer import Clock, DeploymentReads
from deployer.storage import describe_dsn, runs_to_end, translated, utc

_CARD = "deployment_id, channel, ts, version"

_SET_CARD = f"""INSERT INTO slack_cards (deployment_id, channel, ts, version)
VALUES ($1, $2, $3, $4)
ON CONFLICT (deployment_id) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
    version = greatest(slack_cards.version, excluded.version)
RETURNING {_CARD}"""

_EXPECT = """INSERT INTO slack_cards (deployment_id, channel, seen) VALUES ($1, $2, $3)
ON CONFLICT (deployment_id) DO UPDATE SET seen = greatest(slack_cards.seen, excluded.seen)"""

_MOVE = """UPDATE slack_cursor SET through = $1, pending = $2, pending_at = $3
 WHERE name = 'events' AND through = $4 AND pending IS NOT DISTINCT FROM $5"""

_REPLIES_DUE = """SELECT c.deployment_id FROM slack_cards AS c
  LEFT JOIN slack_threads AS t ON t.deployment_id = c.deployment_id
 WHERE c.ts IS NOT NULL AND c.seen > coalesce(t.posted_through, 0)
 ORDER BY c.seen LIMIT $1"""

# Take a lease, or renew one already held: never one another owner holds unexpired.
_TAKE_LEASE = """INSERT INTO slack_leases (deployment_id, kind, owner, expires_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (deployment_id, kind) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at
 WHERE slack_leases.owner = excluded.owner OR slack_leases.expires_at <= $5
RETURNING owner"""

_MARK_REPLIES = """INSERT INTO slack_threads (deployment_id, posted_through) VALUES ($1, $2)
ON CONFLICT (deployment_id) DO UPDATE
SET posted_through = greatest(slack_threads.posted_through, excluded.posted_through)"""


class PostgresLedger(LogFollower):
    def __init__(
        self,
        pool: Any,
        reads: DeploymentReads,
        applied_migrations: list[int],
        *,
        clock: Clock | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        super().__init__(reads, clock=clock, grace=grace)
        self._pool = pool
        self.applied_migrations = applied_migrations  # what this open applied (tests, logs)

    @classmethod
    async def open(
        cls, dsn: str, reads: DeploymentReads, *, max_size: int = 4,
        server_settings: Mapping[str, str] | None = None, connect_timeout: float = 10.0,
        clock: Clock | None = None, grace: float = GRACE_SECONDS,
    ) -> PostgresLedger:  # fmt: skip
        with translated(describe_dsn(dsn)):
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=max_size, timeout=connect_timeout,
                server_settings=dict(server_settings or {}),
            )  # fmt: skip
        try:
            with translated(describe_dsn(dsn)):
                async with pool.acquire() as conn:
                    applied = await migrate_postgres(conn)
            return cls(pool, reads, applied, clock=clock, grace=grace)
        except BaseException:
            await pool.close()
            raise

    async def close(self) -> None:
        await self._pool.close()

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        with translated("PostgreSQL"):
            return list(await self._pool.fetch(sql, *args))

    @runs_to_end
    async def _write(self, sql: str, *args: Any) -> list[Any]:
        return await self._fetch(sql, *args)

    # -- cards ------------------------------------------------------------------------------
    async def card(self, deployment_id: str) -> Card | None:
        sql = f"SELECT {_CARD} FROM slack_cards WHERE deployment_id = $1"
        rows = await self._fetch(sql, deployment_id)
        return _card(rows[0]) if rows else None

    async def _set_card(self, card: Card) -> Card:
        rows = await self._write(_SET_CARD, card.deployment_id, card.channel, card.ts,
                                 card.version)  # fmt: skip
        return _card(rows[0])

    async def mark_card(self, deployment_id: str, version: int) -> None:
        await self._write(
            "UPDATE slack_cards SET version = greatest(version, $2) WHERE deployment_id = $1",
            deployment_id,
            version,
        )

    # -- following the event log -----------------------------------------------------------
    async def _cursor(self) -> Cursor:
        rows = await self._fetch("SELECT * FROM slack_cursor WHERE name = 'events'")
        return Cursor(rows[0]["through"], rows[0]["pending"], rows[0]["pending_at"])

    async def _move(self, old: Cursor, new: Cursor) -> None:
        at = None if new.pending_at is None else utc(new.pending_at)
        await self._write(_MOVE, new.through, new.pending, at, old.through, old.pending)

    async def _saw(self, deployment_id: str, seq: int) -> bool:
        rows = await self._write(
            """UPDATE slack_cards SET seen = greatest(seen, $2) WHERE deployment_id = $1
               RETURNING deployment_id""",
            deployment_id,
            seq,
        )
        return bool(rows)

    async def _expect(self, deployment_id: str, channel: str, seq: int) -> None:
        await self._write(_EXPECT, deployment_id, channel, seq)

    async def _unposted(self, limit: int) -> list[Card]:
        rows = await self._fetch(
            f"""SELECT {_CARD} FROM slack_cards WHERE ts IS NULL
                 ORDER BY seen, deployment_id LIMIT $1""",
            limit,
        )
        return [_card(row) for row in rows]

    async def _unchecked(self, limit: int) -> list[tuple[Card, int]]:
        rows = await self._fetch(
            f"""SELECT {_CARD}, seen FROM slack_cards WHERE ts IS NOT NULL AND seen > checked
                 ORDER BY seen LIMIT $1""",
            limit,
        )
        return [(_card(row), int(row["seen"])) for row in rows]

    async def _checked(self, deployment_id: str, seen: int) -> None:
        await self._write(
            "UPDATE slack_cards SET checked = greatest(checked, $2) WHERE deployment_id = $1",
            deployment_id,
            seen,
        )

    async def _replies_due(self, limit: int) -> list[str]:
        return [str(row["deployment_id"]) for row in await self._fetch(_REPLIES_DUE, limit)]

    # -- leases, the thread's cursor, the channels' pace ------------------------------------
    async def take_lease(
        self, deployment_id: str, kind: str, owner: str, seconds: float, now: datetime
    ) -> bool:
        now = utc(now)
        expires = now + timedelta(seconds=seconds)
        return bool(await self._write(_TAKE_LEASE, deployment_id, kind, owner, expires, now))

    async def release_lease(self, deployment_id: str, kind: str, owner: str) -> None:
        await self._write(
            "DELETE FROM slack_leases WHERE deployment_id = $1 AND kind = $2 AND owner = $3",
            deployment_id,
            kind,
            owner,
        )

    async def replies_posted(self, deployment_id: str) -> int:
        rows = await self._fetch(
            "SELECT posted_through FROM slack_threads WHERE deployment_id = $1", deployment_id
        )
        return int(rows[0]["posted_through"]) if rows else 0

    async def mark_replies_posted(self, deployment_id: str, through: int) -> None:
        await self._write(_MARK_REPLIES, deployment_id, through)

    @runs_to_end
    async def reserve_post_slot(self, channel: str, interval: float, now: datetime) -> datetime:
        with translated("PostgreSQL"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(  # the row exists, so the lock below serialises every replica
                    """INSERT INTO slack_channels (channel, next_post_at) VALUES ($1, $2)
                       ON CONFLICT (channel) DO NOTHING""",
                    channel,
                    utc(now),
                )
                reserved = await conn.fetchval(
                    "SELECT next_post_at FROM slack_channels WHERE channel = $1 FOR UPDATE",
                    channel,
                )
                slot = next_post_slot(reserved, interval, now)
                await conn.execute(
                    "UPDATE slack_channels SET next_post_at = $2 WHERE channel = $1",
                    channel,
                    slot + timedelta(seconds=interval),
                )
        return slot


def _card(row: Any) -> Card:
    return Card(row["deployment_id"], row["channel"], row["ts"], row["version"])
