"""A stack's lifetime through the real bot, on a calendar the test moves: the live card says
when it expires; the reminder reaches the owner as a direct message and under the card with
Extend, Stop now and Destroy, once whatever the replicas; Extend by the owner needs no
approval; the stop at expiry and the destroy after the grace get cards saying why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.ledger import MemoryLedger
from bot.sandbox.slack import FakeSlack, Message
from bot.sandbox.world import GROUPS, PEOPLE, TOKEN, SandboxBot, sandbox_bot
from deployer import TERMINAL, Deployment, DeploymentState, Event, EventKind, Operation
from deployer.adapters.stores.memory import MemoryStore
from deployer.sandbox.server import Sandbox
from deployer.testing import ManualClock
from tests.conftest import TEST_SETTINGS

S, K = DeploymentState, EventKind
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR, DAY = 3600.0, 86400.0
CHANNEL, ALICE_DM = "C0OPS", "D0ALICE"
BUTTONS = ["aistack_extend", "aistack_stop", "aistack_destroy"]


@pytest.fixture
def calendar() -> ManualClock:
    """The bot's one clock (the engine's, Slack's, the store's): it stands still until the
    test moves it on, by days if it must."""
    return ManualClock(T0)


@asynccontextmanager
async def lifetime_bot(calendar: ManualClock, **options: Any) -> AsyncIterator[SandboxBot]:
    store = MemoryStore(clock=calendar)
    ledger = MemoryLedger(store, clock=calendar)
    async with sandbox_bot(clock=calendar, store=store, ledger=ledger, engine=TEST_SETTINGS,
                           approval_required=False, **options) as world:  # fmt: skip
        yield world
        await world.bot.notifier.wait_idle()
    assert world.slack.violations == []


async def live_stack(world: SandboxBot, name: str = "alice", user: str = "U0ALICE") -> Deployment:
    reply = await world.driver.command(user, f"deploy {name}")
    assert reply.status == 200, reply.body
    done = await world.settled(name)
    assert done.state is S.SUCCEEDED, done
    return done


async def until(slack: FakeSlack, what: Callable[[], list[Message]]) -> list[Message]:
    async with asyncio.timeout(10):
        await slack.wait_for(lambda: bool(what()))
    return what()


def buttons(message: Message) -> list[tuple[str, str]]:
    return [(e["action_id"], e["value"]) for b in message.blocks if b["type"] == "actions"
            for e in b["elements"]]  # fmt: skip


def reminders(slack: FakeSlack) -> list[Message]:
    """alice's direct messages but her stack's login (sent when it was deployed)."""
    return [m for m in slack.direct_messages("U0ALICE") if not m.text.startswith("The login")]


async def reminded(world: SandboxBot, live: Deployment) -> tuple[Message, Message]:
    """The reminder's direct message to alice and its reply under the live card."""
    (dm,) = await until(world.slack, lambda: reminders(world.slack))
    await world.bot.notifier.wait_idle()
    (reply,) = [m for m in await world.thread(live) if m.blocks and buttons(m)]
    return dm, reply


async def operation(world: SandboxBot, op: Operation) -> Deployment:
    """The stack's latest deployment once it is that operation, ended, with its card."""
    await world.bot.notifier.post_unposted()  # the card sweep would, within seconds
    return await world.carded("alice", lambda d: d.operation is op and d.state in TERMINAL)


async def test_the_live_card_says_when_it_expires_and_the_owner_is_reminded_once(
    calendar: ManualClock,
) -> None:
    async with lifetime_bot(calendar) as world:
        live = await live_stack(world)
        assert "Expires 2026-12-08 09:00 UTC" in str((await world.card(live)).blocks)
        calendar.advance(6 * DAY + HOUR)
        assert (await world.bot.deployer.sweep_lifetimes()).reminded == ["alice"]
        dm, reply = await reminded(world, live)
        assert (
            dm.channel == ALICE_DM and "Your stack *alice* expires 2026-12-08 09:00 UTC" in dm.text
        )
        assert "destroyed 3 days later unless it is started again or extended" in dm.text
        for message in (dm, reply):
            assert buttons(message) == [(action, live.id) for action in BUTTONS]
            assert "Extend: 1 week from now, no approval needed for <@U0ALICE>" in str(
                message.blocks
            )

        await world.bot.deployer.sweep_lifetimes()  # again, and the card sweep again
        await world.bot.notifier.resume_threads()
        await world.bot.notifier.wait_idle()
        assert len(reminders(world.slack)) == 1
        assert sum(bool(buttons(m)) for m in await world.thread(live)) == 1


