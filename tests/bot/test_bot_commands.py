"""Every command through the real endpoint, and the refusals: ephemeral, specific, harmless."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer import DeploymentState
from deployer.testing import FakeClock
from tests.conftest import TEST_SETTINGS

S = DeploymentState
ANY_NGINX = {"allowed_images": "ghcr.io/sst/opencode:*, nginx:*"}


async def answer(world: SandboxBot, user: str, text: str) -> dict[str, object]:
    """What respond() sent back for a command (after its ack)."""
    before = len(world.slack.responses)
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body
    async with asyncio.timeout(10):
        await world.slack.wait_for(lambda: len(world.slack.responses) > before)
    return world.slack.responses[-1]


async def test_forged_and_stale_signatures_get_401(world: SandboxBot) -> None:
    body = urlencode({"command": "/aistack", "text": "deploy alice", "user_id": "U0ALICE",
                      "channel_id": "C0OPS", "team_id": "T0SANDBOX"})  # fmt: skip
    forged = await world.driver.post_raw(body, world.driver.signed_headers(body, secret="guess"))
    stale = await world.driver.post_raw(
        body, world.driver.signed_headers(body, timestamp=int(time.time()) - 301)
    )
    tampered = await world.driver.post_raw(body + "x", world.driver.signed_headers(body))
    assert (forged.status, stale.status, tampered.status) == (401, 401, 401)
    assert await world.store.latest("alice") is None


async def test_malformed_commands_get_an_ephemeral_usage_naming_the_problem(
    world: SandboxBot,
) -> None:
    cases = {
        "deplyo alice": "unknown command",
        "deploy": "needs a stack name",
        "deploy Alice": "capital letters",
        "deploy www": "reserved",
        "deploy alice --image": "needs a value",
        "deploy <@U0BOB>": "mention",
    }
    for text, says in cases.items():
        reply = await world.driver.command("U0ALICE", text)
        assert reply.status == 200
        body = reply.json()
        assert isinstance(body, dict) and says in str(body.get("text")), (text, body)
        assert body.get("response_type", "ephemeral") == "ephemeral"
    assert await world.store.latest("alice") is None


async def test_empty_command_and_help_answer_only_the_asker(world: SandboxBot) -> None:
    for text in ("", "help"):
        said = await answer(world, "U0ALICE", text)
        assert said["response_type"] == "ephemeral"  # the channel did not ask for it
        assert "/aistack deploy" in str(said["text"]) + str(said.get("blocks"))


async def test_list_mine_answers_only_the_asker_and_list_the_channel(world: SandboxBot) -> None:
    mine = await answer(world, "U0ALICE", "list --mine")
    also_mine = await answer(world, "U0ALICE", "list mine")
    everyone = await answer(world, "U0ALICE", "list")
    assert (mine["response_type"], also_mine["response_type"]) == ("ephemeral", "ephemeral")
    assert everyone["response_type"] == "in_channel"


async def test_dry_run_shows_the_plan_and_changes_nothing() -> None:
    async with sandbox_bot(engine_clock=FakeClock(), engine=TEST_SETTINGS | ANY_NGINX) as world:
        said = await answer(world, "U0ALICE", "deploy alice --dry-run --image nginx:1.27")
        shown = str(said["text"]) + str(said.get("blocks"))
        assert "ai-stack-alice" in shown and "nginx:1.27" in shown and "alice.ai" in shown
        assert await world.store.latest("alice") is None
        assert not any(world.engine.resources().values())
    assert world.slack.violations == []


async def test_an_image_from_elsewhere_is_refused_to_the_asker_with_no_card(
    world: SandboxBot,
) -> None:
    for text in ("deploy alice --image docker.io/evil/miner:latest",
                 "deploy alice --dry-run --image quay.io/evil/miner:1"):  # fmt: skip
        said = await answer(world, "U0MALLORY", text)
        assert said["response_type"] == "ephemeral"
        assert "is not allowed here" in str(said["text"])
        assert "`ghcr.io/sst/opencode:*`" in str(said["text"])  # the patterns, listed
    assert await world.store.latest("alice") is None
    assert world.slack.calls_to("chat.postMessage") == []  # no card


async def test_status_list_and_history_answer_in_the_channel(world: SandboxBot) -> None:
    await world.driver.command("U0ALICE", "deploy alice")
    dep = await world.carded("alice")
    await world.click("U0BOB", "approve", dep)
    await world.settled("alice")
    status = await answer(world, "U0ALICE", "status alice")
    assert status["response_type"] == "in_channel"
    assert "https://alice.ai.example.test" in str(status.get("blocks")) + str(status["text"])
    listing = await answer(world, "U0CAROL", "list")
    assert "alice" in str(listing.get("blocks"))
    mine = await answer(world, "U0CAROL", "list --mine")
    assert "alice" not in str(mine.get("blocks")).replace("U0ALICE", "")
    history = await answer(world, "U0CAROL", "history alice")
    assert "approved" in str(history.get("blocks"))


async def test_preflight_reports_dokploy_and_dns(world: SandboxBot) -> None:
    said = await answer(world, "U0ALICE", "preflight")
    shown = str(said["text"]) + str(said.get("blocks"))
    assert "example.test" in shown


async def test_status_of_an_unknown_stack_says_so(world: SandboxBot) -> None:
    said = await answer(world, "U0ALICE", "status nobody")
    assert said.get("response_type", "ephemeral") == "ephemeral"
    assert "nobody" in str(said["text"])


async def test_wrong_channel_and_non_deployers_are_refused() -> None:
    async with sandbox_bot(
        engine_clock=FakeClock(), engine=TEST_SETTINGS,
        channels=frozenset({"C0AISTACK"}), deployers=frozenset({"U0ALICE"}),
    ) as world:  # fmt: skip
        wrong = await world.driver.command("U0ALICE", "deploy alice", channel="C0RANDOM")
        assert "<#C0AISTACK>" in wrong.body
        await world.driver.command("U0MALLORY", "deploy mallory", channel="C0AISTACK")
        assert "only deployers" in await world.told("U0MALLORY", "deployers")
        assert await world.store.latest("mallory") is None
        assert await world.store.latest("alice") is None


async def test_without_approval_a_request_runs_at_once() -> None:
    async with sandbox_bot(
        engine_clock=FakeClock(), engine=TEST_SETTINGS, approval_required=False
    ) as world:
        await world.driver.command("U0ALICE", "deploy alice")
        done = await world.settled("alice")
        assert done.state is S.SUCCEEDED
        assert "aistack_approve" not in str((await world.card(done)).history)
    assert world.slack.violations == []


async def test_a_stack_past_the_persons_limit_is_refused_to_the_asker_with_no_card() -> None:
    async with sandbox_bot(engine_clock=FakeClock(), approval_required=False,
                           engine=TEST_SETTINGS | {"max_stacks_per_user": 1}) as world:  # fmt: skip
        await world.driver.command("U0ALICE", "deploy alice")  # her own: runs at once
        assert (await world.settled("alice")).state is S.SUCCEEDED
        cards = len(world.slack.calls_to("chat.postMessage"))
        said = await answer(world, "U0ALICE", "deploy alice2")
        assert said["response_type"] == "ephemeral"
        assert "U0ALICE already holds 1 stack (alice)" in str(said["text"])
        assert "AISTACK_MAX_STACKS_PER_USER is 1" in str(said["text"])
        assert await world.store.latest("alice2") is None
        assert len(world.slack.calls_to("chat.postMessage")) == cards  # no new card
    assert world.slack.violations == []
