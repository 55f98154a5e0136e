"""LogFollower: how every ledger learns of deployments, from the deployer's event log alone.

The ledger never reads the deployer's tables. It keeps a cursor on the event log
(DeploymentReads.events_after) and, per card, the newest event of its deployment it has read
(`seen`). From those:
- a request with a channel (the deployment says where its card goes) gets a card row,
  unposted, the first time the ledger reads one of its events: the request was stored before
  anything was posted, so a bot that died before posting it still has its card found;
- a posted card whose deployment logged events since the card was last found current is
  checked against the deployment's version (one read): behind it, it is stale;
- a posted card with events past its thread cursor owes replies.
Noting is idempotent, so replicas following the log side by side agree, and a restart reads
again from the cursor.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from datetime import timedelta

from bot.ledger.port import Card, Cursor
from deployer import Clock, DeploymentReads, Event, NotFound, SystemClock

# Longer than any store write may take (busy timeouts are 5 s): an event not visible yet
# after this long belongs to a write that never committed.
GRACE_SECONDS = 60.0
PAGE = 500


class LogFollower(ABC):
    """The part every ledger shares; each store gives the primitives below."""

    def __init__(
        self,
        reads: DeploymentReads,
        *,
        clock: Clock | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self._reads = reads
        self._clock = clock or SystemClock()  # times the cursor's grace
        self._grace = timedelta(seconds=grace)
        self._following = asyncio.Lock()  # one catch-up at a time in this process
        # What this process noted of the events after the cursor (they are read again at each
        # catch-up until the cursor passes them): saves a write, or a read, per event per look.
        self._noted: dict[str, int] = {}
        self._cardless: set[str] = set()  # no channel: the CLI's, they have no card

    # -- the store's primitives ------------------------------------------------------------
    @abstractmethod
    async def _cursor(self) -> Cursor: ...

    @abstractmethod
    async def _move(self, old: Cursor, new: Cursor) -> None:
        """Compare-and-set: another replica that moved it first wins (it read as much)."""

    @abstractmethod
    async def _saw(self, deployment_id: str, seq: int) -> bool:
        """Raise the card's `seen` to `seq`; False when the deployment has no card row."""

    @abstractmethod
    async def _expect(self, deployment_id: str, channel: str, seq: int) -> None:
        """Add the card of a request, unposted (a row there already is kept, `seen` raised)."""

    @abstractmethod
    async def _unposted(self, limit: int) -> list[Card]: ...

    @abstractmethod
    async def _unchecked(self, limit: int) -> list[tuple[Card, int]]:
        """Posted cards with events since they were last found current, and their `seen`."""

    @abstractmethod
    async def _checked(self, deployment_id: str, seen: int) -> None: ...

    @abstractmethod
    async def _replies_due(self, limit: int) -> list[str]: ...

    @abstractmethod
    async def _set_card(self, card: Card) -> Card: ...

    # -- what the ledger promises ----------------------------------------------------------
    async def set_card(self, deployment_id: str, channel: str, ts: str, version: int) -> Card:
        await self._reads.get(deployment_id)  # a card belongs to a deployment: NotFound else
        return await self._set_card(Card(deployment_id, channel, ts, version))

    async def unposted_cards(self, limit: int = 50) -> list[Card]:
        await self.catch_up()
        return await self._unposted(limit)

    async def unposted_replies(self, limit: int = 50) -> list[str]:
        await self.catch_up()
        return await self._replies_due(limit)

    async def stale_cards(self, limit: int = 50) -> list[Card]:
        await self.catch_up()
        stale = []
        for card, seen in await self._unchecked(limit):
            try:
                current = (await self._reads.get(card.deployment_id)).version
            except NotFound:
                current = card.version
            if current > card.version:
                stale.append(card)
            else:  # the card shows every event up to `seen`: read after they were
                await self._checked(card.deployment_id, seen)
        return stale

    async def catch_up(self) -> None:
        """Note the events logged since the cursor, then move it if it may."""
        async with self._following:
            cursor = await self._cursor()
            events = await self._read_after(cursor.through)
            await self._note(events)
            newest = max(cursor.through, events[-1].seq or 0) if events else cursor.through
            moved = cursor.after(newest, self._clock.now(), self._grace)
            if moved is not None:
                await self._move(cursor, moved)

    async def _read_after(self, seq: int) -> list[Event]:
        events: list[Event] = []
        while True:
            page = await self._reads.events_after(seq, PAGE)
            events += page
            if len(page) < PAGE:
                return events
            seq = page[-1].seq or seq

    async def _note(self, events: list[Event]) -> None:
        newest: dict[str, int] = {}
        for event in events:
            newest[event.deployment_id] = event.seq or 0
        for deployment_id, seq in newest.items():
            if deployment_id in self._cardless or self._noted.get(deployment_id, -1) >= seq:
                continue
            if not await self._saw(deployment_id, seq):
                channel = await self._channel_of(deployment_id)
                if channel is None:
                    self._cardless.add(deployment_id)
                    continue
                await self._expect(deployment_id, channel, seq)
            self._noted[deployment_id] = seq
        # only what is read again next time is worth remembering
        self._noted = {k: v for k, v in self._noted.items() if k in newest}
        self._cardless &= newest.keys()

    async def _channel_of(self, deployment_id: str) -> str | None:
        try:
            return (await self._reads.get(deployment_id)).channel
        except NotFound:  # the audit trail also logs requests that were refused
            return None
