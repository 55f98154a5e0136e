"""SlackWriter: chat.postMessage / chat.update / chat.postEphemeral with Slack's rules kept.

A 429 waits for Retry-After; transient failures back off; each channel gets at most one new
message per `post_interval` (Slack allows about one per second per channel), across every
replica and restart when `slots` reserves each post's slot in the card ledger they share.
Edits are not paced with them: chat.update is its own rate tier (Tier 3), so a card edit never
queues behind thread replies. Permanent errors (channel_not_found, message_not_found, ...)
raise at once: retrying will not help.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ledger import CardLedger
from deployer import Clock

log = structlog.get_logger("aistack.bot.slack")
TRANSIENT = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "request_timeout",
     "service_unavailable"}
)  # fmt: skip
Sleep = Callable[[float], Awaitable[None]]
# (channel, interval) -> seconds to wait for the slot reserved for the next post
Slots = Callable[[str, float], Awaitable[float]]


class LedgerSlots:
    """Each channel's post slots reserved in the card ledger, so the pace holds for all replicas
    together and across restarts, not per process. Slots are `margin` more than the interval
    apart: a post reaches Slack a little after its slot (a timer fires a little early, one
    request travels faster than the one before), and Slack counts arrivals."""

    def __init__(self, ledger: CardLedger, clock: Clock, *, margin: float = 0.05) -> None:
        self._ledger = ledger
        self._margin = margin
        self._clock = clock

    async def __call__(self, channel: str, interval: float) -> float:
        try:
            slot = await self._ledger.reserve_post_slot(
                channel, interval + self._margin, self._clock.now()
            )
        except Exception as exc:  # the database is down: this process's own pace still holds
            log.warning("post slot not reserved", error=repr(exc))
            return 0.0
        return (slot - self._clock.now()).total_seconds()


class SlackWriter:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        post_interval: float = 1.0,
        max_wait: float = 600.0,
        clock: Clock,
        calls: Counter | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.client = client
        self._slots = slots
        self._interval = post_interval
        self._max_wait = max_wait
        self._clock = clock  # paces the channels; waits out 429s
        self._calls = calls
        self._channels: dict[str, _Channel] = {}

    @property
    def post_interval(self) -> float:
        """The least time between two new messages in a channel (callers coalesce to it)."""
        return self._interval

    async def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str:  # fmt: skip
        # A new card is someone waiting on their request: it goes before queued thread replies.
        async with self._paced(channel, first=thread_ts is None):
            reply = await self._call(
                "chat.postMessage", channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
            )
        return str(reply["ts"])

    async def dm(self, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        """A direct message: the app's Messages tab with `user` (chat:write is enough: the
        user id is the channel). Paced as that one DM channel."""
        return await self.post(user, text, blocks)

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        # Not paced with posts (its own tier): the card shows the news while replies wait.
        # text and blocks together: text alone would wipe the card's blocks
        await self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    async def ephemeral(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self._call("chat.postEphemeral", channel=channel, user=user, text=text, blocks=blocks)

    async def _call(self, method: str, **args: Any) -> Any:
        args = {k: v for k, v in args.items() if v is not None}
        started, delay = self._clock.monotonic(), 1.0
        while True:
            try:
                reply = await self.client.api_call(method, json=args)
                self._count(method, "ok")
                return reply
            except SlackApiError as exc:
                error = str(exc.response.get("error", ""))
                self._count(method, error or "error")
                if error not in TRANSIENT and exc.response.status_code != 429:
                    raise
                wait = _retry_after(exc) or delay
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._count(method, "connection")
                log.warning("slack call failed", method=method, error=type(exc).__name__)
                wait = delay
            if self._clock.monotonic() - started + wait > self._max_wait:
                raise TimeoutError(f"Slack {method} kept failing for {self._max_wait:.0f} s")
            await self._clock.sleep(wait)
            delay = min(delay * 2, 30.0)

    @asynccontextmanager
    async def _paced(self, channel: str, *, first: bool) -> AsyncIterator[None]:
        """One message at a time per channel, `post_interval` apart, in queue order."""
        lane = self._channels.setdefault(channel, _Channel())
        await lane.enter(first=first)
        try:
            wait = lane.last + self._interval - self._clock.monotonic()
            if self._slots is not None and self._interval > 0:  # the shared pace
                wait = max(wait, await self._slots(channel, self._interval))
            if wait > 0:
                await self._clock.sleep(wait)
            yield
        finally:
            lane.last = self._clock.monotonic()
            lane.leave()

    def _count(self, method: str, outcome: str) -> None:
        if self._calls is not None:
            self._calls.labels(method=method, outcome=outcome).inc()


def _retry_after(exc: SlackApiError) -> float | None:
    value = exc.response.headers.get("Retry-After") if exc.response.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Channel:
    """A FIFO turn per channel where a new card may go to the head of the queue."""

    def __init__(self) -> None:
        self.last = float("-inf")
        self._busy = False
        self._queue: deque[asyncio.Future[None]] = deque()

    async def enter(self, *, first: bool) -> None:
        if not self._busy:
            self._busy = True
            return
        turn = asyncio.get_running_loop().create_future()
        (self._queue.appendleft if first else self._queue.append)(turn)
        try:
            await turn  # leave() hands the turn over: _busy stays True
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.leave()  # it was our turn already: pass it on
            else:
                self._queue.remove(turn)
            raise

    def leave(self) -> None:
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False
