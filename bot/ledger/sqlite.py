"""SqliteLedger: the card ledger on the deployer's SQLite file, through a connection of its own.

As the SqliteStore: one connection in autocommit mode, used by one coroutine at a time; every
write runs inside `BEGIN IMMEDIATE`, so each check-and-write holds SQLite's one write lock
and is atomic across processes; every use of the connection runs to its end (`runs_to_end`,
`finish`), as aiosqlite's thread carries on when its caller is cancelled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.ledger.follow import GRACE_SECONDS, LogFollower
from bot.ledger.migrations import migrate_sqlite
from bot.ledger.port import Card, Cursor, next_post_slot
from deployer import Clock, DeploymentReads
from deployer.storage import SqliteDatabase, iso, runs_to_end

_CARD = "deployment_id, channel, ts, version"

_SET_CARD = f"""INSERT INTO slack_cards (deployment_id, channel, ts, version) VALUES (?, ?, ?, ?)
ON CONFLICT (deployment_id) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
    version = max(slack_cards.version, excluded.version)
RETURNING {_CARD}"""

_EXPECT = """INSERT INTO slack_cards (deployment_id, channel, seen) VALUES (?, ?, ?)
ON CONFLICT (deployment_id) DO UPDATE SET seen = max(slack_cards.seen, excluded.seen)"""

_MOVE = """UPDATE slack_cursor SET through = ?, pending = ?, pending_at = ?
 WHERE name = 'events' AND through = ? AND pending IS ?"""

_REPLIES_DUE = """SELECT c.deployment_id FROM slack_cards AS c
  LEFT JOIN slack_threads AS t ON t.deployment_id = c.deployment_id
 WHERE c.ts IS NOT NULL AND c.seen > coalesce(t.posted_through, 0)
 ORDER BY c.seen LIMIT ?"""

# Take a lease, or renew one already held: never one another owner holds unexpired.
_TAKE_LEASE = """INSERT INTO slack_leases (deployment_id, kind, owner, expires_at)
VALUES (:id, :kind, :owner, :expires_at)
ON CONFLICT (deployment_id, kind) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at
 WHERE slack_leases.owner = excluded.owner OR slack_leases.expires_at <= :now
