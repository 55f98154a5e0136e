"""Two replicas on one database (a store and its card ledger): a card never posted is posted
once, a thread's outbox is drained by one of them, and new messages keep one pace per channel
for both."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import Message
from bot.ledger import CardLedger, MemoryLedger
from bot.notifier import SlackNotifier
from bot.outbox import SlackLeases
from bot.sandbox.slack import FakeSlack
from bot.slack_api import LedgerSlots, SlackWriter
from bot.tasks import Tasks
from deployer import Deployment, DeploymentState, Event, SystemClock
from deployer.adapters.stores.memory import MemoryStore
from deployer.core.models import StackSpec, utcnow
from deployer.engine.records import Records
from deployer.ports import Store
from deployer.testing import RecordedSleeps

S = DeploymentState
SPEC = StackSpec(name="alice", project_name="p", app_name="a", host="alice.example.test",
                 image="nginx:1.27", container_port=80)  # fmt: skip


class Replica:
    def __init__(
        self, store: Store, ledger: CardLedger, url: str, name: str, sleeps: list[float]
    ) -> None:
        clock, real = RecordedSleeps(sleeps), SystemClock()  # pacing recorded, not slept
        client = AsyncWebClient(token="xoxb-sandbox", base_url=url)
        self.slack = SlackWriter(client, post_interval=1.0, clock=clock,
                                 slots=LedgerSlots(ledger, clock))  # fmt: skip
        self.tasks = Tasks()
        self.cards = SlackNotifier(self.slack, store, ledger, self.tasks, approval_ttl=600,
                                   plan_of=lambda *_: ["a step"], interval=0.0,
                                   takeover_of=Records(store).takeover,
                                   clock=real,
                                   leases=SlackLeases(ledger, name, clock=real))  # fmt: skip


async def test_two_sweeps_post_a_card_never_posted_once_and_its_replies_once() -> None:
    fake, store, sleeps = FakeSlack(), MemoryStore(), list[float]()
    ledger = MemoryLedger(store)
    async with fake.serve() as url, asyncio.timeout(10):
        one, two = (Replica(store, ledger, url, name, sleeps) for name in ("one", "two"))
        dep = await requested(store)
        await store.append_event(Event(deployment_id=dep.id, stack="alice", kind="phase.done",
                                       index=1, total=8, data={"title": "Preflight"}))  # fmt: skip
        posted = await asyncio.gather(one.cards.post_unposted(), two.cards.post_unposted(),
                                      one.cards.post_unposted())  # fmt: skip
        for replica in (one, two):
            await replica.cards.resume_threads()
        await _drained(ledger)
        for replica in (one, two):
            await replica.tasks.cancel_all()

    assert sum(posted) == 1
    (card,) = [m for m in fake.messages.values() if m.thread_ts is None]
    assert "asks to deploy" in card.text  # a request card, drawn from the store
    assert [r.text for r in fake.thread("C1", card.ts)] == [":white_check_mark: [1/8] Preflight"]
    assert await ledger.unposted_cards() == [] and await ledger.unposted_replies() == []
    assert fake.max_posts_per_second("C1") == 1
    assert fake.violations == []


async def requested(store: Store) -> Deployment:
    """A request for a card in C1, stored as the deployer stores it (with its event)."""
    draft = Deployment(stack="alice", requester="U0ALICE", spec=SPEC, channel="C1")
    said = Event(deployment_id=draft.id, stack="alice", kind="deployment.requested")
    return await store.create(draft, events=[said])


async def _drained(ledger: CardLedger) -> None:
    """Until every reply due is posted and its cursor stored (bounded by the test's timeout)."""
    while True:
        if not await ledger.unposted_replies():
            return
        await asyncio.sleep(0.01)  # the writers are tasks of their replica: poll the ledger


async def test_a_card_being_posted_elsewhere_is_left_to_that_replica() -> None:
    fake, store = FakeSlack(), MemoryStore()
    ledger = MemoryLedger(store)
    async with fake.serve() as url, asyncio.timeout(10):
        replica = Replica(store, ledger, url, "one", [])
        dep = await requested(store)
        assert await ledger.take_lease(dep.id, "post", "two", 6.0, utcnow())

        async def render(current: Deployment) -> Message:
            raise AssertionError("not drawn: another replica is posting it")

        assert await replica.cards.post_card(dep.id, render) is None
        assert await replica.cards.post_unposted() == 0
        later = utcnow() + timedelta(seconds=7)  # the other replica died: its lease ran out
        assert await ledger.take_lease(dep.id, "post", "one", 6.0, later)
        await replica.tasks.cancel_all()
    assert fake.calls_to("chat.postMessage") == []


async def test_two_writers_on_one_store_keep_one_pace_per_channel() -> None:
    fake, store, sleeps = FakeSlack(), MemoryStore(), list[float]()
    ledger = MemoryLedger(store)
    async with fake.serve() as url, asyncio.timeout(10):
        one, two = (Replica(store, ledger, url, name, sleeps) for name in ("one", "two"))
        await asyncio.gather(one.slack.post("C1", "a"), two.slack.post("C1", "b"),
                             one.slack.post("C2", "c"))  # fmt: skip
    (waited,) = [s for s in sleeps if s > 0]  # the second post in C1, whoever sends it; not C2
    assert 0.9 < waited <= 1.05