async def test_extend_by_the_owner_from_her_messages_needs_no_approval(
    calendar: ManualClock,
) -> None:
    async with lifetime_bot(calendar) as world:
        live = await live_stack(world)
        calendar.advance(6 * DAY + HOUR)
        await world.bot.deployer.sweep_lifetimes()
        dm, reply = await reminded(world, live)

        await world.driver.click("U0MALLORY", "aistack_extend", live.id, channel=CHANNEL,
                                 message_ts=reply.ts)  # fmt: skip
        assert "only the stack's owner or an approver can extend it" in await world.told(
            "U0MALLORY", "extend"
        )
        await world.driver.click("U0ALICE", "aistack_extend", live.id, channel=ALICE_DM,
                                 message_ts=dm.ts)  # fmt: skip
        told = await world.told("U0ALICE", "now expires")
        assert "*alice* now expires 2026-12-14 10:00 UTC; extended by <@U0ALICE>" in told
        stack = await world.store.live("alice")
        assert stack is not None and stack.expires_at == calendar.now() + timedelta(days=7)

        card = await until(world.slack, lambda: [
            m for m in [world.slack.card(CHANNEL, reply.thread_ts or "")]
            if "Expires 2026-12-14 10:00 UTC" in str(m.blocks)
        ])  # fmt: skip
        assert card  # the live card is redrawn with the new expiry
        await world.bot.notifier.wait_idle()
        lines = [m.text for m in await world.thread(live)]
        assert any("<@U0ALICE> extended *alice*: it now expires 2026-12-14 10:00 UTC" in t
                   for t in lines)  # fmt: skip


async def test_extend_and_deploy_for_answer_in_slack_within_the_maximum(
    calendar: ManualClock,
) -> None:
    async with lifetime_bot(calendar) as world:
        await live_stack(world)
        await world.driver.command("U0BOB", "extend alice --for 2d")  # an approver may
        said = await world.told("U0BOB", "now expires")
        assert "*alice* now expires 2026-12-03" in said and "extended by <@U0BOB>" in said
        await world.driver.command("U0ALICE", "extend alice --for 5w")
        assert "at most 30 days (AISTACK_STACK_TTL_MAX)" in await world.told("U0ALICE", "5 weeks")
        await world.driver.command("U0CAROL", "deploy carol --for 31d")
        assert "31 days is longer than a stack may live here" in await world.told(
            "U0CAROL", "31 days"
        )
        assert await world.bot.deployer.latest("carol") is None  # nothing was recorded
        await world.driver.command("U0MALLORY", "extend alice")
        assert "only the stack's owner or an approver" in await world.told("U0MALLORY", "only")


async def test_stop_now_from_a_direct_message_stops_it_with_its_card_in_the_channel(
    calendar: ManualClock,
) -> None:
    async with lifetime_bot(calendar) as world:
        live = await live_stack(world)
        calendar.advance(6 * DAY + HOUR)
        await world.bot.deployer.sweep_lifetimes()
        dm, _ = await reminded(world, live)
        await world.driver.click("U0ALICE", "aistack_stop", live.id, channel=ALICE_DM,
                                 message_ts=dm.ts)  # fmt: skip
        stop = await operation(world, Operation.STOP)
        assert (stop.state, stop.requester, stop.channel) == (S.SUCCEEDED, "U0ALICE", CHANNEL)
        stack = await world.store.live("alice")
        assert stack is not None and stack.stopped_at == calendar.now()


