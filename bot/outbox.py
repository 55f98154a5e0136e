"""Short leases on a deployment's Slack writes, so one replica at a time does each of them.

Three kinds: POST (the card's first chat.postMessage: two replicas never post two cards for
one request), DRAW (one chat.update at a time, each drawn from a fresh read: a card never
shows an older state than one it showed) and THREAD (one replica drains a deployment's
thread outbox, in order). A lease lives `LEASE_SECONDS` unless renewed: a killed replica's
work is taken over that long after it died, by whichever replica's sweep comes next.
The leases live in the card ledger (bot/ledger), shared by the replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from bot.ledger import CardLedger
from deployer import Clock

log = structlog.get_logger("aistack.bot.outbox")
POST, DRAW, THREAD = "post", "draw", "thread"
LEASE_SECONDS = 6.0


def owner_id() -> str:
    """This process among the replicas (and two bots in one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SlackLeases:
    def __init__(
        self,
        ledger: CardLedger,
        owner: str,
        *,
        seconds: float = LEASE_SECONDS,
        clock: Clock,
    ) -> None:
        self._ledger = ledger
        self.owner = owner
        self._seconds = seconds
        self._clock = clock

    async def take(self, deployment_id: str, kind: str) -> bool:
        """Take the lease, or renew it if this process holds it already."""
        return await self._ledger.take_lease(
            deployment_id, kind, self.owner, self._seconds, self._clock.now()
        )

    async def release(self, deployment_id: str, kind: str) -> None:
        try:
            await self._ledger.release_lease(deployment_id, kind, self.owner)
        except Exception as exc:  # it expires on its own
            log.warning("slack lease not released", deployment_id=deployment_id, error=repr(exc))

    def keep(self, deployment_id: str, kind: str) -> asyncio.Task[None]:
        """Renew a lease held until the task is cancelled (a Slack call may retry for long)."""
        return asyncio.ensure_future(self._renew(deployment_id, kind))

    @asynccontextmanager
    async def held(self, deployment_id: str, kind: str) -> AsyncIterator[bool]:
        """Whether this process got the lease; kept renewed inside, released after."""
        if not await self.take(deployment_id, kind):
            yield False
            return
        keeper = self.keep(deployment_id, kind)
        try:
            yield True
        finally:
            await stop(keeper)
            await self.release(deployment_id, kind)

    async def _renew(self, deployment_id: str, kind: str) -> None:
        while True:
            await self._clock.sleep(self._seconds / 3)
            try:
                if not await self.take(deployment_id, kind):
                    log.warning("slack lease lost", deployment_id=deployment_id, kind=kind)
            except Exception as exc:  # the database is down: try again at the next beat
                log.warning("slack lease not renewed", deployment_id=deployment_id,
                            error=repr(exc))  # fmt: skip


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
