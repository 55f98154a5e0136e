"""Releases and roll back through the real bot (signed requests in, the Slack fake's log out):
the owner rolls back at once, by command or by the live card's Roll back button, anyone else
after approval; `/aistack releases` shows what ran without a value of the environment; an
upgrade that does not answer says which release it reverted to, on its card and in its
thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot import messages
from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer import (
    Deployment,
    DeploymentState,
    Operation,
    PhaseRecord,
    PhaseState,
    StackSpec,
    env_fingerprint,
)
from deployer.testing import FakeClock, RecordedSleeps
from tests.bot.blockkit import action_ids, texts
from tests.conftest import TEST_SETTINGS

S = DeploymentState
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
LATEST, NEXT = "ghcr.io/sst/opencode:latest", "nginx:1.27"
SECRET_ENV = {"API_TOKEN": "never-shown-token-value"}


@pytest.fixture
async def world(slack_waits: RecordedSleeps) -> AsyncIterator[SandboxBot]:
    """The bot with a stack environment whose value must never reach Slack."""
    engine = TEST_SETTINGS | {"stack_env": SECRET_ENV}
    async with sandbox_bot(engine_clock=FakeClock(), engine=engine, slack_clock=slack_waits) as w:
        yield w
        await w.bot.notifier.wait_idle()
    assert w.slack.violations == []
    everything = str([m.text for m in w.slack.messages.values()]) + str(w.slack.responses)
    assert SECRET_ENV["API_TOKEN"] not in everything + str(w.slack.ephemerals)


async def typed(world: SandboxBot, user: str, text: str) -> Deployment:
    """The deployment `user` asked for, once its card is posted."""
    before = await world.bot.deployer.latest("alice")
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body
    return await world.carded("alice", lambda d: before is None or d.id != before.id)


async def clicked(world: SandboxBot, user: str, action: str, card_of: Deployment) -> Deployment:
    before = await world.bot.deployer.latest("alice")
    assert before is not None
    await world.click(user, action, card_of)
    return await world.carded("alice", lambda d: d.id != before.id)


async def answered(world: SandboxBot, user: str, text: str) -> dict[str, Any]:
    before = len(world.slack.responses)
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body
    async with asyncio.timeout(10):
        await world.slack.wait_for(lambda: len(world.slack.responses) > before)
    return world.slack.responses[-1]


async def approved_by_bob(world: SandboxBot, dep: Deployment) -> Deployment:
    await world.click(BOB, "approve", dep)
    return await world.settled("alice")


async def two_releases(world: SandboxBot) -> Deployment:
    """alice's stack: release 1 (the default image), then her upgrade to NEXT, release 2."""
    first = await approved_by_bob(world, await typed(world, ALICE, "deploy alice"))
    assert (first.state, first.release) == (S.SUCCEEDED, 1)
    second = await approved_by_bob(world, await typed(world, ALICE, f"deploy alice --image {NEXT}"))
    assert (second.state, second.release) == (S.SUCCEEDED, 2)
    return second


def shown(text: str, blocks: list[dict[str, Any]] | None) -> str:
    """What a person reads: the message's text and every text in its blocks."""
    return "\n".join([text, *texts(blocks or [])])


async def first_drawn(world: SandboxBot, dep: Deployment) -> str:
    """The card as it was first posted (the request), whatever it shows now."""
    card = await world.card(dep)
    text, blocks = card.history[0] if card.history else (card.text, card.blocks)
    return shown(text, blocks)


