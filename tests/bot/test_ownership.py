"""Ownership through the real bot (signed requests in, the Slack fake's log out): nobody takes
over someone else's stack unseen, a stranger's waiting request never locks the owner out,
and an owner changes only by an explicit, audited transfer."""

from __future__ import annotations

import asyncio

from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer import TERMINAL, Deployment, DeploymentState, Operation
from deployer.sandbox.faults import FailRule
from deployer.testing import FakeClock, RecordedSleeps
from tests.bot.blockkit import texts
from tests.conftest import TEST_SETTINGS

S = DeploymentState
ALICE, BOB, CAROL, MALLORY, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY", "U0DAVE"
DEV = "ghcr.io/sst/opencode:dev"
LATEST = "ghcr.io/sst/opencode:latest"


async def requested(world: SandboxBot, user: str, text: str, name: str = "alice") -> Deployment:
    """The request `user` typed, once its card is posted."""
    known = {d.id for d in await world.store.awaiting_approval(name)}
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body
    return await world.carded(name, lambda d: d.id not in known)


async def live_alice(world: SandboxBot) -> Deployment:
    await world.click(BOB, "approve", await requested(world, ALICE, "deploy alice"))
    done = await world.settled("alice")
    assert done.state is S.SUCCEEDED and await world.bot.deployer.owner("alice") == ALICE
    return done


async def waiting(world: SandboxBot, dep: Deployment) -> Deployment:
    """`dep` as the store has it now (latest() may be another, newer request)."""
    return await world.store.get(dep.id)


async def settled(world: SandboxBot, dep: Deployment, within: float = 10.0) -> Deployment:
    """`dep` once it is terminal and its card is drawn, whichever request is the latest."""
    async with asyncio.timeout(within):
        while (now := await waiting(world, dep)).state not in TERMINAL:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # a bounded poll, as SandboxBot.until does
    await world.bot.notifier.wait_idle()
    return now


async def first_lines(world: SandboxBot, dep: Deployment) -> tuple[str, str]:
    """What people read first: the message text (notifications) and the card's body."""
    card = await world.card(dep)
    body = card.blocks[1]["text"]["text"]
    return card.text.splitlines()[0], str(body).splitlines()[0]


async def first_line(world: SandboxBot, dep: Deployment) -> str:
    return (await first_lines(world, dep))[0]


# -- 1. takeover -----------------------------------------------------------------------------
async def test_a_takeover_card_says_so_first_and_the_owner_rejects_it(world: SandboxBot) -> None:
    await live_alice(world)
    takeover = await requested(world, MALLORY, f"deploy alice --image {DEV}")

    replaces = f":warning: This replaces <@{ALICE}>'s live stack: image `{LATEST}` → `{DEV}`"
    assert await first_lines(world, takeover) == (replaces, replaces)
    card = await world.card(takeover)
    assert f"<@{ALICE}> owns it and may reject it" in " ".join(texts(card.blocks))

    await world.click(ALICE, "reject", takeover)  # refused before: only approvers or mallory
    done = await world.until("alice", lambda d: d.id == takeover.id and d.state is S.REJECTED)
    assert done.approver == ALICE and "Rejected" in (await world.card(done)).text
    assert await world.bot.deployer.owner("alice") == ALICE
    apps = world.engine.dokploy.store.applications.values()
    assert [a["dockerImage"] for a in apps] == [LATEST]  # untouched


async def test_a_strangers_destroy_card_says_whose_stack_it_removes(world: SandboxBot) -> None:
    await live_alice(world)
    destroy = await requested(world, MALLORY, "destroy alice")
    text, body = await first_lines(world, destroy)
    assert text == body == f":warning: This removes <@{ALICE}>'s live stack: its domain and DNS " \
        "record go too"  # fmt: skip
    own = await requested(world, CAROL, "deploy carol", "carol")  # nobody's live stack
    waiting = f"<@{CAROL}> asks to deploy *carol* · waiting for approval"
    assert await first_line(world, own) == waiting


async def test_a_takeover_card_keeps_its_first_line_through_the_card_sweep(
    world: SandboxBot,
) -> None:
    await live_alice(world)
    takeover = await requested(world, MALLORY, f"deploy alice --image {DEV}")
    await world.bot.notifier.redraw_stale()  # what the bot does every few seconds
    assert (await first_line(world, takeover)).startswith(f":warning: This replaces <@{ALICE}>'s")
    # and any redraw of the waiting request (a writer's, after a click) says it again
    await world.bot.notifier.refresh(await world.store.get(takeover.id))
    assert (await world.card(takeover)).history, "the card was not redrawn"
    assert (await first_line(world, takeover)).startswith(f":warning: This replaces <@{ALICE}>'s")


async def test_a_redeploy_by_someone_else_keeps_the_owner(world: SandboxBot) -> None:
    await live_alice(world)
    redeploy = await requested(world, DAVE, f"deploy alice --image {DEV}")
    await world.click(BOB, "approve", redeploy)
    done = await world.settled("alice")
    assert (done.id, done.state, done.requester) == (redeploy.id, S.SUCCEEDED, DAVE)
    assert await world.bot.deployer.owner("alice") == ALICE  # was dave, the last deployer
    status = await world.bot.deployer.status("alice")
    assert status.owner == ALICE and status.drift == ()


