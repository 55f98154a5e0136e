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

Both survive a SIGKILL and a second replica (bot/outbox.py leases). The thread's outbox is the
store's event log: the writer reads the events after the deployment's cursor ("replies posted
through event N"), posts them, then moves the cursor; an event here is only a wake-up. Each
card edit is drawn from a read made under the deployment's draw lease, so whichever replica
draws it, a card never goes back to an older state. The periodic sweep posts cards that were
never posted, redraws cards left behind, and resumes threads nobody is posting.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from slack_sdk.errors import SlackApiError

from bot.blocks import Message
from bot.messages import card, outcome_line, thread_line
from bot.outbox import DRAW, LEASE_SECONDS, POST, THREAD, SlackLeases, stop
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from bot.writers import (
    CardWriter,
    Line,
    ThreadWriter,
    Writer,
    batch,
    chunks,
    ends,
    posted_through,
    shown,
    waiting,
)
from deployer import (
    TERMINAL,
    Deployment,
    DeploymentState,
    Event,
    Notifier,
    Operation,
    StackSpec,
    Store,
    Takeover,
    phases_for,
)
from deployer.core.models import utcnow

log = structlog.get_logger("aistack.bot.notifier")
PlanOf = Callable[[StackSpec, Operation], list[str]]
TakeoverOf = Callable[[Deployment], Awaitable[Takeover | None]]
Sleep = Callable[[float], Awaitable[None]]
# The outcome follows the last phase by one store write: the phase's line waits for it, so
# both go in one reply. Bounded: if the outcome is late (a store outage, a shutdown), the
# phase goes alone.
OUTCOME_GRACE = 1.0
# Another replica is drawing the card: its edit takes a moment; wait for it that long at most.
DRAW_RETRY = 0.05
DRAW_ATTEMPTS = int(LEASE_SECONDS / DRAW_RETRY) + 1
NO_CARD = ("not_in_channel", "channel_not_found", "is_archived")
RenderCard = Callable[[Deployment], Awaitable[Message]]


W = TypeVar("W", bound=Writer)


class SlackNotifier:
    def __init__(
        self,
        slack: SlackWriter,
        store: Store,
        tasks: Tasks,
        *,
        plan_of: PlanOf,
        takeover_of: TakeoverOf,
        approval_ttl: float,
        leases: SlackLeases,
        interval: float = 2.0,
        monotonic: Callable[[], float],
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._slack = slack
        self._store = store
        self._tasks = tasks
        self._plan_of = plan_of
        self._takeover_of = takeover_of  # whose live stack a waiting request would replace
        self._ttl = timedelta(seconds=approval_ttl)
        self._interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._now = now
        self._leases = leases
        self._drawing: dict[str, asyncio.Lock] = {}  # one draw at a time per card, here
        self._posting: set[str] = set()  # cards this process is posting now
        self._unpostable: set[str] = set()  # channels the bot cannot post in: not retried
        self._cards: dict[str, CardWriter] = {}
        self._threads: dict[str, ThreadWriter] = {}
        self._pending = 0  # events and lines not yet written
        self._idle = asyncio.Event()
        self._idle.set()

    async def notify(self, event: Event) -> None:
        card_writer = self._writer(self._cards, CardWriter, event.deployment_id, self._follow_card)
        card_writer.queue.put_nowait(event)
        if ends(event):
            card_writer.ending.set()
        self._owe(1)
        if thread_line(event) is not None or ends(event):  # an ending may carry news
            thread = self._writer(
                self._threads, ThreadWriter, event.deployment_id, self._follow_thread
            )
            thread.heard += 1  # the writer reads the line back from the store
            thread.arrived.set()
            self._owe(1)

    async def refresh(self, dep: Deployment, *, paused: bool = False) -> None:
        """Redraw a card now (after a click, or to say the bot is pausing)."""
        if dep.channel and dep.message_ts:
            await self._draw(dep.id, paused=paused)

    async def post_card(self, deployment_id: str, render: RenderCard) -> Deployment | None:
        """Post a request's first card, once whatever the replicas and restarts (the POST
        lease, then a look that it is still unposted); None when it was posted already or
        another replica is posting it. Then catch it up: a redraw if the request moved on
        meanwhile (approved, running), and the thread replies due so far."""
        if deployment_id in self._posting:  # this process is posting it (the lease is ours)
            return None
        self._posting.add(deployment_id)
        try:
            async with self._leases.held(deployment_id, POST) as mine:
                dep = await self._store.get(deployment_id)
                if not mine or dep.message_ts or not dep.channel:
                    return None
                message = await render(dep)
                ts = await self._slack.post(dep.channel, message.text, message.blocks)
                posted = await self._store.set_message(dep.id, dep.channel, ts)
                await self._store.mark_card(dep.id, dep.version)  # what the new card shows
        finally:
            self._posting.discard(deployment_id)
        if posted.version > dep.version:
            self._tasks.spawn(self.refresh(posted), name=f"card:{dep.id[:8]}")
        self._writer(self._threads, ThreadWriter, dep.id, self._follow_thread)
        return posted

    async def post_unposted(self) -> int:
        """Post the cards of requests acknowledged but never carded (the bot died first)."""
        posted = 0
        for dep in await self._store.unposted_cards():
            if dep.channel in self._unpostable:
                continue
            try:
                posted += await self.post_card(dep.id, self._render) is not None
            except SlackApiError as exc:
                if exc.response.get("error") in NO_CARD:  # not retried by this process
                    self._unpostable.add(dep.channel or "")
                log.warning("card not posted", deployment_id=dep.id, error=str(exc))
        return posted

    async def resume_threads(self) -> int:
        """Post the replies due under cards that no writer here is on (this process restarted,
        or the replica that was posting them died); a replica posting them keeps its lease."""
        ids = [i for i in await self._store.unposted_replies() if i not in self._threads]
        for deployment_id in ids:
            self._writer(self._threads, ThreadWriter, deployment_id, self._follow_thread)
        return len(ids)

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
            if target.keeper is not None:  # after `done`: news meanwhile starts a new writer
                await stop(target.keeper)
                await self._leases.release(target.deployment_id, target.kind)

    def _owe(self, count: int) -> None:
        self._pending += count
        self._idle.clear()

    def _settle(self, count: int) -> None:
        self._pending -= count
        if self._pending <= 0:
            self._idle.set()

    def _settle_taken(self, target: Writer) -> None:
        self._settle(target.unsettled)
        target.unsettled = 0

    # -- the card -------------------------------------------------------------------------
    async def _follow_card(self, target: CardWriter, channel: str, ts: str) -> None:
        drawn: Deployment | None = None
        drawn_at = float("-inf")
        while True:
            target.unsettled += len(await batch(target.queue))
            target.ending.clear()
            dep = await self._store.get(target.deployment_id)
            wait = drawn_at + self._interval - self._monotonic()
            if wait > 0 and dep.state not in TERMINAL:
                await self._pause(wait, target.ending)  # coalesce; an ending cuts it short
                target.unsettled += len(waiting(target.queue))
                dep = await self._store.get(target.deployment_id)
            if not shown(drawn, dep):
                drawn = await self._draw(dep.id) or drawn  # None: another replica drew it
                drawn_at = self._monotonic()
            self._settle_taken(target)
            if target.queue.empty() and dep.state in TERMINAL:
                return

    async def _draw(self, deployment_id: str, *, paused: bool = False) -> Deployment | None:
        """Draw the card from the deployment as it is now, read under its DRAW lease: each
        edit shows a state no older than the one before, whichever replica made it. None
        when the lease stayed taken (the replica holding it draws the news, or the sweep)."""
        async with self._drawing.setdefault(deployment_id, asyncio.Lock()):
            if not await self._draw_lease(deployment_id):
                return None
            try:
                dep = await self._store.get(deployment_id)
                await self._update(dep, paused=paused)
                return dep
            finally:
                await self._leases.release(deployment_id, DRAW)

    async def _draw_lease(self, deployment_id: str) -> bool:
        for _ in range(DRAW_ATTEMPTS):
            if await self._leases.take(deployment_id, DRAW):
                return True
            await self._sleep(DRAW_RETRY)
        return False

    async def _update(self, dep: Deployment, *, paused: bool) -> None:
        assert dep.channel and dep.message_ts
        message = await self._render(dep, paused=paused)
        await self._slack.update(dep.channel, dep.message_ts, message.text, message.blocks)
        if not paused:  # a paused card still has its resumed state to show
            await self._store.mark_card(dep.id, dep.version)

    async def _render(self, dep: Deployment, *, paused: bool = False) -> Message:
        phases = await self._store.phases(dep.id)
        total = len(phases_for(dep.operation))
        plan, expires_at = self._request(dep)
        replaces = await self._takeover_of(dep) if self._waiting(dep) else None
        return card(dep, phases, total=total, now=self._now(), paused=paused,
                    plan=plan, expires_at=expires_at, replaces=replaces)  # fmt: skip

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
    async def _follow_thread(self, target: ThreadWriter, channel: str, ts: str) -> None:
        """Drain the deployment's outbox in order under its THREAD lease; the cursor moves
        after each reply, so a restart or another replica goes on where this one stopped."""
        if not await self._leases.take(target.deployment_id, THREAD):
            return  # another replica is posting them
        target.keeper = self._leases.keep(target.deployment_id, THREAD)
        target.through = await self._store.replies_posted(target.deployment_id)
        target.since = self._monotonic()
        while await self._refill(target):
            target.replying = True
            reply = await self._reply(target)
            for text in chunks(await self._texts(reply)):
                await self._slack.post(channel, text, thread_ts=ts)
            await self._store.mark_replies_posted(target.deployment_id, posted_through(target))
            target.replying = False
            self._settle_taken(target)

    async def _refill(self, target: ThreadWriter) -> bool:
        """Read back the events after the last one read; True when lines are waiting. Events
        that say nothing in the thread move the cursor at once."""
        while not target.lines:
            target.arrived.clear()
            events = await self._store.events_for(target.deployment_id)
            fresh = [e for e in events if (e.seq or 0) > target.through]
            for event in fresh:
                text = thread_line(event)
                if text is not None or ends(event):
                    counted = target.heard > 0
                    target.heard -= counted
                    due = self._due(event, None if counted else target.since)
                    target.lines.append(Line(event, text, due, counted))
            if fresh:
                target.through = fresh[-1].seq or target.through
                if not (target.lines or target.replying):
                    await self._store.mark_replies_posted(target.deployment_id, target.through)
            if not target.arrived.is_set():  # no await between this look and the writer's end
                break
        return bool(target.lines)

    def _due(self, event: Event, backlog_since: float | None) -> float:
        """When the event happened, on the monotonic clock. A backlog (events this process was
        not told of: it restarted, or another replica ran them) is due when the writer
        started, so it goes in as few replies as the text limit allows."""
        ago = max(0.0, (self._now() - event.at).total_seconds())
        due = self._monotonic() - ago
        return due if backlog_since is None else max(due, backlog_since)

    async def _reply(self, target: ThreadWriter) -> list[Line]:
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
        self, target: ThreadWriter, until: float, *, outcome_by: float = -math.inf
    ) -> Line | None:
        """The next line if it is due by `until` (monotonic), or an outcome due by
        `outcome_by`; it waits for one until then."""
        while True:
            if target.lines or await self._refill(target):
                head = target.lines[0]
                if head.due > (max(until, outcome_by) if head.outcome else until):
                    return None  # it opens the next reply
                target.unsettled += head.counted
                return target.lines.popleft()
            left = max(until, outcome_by) - self._monotonic()
            if left <= 0:
                return None
            await self._pause(left, target.arrived)

    async def _texts(self, reply: list[Line]) -> list[str]:
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


class Notifiers:
    """Several notifiers as one: each gets every event, in order."""

    def __init__(self, *notifiers: Notifier) -> None:
        self._all = notifiers

    async def notify(self, event: Event) -> None:
        for notifier in self._all:
            await notifier.notify(event)
