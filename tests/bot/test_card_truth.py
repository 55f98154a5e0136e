"""The card tells the truth, on time, as Slack sees it (signed requests in, the Slack fake's
call log out): a redrawn request keeps its plan and expiry; the card never waits behind
thread replies; a deploy costs few Slack calls yet every phase reaches the thread; Destroy
says so and asks first; the requester is told how it ended."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, timedelta
from typing import Any

import pytest

from bot import messages as m
from bot.blocks import escape
from bot.sandbox.slack import Message
from bot.sandbox.world import CHANNEL, SandboxBot, sandbox_bot
from deployer import TERMINAL, Deployment, DeploymentState
from deployer.sandbox.faults import FailRule
from deployer.testing import FakeClock, RecordedSleeps
from tests.conftest import TEST_SETTINGS

S = DeploymentState
CHAT = ("chat.postMessage", "chat.update", "chat.postEphemeral")


async def requested(
    world: SandboxBot, user: str, text: str, name: str, *, after: Deployment | None = None
) -> Deployment:
    """The request `user` typed, once its card is posted (a newer one than `after`)."""
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body

    return await world.carded(name, lambda dep: after is None or dep.id != after.id)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    elements = [e for block in blocks for e in block.get("elements", [])]
    return [e for e in elements if e.get("type") == "button"]


def plan_sections(card: Message) -> list[str]:
    texts = [str(b.get("text", {}).get("text", "")) for b in card.blocks]
    return [text for text in texts if text.startswith("*Plan*")]


async def thread_text(world: SandboxBot, dep: Deployment) -> str:
    return "\n".join(reply.text for reply in await world.thread(dep))


async def expected_text(world: SandboxBot, dep: Deployment) -> str:
    """One line per phase and undo, in the order they happened, then the outcome."""
    store = world.store
    lines = [m.thread_line(e) for e in await store.events_for(dep.id)]
    outcome = m.outcome_line(dep, await store.phases(dep.id))
    return "\n".join(line for line in [*lines, outcome] if line)


# -- 1. approvers see the plan, however late they look --------------------------------------
async def test_a_redrawn_request_keeps_its_plan_and_expiry(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    first = await world.card(dep)
    # the one way every redraw goes (the 5 s sweep's, a writer's, after a click): as it was
    await world.bot.notifier.refresh(await world.store.get(dep.id))
    redrawn = await world.card(dep)
    assert redrawn.history, "the card was not redrawn"
    assert plan_sections(redrawn), "the redraw lost the plan"
    plan = world.bot.deployer.plan(dep.spec, dep.operation)
    assert plan and all(escape(line) in plan_sections(redrawn)[0] for line in plan)
    assert plan_sections(redrawn) == plan_sections(first)
    expires = (dep.created_at + timedelta(seconds=world.bot.settings.approval_ttl)).astimezone(UTC)
    assert f"Waiting for approval · expires {expires:%H:%M} UTC" in str(redrawn.blocks)
    assert "Waiting for approval · expires " in str(first.blocks)
    assert [b["action_id"] for b in buttons(redrawn.blocks)] == [
        "aistack_approve",
        "aistack_reject",
    ]


# -- 2. the card does not queue behind the thread --------------------------------------------
class HeldSleeps(RecordedSleeps):
    """The bot's Slack sleeps (a post waiting out its channel's interval), held until the
    test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.go.wait()


async def test_the_card_goes_live_while_thread_replies_wait_for_the_channel() -> None:
    held = HeldSleeps()
    async with sandbox_bot(engine_clock=FakeClock(), engine=TEST_SETTINGS, post_interval=1.0,
                           slack_clock=held) as world:  # fmt: skip
        dep = await requested(world, "U0ALICE", "deploy alice", "alice")
        await world.click("U0BOB", "approve", dep)
        async with asyncio.timeout(10):  # before: "queued" until the replies had gone
            ts = await world.card_ts(dep)
            await world.slack.wait_for(lambda: "live at" in world.slack.card(CHANNEL, ts).text)
        held.go.set()  # now the channel's pacing may go on
        done = await world.settled("alice")
        assert done.state is S.SUCCEEDED
        assert await thread_text(world, done) == await expected_text(world, done)
    assert world.slack.violations == []


