"""Day two from Slack: stop, start and restart with their own cards, the stopped state in
status and list, `status --check`, and `logs` answered to the asker alone, masked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot import answers as a
from bot import day_two as d
from bot import messages as m
from bot.blocks import MAX_BLOCKS, MAX_SECTION, Message
from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer import (
    Deployment,
    DeploymentState,
    Operation,
    PhaseRecord,
    PhaseState,
    StackLogs,
    StackSpec,
    StackStatus,
)
from deployer.core.lifetime import span
from deployer.testing import FakeClock
from tests.bot.blockkit import action_ids, check_message, unsafe_markup
from tests.conftest import TEST_SETTINGS

S = DeploymentState
SECRET = "sk-live-0123456789abcdef"
NO_DOCKER = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."


@pytest.fixture
async def world() -> AsyncIterator[SandboxBot]:
    """The bot on the fakes, its stacks deployed with a secret in their environment."""
    engine = {**TEST_SETTINGS, "stack_env": {"OPENAI_API_KEY": SECRET}}
    async with sandbox_bot(engine_clock=FakeClock(), engine=engine) as w:
        yield w
        await w.bot.notifier.wait_idle()
    assert w.slack.violations == []


async def live(world: SandboxBot, user: str = "U0ALICE", name: str = "alice") -> Deployment:
    """`name` deployed by `user`, approved by bob."""
    assert (await world.driver.command(user, f"deploy {name}")).status == 200
    await world.click("U0BOB", "approve", await world.carded(name))
    done = await world.settled(name)
    assert done.state is S.SUCCEEDED
    return done


async def answer(world: SandboxBot, user: str, text: str) -> dict[str, Any]:
    """What `/aistack <text>` answered through its response_url."""
    sent = await world.driver.command(user, text)
    assert sent.status == 200 and sent.response_url_hook
    hook = sent.response_url_hook
    async with asyncio.timeout(10):
        await world.slack.wait_for(lambda: bool(world.slack.responses_for(hook)))
    return world.slack.responses_for(hook)[-1]


async def operated(world: SandboxBot, user: str, verb: str) -> Deployment:
    """`/aistack <verb> alice` by `user`: its own card, settled."""
    assert (await world.driver.command(user, f"{verb} alice")).status == 200
    return await world.until("alice", lambda d: d.operation == verb and d.state in _ENDS)


_ENDS = (S.SUCCEEDED, S.ROLLED_BACK)


# -- stop, start, restart -----------------------------------------------------------------------
async def test_the_owner_stops_her_stack_at_once_on_a_card_of_its_own(world: SandboxBot) -> None:
    made = await live(world)
    live_card = (await world.card(made)).text
    stopped = await operated(world, "U0ALICE", "stop")
    assert stopped.state is S.SUCCEEDED and stopped.approver == "U0ALICE"
    card = await world.card(stopped)
    assert await world.card_ts(stopped) != await world.card_ts(made)
    assert card.text.startswith(
        ":double_vertical_bar: *alice* is stopped; its data is kept; "
        "`/aistack start alice` starts it · took"
    )
    assert action_ids(card.blocks) == []  # no Retry (a deploy), no Destroy: the live card has it
    thread = "\n".join(m.text for m in await world.thread(stopped)).splitlines()
    assert thread[0].startswith(":white_check_mark: [1/1] Stop the container")
    assert thread[-1].startswith("<@U0ALICE> :double_vertical_bar: *alice* is stopped")
    await world.bot.notifier.wait_idle()
    redrawn = await world.card(made)
    assert redrawn.text == live_card  # still the live card: it is live, and says it is stopped
    assert "Stopped since" in str(redrawn.blocks)
    await operated(world, "U0ALICE", "start")
    await world.bot.notifier.wait_idle()
    assert "Stopped since" not in str((await world.card(made)).blocks)


async def test_start_and_restart_say_where_it_answers(world: SandboxBot) -> None:
    await live(world)
    await operated(world, "U0ALICE", "stop")
    started = await operated(world, "U0ALICE", "start")
    assert (await world.card(started)).text.startswith(
        ":arrow_forward: *alice* is running again and answers at https://alice.ai.example.test"
    )
    restarted = await operated(world, "U0ALICE", "restart")
    assert (await world.card(restarted)).text.startswith(
        ":arrows_counterclockwise: *alice* restarted and answers at https://alice.ai.example.test"
    )


async def test_someone_else_stopping_needs_approval_and_the_card_says_whose(
    world: SandboxBot,
) -> None:
    await live(world)
    assert (await world.driver.command("U0MALLORY", "stop alice")).status == 200
    asked = await world.carded("alice", lambda d: d.operation == "stop")
    assert asked.state is S.REQUESTED
    card = await world.card(asked)
    text = card.text + json.dumps(card.blocks)
    assert ":warning: This stops <@U0ALICE>'s live stack" in text
    assert "Stop the container of opencode-alice" in text  # the plan line
    assert "DNS record go too" not in text and "aistack_approve" in text
    await world.click("U0CAROL", "approve", asked)
    done = await world.until("alice", lambda d: d.operation == "stop" and d.state in _ENDS)
    assert done.state is S.SUCCEEDED


@pytest.mark.parametrize(
    ("before", "command", "told"),
    [
        ((), "stop bob", "bob is not live: there is nothing to stop"),
        (("stop",), "stop alice", "alice is already stopped (since "),
        ((), "start alice", "alice is running already; `restart` restarts it"),
    ],
)
async def test_refused_when_there_is_nothing_to_do(
    world: SandboxBot, before: tuple[str, ...], command: str, told: str
) -> None:
    await live(world)
    for verb in before:
        await operated(world, "U0ALICE", verb)
    assert (await world.driver.command("U0ALICE", command)).status == 200
    said = await world.told("U0ALICE", told)
    assert said.startswith(":no_entry: ")


async def test_a_start_dokploy_cannot_do_fails_saying_so_and_nothing_changed(
    world: SandboxBot,
) -> None:
    await live(world)
    await operated(world, "U0ALICE", "stop")
    world.engine.dokploy.store.docker_error = NO_DOCKER
    failed = await operated(world, "U0ALICE", "start")
    assert failed.state is S.ROLLED_BACK
    card = await world.card(failed)
    assert card.text == (
        ":x: Start of *alice* failed: Dokploy could not start the container "
        "(500 INTERNAL_SERVER_ERROR); nothing changed"
    )
    assert action_ids(card.blocks) == [] and "olled back" not in card.text
    thread = "\n".join(m.text for m in await world.thread(failed)).splitlines()
    assert thread[-1].startswith("<@U0ALICE> :x: Start of *alice* failed")
    assert all("Docker daemon" not in t for t in thread)


# -- status, list, --check ----------------------------------------------------------------------
def said(reply: dict[str, Any]) -> str:
    return json.dumps(reply, ensure_ascii=False)


async def test_status_and_list_show_a_stopped_stack_and_check_does_not_probe_it(
    world: SandboxBot,
) -> None:
    await live(world)
    running = said(await answer(world, "U0BOB", "status alice"))
    assert "Running for under a minute · release 1" in running
    assert " · running for under a minute · release 1" in said(await answer(world, "U0BOB", "list"))
    await operated(world, "U0ALICE", "stop")
    stopped = said(await answer(world, "U0BOB", "status alice"))
    assert "Stopped since " in stopped and "Running" not in stopped
    assert " · stopped since " in said(await answer(world, "U0BOB", "list"))
    hits = len(world.engine.ingress.hits)
    checked = await answer(world, "U0BOB", "status alice --check")
    assert "is stopped since " in said(checked) and ": not probed" in said(checked)
    assert len(world.engine.ingress.hits) == hits


async def test_check_probes_a_running_stack_now(world: SandboxBot) -> None:
    await live(world)
    reply = await answer(world, "U0MALLORY", "status alice --check")
    assert reply["response_type"] == "in_channel"
    assert ":white_check_mark: https://alice.ai.example.test answers (200)" in said(reply)
    assert "running for under a minute · release 1" in said(reply)


# -- logs ---------------------------------------------------------------------------------------
async def test_the_owner_reads_her_logs_to_herself_and_no_secret_goes_anywhere(
    world: SandboxBot,
) -> None:
    await live(world)
    world.engine.dokploy.container_prints("opencode-alice", f"using key {SECRET}", "<@U0BOB> hi")
    with capture_logs() as logged:
        reply = await answer(world, "U0ALICE", "logs alice")
    assert reply["response_type"] == "ephemeral"
    text = said(reply)
    assert "using key ••••" in text and "&lt;@U0BOB&gt; hi" in text
    assert all(not unsafe_markup(t) for t in _texts(reply))
    assert "values of its environment shown as •••• (1)" in text
    assert "only you can see this" in text
    everything = [said(r) for r in world.slack.responses]
    everything += [json.dumps(c.args) for c in world.slack.calls]
    assert not any(SECRET in x for x in everything)
    assert not any(SECRET in repr(line) for line in logged)


async def test_an_approver_may_read_them_a_stranger_may_not(world: SandboxBot) -> None:
    await live(world)
    assert "started from" in said(await answer(world, "U0CAROL", "logs alice --tail 5"))
    refused = said(await answer(world, "U0MALLORY", "logs alice"))
    assert "only the stack's owner (<@U0ALICE>) or an approver can read its logs" in refused
    assert "started from" not in refused


async def test_the_build_log_and_the_absent_container(world: SandboxBot) -> None:
    await live(world)
    build = said(await answer(world, "U0ALICE", "logs alice --build"))
    assert "aistack: build log of alice" in build and "Docker Deployed: ✅" in build
    world.engine.dokploy.store.docker_error = NO_DOCKER
    absent = said(await answer(world, "U0ALICE", "logs alice"))
    assert "alice has no running container (stopped, or Dokploy cannot reach Docker)" in absent
    assert ":no_entry:" not in absent  # no fault: said plainly
    gone = said(await answer(world, "U0ALICE", "logs bob"))
    assert "bob is not live: there are no logs to show" in gone


def _texts(reply: dict[str, Any]) -> list[str]:
    return [str(reply.get("text", "")), *(json.dumps(b) for b in reply.get("blocks", []))]


# -- the snippet within Slack's limits, pure ----------------------------------------------------
def snippet(lines: list[str]) -> Message:
    return d.logs_message(StackLogs("alice", False, tuple(lines)))


def test_a_long_log_keeps_the_newest_lines_and_says_how_many_were_cut() -> None:
    lines = [f"{n:05d} " + "x" * 150 for n in range(1000)]
    message = snippet(lines)
    check_message(message)
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert len(message.blocks) <= MAX_BLOCKS
    assert all(s.startswith("```\n") and s.endswith("\n```") for s in sections)
    assert all(len(s) <= MAX_SECTION for s in sections)
    shown = [line for s in sections for line in s.strip("`\n").splitlines()]
    assert shown[-1] == lines[-1] and shown == lines[-len(shown) :]  # the newest, in order
    about = message.blocks[1]["elements"][0]["text"]
    assert f"last {len(shown)} lines" in about
    assert f"{1000 - len(shown)} older lines cut to fit Slack" in about


def test_nothing_in_a_line_can_close_the_block_or_mention_anyone() -> None:
    message = snippet(["```", "<!channel> & <@U1>", "````` ` ", "", "y" * 5000])
    check_message(message)
    [code] = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    inner = code.removeprefix("```\n").removesuffix("\n```")
    assert "```" not in inner and "``" not in inner
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in inner
    assert inner.splitlines()[3] == " "  # an empty line stays a line
    assert inner.splitlines()[4].endswith("…") and len(inner.splitlines()[4]) == d.MAX_LINE


def test_an_empty_log_is_said_so() -> None:
    assert snippet([]).text == ":information_source: The container output of *alice* is empty."


def test_check_of_a_stack_that_is_not_live() -> None:
    status = StackStatus(name="alice", url="https://alice.example", deployment=None)
    message = d.check_message(status)
    check_message(message)
    assert message.text == ":information_source: *alice* is not live: not probed"


def test_life_reads_as_people_say_it() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    status = StackStatus(name="a", url="https://a", deployment=None, owner="U1", release=4,
                         up_since=at, expires_at=datetime(2026, 12, 7, 10, tzinfo=UTC))  # fmt: skip
    later = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)
    assert status.life(later) == "running for 3 h · release 4 · expires 2026-12-07 10:00 UTC"
    assert status.life() == (
        "running since 2026-12-01 10:00 UTC · release 4 · expires 2026-12-07 10:00 UTC"
    )
    assert span(59) == "under a minute" and span(3 * 86400 + 5) == "3 days"


# -- the card's other states, pure --------------------------------------------------------------
def _dep(operation: Operation, state: S) -> Deployment:
    spec = StackSpec(name="alice", project_name="ai-stack-alice", app_name="opencode-alice",
                     host="alice.ai.example.test", image="img", container_port=4096)  # fmt: skip
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    return Deployment(stack="alice", operation=operation, state=state, requester="U0ALICE",
                      approver="U0ALICE", spec=spec, created_at=at, updated_at=at)  # fmt: skip


def test_a_running_restart_says_restarting() -> None:
    dep = _dep(Operation.RESTART, S.RUNNING)
    running = PhaseRecord(deployment_id=dep.id, name="restart", state=PhaseState.RUNNING)
    card = m.card(dep, [running], total=2, now=dep.created_at + timedelta(seconds=3))
    check_message(card)
    assert card.text == (
        ":hourglass_flowing_sand: Restarting *alice* — phase 1 of 2: Restart the container · "
        "0:03 elapsed"
    )


def test_a_restart_that_never_answers_says_the_container_was_restarted() -> None:
    dep = _dep(Operation.RESTART, S.ROLLED_BACK)
    phases = [
        PhaseRecord(deployment_id=dep.id, name="restart", state=PhaseState.DONE),
        PhaseRecord(deployment_id=dep.id, name="health", state=PhaseState.FAILED,
                    error="https://alice.ai.example.test did not answer within 30 s"),
    ]  # fmt: skip
    card = m.card(dep, phases, total=2, now=dep.updated_at)
    assert card.text == (
        ":x: Restart of *alice* failed: https://alice.ai.example.test did not answer within "
        "30 s; the container was restarted but does not answer"
    )
    assert m.outcome_line(dep, phases) == f"<@U0ALICE> {card.text}"


def test_status_says_what_the_latest_operation_did() -> None:
    stopped = StackStatus(name="alice", url="https://alice.example", owner="U0ALICE",
                          deployment=_dep(Operation.STOP, S.SUCCEEDED),
                          stopped_at=datetime(2026, 12, 1, 10, tzinfo=UTC))  # fmt: skip
    assert a.status_message(stopped).text == "alice: stop succeeded"
    live = StackStatus(name="alice", url="https://alice.example", owner="U0ALICE",
                       deployment=_dep(Operation.DEPLOY, S.SUCCEEDED))  # fmt: skip
    assert a.status_message(live).text == "alice: succeeded"
    restarting = live.model_copy(update={"deployment": _dep(Operation.RESTART, S.RUNNING)})
    assert "*alice* · restart running" in str(a.list_message([restarting]).blocks)