async def test_the_owners_rollback_command_puts_the_previous_release_back_at_once(
    world: SandboxBot,
) -> None:
    first = await _first(world)
    assert action_ids((await world.card(first)).blocks) == ["aistack_destroy"]  # none earlier
    live = await approved_by_bob(world, await typed(world, ALICE, f"deploy alice --image {NEXT}"))
    card = await world.card(live)
    assert action_ids(card.blocks) == ["aistack_roll_back", "aistack_destroy"]
    assert "release 2" in card.text

    back = await typed(world, ALICE, "rollback alice")
    request = await first_drawn(world, back)
    fingerprint = env_fingerprint(SECRET_ENV)
    assert (f"asks to roll back *alice* to release 1 (image `{LATEST}`, env fingerprint "
            f"`{fingerprint}`)") in request  # fmt: skip
    assert "No approval needed" in request and "aistack: roll back alice" in request
    assert f"Put release 1 back on Dokploy application opencode-alice: image {LATEST}" in request
    done = await world.settled("alice")
    assert (done.state, done.operation, done.restores, done.release) == (
        S.SUCCEEDED, Operation.DEPLOY, 1, 3,
    )  # fmt: skip
    ended = await world.card(done)
    assert "*alice* is back on release 1 (now release 3) and is live at" in ended.text
    assert "aistack_roll_back" in action_ids(ended.blocks)
    replies = [m.text for m in await world.thread(done)]
    assert (
        "<@U0ALICE> :white_check_mark: *alice* is back on release 1 (now release 3)" in replies[-1]
    )
    (app,) = world.engine.dokploy.store.applications.values()
    assert app["dockerImage"] == LATEST


async def _first(world: SandboxBot) -> Deployment:
    """Release 1 alone: its card has no Roll back."""
    return await approved_by_bob(world, await typed(world, ALICE, "deploy alice"))


async def test_the_roll_back_button_is_the_command_by_whoever_clicks(world: SandboxBot) -> None:
    live = await two_releases(world)
    mine = await clicked(world, ALICE, "roll_back", live)
    done = await world.settled("alice")
    assert (done.id, done.state, done.restores, done.requester) == (mine.id, S.SUCCEEDED, 1, ALICE)

    # someone else's click waits for approval, and the owner is told it is her stack
    theirs = await clicked(world, MALLORY, "roll_back", done)
    assert (theirs.state, theirs.restores) == (S.REQUESTED, 2)
    waiting = await world.card(theirs)
    assert "Waiting for approval" in shown(waiting.text, waiting.blocks)
    assert "aistack_approve" in action_ids(waiting.blocks)
    assert "This replaces <@U0ALICE>'s live stack" in waiting.text
    ended = await approved_by_bob(world, theirs)
    assert (ended.state, ended.release, ended.approver) == (S.SUCCEEDED, 4, BOB)
    (app,) = world.engine.dokploy.store.applications.values()
    assert app["dockerImage"] == NEXT


async def test_a_roll_back_to_a_release_by_number_and_its_refusals(world: SandboxBot) -> None:
    await _first(world)
    alone = await answered(world, ALICE, "rollback alice")
    assert "alice has no release before release 1" in str(alone["text"])
    assert alone.get("response_type", "ephemeral") == "ephemeral"
    await approved_by_bob(world, await typed(world, ALICE, f"deploy alice --image {NEXT}"))
    for text, says in (("rollback alice --to 2", "release 2 is what alice runs now"),
                       ("rollback alice --to 9", "alice has no release 9; its releases are 1, 2"),
                       ("rollback bob", "bob is not live")):  # fmt: skip
        assert says in str((await answered(world, ALICE, text))["text"]), text
    back = await typed(world, ALICE, "rollback alice --to 1")
    assert (await world.settled("alice")).restores == back.restores == 1


async def test_releases_answer_in_the_channel_without_env_values(world: SandboxBot) -> None:
    await two_releases(world)
    await typed(world, ALICE, "rollback alice")
    await world.settled("alice")
    said = await answered(world, MALLORY, "releases alice")
    assert said["response_type"] == "in_channel"
    table = shown(str(said["text"]), said.get("blocks"))
    lines = [line for line in table.splitlines() if line.startswith("*")]
    assert [line.split(" · ")[0] for line in lines] == ["*1*", "*2*", "*3*"]
    assert f"`{NEXT}`" in lines[1] and "by <@U0ALICE>, approved by <@U0BOB>" in lines[1]
    assert lines[2].endswith("roll back of 1 · *← live*")
    assert f"env `{env_fingerprint(SECRET_ENV)}`" in lines[0] and "port 4096" in lines[0]
    assert SECRET_ENV["API_TOKEN"] not in table


