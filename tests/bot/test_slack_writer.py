"""SlackWriter: pacing per channel, new cards first, 429 and transient errors ridden out."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import FakeSlack
from bot.slack_api import SlackWriter
from tests.conftest import FakeClock


async def writer_for(
    fake: FakeSlack, url: str, clock: FakeClock, interval: float = 1.0
) -> SlackWriter:
    client = AsyncWebClient(token="xoxb-sandbox", base_url=url)
    return SlackWriter(client, post_interval=interval, sleep=clock.sleep, clock=clock.monotonic)


class HeldClock(FakeClock):
    """A FakeClock whose sleeps wait until the test lets time move on (`go`); `sleeping` is
    set once someone waits on it, e.g. a post waiting out the channel's interval."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()
        self.go = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self.go.wait()
        await super().sleep(seconds)


async def test_posts_in_a_channel_are_spaced_and_a_new_card_jumps_the_queue() -> None:
    fake, clock = FakeSlack(), HeldClock()
    async with fake.serve() as url, asyncio.timeout(10):
        slack = await writer_for(fake, url, clock)
        card = await slack.post("C1", "card")  # the channel's first post: no wait
        replies = [slack.post("C1", f"reply {i}", thread_ts=card) for i in range(3)]
        tasks = [asyncio.create_task(r) for r in replies]
        # reply 0 holds the channel, waiting out the interval; 1 and 2 have queued behind it
        await clock.sleeping.wait()
        tasks.append(asyncio.create_task(slack.post("C1", "a new request card")))
        await asyncio.sleep(0)  # the card takes its place in the queue while reply 0 waits
        clock.go.set()
        await asyncio.gather(*tasks)
        other = await slack.post("C2", "another channel")
    texts = [c.args["text"] for c in fake.calls_to("chat.postMessage")]
    assert texts[:2] == ["card", "reply 0"]
    assert texts[2] == "a new request card"  # ahead of the two replies still waiting
    assert texts[3:5] == ["reply 1", "reply 2"]
    assert all(wait <= 1.0 for wait in clock.sleeps) and sum(clock.sleeps) == pytest.approx(4.0)
    assert other and fake.violations == []


async def test_429_waits_for_retry_after_and_transient_errors_back_off() -> None:
    fake, clock = FakeSlack(), FakeClock()
    async with fake.serve() as url:
        slack = await writer_for(fake, url, clock, interval=0)
        fake.ratelimit_next("chat.update", 2, retry_after=7)
        fake.fail_next("chat.postMessage", "internal_error")
        ts = await slack.post("C1", "card", [{"type": "divider"}])
        await slack.update("C1", ts, "edited", [{"type": "divider"}])
    assert clock.sleeps == [1.0, 7.0, 7.0]
    assert fake.card("C1", ts).text == "edited"


async def test_permanent_errors_are_raised_at_once() -> None:
    fake, clock = FakeSlack(), FakeClock()
    async with fake.serve() as url:
        slack = await writer_for(fake, url, clock, interval=0)
        fake.fail_next("chat.postMessage", "channel_not_found")
        with pytest.raises(SlackApiError):
            await slack.post("C404", "card")
    assert clock.sleeps == []
