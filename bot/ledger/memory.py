"""MemoryLedger: the card ledger in a process's memory, beside a MemoryStore (tests, the
sandbox). One asyncio.Lock, and no write awaits anything once it holds it, so a cancellation
lands before a write or after it, never inside (as with the MemoryStore)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.ledger.follow import GRACE_SECONDS, LogFollower
from bot.ledger.port import Card, Cursor, next_post_slot
from deployer import Clock, DeploymentReads
from deployer.storage import utc


@dataclass
class _Row:
    card: Card
    seen: int = 0  # the newest event of its deployment the ledger has read
    checked: int = 0  # `seen` when the card was last found current


class MemoryLedger(LogFollower):
    def __init__(
        self,
        reads: DeploymentReads,
        *,
        clock: Clock | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        super().__init__(reads, clock=clock, grace=grace)
        self._lock = asyncio.Lock()
        self._rows: dict[str, _Row] = {}
        self._at = Cursor(0)
        self._leases: dict[tuple[str, str], tuple[str, datetime]] = {}  # -> owner, expiry
        self._replied: dict[str, int] = {}  # deployment id -> replies posted through seq
        self._next_post: dict[str, datetime] = {}  # channel -> its next free slot

    async def close(self) -> None:
        """Nothing to release; the data lives as long as the object."""

    # -- cards ------------------------------------------------------------------------------
    async def card(self, deployment_id: str) -> Card | None:
        async with self._lock:
            row = self._rows.get(deployment_id)
            return None if row is None else row.card

    async def _set_card(self, card: Card) -> Card:
        async with self._lock:
            row = self._rows.setdefault(card.deployment_id, _Row(card))
            row.card = replace(card, version=max(card.version, row.card.version))
            return row.card

    async def mark_card(self, deployment_id: str, version: int) -> None:
        async with self._lock:
            row = self._rows.get(deployment_id)
            if row is not None and version > row.card.version:
                row.card = replace(row.card, version=version)

    # -- following the event log -----------------------------------------------------------
    async def _cursor(self) -> Cursor:
        async with self._lock:
            return self._at

    async def _move(self, old: Cursor, new: Cursor) -> None:
        async with self._lock:
            if self._at == old:
                self._at = new

    async def _saw(self, deployment_id: str, seq: int) -> bool:
        async with self._lock:
            row = self._rows.get(deployment_id)
            if row is not None:
                row.seen = max(row.seen, seq)
            return row is not None

    async def _expect(self, deployment_id: str, channel: str, seq: int) -> None:
        async with self._lock:
            row = self._rows.setdefault(deployment_id, _Row(Card(deployment_id, channel)))
            row.seen = max(row.seen, seq)

    async def _unposted(self, limit: int) -> list[Card]:
        async with self._lock:
            rows = sorted((r for r in self._rows.values() if r.card.ts is None), key=_by_seen)
            return [r.card for r in rows[:limit]]

    async def _unchecked(self, limit: int) -> list[tuple[Card, int]]:
        async with self._lock:
            rows = [r for r in self._rows.values() if r.card.ts and r.seen > r.checked]
            return [(r.card, r.seen) for r in sorted(rows, key=_by_seen)[:limit]]

    async def _checked(self, deployment_id: str, seen: int) -> None:
        async with self._lock:
            row = self._rows[deployment_id]
            row.checked = max(row.checked, seen)

    async def _replies_due(self, limit: int) -> list[str]:
        async with self._lock:
            replied = self._replied
            due = [r for r in self._rows.values()
                   if r.card.ts and r.seen > replied.get(r.card.deployment_id, 0)]  # fmt: skip
            return [r.card.deployment_id for r in sorted(due, key=_by_seen)[:limit]]

    # -- leases, the thread's cursor, the channels' pace ------------------------------------
    async def take_lease(
        self, deployment_id: str, kind: str, owner: str, seconds: float, now: datetime
    ) -> bool:
        async with self._lock:
            held = self._leases.get((deployment_id, kind))
            if held is not None and held[0] != owner and held[1] > utc(now):
                return False
            self._leases[(deployment_id, kind)] = (owner, utc(now) + timedelta(seconds=seconds))
            return True

    async def release_lease(self, deployment_id: str, kind: str, owner: str) -> None:
        async with self._lock:
            held = self._leases.get((deployment_id, kind))
            if held is not None and held[0] == owner:
                del self._leases[(deployment_id, kind)]

    async def replies_posted(self, deployment_id: str) -> int:
        async with self._lock:
            return self._replied.get(deployment_id, 0)

    async def mark_replies_posted(self, deployment_id: str, through: int) -> None:
        async with self._lock:
            self._replied[deployment_id] = max(self._replied.get(deployment_id, 0), through)

    async def reserve_post_slot(self, channel: str, interval: float, now: datetime) -> datetime:
        async with self._lock:
            slot = next_post_slot(self._next_post.get(channel), interval, now)
            self._next_post[channel] = slot + timedelta(seconds=interval)
            return slot


def _by_seen(row: _Row) -> tuple[int, str]:
    return (row.seen, row.card.deployment_id)
