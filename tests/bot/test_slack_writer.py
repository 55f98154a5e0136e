"""SlackWriter: pacing per channel, new cards first, 429 and transient errors ridden out;
SlackNotifier: its card edits never wait behind that pacing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ledger import MemoryLedger
from bot.notifier import SlackNotifier
from bot.outbox import SlackLeases
from bot.sandbox.slack import FakeSlack
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from deployer import Deployment, DeploymentState, Event
from deployer.adapters.stores.memory import MemoryStore
from deployer.core.models import StackSpec
from deployer.engine.records import Records
from deployer.testing import FakeClock

S = DeploymentState


async def writer_for(
    fake: FakeSlack, url: str, clock: FakeClock | HeldClock, interval: float = 1.0
) -> SlackWriter:
    client = AsyncWebClient(token="xoxb-sandbox", base_url=url)
    return SlackWriter(client, post_interval=interval, clock=clock)


class HeldClock:
    """Time moves only when someone sleeps, on one timeline for every task (the writer
    compares times taken in different tasks), and a sleep waits until the test lets time move
    on (`go`); `sleeping` is set once someone waits, e.g. a post waiting out the interval."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []
        self.sleeping = asyncio.Event()
        self.go = asyncio.Event()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self.go.wait()
        self.sleeps.append(seconds)
        self.elapsed += seconds


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


async def test_an_edit_goes_through_while_posts_wait_for_their_turn() -> None:
    fake, clock = FakeSlack(), HeldClock()
    async with fake.serve() as url, asyncio.timeout(10):
        slack = await writer_for(fake, url, clock)
        card = await slack.post("C1", "card")
        reply = asyncio.create_task(slack.post("C1", "reply", thread_ts=card))
        await clock.sleeping.wait()  # the reply waits out the channel's interval
        await slack.update("C1", card, "edited", [{"type": "divider"}])
        assert fake.card("C1", card).text == "edited" and not reply.done()
        clock.go.set()
        await reply
    assert [c.method for c in fake.calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]


class Deploy:
    """One deployment's transitions and phase events, stored and told to the notifier as the
    deployer's journal does."""

    def __init__(self, store: MemoryStore, notifier: SlackNotifier, dep: Deployment) -> None:
        self.store, self.notifier, self.dep = store, notifier, dep

    async def move(self, *targets: S) -> None:
        for target in targets:
            event = self._event(f"deployment.{target}", state=str(target))
            self.dep = await self.store.transition(self.dep, target, approver="U0BOB", event=event)
            await self.notifier.notify(event)

    async def phase_done(self, index: int, title: str) -> None:
        event = self._event("phase.done", index=index, total=8, data={"title": title})
        await self.store.append_event(event)  # the thread's outbox is the stored log
        await self.notifier.notify(event)

    def _event(self, kind: str, **fields: Any) -> Event:
        return Event(deployment_id=self.dep.id, stack=self.dep.stack, kind=kind, **fields)


async def test_the_card_shows_the_ending_at_once_while_the_reply_waits_its_turn() -> None:
    """Posts are paced per channel, the card's edits are not: "live" is on the card while
    the thread's reply still waits for the channel (and the card's own interval is cut short
    by the ending)."""
    fake, pacing, card_clock = FakeSlack(), HeldClock(), HeldClock()
    store, tasks = MemoryStore(), Tasks()
    ledger = MemoryLedger(store)
    spec = StackSpec(name="alice", project_name="p", app_name="a", host="alice.example.test",
                     image="nginx:1.27", container_port=80)  # fmt: skip
    async with fake.serve() as url, asyncio.timeout(10):
        slack = await writer_for(fake, url, pacing)
        notifier = SlackNotifier(
            slack, store, ledger, tasks, plan_of=lambda *_: [], approval_ttl=600, interval=2.0,
            takeover_of=Records(store).takeover,
            clock=card_clock, leases=SlackLeases(ledger, "test", clock=card_clock),
        )  # fmt: skip
        ts = await slack.post("C1", "request card")
        dep = await store.create(Deployment(stack="alice", requester="U0ALICE", spec=spec,
                                            channel="C1"))  # fmt: skip
        await ledger.set_card(dep.id, "C1", ts, dep.version)
        run = Deploy(store, notifier, dep)
        await run.move(S.APPROVED)  # the first edit goes at once
        await fake.wait_for(lambda: len(fake.calls_to("chat.update")) == 1)
        await run.move(S.QUEUED, S.RUNNING)
        await run.phase_done(1, "Preflight")
        await run.phase_done(8, "Health")
        await card_clock.sleeping.wait()  # the card waits out its interval; so does the reply
        await run.move(S.SUCCEEDED)
        await fake.wait_for(lambda: "live at" in fake.card("C1", ts).text)
        await pacing.sleeping.wait()
        assert fake.thread("C1", ts) == []  # the reply still waits for the channel
        pacing.go.set()
        await notifier.wait_idle()
        await tasks.cancel_all()
    (reply,) = fake.thread("C1", ts)  # both phases and the outcome: one reply
    assert reply.text.splitlines() == [
        ":white_check_mark: [1/8] Preflight",
        ":white_check_mark: [8/8] Health",
        "<@U0ALICE> :white_check_mark: *alice* is live at https://alice.example.test",
    ]
    assert card_clock.elapsed == 0  # no interval was waited out: the ending cut it short
    assert fake.violations == []
