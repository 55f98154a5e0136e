"""SlackNotifier: the deployer's Notifier port on Slack.

Each deployment with a card gets two writers that never wait on each other:
- the card writer edits the card in place with the state read back from the store, at most
  once per `interval` (events that arrive meanwhile are coalesced, never dropped; a terminal
  state is drawn at once). chat.update is not paced with new messages, so the card shows each
  state within `interval` of it, however many replies wait for their turn in the channel;
- the thread writer posts the phase lines, in order. Lines that fall due within the channel's
  post interval share one reply, and the last phase waits a moment for the outcome, which
  mentions the requester: few posts, and the person hears how it ended.
Slack errors are retried, 429s wait for Retry-After. Because the card's channel and ts live in
the store, whichever replica runs the job edits the same card.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, TypeVar

import structlog
from slack_sdk.errors import SlackApiError

from bot.blocks import MAX_TEXT
from bot.messages import card, outcome_line, thread_line
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from deployer import TERMINAL, Deployment, DeploymentState, Event, Notifier, Operation, Store
from deployer.core.phases import phases_for
from deployer.models import StackSpec, utcnow
from deployer.records import Records

log = structlog.get_logger("aistack.bot.notifier")
PlanOf = Callable[[StackSpec, Operation], list[str]]
Sleep = Callable[[float], Awaitable[None]]
# The outcome follows the last phase by one store write: the phase's line waits for it, so
# both go in one reply. Bounded: if the outcome is late (a store outage, a shutdown), the
# phase goes alone.
OUTCOME_GRACE = 1.0


@dataclass
class _Writer:
    """One writer task of one deployment; what it has taken but not written is unsettled."""

    kind: ClassVar[str]
    deployment_id: str
    unsettled: int = 0
    done: bool = False

    def owed(self) -> int:
        return self.unsettled


@dataclass
class _Card(_Writer):
    kind = "card"
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    ending: asyncio.Event = field(default_factory=asyncio.Event)  # a terminal event is queued

    def owed(self) -> int:
        return self.unsettled + self.queue.qsize()


@dataclass(frozen=True)
class _Line:
    event: Event
    text: str | None  # None for an outcome: it is rendered from the store when posted
    due: float  # monotonic time it happened

    @property
    def outcome(self) -> bool:
        return _ends(self.event)

    @property
    def last_phase(self) -> bool:
        e = self.event
        return e.kind == "phase.done" and e.index is not None and e.index == e.total


@dataclass
class _Thread(_Writer):
    kind = "thread"
    lines: deque[_Line] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def owed(self) -> int:
        return self.unsettled + len(self.lines)


W = TypeVar("W", bound=_Writer)


class SlackNotifier:
    def __init__(
        self,
        slack: SlackWriter,
        store: Store,
        tasks: Tasks,
        *,
        plan_of: PlanOf,
        approval_ttl: float,
        interval: float = 2.0,
        monotonic: Callable[[], float],
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._slack = slack
        self._store = store
        self._records = Records(store)  # whose live stack a waiting request would replace
        self._tasks = tasks
        self._plan_of = plan_of
        self._ttl = timedelta(seconds=approval_ttl)
        self._interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._now = now
        self._cards: dict[str, _Card] = {}
        self._threads: dict[str, _Thread] = {}
        self._pending = 0  # events and lines not yet written
        self._idle = asyncio.Event()
        self._idle.set()

    async def notify(self, event: Event) -> None:
        card_writer = self._writer(self._cards, _Card, event.deployment_id, self._follow_card)
        card_writer.queue.put_nowait(event)
        if _ends(event):
            card_writer.ending.set()
        self._owe(1)
        text = thread_line(event)
        if text is not None or _ends(event):  # an ending may carry news, and ends a hold
            thread = self._writer(self._threads, _Thread, event.deployment_id, self._follow_thread)
            thread.lines.append(_Line(event, text, self._monotonic()))
            thread.arrived.set()
            self._owe(1)

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
        """Until every card and thread is written to its latest state (tests, demo, shutdown)."""
        await self._idle.wait()

    # -- writers --------------------------------------------------------------------------
    def _writer(
        self,
        running: dict[str, W],
        kind: Callable[[str], W],
        deployment_id: str,
        follow: Callable[[W, str, str], Awaitable[None]],
    ) -> W:
        """The deployment's writer of this kind, started if it has none (or it has ended)."""
        current = running.get(deployment_id)
        if current is None or current.done:
            current = running[deployment_id] = kind(deployment_id)
            name = f"{current.kind}:{deployment_id[:8]}"
            self._tasks.spawn(self._write(running, current, follow), name=name)
        return current

    async def _write(
        self, running: dict[str, W], target: W, follow: Callable[[W, str, str], Awaitable[None]]
    ) -> None:
        try:
            dep = await self._store.get(target.deployment_id)
            if dep.channel and dep.message_ts:
                await follow(target, dep.channel, dep.message_ts)
        except (SlackApiError, TimeoutError) as exc:  # a card we cannot write: say so, go on
            log.error(f"{target.kind} not updated", deployment_id=target.deployment_id,
                      error=str(exc))  # fmt: skip
        finally:
            # no await between the writer's last look at its work and this: nothing is lost
            target.done = True
            if running.get(target.deployment_id) is target:
                del running[target.deployment_id]
            self._settle(target.owed())

    def _owe(self, count: int) -> None:
        self._pending += count
        self._idle.clear()

    def _settle(self, count: int) -> None:
        self._pending -= count
        if self._pending <= 0:
            self._idle.set()

    def _settle_taken(self, target: _Writer) -> None:
        self._settle(target.unsettled)
        target.unsettled = 0

    # -- the card -------------------------------------------------------------------------
    async def _follow_card(self, target: _Card, channel: str, ts: str) -> None:
        drawn: Deployment | None = None
        drawn_at = float("-inf")
        while True:
            target.unsettled += len(await _batch(target.queue))
            target.ending.clear()
            dep = await self._store.get(target.deployment_id)
            wait = drawn_at + self._interval - self._monotonic()
            if wait > 0 and dep.state not in TERMINAL:
                await self._pause(wait, target.ending)  # coalesce; an ending cuts it short
                target.unsettled += len(_waiting(target.queue))
                dep = await self._store.get(target.deployment_id)
            if not _shown(drawn, dep):
                await self._draw(dep)
                drawn, drawn_at = dep, self._monotonic()
            self._settle_taken(target)
            if target.queue.empty() and dep.state in TERMINAL:
                return

    async def _draw(self, dep: Deployment, *, paused: bool = False) -> None:
        assert dep.channel and dep.message_ts
        phases = await self._store.phases(dep.id)
        total = len(phases_for(dep.operation))
        plan, expires_at = self._request(dep)
        replaces = await self._records.takeover(dep) if self._waiting(dep) else None
        message = card(dep, phases, total=total, now=self._now(), paused=paused,
                       plan=plan, expires_at=expires_at, replaces=replaces)  # fmt: skip
        await self._slack.update(dep.channel, dep.message_ts, message.text, message.blocks)
        if not paused:  # a paused card still has its resumed state to show
            await self._store.mark_card(dep.id, dep.version)

    @staticmethod
    def _waiting(dep: Deployment) -> bool:
        return dep.state is DeploymentState.REQUESTED

    def _request(self, dep: Deployment) -> tuple[list[str], datetime | None]:
        """What a request card showed when it was posted: approvers decide on the plan, and
        the request expires `approval_ttl` after it was made (as the expiry sweep counts)."""
        if not self._waiting(dep):
            return [], None
        return self._plan_of(dep.spec, dep.operation), dep.created_at + self._ttl

    # -- the thread -----------------------------------------------------------------------
    async def _follow_thread(self, target: _Thread, channel: str, ts: str) -> None:
        while True:
            reply = await self._reply(target)
            for text in _chunks(await self._texts(reply)):
                await self._slack.post(channel, text, thread_ts=ts)
            self._settle_taken(target)
            if not target.lines:
                return

    async def _reply(self, target: _Thread) -> list[_Line]:
        """The lines of the next reply: the first one, and every one due within the post
        interval after it. The last phase waits (briefly) for the outcome; an outcome ends it."""
        first = await self._take(target, math.inf)
        assert first is not None  # nothing limits the wait for a first line
        reply, closes = [first], first.due + self._slack.post_interval
        while not reply[-1].outcome:
            last = reply[-1]
            outcome_by = last.due + OUTCOME_GRACE if last.last_phase else closes
            line = await self._take(target, closes, outcome_by=outcome_by)
            if line is None:
                break
            reply.append(line)
        return reply

    async def _take(
        self, target: _Thread, until: float, *, outcome_by: float = -math.inf
    ) -> _Line | None:
        """The next line if it is due by `until` (monotonic), or an outcome due by
        `outcome_by`; it waits for one until then."""
        while True:
            if target.lines:
                head = target.lines[0]
                if head.due > (max(until, outcome_by) if head.outcome else until):
                    return None  # it opens the next reply
                target.unsettled += 1
                return target.lines.popleft()
            left = max(until, outcome_by) - self._monotonic()
            if left <= 0:
                return None
            target.arrived.clear()
            await self._pause(left, target.arrived)

    async def _texts(self, reply: list[_Line]) -> list[str]:
        texts = [line.text or await self._outcome(line.event) for line in reply]
        return [text for text in texts if text]

    async def _outcome(self, event: Event) -> str | None:
        """The outcome as of the event (the deployment may have moved on since: a retry)."""
        if await self._said_before(event):
            return None
        dep = await self._store.get(event.deployment_id)
        ended = dep.model_copy(update={"state": DeploymentState(event.state or dep.state)})
        return outcome_line(ended, await self._store.phases(dep.id))

    async def _said_before(self, event: Event) -> bool:
        """A rollback retried until it works fails again and again: the requester is told
        the first time (and when it works), not on every retry."""
        events = await self._store.events_for(event.deployment_id)
        return any(e.kind == event.kind and e.at < event.at for e in events)

    async def _pause(self, seconds: float, wake: asyncio.Event) -> None:
        """Wait `seconds` (math.inf: for ever), or less if `wake` is set meanwhile."""
        if wake.is_set():
            return
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(wake.wait())]
        if seconds != math.inf:
            waits.append(asyncio.ensure_future(self._sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


def _ends(event: Event) -> bool:
    """A transition into a terminal state: the card shows it at once, the thread may say it."""
    return event.kind.startswith("deployment.") and event.state in TERMINAL


def _shown(drawn: Deployment | None, dep: Deployment) -> bool:
    """The card already shows this ending (a terminal state does not change while it lasts)."""
    return (
        drawn is not None
        and drawn.state in TERMINAL
        and (drawn.version, drawn.state) == (dep.version, dep.state)
    )


def _chunks(texts: list[str]) -> list[str]:
    """Lines joined into as few replies as Slack's text limit allows; none is cut or lost."""
    chunks: list[str] = []
    for text in texts:
        if chunks and len(chunks[-1]) + 1 + len(text) <= MAX_TEXT:
            chunks[-1] += "\n" + text
        else:
            chunks.append(text)
    return chunks


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
