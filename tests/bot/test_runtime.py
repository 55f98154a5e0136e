"""Running the bot: settings checks, health endpoints, Socket Mode, shutdown and resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
import yaml
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.ledger import MemoryLedger
from bot.sandbox.slack import FakeSlack
from bot.sandbox.world import GROUPS, PEOPLE, TOKEN, SandboxBot, sandbox_bot
from bot.settings import load_bot_settings
from deployer import ConfigError, DeploymentState
from deployer.adapters.stores.memory import MemoryStore
from deployer.core.models import Event, PhaseRecord
from deployer.sandbox.server import Sandbox
from deployer.testing import FakeClock
from tests.conftest import TEST_SETTINGS

S = DeploymentState
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SLACK_CLIENT_ID": "1", "SLACK_CLIENT_SECRET": "2"}, "OAuth flow"),
        ({}, "SLACK_SIGNING_SECRET is required in HTTP mode"),
        ({"SLACK_SIGNING_SECRET": "s", "AISTACK_APPROVERS": ""}, "AISTACK_APPROVERS is empty"),
        ({"SLACK_SIGNING_SECRET": "s", "AISTACK_APPROVERS": "alice"}, "Slack user ids"),
        ({"SLACK_SIGNING_SECRET": " "}, "SLACK_SIGNING_SECRET is required"),
        ({"SLACK_APP_TOKEN": "xoxb-secret-value"}, r"SLACK_APP_TOKEN holds a bot token \(xoxb-"),
        ({"SLACK_APP_TOKEN": "secret-value"}, "SLACK_APP_TOKEN must be an app-level token"),
        ({"SLACK_APP_TOKEN": " ", "SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET is required"),
    ],
)
def test_bad_bot_settings_stop_start_up_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    monkeypatch.setenv("AISTACK_APPROVERS", "S0APPROVERS")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=says) as caught:
        load_bot_settings()
    assert "secret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "bad", "right"),
    [
        ("AISTACK_CHANNELS", "#ops", "'#ops'", "C0123ABCD"),
        ("AISTACK_CHANNELS", "C0OPS, ops", "'ops'", "C0123ABCD"),
        ("AISTACK_APPROVERS", "@bob,U0BOB", "'@bob'", "U0123ABCD or W0123ABCD"),
        ("AISTACK_APPROVERS", "bob", "'bob'", "user group ids (S0123ABCD)"),
        ("AISTACK_DEPLOYERS", "@devs", "'@devs'", "user group ids (S0123ABCD)"),
        ("AISTACK_DEPLOYERS", "u0bob", "'u0bob'", "U0123ABCD or W0123ABCD"),
    ],
)
def test_names_where_slack_ids_go_are_refused_with_what_would_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, bad: str,
    right: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("AISTACK_APPROVERS", "S0APPROVERS")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_bot_settings()
    message = str(caught.value)
    assert f"{variable} has {bad}: not a Slack id" in message
    assert right in message and "\n" not in message


def test_slack_ids_of_every_kind_are_taken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("AISTACK_APPROVERS", "U0123ABCD, W0123ABCD,S0123ABCD")
    monkeypatch.setenv("AISTACK_DEPLOYERS", "S0DEVS")
    monkeypatch.setenv("AISTACK_CHANNELS", "C0123ABCD,G0PRIVATE")
    settings = load_bot_settings()
    assert settings.approvers == {"U0123ABCD", "W0123ABCD", "S0123ABCD"}
    assert settings.channels == {"C0123ABCD", "G0PRIVATE"}


def test_socket_mode_needs_no_signing_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("AISTACK_APPROVERS", "U0BOB,S0APPROVERS")
    settings = load_bot_settings()
    assert settings.socket_mode and settings.approvers == {"U0BOB", "S0APPROVERS"}


async def test_a_bad_bot_token_fails_at_start_not_at_the_first_click() -> None:
    with pytest.raises(ConfigError, match="Slack refused SLACK_BOT_TOKEN"):
        async with sandbox_bot(
            engine_clock=FakeClock(), engine=TEST_SETTINGS, bot_token="xoxb-wrong"
        ):
            pass


async def test_health_readiness_and_metrics(world: SandboxBot) -> None:
    base = world.driver.bot_url.removesuffix("/slack/events")
    await world.driver.command("U0ALICE", "deploy alice")
    dep = await world.carded("alice")
    await world.click("U0BOB", "approve", dep)
    await world.settled("alice")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as health:
            assert health.status == 200
        async with http.get(f"{base}/readyz") as ready:
            assert ready.status == 200 and (await ready.json())["ok"] is True
        async with http.get(f"{base}/metrics") as metrics:
            text = await metrics.text()
    assert 'aistack_events_total{kind="deployment.succeeded"} 1.0' in text
    assert 'aistack_slack_calls_total{method="chat.update",outcome="ok"}' in text
    assert "aistack_phase_seconds_bucket" in text


async def test_socket_mode_requests_need_no_signature(world: SandboxBot) -> None:
    body = {"command": "/aistack", "text": "deploy alice", "user_id": "U0ALICE",
            "channel_id": "C0OPS", "team_id": "T0SANDBOX", "trigger_id": "9.9.9",
            "response_url": world.slack.hook_url("socket")}  # fmt: skip
    response = await world.bot.bolt.async_dispatch(
        AsyncBoltRequest(body=body, mode="socket_mode")  # type: ignore[arg-type]
    )
    assert response.status == 200
    assert (await world.carded("alice")).state is S.REQUESTED


async def test_shutdown_pauses_the_card_and_a_restart_finishes_on_it() -> None:
    store = PhaseWatch()
    ledger = MemoryLedger(store)  # the restart keeps the database: deployments and cards
    slack = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    async with Sandbox(deploy_delay=0.4) as engine, slack.serve() as api:
        upstreams = (engine, slack, api)
        async with sandbox_bot(upstreams=upstreams, store=store, ledger=ledger,
                               engine_clock=FakeClock(),
                               engine=TEST_SETTINGS) as first:  # fmt: skip
            await first.driver.command("U0ALICE", "deploy alice")
            dep = await first.carded("alice")
            await first.click("U0BOB", "approve", dep)
            async with asyncio.timeout(10):
                await store.started(dep.id, "deploy").wait()
        paused = await store.get(dep.id)
        assert paused.state is S.RUNNING
        card = await ledger.card(dep.id)
        assert card is not None and card.ts
        assert "Paused" in str(slack.card(card.channel, card.ts).blocks)
        async with sandbox_bot(upstreams=upstreams, store=store, ledger=ledger,
                               engine_clock=FakeClock(),
                               engine=TEST_SETTINGS) as second:  # fmt: skip
            done = await second.settled("alice")
        assert done.id == dep.id and done.state is S.SUCCEEDED
        assert "live at" in slack.card(card.channel, card.ts).text
        assert len(engine.dokploy.snapshot()["applications"]) == 1
        assert slack.violations == []


class PhaseWatch(MemoryStore):
    """A MemoryStore that says when a deployment's phase has been checkpointed for the first
    time (the saga has started it)."""

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[tuple[str, str], asyncio.Event] = {}

    def started(self, deployment_id: str, phase: str) -> asyncio.Event:
        return self._started.setdefault((deployment_id, phase), asyncio.Event())

    async def save_phase(self, record: PhaseRecord, event: Event | None = None) -> None:
        await super().save_phase(record, event)
        self.started(record.deployment_id, record.name).set()


def test_manifest_is_a_valid_least_privilege_slack_manifest() -> None:
    manifest = yaml.safe_load((REPO / "manifest.yml").read_text())
    assert manifest["_metadata"]["major_version"] == 1
    assert manifest["display_information"]["name"]
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/aistack" and command["description"]
    assert command["should_escape"] is False
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # exactly what the bot calls: commands, chat.* and usergroups.users.list
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands", "chat:write", "usergroups:read"
    }  # fmt: skip
    assert json.dumps(manifest)  # plain data, no YAML-only types


def test_manifest_app_home_is_one_slack_accepts() -> None:
    """Slack's manifest schema refuses a read-only messages tab that is not shown at all."""
    home = yaml.safe_load((REPO / "manifest.yml").read_text())["features"]["app_home"]
    if not home.get("messages_tab_enabled", False):
        assert home.get("messages_tab_read_only_enabled", False) is not True


async def test_a_card_left_behind_by_a_dead_bot_is_redrawn(world: SandboxBot) -> None:
    await world.driver.command("U0ALICE", "deploy alice")
    dep = await world.carded("alice")
    await world.bot.notifier.wait_idle()
    # another process decided (its journal wrote the event with the move), then died before
    # drawing: the store moved, the card did not
    said = Event(deployment_id=dep.id, stack=dep.stack, kind="deployment.rejected",
                 state="rejected", actor="U0BOB")  # fmt: skip
    rejected = await world.store.transition(dep, S.REJECTED, approver="U0BOB", event=said)
    assert "Rejected" not in (await world.card(rejected)).text
    assert await world.bot.notifier.redraw_stale() == 1
    assert "Rejected" in (await world.card(rejected)).text
    assert await world.bot.notifier.redraw_stale() == 0