async def test_an_upgrade_that_does_not_answer_says_which_release_it_reverted_to(
    world: SandboxBot,
) -> None:
    await _first(world)
    world.engine.dokploy.silent_images.add("nginx:silent")
    upgrade = await typed(world, ALICE, "deploy alice --image nginx:silent")
    failed = await approved_by_bob(world, upgrade)
    assert failed.state is S.ROLLED_BACK
    card = await world.card(failed)
    assert card.text.startswith(
        ":leftwards_arrow_with_hook: Upgrade failed, reverted to release 1:"
    )
    assert "did not answer" in card.text and "release 1 was deployed again and answers" in card.text
    replies = [m.text for m in await world.thread(failed)]
    assert replies[-1].startswith(
        "<@U0ALICE> :leftwards_arrow_with_hook: Upgrade failed, "
        "reverted to release 1: Failed at Wait until the stack answers"
    )
    assert "is not live" not in replies[-1]  # it is: on release 1
    assert await world.bot.deployer.owner("alice") == ALICE


async def test_a_failed_roll_back_reverts_and_its_retry_rolls_back_again(world: SandboxBot) -> None:
    await two_releases(world)
    world.engine.dokploy.silent_images.add(LATEST)  # release 1's image does not answer now
    await typed(world, ALICE, "rollback alice")
    failed = await world.settled("alice")
    assert (failed.state, failed.restores) == (S.ROLLED_BACK, 1)
    card = await world.card(failed)
    assert card.text.startswith(
        ":leftwards_arrow_with_hook: Roll back to release 1 failed, reverted to release 2:"
    )
    world.engine.dokploy.silent_images.clear()
    again = await clicked(world, ALICE, "retry", failed)
    assert again.restores == 1
    done = await world.settled("alice")
    assert (done.state, done.release, done.restores) == (S.SUCCEEDED, 3, 1)


async def test_an_old_cards_rollback_button_still_destroys(world: SandboxBot) -> None:
    live = await _first(world)
    removal = await clicked(world, ALICE, "rollback", live)  # the id before aistack_destroy
    assert removal.operation is Operation.DESTROY
    assert (await world.settled("alice")).state is S.DESTROYED


def test_an_upgrade_that_failed_before_its_deploy_says_nothing_reached_the_container() -> None:
    spec = StackSpec(name="alice", project_name="ai-stack-alice", app_name="opencode-alice",
                     host="alice.ai.example.test", image=NEXT, container_port=4096)  # fmt: skip
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    dep = Deployment(stack="alice", spec=spec, state=S.ROLLED_BACK, requester=ALICE,
                     error="deploy: refused", created_at=now, updated_at=now)  # fmt: skip

    def record(name: str, state: PhaseState, **outputs: str) -> PhaseRecord:
        return PhaseRecord(deployment_id=dep.id, name=name, state=state, outputs=outputs,
                           error="refused" if state is PhaseState.FAILED else None)  # fmt: skip

    phases = [record("preflight", PhaseState.DONE, live_release="4"),
              record("image", PhaseState.UNDONE), record("deploy", PhaseState.FAILED)]  # fmt: skip
    drawn = messages.card(dep, phases, total=8, now=now)
    assert drawn.text.startswith(
        ":leftwards_arrow_with_hook: Upgrade failed, reverted to release 4: Failed at Deploy: "
        "refused *alice* is live: the new image never reached the container: it still runs "
        "release 4."
    )
    assert action_ids(drawn.blocks) == ["aistack_retry"]
    told = messages.outcome_line(dep, phases)
    assert told is not None and told.startswith("<@U0ALICE> :leftwards_arrow_with_hook: Upgrade")
    rolled = dep.model_copy(update={"restores": 2})
    assert messages.card(rolled, phases, total=8, now=now).text.startswith(
        ":leftwards_arrow_with_hook: Roll back to release 2 failed, reverted to release 4:"
    )