# -- 3. few posts, nothing lost ----------------------------------------------------------------
@pytest.mark.parametrize("fails", [False, True], ids=["live", "failed-and-undone"])
async def test_a_deploy_costs_at_most_8_slack_calls_and_every_line_reaches_the_thread(
    fails: bool,
) -> None:
    # the bot's defaults: a card edit at most every 2 s, one new message per channel per second
    # (the pacing's waits are recorded, not slept: what counts is what Slack was sent)
    async with sandbox_bot(engine_clock=FakeClock(), engine=TEST_SETTINGS, card_interval=2.0,
                           post_interval=1.0, slack_clock=RecordedSleeps()) as world:  # fmt: skip
        if fails:
            world.engine.dokploy.fail_deploys.add("opencode-bob")
        dep = await requested(world, "U0BOB", "deploy bob", "bob")
        await world.click("U0CAROL", "approve", dep)
        done = await world.settled("bob")
        assert done.state is (S.ROLLED_BACK if fails else S.SUCCEEDED)
        # the card and its thread (the owner's login goes apart, in a direct message)
        calls = [c for c in world.slack.calls if c.method in CHAT and c.args["channel"] == CHANNEL]
        assert len(calls) <= 8, Counter(c.method for c in calls)  # before: 11 live, 15 failed
        text = await thread_text(world, done)
        assert text == await expected_text(world, done)  # every phase and undo, in order
        assert sum(f"[{n}/9]" in text for n in range(1, 10)) == (8 if fails else 9)
        assert ("Undo" in text) is fails
    assert world.slack.violations == []


# -- 4. Destroy says destroy, and asks first ---------------------------------------------------
async def test_destroy_is_labelled_so_and_approving_a_destroy_asks_first(
    world: SandboxBot,
) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await world.click("U0BOB", "approve", dep)
    live = await world.settled("alice")
    (destroy,) = buttons((await world.card(live)).blocks)
    assert (destroy["text"]["text"], destroy["action_id"]) == ("Destroy", "aistack_destroy")
    assert destroy["confirm"]["title"]["text"] == "Destroy alice?"
    assert "removes *alice*" in destroy["confirm"]["text"]["text"]

    request = await requested(world, "U0MALLORY", "destroy alice", "alice", after=live)
    await world.bot.notifier.refresh(request)  # a redraw asks just the same
    card = await world.card(request)
    assert card.history  # the first drawing, then the redraw
    for _, blocks in [*card.history, (card.text, card.blocks)]:
        approve, reject = buttons(blocks)
        assert approve["action_id"] == "aistack_approve" and "confirm" not in reject
        assert approve["confirm"]["title"]["text"] == "Destroy alice?"
        assert "Approving removes *alice*" in approve["confirm"]["text"]["text"]
        assert approve["confirm"]["confirm"]["text"] == "Destroy"
    await world.click("U0CAROL", "approve", request)  # Slack sends it once confirmed
    assert (await world.settled("alice")).state is S.DESTROYED


# -- 5. the requester hears how it ended ---------------------------------------------------------
async def mentioning(world: SandboxBot, dep: Deployment, who: str) -> list[str]:
    return [reply.text for reply in await world.thread(dep) if f"<@{who}>" in reply.text]


async def test_the_requester_is_mentioned_with_the_url_or_the_reason(world: SandboxBot) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-bob")
    ended: dict[str, Deployment] = {}
    for user, name in (("U0ALICE", "alice"), ("U0BOB", "bob")):
        dep = await requested(world, user, f"deploy {name}", name)
        await world.click("U0CAROL", "approve", dep)
        ended[name] = await world.settled(name)
    alice, bob = ended["alice"], ended["bob"]
    (told,) = await mentioning(world, alice, "U0ALICE")
    assert told == (await world.thread(alice))[-1].text  # the last reply, with the last phase
    assert told.endswith("<@U0ALICE> :white_check_mark: *alice* is live at "
                         "https://alice.ai.example.test")  # fmt: skip
    (told,) = await mentioning(world, bob, "U0BOB")
    assert told == (await world.thread(bob))[-1].text
    assert told.startswith("<@U0BOB> :x: *bob* is not live. Failed at Deploy: ")
    assert "manifest unknown" in told  # the reason
    assert told.endswith("\nRolled back: nothing is left behind.")
    assert not await mentioning(world, alice, "U0BOB")
    assert not await mentioning(world, bob, "U0ALICE")


async def test_a_rollback_failing_again_on_retry_tells_the_requester_once(
    world: SandboxBot,
) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-bob")
    world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    dep = await requested(world, "U0BOB", "deploy bob", "bob")
    await world.click("U0CAROL", "approve", dep)
    stuck = await world.settled("bob")
    assert stuck.state is S.ROLLBACK_FAILED
    await world.click("U0BOB", "retry_rollback", stuck)
    await world.until("bob", lambda d: d.version > stuck.version and d.state in TERMINAL)
    world.engine.dokploy.faults.clear()
    again = await world.store.get(dep.id)
    await world.click("U0BOB", "retry_rollback", again)
    done = await world.until("bob", lambda d: d.state is S.ROLLED_BACK)
    failed = [e for e in await world.store.events_for(dep.id)
              if e.kind == "deployment.rollback_failed"]  # fmt: skip
    assert len(failed) >= 2  # it failed again on the retry
    told = await mentioning(world, done, "U0BOB")
    assert len(told) == 2, told  # the first failure, and the end of it
    assert ":warning: *bob* is not live" in told[0] and "left things behind" in told[0]
    assert ":x: *bob* is not live" in told[1] and "nothing is left behind" in told[1]
