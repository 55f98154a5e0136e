"""SlackNotifier: the deployer's Notifier port on Slack.

Each deployment with a card gets one writer task. It posts one thread reply per phase, in
order, and edits the card in place with the state read back from the store, at most once per
`interval` (events that arrive meanwhile are coalesced, never dropped). The final state is
always written: Slack errors are retried, 429s wait for Retry-After. Because the card's
channel and ts live in the store, whichever replica runs the job edits the same card.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from slack_sdk.errors import SlackApiError

from bot.messages import card, thread_line
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from deployer import TERMINAL, Deployment, Event, Notifier, Store
from deployer.core.phases import phases_for
from deployer.models import utcnow

log = structlog.get_logger("aistack.bot.notifier")


@dataclass
class _Card:
    deployment_id: str
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    unsettled: int = 0  # taken from the queue, not yet drawn
    done: bool = False


class SlackNotifier:
    def __init__(
        self,
        slack: SlackWriter,
        store: Store,
        tasks: Tasks,
        *,
        interval: float = 2.0,
        monotonic: Callable[[], float],
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._slack = slack
        self._store = store
        self._tasks = tasks
        self._interval = interval
        self._monotonic = monotonic
        self._now = now
        self._cards: dict[str, _Card] = {}
        self._pending = 0  # events not yet shown on a card
        self._idle = asyncio.Event()
        self._idle.set()

    async def notify(self, event: Event) -> None:
        current = self._cards.get(event.deployment_id)
        if current is None or current.done:
            current = _Card(event.deployment_id)
            self._cards[event.deployment_id] = current
            self._tasks.spawn(self._write(current), name=f"card:{event.deployment_id[:8]}")
        self._pending += 1
        self._idle.clear()
        current.queue.put_nowait(event)

    async def refresh(self, dep: Deployment, *, paused: bool = False) -> None:
        """Redraw a card now (after a click, or to say the bot is pausing)."""
        if dep.channel and dep.message_ts:
            await self._draw(dep, paused=paused)

    def writing(self, deployment_id: str) -> bool:
        """Whether a writer of this process is following that deployment's card."""
        current = self._cards.get(deployment_id)
        return current is not None and not current.done

    async def redraw_stale(self) -> int:
        """Redraw cards left behind their deployment (the bot died before drawing them)."""
        stale = [d for d in await self._store.stale_cards() if not self.writing(d.id)]
        for dep in stale:
            await self.refresh(dep)
        return len(stale)

    async def wait_idle(self) -> None:
        """Until every card is written to its latest state (tests, the demo, shutdown)."""
        await self._idle.wait()

    async def _write(self, target: _Card) -> None:
        try:
            dep = await self._store.get(target.deployment_id)
            if dep.channel and dep.message_ts:
                await self._follow(target, dep.channel, dep.message_ts)
        except (SlackApiError, TimeoutError) as exc:  # a card we cannot write: say so, go on
            log.error("card not updated", deployment_id=target.deployment_id, error=str(exc))
        finally:
            target.done = True
            if self._cards.get(target.deployment_id) is target:
                del self._cards[target.deployment_id]
            self._settle(target.queue.qsize() + target.unsettled)

    def _settle(self, count: int) -> None:
        self._pending -= count
        if self._pending <= 0:
            self._idle.set()

    async def _follow(self, target: _Card, channel: str, ts: str) -> None:
        drawn_at = float("-inf")
        while True:
            events = await _batch(target.queue)
            dep = await self._store.get(target.deployment_id)
            wait = drawn_at + self._interval - self._monotonic()
            if wait > 0 and dep.state not in TERMINAL:
                await asyncio.sleep(wait)  # coalesce: what arrives meanwhile joins this edit
                events += _waiting(target.queue)
                dep = await self._store.get(target.deployment_id)
            target.unsettled += len(events)
            for line in filter(None, map(thread_line, events)):
                await self._slack.post(channel, line, thread_ts=ts)
            await self._draw(dep)  # after the thread: the card never runs ahead of it
            drawn_at = self._monotonic()
            self._settle(target.unsettled)
            target.unsettled = 0
            if target.queue.empty() and dep.state in TERMINAL:
                return

    async def _draw(self, dep: Deployment, *, paused: bool = False) -> None:
        assert dep.channel and dep.message_ts
        phases = await self._store.phases(dep.id)
        total = len(phases_for(dep.operation))
        message = card(dep, phases, total=total, now=self._now(), paused=paused)
        await self._slack.update(dep.channel, dep.message_ts, message.text, message.blocks)
        if not paused:  # a paused card still has its resumed state to show
            await self._store.mark_card(dep.id, dep.version)


async def _batch(queue: asyncio.Queue[Event]) -> list[Event]:
    """At least one event, and every other one already waiting."""
    return [await queue.get(), *_waiting(queue)]


def _waiting(queue: asyncio.Queue[Event]) -> list[Event]:
    events = []
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            events.append(queue.get_nowait())
    return events


class Notifiers:
    """Several notifiers as one: each gets every event, in order."""

    def __init__(self, *notifiers: Notifier) -> None:
        self._all = notifiers

    async def notify(self, event: Event) -> None:
        for notifier in self._all:
            await notifier.notify(event)