async def test_transfer_by_the_owner_is_announced_and_audited(world: SandboxBot) -> None:
    await live_alice(world)
    refused = await world.driver.command(MALLORY, f"transfer alice <@{CAROL}|carol>")
    assert refused.status == 200
    assert "only the stack's owner or an approver" in await world.told(MALLORY, "transfer")
    unresolved = await world.driver.command(ALICE, "transfer alice @carol")
    assert "member ID" in unresolved.body  # a bare @name cannot be resolved: said at once

    await world.driver.command(ALICE, f"transfer alice <@{CAROL}|carol>")
    said = await world.told(ALICE, "now belongs to")
    assert f"<@{CAROL}>" in said and f"<@{ALICE}>" in said
    public = [r for r in world.slack.responses if "now belongs to" in str(r.get("text"))]
    assert public[-1]["response_type"] == "in_channel"
    assert await world.bot.deployer.owner("alice") == CAROL
    moved = (await world.bot.deployer.history("alice"))[-1]
    assert (moved.kind, moved.actor, moved.data["from"], moved.data["to"]) == (
        "stack.transferred", ALICE, ALICE, CAROL,
    )  # fmt: skip

    await world.driver.command(ALICE, "destroy alice")  # no longer hers: needs approval
    asked = await world.until("alice", lambda d: d.operation is Operation.DESTROY)
    assert asked.state is S.REQUESTED
    await world.driver.command(CAROL, "destroy alice")  # the new owner's goes ahead
    gone = await world.until("alice", lambda d: d.state is S.DESTROYED)
    assert gone.requester == CAROL and await world.bot.deployer.owner("alice") is None


# -- 3. a waiting request holds nothing ------------------------------------------------------
async def test_the_owners_destroy_goes_ahead_and_closes_a_strangers_request(
    world: SandboxBot,
) -> None:
    await live_alice(world)
    strangers = await requested(world, MALLORY, "destroy alice")
    await world.driver.command(ALICE, "destroy alice")  # was told "busy" for up to an hour
    gone = await world.until("alice", lambda d: d.state is S.DESTROYED)
    assert gone.requester == ALICE and not any(world.engine.resources().values())

    closed = await waiting(world, strangers)
    assert (closed.state, closed.approver) == (S.REJECTED, ALICE)
    assert closed.error == f"superseded by {ALICE}'s own destroy"
    assert "Rejected" in (await world.card(closed)).text and "aistack_approve" not in str(
        (await world.card(closed)).blocks
    )
    why = [m.text for m in await world.thread(closed)]
    assert why == [
        f":no_entry_sign: <@{MALLORY}>: this request is closed, superseded by <@{ALICE}>'s own "
        "destroy."
    ]


async def test_the_owners_own_request_closes_the_others_waiting(world: SandboxBot) -> None:
    await live_alice(world)
    strangers = await requested(world, MALLORY, f"deploy alice --image {DEV}")
    approvers = await requested(world, BOB, "destroy alice")  # waiting beside it
    own = await requested(world, ALICE, f"deploy alice --image {DEV}")
    first = await first_line(world, own)
    assert first.startswith(f"<@{ALICE}> asks to deploy")  # hers: no warning
    await world.bot.notifier.wait_idle()
    for other in (strangers, approvers):
        assert (await waiting(world, other)).state is S.REJECTED
    assert (await waiting(world, own)).state is S.REQUESTED  # hers waits for an approver


async def test_approving_one_while_another_holds_the_stack_is_refused(world: SandboxBot) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-carol")
    world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    carols = await requested(world, CAROL, "deploy carol", "carol")
    strangers = await requested(world, MALLORY, "deploy carol", "carol")  # beside it, not busy
    await world.click(BOB, "approve", carols)
    stuck = await settled(world, carols)
    assert stuck.state is S.ROLLBACK_FAILED  # leftovers: it holds the stack

    await world.click(BOB, "approve", strangers)
    said = await world.told(BOB, "Not approved")
    assert f"carol is busy: deploy requested by {CAROL}" in said and "stays open" in said
    assert (await waiting(world, strangers)).state is S.REQUESTED


async def test_without_approval_a_takeover_still_waits_for_the_owner(
    slack_waits: RecordedSleeps,
) -> None:
    async with sandbox_bot(engine_clock=FakeClock(), engine=TEST_SETTINGS, slack_clock=slack_waits,
                           approval_required=False) as world:  # fmt: skip
        await world.driver.command(ALICE, "deploy alice")  # her own: runs at once
        assert (await world.settled("alice")).state is S.SUCCEEDED
        takeover = await requested(world, MALLORY, f"deploy alice --image {DEV}")
        assert takeover.state is S.REQUESTED  # someone else's live stack: not replaced unasked
        first = await first_line(world, takeover)
        assert first.startswith(f":warning: This replaces <@{ALICE}>'s")
        await world.click(ALICE, "approve", takeover)  # with no approval step, she consents
        done = await world.until("alice", lambda d: d.id == takeover.id and d.state in TERMINAL)
        assert done.state is S.SUCCEEDED and done.approver == ALICE
        assert await world.bot.deployer.owner("alice") == ALICE
        removal = await requested(world, MALLORY, "destroy alice")
        assert removal.state is S.REQUESTED  # nor removed unasked
        await world.click(ALICE, "reject", removal)
        await world.until("alice", lambda d: d.id == removal.id and d.state is S.REJECTED)
        await world.bot.notifier.wait_idle()
    assert world.slack.violations == []