async def test_stopped_at_expiry_then_destroyed_after_the_grace_each_card_saying_why(
    calendar: ManualClock,
) -> None:
    async with lifetime_bot(calendar) as world:
        await live_stack(world)
        calendar.advance(7 * DAY)
        assert len((await world.bot.deployer.sweep_lifetimes()).stopped) == 1
        stop = await operation(world, Operation.STOP)
        assert (stop.state, stop.requester, stop.channel) == (S.SUCCEEDED, "aistack", CHANNEL)
        why = str((await world.card(stop)).blocks)
        assert "*alice* expired on 2026-12-08 09:00 UTC: aistack stops it. <@U0ALICE>" in why
        assert "destroyed 2026-12-11 09:00 UTC unless it is started again" in why

        calendar.advance(3 * DAY)
        assert len((await world.bot.deployer.sweep_lifetimes()).destroyed) == 1
        destroy = await operation(world, Operation.DESTROY)
        assert destroy.state is S.DESTROYED
        why = str((await world.card(destroy)).blocks)
        assert "*alice* was stopped on 2026-12-08 09:00 UTC" in why
        assert "not started again: aistack destroys it after a grace of 3 days" in why
        assert world.engine.resources()["projects"] == []


@asynccontextmanager
async def two_replicas(calendar: ManualClock) -> AsyncIterator[tuple[SandboxBot, SandboxBot]]:
    """Two bots on one store and card ledger, one Slack, one Dokploy: replicas."""
    store = MemoryStore(clock=calendar)
    ledger = MemoryLedger(store, clock=calendar)
    slack = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    options: dict[str, Any] = {"clock": calendar, "store": store, "ledger": ledger,
                               "engine": TEST_SETTINGS, "approval_required": False}  # fmt: skip
    async with (
        Sandbox(deploy_delay=0.01) as engine,
        slack.serve() as api,
        sandbox_bot(upstreams=(engine, slack, api), **options) as one,
        sandbox_bot(upstreams=(engine, slack, api), **options) as two,
    ):
        yield one, two
        await asyncio.gather(one.bot.notifier.wait_idle(), two.bot.notifier.wait_idle())
    assert slack.violations == []


async def swept_cards(one: SandboxBot, two: SandboxBot, live: Deployment) -> None:
    """Both replicas' card sweeps, side by side, until the live card's thread is posted
    through its newest event; then once more (a second post would show now)."""
    newest = (await one.store.events_for(live.id))[-1].seq or 0
    async with asyncio.timeout(10):
        while await one.ledger.replies_posted(live.id) < newest:
            await asyncio.gather(one.bot.notifier.resume_threads(),
                                 two.bot.notifier.resume_threads())  # fmt: skip
            await asyncio.sleep(0.01)
    await asyncio.gather(one.bot.notifier.resume_threads(), two.bot.notifier.resume_threads())
    await asyncio.gather(one.bot.notifier.wait_idle(), two.bot.notifier.wait_idle())


async def test_two_replicas_sweeping_side_by_side_send_one_reminder(
    calendar: ManualClock,
) -> None:
    async with two_replicas(calendar) as (one, two):
        live = await live_stack(one)
        calendar.advance(6 * DAY + HOUR)
        sweeps = (one.bot.deployer.sweep_lifetimes(), two.bot.deployer.sweep_lifetimes())
        assert sorted(len(r.reminded) for r in await asyncio.gather(*sweeps)) == [0, 1]
        await swept_cards(one, two, live)
        assert len(reminders(one.slack)) == 1
        assert sum(bool(buttons(m)) for m in await one.thread(live)) == 1


async def test_a_reminder_recorded_by_a_replica_that_died_is_sent_once_by_another(
    calendar: ManualClock,
) -> None:
    async with two_replicas(calendar) as (one, two):
        live = await live_stack(one)
        calendar.advance(6 * DAY + HOUR)
        expiry = T0 + timedelta(days=7)
        notice = Event(deployment_id=live.id, stack="alice", kind=K.STACK_EXPIRY_NOTICE,
                       at=calendar.now(), data={"owner": "U0ALICE", "stopped": False,
                       "expires_at": expiry.isoformat(), "grace": "3 days"})  # fmt: skip
        assert await one.store.mark_noticed("alice", expiry, notice)  # ... and it died here
        sweeps = (one.bot.deployer.sweep_lifetimes(), two.bot.deployer.sweep_lifetimes())
        assert [r.reminded for r in await asyncio.gather(*sweeps)] == [[], []]
        await swept_cards(one, two, live)  # the reply is due: whichever replica takes it, once
        assert len(reminders(one.slack)) == 1
        assert sum(bool(buttons(m)) for m in await one.thread(live)) == 1
