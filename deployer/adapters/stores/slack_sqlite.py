"""The Slack side of SqliteStore: leases, the thread outbox, each channel's pace.

Kept apart from the engine's methods (and in tables of their own, `slack_*`) so that the
Slack state can move out of the deployer's store whole. Every write holds SQLite's write lock
(`BEGIN IMMEDIATE`), so each check-and-write below is atomic across processes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from deployer.core.models import Deployment

from .common import deployment_from_row, iso, next_post_slot, runs_to_end

# Take a Slack lease, or renew one already held: never one another owner holds unexpired.
_TAKE_SLACK_LEASE = """INSERT INTO slack_leases (deployment_id, kind, owner, expires_at)
VALUES (:id, :kind, :owner, :expires_at)
ON CONFLICT (deployment_id, kind) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at
 WHERE slack_leases.owner = excluded.owner OR slack_leases.expires_at <= :now
RETURNING owner"""

_UNPOSTED_REPLIES = """SELECT d.id FROM deployments AS d
  JOIN (SELECT deployment_id, max(id) AS last FROM events GROUP BY deployment_id) AS e
    ON e.deployment_id = d.id
  LEFT JOIN slack_threads AS t ON t.deployment_id = d.id
 WHERE d.message_ts IS NOT NULL AND e.last > coalesce(t.posted_through, 0)
 ORDER BY d.updated_at LIMIT ?"""


class SqliteSlackState:
    """Mixed into SqliteStore, which provides the transaction and the reads."""

    _tx: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]

    _fetch: Callable[..., Awaitable[list[dict[str, Any]]]]

    async def unposted_cards(self, limit: int = 50) -> list[Deployment]:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE channel IS NOT NULL AND message_ts IS NULL
                ORDER BY created_at, id LIMIT ?""",
            (limit,),
        )
        return [deployment_from_row(row) for row in rows]

    @runs_to_end
    async def take_slack_lease(
        self, deployment_id: str, kind: str, owner: str, seconds: float, now: datetime
    ) -> bool:
        lease = {"id": deployment_id, "kind": kind, "owner": owner, "now": iso(now),
                 "expires_at": iso(now + timedelta(seconds=seconds))}  # fmt: skip
        async with self._tx() as conn:
            return await _one(conn, _TAKE_SLACK_LEASE, lease) is not None

    @runs_to_end
    async def release_slack_lease(self, deployment_id: str, kind: str, owner: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM slack_leases WHERE deployment_id = ? AND kind = ? AND owner = ?",
                (deployment_id, kind, owner),
            )

    async def replies_posted(self, deployment_id: str) -> int:
        rows = await self._fetch(
            "SELECT posted_through FROM slack_threads WHERE deployment_id = ?", (deployment_id,)
        )
        return int(rows[0]["posted_through"]) if rows else 0

    @runs_to_end
    async def mark_replies_posted(self, deployment_id: str, through: int) -> None:
        async with self._tx() as conn:
            await conn.execute(
                """INSERT INTO slack_threads (deployment_id, posted_through) VALUES (?, ?)
                   ON CONFLICT (deployment_id) DO UPDATE
                   SET posted_through = max(posted_through, excluded.posted_through)""",
                (deployment_id, through),
            )

    async def unposted_replies(self, limit: int = 50) -> list[str]:
        return [str(row["id"]) for row in await self._fetch(_UNPOSTED_REPLIES, (limit,))]

    @runs_to_end
    async def reserve_post_slot(self, channel: str, interval: float, now: datetime) -> datetime:
        async with self._tx() as conn:
            row = await _one(
                conn, "SELECT next_post_at FROM slack_channels WHERE channel = ?", (channel,)
            )
            reserved = None if row is None else datetime.fromisoformat(row["next_post_at"])
            slot = next_post_slot(reserved, interval, now)
            await conn.execute(
                """INSERT INTO slack_channels (channel, next_post_at) VALUES (?, ?)
                   ON CONFLICT (channel) DO UPDATE SET next_post_at = excluded.next_post_at""",
                (channel, iso(slot + timedelta(seconds=interval))),
            )
        return slot


async def _one(conn: aiosqlite.Connection, sql: str, params: Any) -> dict[str, Any] | None:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else dict(row)
