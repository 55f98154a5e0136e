"""The stack's login in Slack: the owner gets its password in a direct message, and only
there; `/aistack credentials <name>` renews it, asked by the owner or an approver, others
refused. A whole deploy, renewal and refused duplicate leave the password in no other message,
no log line, no stored event and no error text."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from bot.sandbox.world import CHANNEL, SandboxBot
from deployer import DeploymentState, Operation
from deployer.assemble import adapters
from deployer.core.probe_login import probe_password
from deployer.errors import PermanentUpstreamError
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import API_KEY
from deployer.testing import FakeClock
from tests.bot.test_bot_commands import answer

S = DeploymentState
OWNER_DM = "D0ALICE"  # the app's Messages tab with U0ALICE


def password(world: SandboxBot) -> str:
    """The stack's password as Dokploy holds it (in clear, as the real server does)."""
    (row,) = [r for r in world.engine.dokploy.store.security.values() if r["username"] == "alice"]
    return str(row["password"])


async def deployed(world: SandboxBot) -> None:
    """alice's stack, asked for by her and approved by bob; its login is in her DMs."""
    reply = await world.driver.command("U0ALICE", "deploy alice")
    assert reply.status == 200
    dep = await world.carded("alice")
    await world.click("U0BOB", "approve", dep)
    assert (await world.settled("alice")).state is S.SUCCEEDED
    await dms(world, "U0ALICE", 1)


async def dms(world: SandboxBot, user: str, count: int) -> list[Any]:
    """Wait until `user` has `count` direct messages from the app; return them."""
    async with asyncio.timeout(10):
        await world.slack.wait_for(lambda: len(world.slack.direct_messages(user)) >= count)
    return world.slack.direct_messages(user)


async def renewed(world: SandboxBot) -> Any:
    return await world.settled("alice")


async def test_the_owner_gets_the_login_by_direct_message_and_the_card_says_where(
    world: SandboxBot,
) -> None:
    await deployed(world)
    (dm,) = world.slack.direct_messages("U0ALICE")
    shown = str(dm.blocks)
    assert "https://alice.ai.example.test" in shown and "`alice`" in shown
    assert password(world) in shown and password(world) not in dm.text  # not in notifications
    card = await world.card(await world.settled("alice"))
    assert "Its login went to <@U0ALICE> privately, in a direct message" in str(card.blocks)


async def test_the_owner_renews_her_password_at_once_without_a_card(world: SandboxBot) -> None:
    await deployed(world)
    first = password(world)
    said = await answer(world, "U0ALICE", "credentials alice")
    assert said["response_type"] == "ephemeral"
    assert "A new password for *alice* is on its way to you in a direct message" in str(
        said["text"]
    )
    second = (await dms(world, "U0ALICE", 2))[-1]
    done = await renewed(world)
    assert (done.operation, done.state, done.requester) == (
        Operation.CREDENTIALS, S.SUCCEEDED, "U0ALICE",
    )  # fmt: skip
    assert password(world) != first and password(world) in str(second.blocks)
    assert await world.card_ts(done) is None  # nothing in the channel is about it


async def test_an_approver_renews_it_and_the_password_still_goes_to_the_owner(
    world: SandboxBot,
) -> None:
    await deployed(world)
    said = await answer(world, "U0BOB", "credentials alice")
    assert "is on its way to <@U0ALICE> in a direct message" in str(said["text"])
    latest = (await dms(world, "U0ALICE", 2))[-1]
    assert password(world) in str(latest.blocks) and "<@U0BOB>" in str(latest.blocks)
    assert world.slack.direct_messages("U0BOB") == []
    assert (await renewed(world)).requester == "U0BOB"


async def test_others_are_refused_and_nothing_changes(world: SandboxBot) -> None:
    await deployed(world)
    before = (password(world), await world.store.latest("alice"))
    said = await answer(world, "U0MALLORY", "credentials alice")
    assert said["response_type"] == "ephemeral"
    assert "only the stack's owner (<@U0ALICE>) or an approver can renew its password" in str(
        said["text"]
    )
    assert (password(world), await world.store.latest("alice")) == before
    nothing = await answer(world, "U0ALICE", "credentials bob")
    assert "bob is not live: it has no login to renew" in str(nothing["text"])
    usage = await world.driver.command("U0ALICE", "credentials")  # answered in the ack
    assert "credentials needs a stack name" in str(usage.json())


async def test_a_renewal_that_fails_is_told_to_whoever_asked(world: SandboxBot) -> None:
    await deployed(world)
    world.engine.dokploy.faults.fail_ops["security.update"] = FailRule(400, 1, "refused")
    await answer(world, "U0BOB", "credentials alice")
    (told,) = await dms(world, "U0BOB", 1)
    assert told.text.startswith(":x: No new password for *alice*:") and "refused" in told.text
    assert (await renewed(world)).state is S.ROLLED_BACK
    assert len(world.slack.direct_messages("U0ALICE")) == 1  # nothing new reached the owner


async def test_the_password_is_in_no_other_message_log_line_event_or_error(
    world: SandboxBot,
) -> None:
    with structlog.testing.capture_logs() as logs:
        await deployed(world)
        first = password(world)
        await answer(world, "U0BOB", "credentials alice")
        await dms(world, "U0ALICE", 2)
        assert (await renewed(world)).state is S.SUCCEEDED
        second = password(world)
        settings = world.engine.settings()
        made = adapters(settings, FakeClock())
        live = await world.store.live("alice")
        assert live is not None
        phases = await world.store.phases(live.deployment_id)
        app = next(p.outputs["application_id"] for p in phases if p.name == "application")
        try:
            with pytest.raises(PermanentUpstreamError) as duplicate:
                await made.paas.add_basic_auth(app, "alice", second)
        finally:
            await made.close()
    slack = world.slack
    elsewhere = [
        str((m.text, m.blocks, m.history)) for (channel, _), m in slack.messages.items()
        if channel != OWNER_DM
    ]  # fmt: skip
    elsewhere += [str((e.text, e.blocks)) for e in slack.ephemerals]
    elsewhere += [str(r) for r in slack.responses]
    assert any(channel == CHANNEL for channel, _ in slack.messages)  # the card is among them
    stored = [e.model_dump_json() for e in await world.store.events("alice")]
    for dep_id in {e.deployment_id for e in await world.store.events("alice")}:
        stored.append((await world.store.get(dep_id)).model_dump_json())
        stored += [p.model_dump_json() for p in await world.store.phases(dep_id)]
    texts = [*elsewhere, *stored, repr(logs), str(duplicate.value)]
    probe = probe_password(API_KEY, "alice.ai.example.test")  # aistack's own, derived
    assert world.slack.direct_messages("U0ALICE") and not [t for t in texts if probe in t]
    assert probe not in str([m.blocks for m in slack.direct_messages("U0ALICE")])
    for secret in (first, second):
        assert [text for text in texts if secret in text] == []
    owner_dms = str([m.blocks for m in slack.direct_messages("U0ALICE")])
    assert first in owner_dms and second in owner_dms
