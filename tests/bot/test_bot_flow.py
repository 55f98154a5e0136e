"""The bot end to end: signed requests in, Slack Web API calls out, deployments in the sandbox."""

from __future__ import annotations

import asyncio

import pytest

from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer import DeploymentState
from deployer.sandbox.faults import FailRule
from deployer.testing import FakeClock, ManualClock, RecordedSleeps
from tests.conftest import TEST_SETTINGS

S = DeploymentState


@pytest.fixture
def calendar() -> ManualClock:
    """The date the approval TTL is measured against: it stands still until the test moves it
    on, so a request expires when the test says, however slowly the machine runs. It is the
    bot's one clock: the deployer stamps a request's `created_at` by it too."""
    return ManualClock()


async def requested(world: SandboxBot, user: str, text: str, name: str):  # type: ignore[no-untyped-def]
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body
    return await world.carded(name)


async def test_request_approve_deploy_streams_into_the_thread(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    assert dep.state is S.REQUESTED
    card = await world.card(dep)
    assert "aistack_approve" in str(card.blocks) and "ai-stack-alice" in str(card.blocks)
    await world.click("U0BOB", "approve", dep)
    done = await world.settled("alice")
    assert done.state is S.SUCCEEDED and done.approver == "U0BOB"
    final = await world.card(done)
    assert "https://alice.ai.example.test" in final.text and "total" in final.text
    assert "aistack_destroy" in str(final.blocks)
    assert len(final.history) >= 2  # the same card, edited in place
    replies = [m.text for m in await world.thread(done)]
    assert len(replies) == 9 and all(":white_check_mark:" in r for r in replies)


async def test_failed_deploy_rolls_back_and_offers_retry(world: SandboxBot) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-bob")
    dep = await requested(world, "U0BOB", "deploy bob", "bob")
    await world.click("U0CAROL", "approve", dep)
    done = await world.settled("bob")
    assert done.state is S.ROLLED_BACK
    card = await world.card(done)
    assert "Rolled back" in card.text and "aistack_retry" in str(card.blocks)
    thread = "\n".join(m.text for m in await world.thread(done))
    assert ":x:" in thread and "Undo" in thread
    assert not any("bob" in r for items in world.engine.resources().values() for r in items)


async def test_requester_cannot_approve_their_own_request(world: SandboxBot) -> None:
    dep = await requested(world, "U0BOB", "deploy bob", "bob")
    await world.click("U0BOB", "approve", dep)
    assert "someone else has to approve" in await world.told("U0BOB", "approve")
    assert (await world.store.get(dep.id)).state is S.REQUESTED


async def test_a_stranger_cannot_approve_and_nothing_changes(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await world.click("U0MALLORY", "approve", dep)
    said = await world.told("U0MALLORY", "only approvers")
    assert "<!subteam^S0APPROVERS>" in said
    assert (await world.store.get(dep.id)).state is S.REQUESTED


async def test_reject_ends_the_request_and_deploys_nothing(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await world.click("U0CAROL", "reject", dep)
    done = await world.settled("alice")
    assert done.state is S.REJECTED
    assert "Rejected" in (await world.card(done)).text and "aistack_approve" not in str(
        (await world.card(done)).blocks
    )
    assert not any(world.engine.resources().values())


async def test_double_clicks_and_two_approvers_lead_to_one_run(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await asyncio.gather(
        world.click("U0BOB", "approve", dep),
        world.click("U0BOB", "approve", dep),
        world.click("U0CAROL", "approve", dep),
    )
    done = await world.settled("alice")
    assert done.state is S.SUCCEEDED
    events = await world.store.events_for(dep.id)
    assert [e.kind for e in events].count("deployment.approved") == 1
    assert [e.kind for e in events].count("deployment.running") == 1
    told = world.said_to("U0BOB") + world.said_to("U0CAROL")
    assert sum("Already approved" in t for t in told) == 2


async def test_slack_429_storm_delays_but_loses_nothing(
    world: SandboxBot, slack_waits: RecordedSleeps
) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    world.slack.ratelimit_next("chat.update", 4, retry_after=7)
    world.slack.ratelimit_next("chat.postMessage", 3, retry_after=5)
    await world.click("U0BOB", "approve", dep)
    done = await world.settled("alice")
    assert done.state is S.SUCCEEDED
    assert "live at" in (await world.card(done)).text  # the final state arrived
    assert len(await world.thread(done)) == 9  # and every phase reply
    assert slack_waits.waits.count(7) == 4 and slack_waits.waits.count(5) == 3


async def test_expired_request_cannot_be_approved_and_its_card_says_so(
    calendar: ManualClock,
) -> None:
    # a 10-minute TTL: the bot sweeps every minute, so it is the click that finds it expired
    async with sandbox_bot(clock=calendar, engine=TEST_SETTINGS, approval_ttl=600) as world:
        dep = await requested(world, "U0ALICE", "deploy alice", "alice")
        calendar.advance(601)  # the TTL passes
        await world.click("U0BOB", "approve", dep)
        assert "expired" in await world.told("U0BOB", "expired")
        done = await world.settled("alice")
        assert done.state is S.EXPIRED
        assert "Expired" in (await world.card(done)).text
        assert "aistack_approve" not in str((await world.card(done)).blocks)
    assert world.slack.violations == []


async def test_nobody_deciding_expires_the_request_on_its_own(calendar: ManualClock) -> None:
    # a 0.2 s TTL: the bot sweeps every 0.05 s (real time); the request is carded first
    async with sandbox_bot(clock=calendar, engine=TEST_SETTINGS, approval_ttl=0.2) as world:
        await requested(world, "U0ALICE", "deploy alice", "alice")
        calendar.advance(1)  # the TTL passes; the next sweep expires the request
        done = await world.settled("alice", within=5)
        assert done.state is S.EXPIRED and "Expired" in (await world.card(done)).text


async def test_second_deploy_of_a_busy_stack_is_told_who_holds_it(world: SandboxBot) -> None:
    # A request waiting for approval holds nothing; an approved one does, and one left in
    # rollback_failed (resources behind) keeps holding the stack until it is clean.
    world.engine.dokploy.fail_deploys.add("opencode-alice")
    world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await world.click("U0BOB", "approve", dep)
    assert (await world.settled("alice")).state is S.ROLLBACK_FAILED
    await world.driver.command("U0CAROL", "deploy alice")
    said = await world.told("U0CAROL", "busy")
    assert "requested by U0ALICE" in said or "U0ALICE" in said


async def test_a_replayed_command_creates_one_request(world: SandboxBot) -> None:
    await world.driver.command("U0ALICE", "deploy alice", trigger_id="1.2.same")
    await world.driver.command("U0ALICE", "deploy alice", trigger_id="1.2.same")
    await world.carded("alice")
    await world.bot.notifier.wait_idle()
    cards = [c for c in world.slack.calls_to("chat.postMessage") if "thread_ts" not in c.args]
    assert len(cards) == 1
    assert not any("busy" in t for t in world.said_to("U0ALICE"))


async def test_owner_rolls_back_a_live_stack_without_approval(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await world.click("U0BOB", "approve", dep)
    live = await world.settled("alice")
    await world.click("U0ALICE", "rollback", live)
    gone = await world.until("alice", lambda d: d.state is S.DESTROYED)
    gone_ts, live_ts = await world.card_ts(gone), await world.card_ts(live)
    assert gone.id != live.id and gone_ts and gone_ts != live_ts  # the teardown's own card
    assert "removed" in (await world.card(gone)).text
    assert len(await world.thread(gone)) == 4
    assert not any(world.engine.resources().values())


async def test_someone_else_destroying_needs_approval(world: SandboxBot) -> None:
    dep = await requested(world, "U0ALICE", "deploy alice", "alice")
    await world.click("U0BOB", "approve", dep)
    await world.settled("alice")
    destroy = await requested(world, "U0MALLORY", "destroy alice", "alice")
    assert destroy.state is S.REQUESTED
    assert "aistack_approve" in str((await world.card(destroy)).blocks)
    await world.click("U0CAROL", "approve", destroy)
    assert (await world.settled("alice")).state is S.DESTROYED


async def test_retry_rollback_after_the_upstream_recovers(world: SandboxBot) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-bob")
    world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    dep = await requested(world, "U0BOB", "deploy bob", "bob")
    await world.click("U0CAROL", "approve", dep)
    failed = await world.settled("bob")
    assert failed.state is S.ROLLBACK_FAILED
    card = await world.card(failed)
    assert "ai-stack-bob" in card.text + str(card.blocks)
    assert "aistack_retry_rollback" in str(card.blocks)
    world.engine.dokploy.faults.clear()
    await world.click("U0MALLORY", "retry_rollback", failed)
    assert "or an approver can retry" in await world.told("U0MALLORY", "retry")
    await world.click("U0BOB", "retry_rollback", failed)
    done = await world.until("bob", lambda d: d.state is S.ROLLED_BACK)
    assert "Nothing is left behind" in (await world.card(done)).text
    assert not any(world.engine.resources().values())


async def test_retry_after_a_failed_deploy_opens_a_new_request(world: SandboxBot) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-bob")
    dep = await requested(world, "U0BOB", "deploy bob", "bob")
    await world.click("U0CAROL", "approve", dep)
    failed = await world.settled("bob")
    world.engine.dokploy.fail_deploys.clear()
    await world.click("U0BOB", "retry", failed)
    again = await world.carded("bob", lambda d: d.id != failed.id)
    assert again.state is S.REQUESTED
    await world.click("U0CAROL", "approve", again)
    assert (await world.settled("bob")).state is S.SUCCEEDED


async def test_card_edits_are_coalesced_and_the_final_state_still_arrives() -> None:
    async with sandbox_bot(
        engine_clock=FakeClock(), engine=TEST_SETTINGS, card_interval=0.5
    ) as world:
        dep = await requested(world, "U0ALICE", "deploy alice", "alice")
        await world.click("U0BOB", "approve", dep)
        done = await world.settled("alice")
        events = await world.store.events_for(dep.id)
        ts = await world.card_ts(dep)
        edits = [c for c in world.slack.calls_to("chat.update") if c.args["ts"] == ts]
        assert len(events) > 20 and len(edits) <= 4  # ~20 events, a handful of edits
        assert "live at" in (await world.card(done)).text and len(await world.thread(done)) == 9
    assert world.slack.violations == []
