"""The Slack side of PostgresStore: leases, the thread outbox, each channel's pace.

Kept apart from the engine's methods (and in tables of their own, `slack_*`) so that the
Slack state can move out of the deployer's store whole. Leases are one conditional upsert
(ON CONFLICT reads the latest committed row, so two replicas never both hold one); a
channel's slot is reserved under `SELECT ... FOR UPDATE` of its row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from deployer.core.models import Deployment

from .common import deployment_from_row, next_post_slot, runs_to_end, utc

# Take a Slack lease, or renew one already held: never one another owner holds unexpired.
_TAKE_SLACK_LEASE = """INSERT INTO slack_leases (deployment_id, kind, owner, expires_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (deployment_id, kind) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at
 WHERE slack_leases.owner = excluded.owner OR slack_leases.expires_at <= $5
RETURNING owner"""

_UNPOSTED_REPLIES = """SELECT d.id FROM deployments AS d
  JOIN (SELECT deployment_id, max(id) AS last FROM events GROUP BY deployment_id) AS e
    ON e.deployment_id = d.id
  LEFT JOIN slack_threads AS t ON t.deployment_id = d.id
 WHERE d.message_ts IS NOT NULL AND e.last > coalesce(t.posted_through, 0)
 ORDER BY d.updated_at LIMIT $1"""

_MARK_REPLIES = """INSERT INTO slack_threads (deployment_id, posted_through) VALUES ($1, $2)
ON CONFLICT (deployment_id) DO UPDATE
SET posted_through = greatest(slack_threads.posted_through, excluded.posted_through)"""


class PostgresSlackState:
    """Mixed into PostgresStore, which provides the transaction and the reads."""

    _tx: Callable[[], AbstractAsyncContextManager[Any]]

    _fetch: Callable[..., Awaitable[list[Any]]]

    async def unposted_cards(self, limit: int = 50) -> list[Deployment]:
        rows = await self._fetch(
            """SELECT * FROM deployments WHERE channel IS NOT NULL AND message_ts IS NULL
                ORDER BY created_at, id LIMIT $1""",
            limit,
        )
        return [deployment_from_row(row) for row in rows]

    @runs_to_end
    async def take_slack_lease(
        self, deployment_id: str, kind: str, owner: str, seconds: float, now: datetime
    ) -> bool:
        now = utc(now)
        expires = now + timedelta(seconds=seconds)
        rows = await self._fetch(_TAKE_SLACK_LEASE, deployment_id, kind, owner, expires, now)
        return bool(rows)

    @runs_to_end
    async def release_slack_lease(self, deployment_id: str, kind: str, owner: str) -> None:
        await self._fetch(
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

    @runs_to_end
    async def mark_replies_posted(self, deployment_id: str, through: int) -> None:
        await self._fetch(_MARK_REPLIES, deployment_id, through)

    async def unposted_replies(self, limit: int = 50) -> list[str]:
        return [str(row["id"]) for row in await self._fetch(_UNPOSTED_REPLIES, limit)]

    @runs_to_end
    async def reserve_post_slot(self, channel: str, interval: float, now: datetime) -> datetime:
        async with self._tx() as conn:
            await conn.execute(  # the row exists, so the lock below serialises every replica
                """INSERT INTO slack_channels (channel, next_post_at) VALUES ($1, $2)
                   ON CONFLICT (channel) DO NOTHING""",
                channel,
                utc(now),
            )
            reserved = await conn.fetchval(
                "SELECT next_post_at FROM slack_channels WHERE channel = $1 FOR UPDATE", channel
            )
            slot = next_post_slot(reserved, interval, now)
            await conn.execute(
                "UPDATE slack_channels SET next_post_at = $2 WHERE channel = $1",
                channel,
                slot + timedelta(seconds=interval),
            )
        return slot
