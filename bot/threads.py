"""The thread under each card: the deployment's phase lines, posted in order, exactly once.

Mixed into SlackNotifier, which starts one writer per deployment (bot/writers.py) and keeps
the bookkeeping. The thread's outbox is the deployer's event log: the writer reads the events
after the deployment's cursor ("replies posted through event N", in the card ledger), posts
them, then moves the cursor, under the deployment's THREAD lease: a restart or another
replica goes on where this one stopped. Lines that fall due within the channel's post
interval share one reply, and the last phase waits a moment for the outcome. A reminder of
the stack's expiry is a reply of its own, with its buttons, and goes to the owner's direct
messages too: once, as it rides on the same cursor and lease.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import structlog
from slack_sdk.errors import SlackApiError

from bot import reminders
from bot.blocks import mention
from bot.ledger import Card, CardLedger
from bot.messages import outcome_line, thread_line
from bot.outbox import THREAD, SlackLeases
from bot.slack_api import SlackWriter
from bot.writers import Line, ThreadWriter, Writer, chunks, ends, posted_through
from deployer import Clock, DeploymentReads, DeploymentState, Event, EventKind

log = structlog.get_logger("aistack.bot.threads")

# The outcome follows the last phase by one store write: the phase's line waits for it, so
# both go in one reply. Bounded: if the outcome is late (a store outage, a shutdown), the
# phase goes alone.
OUTCOME_GRACE = 1.0


class ThreadReplies:
    """The thread writer's work; SlackNotifier, which this is mixed into, provides Slack,
    the reads, the ledger, the clock, the leases and the bookkeeping below."""

    _slack: SlackWriter
    _reads: DeploymentReads
    _ledger: CardLedger
    _leases: SlackLeases
    _clock: Clock
    _settle_taken: Callable[[Writer], None]

    async def _follow_thread(self, target: ThreadWriter, card: Card) -> None:
        """Drain the deployment's outbox in order under its THREAD lease; the cursor moves
        after each reply, so a restart or another replica goes on where this one stopped."""
        if not await self._leases.take(target.deployment_id, THREAD):
            return  # another replica is posting them
        target.keeper = self._leases.keep(target.deployment_id, THREAD)
        target.through = await self._ledger.replies_posted(target.deployment_id)
        target.since = self._clock.monotonic()
        while await self._refill(target):
            target.replying = True
            reply = await self._reply(target)
            for text in chunks(await self._texts(reply)):
                await self._slack.post(card.channel, text, thread_ts=card.ts)
            for line in reply:
                if _reminds(line.event):
                    await self._remind(card, line.event)
            await self._ledger.mark_replies_posted(target.deployment_id, posted_through(target))
            target.replying = False
            self._settle_taken(target)

    async def _refill(self, target: ThreadWriter) -> bool:
        """Read back the events after the last one read; True when lines are waiting. Events
        that say nothing in the thread move the cursor at once."""
        while not target.lines:
            target.arrived.clear()
            events = await self._reads.events_for(target.deployment_id)
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
                    await self._ledger.mark_replies_posted(target.deployment_id, target.through)
            if not target.arrived.is_set():  # no await between this look and the writer's end
                break
        return bool(target.lines)

    def _due(self, event: Event, backlog_since: float | None) -> float:
        """When the event happened, on the monotonic clock. A backlog (events this process was
        not told of: it restarted, or another replica ran them) is due when the writer
        started, so it goes in as few replies as the text limit allows."""
        ago = max(0.0, (self._clock.now() - event.at).total_seconds())
        due = self._clock.monotonic() - ago
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
            left = max(until, outcome_by) - self._clock.monotonic()
            if left <= 0:
                return None
            await self._pause(left, target.arrived)

    async def _texts(self, reply: list[Line]) -> list[str]:
        texts = [line.text or await self._outcome(line.event)
                 for line in reply if not _reminds(line.event)]  # fmt: skip
        return [text for text in texts if text]

    async def _remind(self, card: Card, event: Event) -> None:
        """The reminder under the card, then in the owner's Messages tab. A direct message
        Slack refuses (the person left, the tab is off) is logged: the thread has it."""
        thread = reminders.reminder(event, yours=False)
        await self._slack.post(card.channel, thread.text, thread.blocks, thread_ts=card.ts)
        owner = str(event.data.get("owner", ""))
        if not mention(owner).startswith("<@"):  # not a Slack user (the CLI's operator)
            return
        direct = reminders.reminder(event, yours=True)
        try:
            await self._slack.dm(owner, direct.text, direct.blocks)
        except SlackApiError as exc:
            log.warning("reminder not sent to the owner", stack_name=event.stack,
                        error=str(exc.response.get("error")))  # fmt: skip

    async def _outcome(self, event: Event) -> str | None:
        """The outcome as of the event (the deployment may have moved on since: a retry)."""
        if await self._said_before(event):
            return None
        dep = await self._reads.get(event.deployment_id)
        ended = dep.model_copy(update={"state": DeploymentState(event.state or dep.state)})
        return outcome_line(ended, await self._reads.phases(dep.id))

    async def _said_before(self, event: Event) -> bool:
        """A rollback retried until it works fails again and again: the requester is told
        the first time (and when it works), not on every retry."""
        events = await self._reads.events_for(event.deployment_id)
        return any(e.kind == event.kind and e.at < event.at for e in events)

    async def _pause(self, seconds: float, wake: asyncio.Event) -> None:
        """Wait `seconds` (math.inf: for ever), or less if `wake` is set meanwhile."""
        if wake.is_set():
            return
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(wake.wait())]
        if seconds != math.inf:
            waits.append(asyncio.ensure_future(self._clock.sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


def _reminds(event: Event) -> bool:
    return event.kind == EventKind.STACK_EXPIRY_NOTICE