RETURNING owner"""

_MARK_REPLIES = """INSERT INTO slack_threads (deployment_id, posted_through) VALUES (?, ?)
ON CONFLICT (deployment_id) DO UPDATE
SET posted_through = max(posted_through, excluded.posted_through)"""

_NEXT_POST = """INSERT INTO slack_channels (channel, next_post_at) VALUES (?, ?)
ON CONFLICT (channel) DO UPDATE SET next_post_at = excluded.next_post_at"""

Row = dict[str, Any]


class SqliteLedger(LogFollower):
    def __init__(
        self,
        db: SqliteDatabase,
        reads: DeploymentReads,
        *,
        clock: Clock | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        super().__init__(reads, clock=clock, grace=grace)
        self._db = db
        self.applied_migrations = db.applied  # what this open applied (tests, logs)

    @classmethod
    async def open(
        cls, path: str | Path, reads: DeploymentReads, *, busy_timeout_ms: int = 5000,
        clock: Clock | None = None, grace: float = GRACE_SECONDS,
    ) -> SqliteLedger:  # fmt: skip
        db = await SqliteDatabase.open(path, busy_timeout_ms, migrate_sqlite)
        return cls(db, reads, clock=clock, grace=grace)

    async def close(self) -> None:
        await self._db.close()

    @runs_to_end
    async def _write(self, sql: str, params: Any = ()) -> list[Row]:
        async with self._db.write() as conn, conn.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    # -- cards ------------------------------------------------------------------------------
    async def card(self, deployment_id: str) -> Card | None:
        sql = f"SELECT {_CARD} FROM slack_cards WHERE deployment_id = ?"
        rows = await self._db.rows(sql, (deployment_id,))
        return _card(rows[0]) if rows else None

    async def _set_card(self, card: Card) -> Card:
        params = (card.deployment_id, card.channel, card.ts, card.version)
        return _card((await self._write(_SET_CARD, params))[0])

    async def mark_card(self, deployment_id: str, version: int) -> None:
        await self._write(
            "UPDATE slack_cards SET version = max(version, ?) WHERE deployment_id = ?",
            (version, deployment_id),
        )

    # -- following the event log -----------------------------------------------------------
    async def _cursor(self) -> Cursor:
        rows = await self._db.rows("SELECT * FROM slack_cursor WHERE name = 'events'")
        at = rows[0]["pending_at"]
        return Cursor(rows[0]["through"], rows[0]["pending"],
                      None if at is None else datetime.fromisoformat(at))  # fmt: skip

    async def _move(self, old: Cursor, new: Cursor) -> None:
        await self._write(
            _MOVE, (new.through, new.pending, iso(new.pending_at), old.through, old.pending)
        )

    async def _saw(self, deployment_id: str, seq: int) -> bool:
        rows = await self._write(
            """UPDATE slack_cards SET seen = max(seen, ?) WHERE deployment_id = ?
               RETURNING deployment_id""",
            (seq, deployment_id),
        )
        return bool(rows)

    async def _expect(self, deployment_id: str, channel: str, seq: int) -> None:
        await self._write(_EXPECT, (deployment_id, channel, seq))

    async def _unposted(self, limit: int) -> list[Card]:
        rows = await self._db.rows(
            f"""SELECT {_CARD} FROM slack_cards WHERE ts IS NULL
                 ORDER BY seen, deployment_id LIMIT ?""",
            (limit,),
        )
        return [_card(row) for row in rows]

    async def _unchecked(self, limit: int) -> list[tuple[Card, int]]:
        rows = await self._db.rows(
            f"""SELECT {_CARD}, seen FROM slack_cards WHERE ts IS NOT NULL AND seen > checked
                 ORDER BY seen LIMIT ?""",
            (limit,),
        )
        return [(_card(row), int(row["seen"])) for row in rows]

    async def _checked(self, deployment_id: str, seen: int) -> None:
        await self._write(
            "UPDATE slack_cards SET checked = max(checked, ?) WHERE deployment_id = ?",
            (seen, deployment_id),
        )

    async def _replies_due(self, limit: int) -> list[str]:
        return [str(row["deployment_id"]) for row in await self._db.rows(_REPLIES_DUE, (limit,))]

    # -- leases, the thread's cursor, the channels' pace ------------------------------------
    async def take_lease(
        self, deployment_id: str, kind: str, owner: str, seconds: float, now: datetime
    ) -> bool:
        lease = {"id": deployment_id, "kind": kind, "owner": owner, "now": iso(now),
                 "expires_at": iso(now + timedelta(seconds=seconds))}  # fmt: skip
        return bool(await self._write(_TAKE_LEASE, lease))

    async def release_lease(self, deployment_id: str, kind: str, owner: str) -> None:
        await self._write(
            "DELETE FROM slack_leases WHERE deployment_id = ? AND kind = ? AND owner = ?",
            (deployment_id, kind, owner),
        )

    async def replies_posted(self, deployment_id: str) -> int:
        rows = await self._db.rows(
            "SELECT posted_through FROM slack_threads WHERE deployment_id = ?", (deployment_id,)
        )
        return int(rows[0]["posted_through"]) if rows else 0

    async def mark_replies_posted(self, deployment_id: str, through: int) -> None:
        await self._write(_MARK_REPLIES, (deployment_id, through))

    @runs_to_end
    async def reserve_post_slot(self, channel: str, interval: float, now: datetime) -> datetime:
        async with self._db.write() as conn:
            sql = "SELECT next_post_at FROM slack_channels WHERE channel = ?"
            async with conn.execute(sql, (channel,)) as cursor:
                row = await cursor.fetchone()
            reserved = None if row is None else datetime.fromisoformat(row["next_post_at"])
            slot = next_post_slot(reserved, interval, now)
            await conn.execute(_NEXT_POST, (channel, iso(slot + timedelta(seconds=interval))))
        return slot


def _card(row: Row) -> Card:
    return Card(row["deployment_id"], row["channel"], row["ts"], row["version"])
