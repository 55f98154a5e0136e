"""SlackNotifier: the deployer's Notifier port on Slack.

Each deployment with a card gets two writers that never wait on each other:
- the card writer edits the card in place with the state read back from the store, at most
  once per `interval` (events that arrive meanwhile are coalesced, never dropped; a terminal
  state is drawn at once). chat.update is not paced with new messages, so the card shows each
  state within `interval` of it, however many replies wait for their turn in the channel;
- the thread writer (bot/threads.py) posts the phase lines, in order. Lines that fall due
  within the channel's post interval share one reply, and the last phase waits a moment for
  the outcome, which mentions the requester: few posts, and the person hears how it ended.
Slack errors are retried, 429s wait for Retry-After. Because the card's channel and ts live in
the card ledger (bot/ledger), whichever replica runs the job edits the same card.

Both survive a SIGKILL and a second replica (bot/outbox.py leases). The thread's outbox is the
deployer's event log: the writer reads the events after the deployment's cursor ("replies
posted through event N", in the ledger), posts them, then moves the cursor; an event here is
only a wake-up. Each card edit is drawn from a read made under the deployment's draw lease, so
whichever replica draws it, a card never goes back to an older state. The periodic sweep posts
cards that were never posted, redraws cards left behind, and resumes threads nobody is
posting: the ledger finds them (bot/ledger/follow.py). Deployments are only read, through the
deployer's DeploymentReads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from slack_sdk.errors import SlackApiError

from bot import messages, reminders
from bot.blocks import Message
from bot.ledger import Card, CardLedger
from bot.messages import thread_line
from bot.outbox import DRAW, LEASE_SECONDS, POST, SlackLeases, stop
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from bot.threads import ThreadReplies
from bot.writers import (
    CardWriter,
    ThreadWriter,
    Writer,
    batch,
    ends,
    shown,
    waiting,
)
from deployer import (
    TERMINAL,
    Clock,
    Deployment,
    DeploymentReads,
    DeploymentState,
    Event,
    EventKind,
    LiveStack,
    Notifier,
    Operation,
    StackSpec,
    Takeover,
    phases_for,
)

# Operations that change whether the live stack runs, not what it is made of
_RUNS_THE_LIVE_ONE = frozenset({Operation.STOP, Operation.START, Operation.RESTART})
log = structlog.get_logger("aistack.bot.notifier")
PlanOf = Callable[[StackSpec, Operation, int | None], list[str]]  # ..., the release restored
TakeoverOf = Callable[[Deployment], Awaitable[Takeover | None]]
# Another replica is drawing the card: its edit takes a moment; wait for it that long at most.
DRAW_RETRY = 0.05
DRAW_ATTEMPTS = int(LEASE_SECONDS / DRAW_RETRY) + 1
NO_CARD = ("not_in_channel", "channel_not_found", "is_archived")
RenderCard = Callable[[Deployment], Awaitable[Message]]


W = TypeVar("W", bound=Writer)


class SlackNotifier(ThreadReplies):
    def __init__(
        self,
        slack: SlackWriter,
        reads: DeploymentReads,
        ledger: CardLedger,
        tasks: Tasks,
        *,
        plan_of: PlanOf,
        takeover_of: TakeoverOf,
        approval_ttl: float,
        leases: SlackLeases,
        interval: float = 2.0,
        clock: Clock,
    ) -> None:
        self._slack = slack
        self._reads = reads
        self._ledger = ledger
        self._tasks = tasks
        self._plan_of = plan_of
        self._takeover_of = takeover_of  # whose live stack a waiting request would replace
        self._ttl = timedelta(seconds=approval_ttl)
        self._interval = interval
        self._clock = clock  # paces the card's edits, stamps what it shows
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
        if event.kind is EventKind.DEPLOYMENT_SUCCEEDED:
            self._owe(1)
            self._tasks.spawn(self._redraw_live(event), name=f"live:{event.stack}")

    async def _redraw_live(self, event: Event) -> None:
        """A stop, start or restart that succeeded changes what the live card says (stopped
        since, or not): redraw it. Best effort: its next event redraws it anyway."""
        try:
            dep = await self._reads.get(event.deployment_id)
            live = await self._reads.live(event.stack)
            if dep.operation in _RUNS_THE_LIVE_ONE and live is not None:
                await self.refresh(await self._reads.get(live.deployment_id))
        except Exception as exc:  # the card stays as it was; the stack's state is right
            log.warning("live card not redrawn", stack_name=event.stack, error=repr(exc))
        finally:
            self._settle(1)

    async def card(self, deployment_id: str) -> Card | None:
        """The deployment's card, once it is posted (None before, or if it never is)."""
        card = await self._ledger.card(deployment_id)
        return card if card is not None and card.ts is not None else None

    async def refresh(self, dep: Deployment, *, paused: bool = False) -> None:
        """Redraw a card now (after a click, or to say the bot is pausing)."""
        if (card := await self.card(dep.id)) is not None:
            await self._draw(card, paused=paused)

    async def post_card(self, deployment_id: str, render: RenderCard) -> Card | None:
        """Post a request's first card, once whatever the replicas and restarts (the POST
        lease, then a look that it is still unposted); None when it was posted already or
        another replica is posting it. Then catch it up: a redraw if the request moved on
        meanwhile (approved, running), and the thread replies due so far."""
        if deployment_id in self._posting:  # this process is posting it (the lease is ours)
            return None
        self._posting.add(deployment_id)
        try:
            async with self._leases.held(deployment_id, POST) as mine:
                dep = await self._reads.get(deployment_id)
                if not mine or not dep.channel or await self.card(dep.id) is not None:
                    return None
                message = await render(dep)
                ts = await self._slack.post(dep.channel, message.text, message.blocks)
                # with the version the new card shows
                posted = await self._ledger.set_card(dep.id, dep.channel, ts, dep.version)
        finally:
            self._posting.discard(deployment_id)
        current = await self._reads.get(dep.id)
        if current.version > dep.version:
            self._tasks.spawn(self.refresh(current), name=f"card:{dep.id[:8]}")
        self._writer(self._threads, ThreadWriter, dep.id, self._follow_thread)
        return posted

    async def post_unposted(self) -> int:
        """Post the cards of requests acknowledged but never carded (the bot died first)."""
        posted = 0
        for card in await self._ledger.unposted_cards():
            if card.channel in self._unpostable:
                continue
            try:
                posted += await self.post_card(card.deployment_id, self._render) is not None
            except SlackApiError as exc:
                if exc.response.get("error") in NO_CARD:  # not retried by this process
                    self._unpostable.add(card.channel)
                log.warning("card not posted", deployment_id=card.deployment_id, error=str(exc))
        return posted

    async def resume_threads(self) -> int:
        """Post the replies due under cards that no writer here is on (this process restarted,
        or the replica that was posting them died); a replica posting them keeps its lease."""
        ids = [i for i in await self._ledger.unposted_replies() if i not in self._threads]
        for deployment_id in ids:
            self._writer(self._threads, ThreadWriter, deployment_id, self._follow_thread)
        return len(ids)

    def writing(self, deployment_id: str) -> bool:
        """Whether a writer of this process is following that deployment's card."""
        current = self._cards.get(deployment_id)
        return current is not None and not current.done

    async def redraw_stale(self) -> int:
        """Redraw cards left behind their deployment (the bot died before drawing them)."""
        stale = [c for c in await self._ledger.stale_cards() if not self.writing(c.deployment_id)]
        for card in stale:
            await self._draw(card)
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
        follow: Callable[[W, Card], Awaitable[None]],
    ) -> W:
        """The deployment's writer of this kind, started if it has none (or it has ended)."""
        current = running.get(deployment_id)
        if current is None or current.done:
            current = running[deployment_id] = kind(deployment_id)
            name = f"{current.kind}:{deployment_id[:8]}"
            self._tasks.spawn(self._write(running, current, follow), name=name)
        return current

    async def _write(
        self, running: dict[str, W], target: W, follow: Callable[[W, Card], Awaitable[None]]
    ) -> None:
        try:
            if (card := await self.card(target.deployment_id)) is not None:
                await follow(target, card)
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
    async def _follow_card(self, target: CardWriter, card: Card) -> None:
        drawn: Deployment | None = None
        drawn_at = float("-inf")
        while True:
            target.unsettled += len(await batch(target.queue))
            target.ending.clear()
            dep = await self._reads.get(target.deployment_id)
            wait = drawn_at + self._interval - self._clock.monotonic()
            if wait > 0 and dep.state not in TERMINAL:
                await self._pause(wait, target.ending)  # coalesce; an ending cuts it short
                target.unsettled += len(waiting(target.queue))
                dep = await self._reads.get(target.deployment_id)
            if not shown(drawn, dep):
                drawn = await self._draw(card) or drawn  # None: another replica drew it
                drawn_at = self._clock.monotonic()
            self._settle_taken(target)
            if target.queue.empty() and dep.state in TERMINAL:
                return

    async def _draw(self, card: Card, *, paused: bool = False) -> Deployment | None:
        """Draw the card from the deployment as it is now, read under its DRAW lease: each
        edit shows a state no older than the one before, whichever replica made it. None
        when the lease stayed taken (the replica holding it draws the news, or the sweep)."""
        deployment_id = card.deployment_id
        async with self._drawing.setdefault(deployment_id, asyncio.Lock()):
            if not await self._draw_lease(deployment_id):
                return None
            try:
                dep = await self._reads.get(deployment_id)
                await self._update(dep, card, paused=paused)
                return dep
            finally:
                await self._leases.release(deployment_id, DRAW)

    async def _draw_lease(self, deployment_id: str) -> bool:
        for _ in range(DRAW_ATTEMPTS):
            if await self._leases.take(deployment_id, DRAW):
                return True
            await self._clock.sleep(DRAW_RETRY)
        return False

    async def _update(self, dep: Deployment, card: Card, *, paused: bool) -> None:
        assert card.ts is not None
        message = await self._render(dep, paused=paused)
        await self._slack.update(card.channel, card.ts, message.text, message.blocks)
        if not paused:  # a paused card still has its resumed state to show
            await self._ledger.mark_card(dep.id, dep.version)

    async def _render(self, dep: Deployment, *, paused: bool = False) -> Message:
        phases = await self._reads.phases(dep.id)
        total = len(phases_for(dep.operation))
        plan, expires_at = self._request(dep)
        replaces = await self._takeover_of(dep) if self._waiting(dep) else None
        live, cause = await self._live_from(dep), await self._cause(dep)
        return messages.card(dep, phases, total=total, now=self._clock.now(), paused=paused,
                    plan=plan, expires_at=expires_at, replaces=replaces,
                    live_until=live.expires_at if live else None,
                    stopped_since=live.stopped_at if live else None, cause=cause)  # fmt: skip

    async def _live_from(self, dep: Deployment) -> LiveStack | None:
        """The live stack, for the card of the deployment it is live from: when it expires,
        whether it is stopped."""
        if dep.operation is not Operation.DEPLOY or dep.state is not DeploymentState.SUCCEEDED:
            return None
        live = await self._reads.live(dep.stack)
        return live if live is not None and live.deployment_id == dep.id else None

    async def _cause(self, dep: Deployment) -> str | None:
        """Why aistack stopped or destroyed the stack (expired, grace ended): the event it
        stored first with its request."""
        if dep.operation not in (Operation.STOP, Operation.DESTROY):
            return None
        said = (reminders.cause_line(e) for e in await self._reads.events_for(dep.id))
        return next((line for line in said if line is not None), None)

    @staticmethod
    def _waiting(dep: Deployment) -> bool:
        return dep.state is DeploymentState.REQUESTED

    def _request(self, dep: Deployment) -> tuple[list[str], datetime | None]:
        """What a request card showed when it was posted: approvers decide on the plan, and
        the request expires `approval_ttl` after it was made (as the expiry sweep counts)."""
        if not self._waiting(dep):
            return [], None
        return self._plan_of(dep.spec, dep.operation, dep.restores), dep.created_at + self._ttl


class Notifiers:
    """Several notifiers as one: each gets every event, in order."""

    def __init__(self, *notifiers: Notifier) -> None:
        self._all = notifiers

    async def notify(self, event: Event) -> None:
        for notifier in self._all:
            await notifier.notify(event)
