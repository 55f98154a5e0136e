"""Text a user typed or an upstream wrote is shown, never obeyed: no mention, broadcast or link.

Every recorded Slack call (cards, edits, thread replies, ephemerals), every respond() post
and every ack body is searched. Raw `<...>` markup may only be a mention the bot wrote
itself; the hostile text must show up escaped (`&lt;!channel&gt;`), so the user still
sees what was wrong.
"""

from __future__ import annotations

from bot.sandbox.world import SandboxBot
from deployer import DeploymentState
from deployer.sandbox.faults import FailRule
from tests.bot.blockkit import unsafe_markup
from tests.security.conftest import ALICE, BOB, handled, shown, snapshot

S = DeploymentState
# Ids no message of ours ever mentions: if one of these appears raw, it came from the input.
HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0BOB|bob>",
    "<@W0EVE123>",
    "<!subteam^S0EVIL>",
    "<#C0EVIL>",
    "<http://evil.example|docs>",
    "<mailto:x@evil.example>",
]
FOREIGN = ["<@W0EVE123>", "<!subteam^S0EVIL>", "<#C0EVIL>"]


def assert_harmless(texts: list[str]) -> None:
    """Nothing live but our own well-formed mentions, and no foreign id mentioned."""
    unsafe = {markup: text for text in texts for markup in unsafe_markup(text)}
    assert not unsafe, f"live markup reached Slack: {unsafe}"
    foreign = [(raw, text) for text in texts for raw in FOREIGN if raw in text]
    assert not foreign, f"a mention from the input reached Slack: {foreign}"


async def test_hostile_image_values_are_refused_and_shown_escaped(world: SandboxBot) -> None:
    before, acks = await snapshot(world), []
    for markup in HOSTILE:
        for flags in ("--dry-run ", ""):
            reply = await world.driver.command(ALICE, f"deploy alice {flags}--image {markup}")
            assert reply.status == 200
            acks.append(reply.body)
    await handled(world)
    said = shown(world, acks)
    assert_harmless(said)
    assert sum("&lt;!channel&gt;" in t for t in said) >= 2  # both refusals quote the value
    assert sum("&lt;@W0EVE123&gt;" in t for t in said) >= 2
    assert await snapshot(world) == before


async def test_an_image_with_markup_glued_to_a_valid_reference_is_refused(
    world: SandboxBot,
) -> None:
    reply = await world.driver.command(ALICE, "deploy alice --image nginx:1.27<!here>")
    await handled(world)
    assert reply.status == 200 and "&lt;!here&gt;" in reply.body
    assert_harmless(shown(world, [reply.body]))
    assert await world.store.latest("alice") is None


async def test_an_upstream_error_reaches_card_thread_status_and_history_escaped(
    world: SandboxBot,
) -> None:
    message = "host taken " + " ".join(HOSTILE)
    world.engine.dokploy.faults.fail_ops["domain.create"] = FailRule(status=400, message=message)
    await world.driver.command(ALICE, "deploy alice")
    dep = await world.carded("alice", within=5)
    await world.click(BOB, "approve", dep)
    failed = await world.settled("alice", within=10)
    assert failed.state is S.ROLLED_BACK and "<!channel>" in (failed.error or "")
    acks = [(await world.driver.command(ALICE, text)).body for text in
            ("status alice", "history alice", "list", "deploy alice --dry-run")]  # fmt: skip
    await handled(world)
    said = shown(world, acks)
    assert_harmless(said)
    card = await world.card(failed)
    assert "&lt;!channel&gt;" in card.text + str(card.blocks)  # the user sees why, escaped
    assert any("&lt;@U0BOB|bob&gt;" in m.text for m in await world.thread(failed))
    answers = [str(r) for r in world.slack.responses]
    assert any("&lt;http://evil.example|docs&gt;" in a for a in answers)  # status / history


async def test_an_upstream_error_answering_a_command_is_escaped(world: SandboxBot) -> None:
    message = "no access for " + " ".join(HOSTILE)
    world.engine.dokploy.faults.fail_ops["project.all"] = FailRule(status=400, message=message)
    reply = await world.driver.command(ALICE, "status alice")
    await handled(world)
    said = shown(world, [reply.body])
    assert any("That did not work" in t for t in said)
    assert_harmless(said)
