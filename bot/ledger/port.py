"""What the bot keeps of Slack: the CardLedger port, and the values its stores share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from deployer.storage import utc


@dataclass(frozen=True)
class Card:
    """A deployment's card: the channel it goes to, its message once posted, and the version
    of the deployment it last showed."""

    deployment_id: str
    channel: str
    ts: str | None = None  # None: not posted yet
    version: int = -1  # -1: it showed no version yet


class CardLedger(Protocol):
    """The bot's Slack state, on the database the deployer uses but in tables of its own
    (`slack_*`). What it knows of deployments it reads through the deployer's
    DeploymentReads: it follows the event log (every request and every transition writes an
    event, engine/journal.py) to learn of new requests and of deployments that moved.
    Implementations: bot/ledger/{memory,sqlite,postgres}.py."""

    async def close(self) -> None: ...

    # A deployment's card. `set_card` records the message once posted (NotFound for a
    # deployment that does not exist) with the version it shows; `mark_card` records a
    # redraw, and never lets an older draw win.
    async def card(self, deployment_id: str) -> Card | None: ...
    async def set_card(self, deployment_id: str, channel: str, ts: str, version: int) -> Card: ...
    async def mark_card(self, deployment_id: str, version: int) -> None: ...

    # ... the requests whose card was never posted (a channel, no message yet), oldest news
    # first; and the posted cards behind their deployment (it moved on, nobody drew it)
    async def unposted_cards(self, limit: int = 50) -> list[Card]: ...
    async def stale_cards(self, limit: int = 50) -> list[Card]: ...

    # ... a short lease per (deployment, kind of Slack write): one replica posts the card,
    # draws it, or posts its thread replies at a time (take renews one already held);
    async def take_lease(
        self, deployment_id: str, kind: str, owner: str, seconds: float, now: datetime
    ) -> bool: ...
    async def release_lease(self, deployment_id: str, kind: str, owner: str) -> None: ...

    # ... the thread's outbox: replies are posted through event seq N (0: none yet), and the
    # deployments with a card whose events go past their cursor;
    async def replies_posted(self, deployment_id: str) -> int: ...
    async def mark_replies_posted(self, deployment_id: str, through: int) -> None: ...
    async def unposted_replies(self, limit: int = 50) -> list[str]: ...

    # ... and a channel's next slot for a new message, reserved: every replica keeps one pace
    async def reserve_post_slot(self, channel: str, interval: float, now: datetime) -> datetime: ...


@dataclass(frozen=True)
class Cursor:
    """How far the ledger has read the deployer's event log.

    Every event up to `through` has been noted, and none can still appear below it. Above it,
    each catch-up reads again: on PostgreSQL an event may commit after one with a higher id,
    so the events read are only trusted complete once every write that could still add one
    has ended. `pending` is the newest event a read saw at `pending_at`; `through` moves up
    to it once `grace` (longer than any store write) has passed since."""

    through: int
    pending: int | None = None
    pending_at: datetime | None = None

    def after(self, newest: int, now: datetime, grace: timedelta) -> Cursor | None:
        """The cursor after a read that saw events up to `newest`; None: it stays."""
        if self.pending is None or self.pending_at is None:
            return Cursor(self.through, newest, now) if newest > self.through else None
        if utc(now) - utc(self.pending_at) < grace:
            return None
        through = max(self.through, self.pending)
        return Cursor(through, newest, now) if newest > through else Cursor(through)


def next_post_slot(reserved: datetime | None, interval: float, now: datetime) -> datetime:
    """The slot a new message may take: now, or the one after the last reserved, whichever
    is later. The caller stores slot + interval as the channel's next."""
    return now if reserved is None else max(utc(reserved), utc(now))
