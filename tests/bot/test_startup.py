"""Start-up and shutdown that explain themselves: `python -m bot` as a process, and the runtime
in this process, against the Slack fake. Every address is on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import resolver
from pydantic import SecretStr

from bot.sandbox.slack import FakeSlack
from bot.sandbox.world import GROUPS, PEOPLE, TOKEN, SandboxBot, sandbox_bot
from deployer import ConfigError, DeploymentState
from deployer.sandbox.server import Sandbox
from deployer.testing import FakeClock
from tests.conftest import TEST_SETTINGS

APP_TOKEN = "xapp-sandbox"
WITHIN = 30.0  # seconds any one wait below may take before the test fails


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bot_env(api_url: str, tmp: Path, **slack: str) -> dict[str, str]:
    """A complete environment for `python -m bot`: Slack at `api_url`; Dokploy and DNS at a
    closed port (nothing calls them unless someone deploys)."""
    closed = f"http://127.0.0.1:{free_port()}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AISTACK_", "SLACK_"))}
    engine = {"AISTACK_DOKPLOY_URL": closed, "AISTACK_DOKPLOY_API_KEY": "k",
              "AISTACK_HETZNER_URL": closed, "AISTACK_HETZNER_TOKEN": "t",
              "AISTACK_DNS_ZONE": "example.com", "AISTACK_DOMAIN_SUFFIX": "example.com",
              "AISTACK_INGRESS_IP": "127.0.0.1", "AISTACK_DATABASE_URL": f"sqlite:///{tmp}/a.db",
              "AISTACK_BOT_HOST": "127.0.0.1", "AISTACK_BOT_PORT": str(free_port())}  # fmt: skip
    bot = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": api_url, "AISTACK_APPROVERS": "S0APPROVERS"}
    return base | engine | bot | slack


class BotProcess:
    """`python -m bot` in `tmp` (no .env there), its output captured."""

    def __init__(self, process: asyncio.subprocess.Process, env: dict[str, str]) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{env['AISTACK_BOT_PORT']}"

    @classmethod
    async def start(cls, env: dict[str, str], tmp: Path) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=tmp,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(process, env)

    async def finished(self) -> tuple[int, list[str]]:
        """Exit code and the non-empty output lines; fails if it runs on past WITHIN."""
        async with asyncio.timeout(WITHIN):
            out, _ = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, [line for line in out.decode().splitlines() if line]

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        """The first answer of /readyz, polled until the web app is up."""
        async with asyncio.timeout(WITHIN), aiohttp.ClientSession() as http:
            while self.process.returncode is None:
                try:
                    async with http.get(f"{self.url}/readyz") as reply:
                        return reply.status, await reply.json()
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        raise AssertionError(f"the bot exited with {self.process.returncode}")

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@asynccontextmanager
async def bot_process(env: dict[str, str], tmp: Path) -> AsyncIterator[BotProcess]:
    bot = await BotProcess.start(env, tmp)
    try:
        yield bot
    finally:
        bot.kill()  # a test that failed half-way leaves no process behind
        await bot.process.wait()


@asynccontextmanager
async def black_hole() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server that accepts connections and never answers: its URL, and an event set once
    someone has connected."""
    connected, held = asyncio.Event(), list[asyncio.StreamWriter]()

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        connected.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/", connected
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


# -- Slack unreachable at start --------------------------------------------------------------


async def test_slack_unreachable_at_start_is_one_line_naming_url_and_cause(tmp_path: Path) -> None:
    api_url = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    async with bot_process(bot_env(api_url, tmp_path, SLACK_SIGNING_SECRET="s"), tmp_path) as bot:
        code, lines = await bot.finished()
    assert code == 2
    assert lines == [
        f"aistack-bot: Slack unreachable at {api_url}: cannot connect to "
        f"127.0.0.1:{api_url.split(':')[2].split('/')[0]} (Connection refused)"
    ]


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[Sandbox, FakeSlack, str]]:
    slack = FakeSlack(bot_token=TOKEN, app_token=APP_TOKEN, users=PEOPLE, usergroups=GROUPS)
    async with Sandbox(deploy_delay=0.01) as engine, slack.serve() as api_url:
        yield engine, slack, api_url


async def start_fails(upstreams: tuple[Sandbox, FakeSlack, str], **options: Any) -> str:
    """Start the bot on these upstreams; the one-line reason it refused to start."""
    with pytest.raises(ConfigError) as caught:
        async with sandbox_bot(upstreams=upstreams, engine_clock=FakeClock(), engine=TEST_SETTINGS,
                               **options):  # fmt: skip
            pass
    message = str(caught.value)
    assert "\n" not in message and TOKEN not in message and APP_TOKEN not in message
    return message


async def test_a_tls_failure_is_named(upstreams: tuple[Sandbox, FakeSlack, str]) -> None:
    engine, slack, api_url = upstreams  # the fake speaks plain HTTP: TLS to it fails
    tls_url = api_url.replace("http://", "https://")
    message = await start_fails((engine, slack, tls_url))
    assert message.startswith(f"Slack unreachable at {tls_url}: TLS handshake with 127.0.0.1")


async def test_a_silent_slack_is_a_timeout(upstreams: tuple[Sandbox, FakeSlack, str]) -> None:
    engine, slack, _ = upstreams
    async with black_hole() as (silent_url, _connected):
        message = await start_fails((engine, slack, silent_url), slack_timeout=0.3)
    assert message == f"Slack unreachable at {silent_url}: no answer within 0.3 s"


async def test_a_dns_failure_is_named(
    upstreams: tuple[Sandbox, FakeSlack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_such_name(*_: Any, **__: Any) -> Any:  # as getaddrinfo fails, without asking
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(resolver.DefaultResolver, "resolve", no_such_name)
    engine, slack, _ = upstreams
    message = await start_fails((engine, slack, "https://slack.invalid/api/"))
    assert message == ("Slack unreachable at https://slack.invalid/api/: cannot resolve "
                       "slack.invalid (DNS lookup failed: Name or service not known)")  # fmt: skip


async def test_something_else_than_slack_answering_is_named(
    upstreams: tuple[Sandbox, FakeSlack, str],
) -> None:
    engine, slack, api_url = upstreams
    wrong = api_url.replace("/api/", "/elsewhere/")  # the fake answers 404 there
    message = await start_fails((engine, slack, wrong))
    assert message == (f"Slack unreachable at {wrong}: HTTP 404 without a Slack API answer; "
                       "check SLACK_API_URL")  # fmt: skip


# -- Socket Mode: the app token, SIGTERM, /readyz, the websocket --------------------------------


async def test_a_refused_app_token_stops_the_start_in_one_line(tmp_path: Path) -> None:
    slack = FakeSlack(bot_token=TOKEN, app_token=APP_TOKEN)
    async with slack.serve() as api_url:
        env = bot_env(api_url, tmp_path, SLACK_APP_TOKEN="xapp-revoked-long-ago")
        async with bot_process(env, tmp_path) as bot:
            code, lines = await bot.finished()
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("aistack-bot: Slack refused SLACK_APP_TOKEN (invalid_auth): ")
    assert "xapp-revoked" not in lines[0]
    assert len(slack.calls_to("apps.connections.open")) == 1  # asked once, not every 10 s
    assert slack.violations == []


@pytest.mark.parametrize("error", ["not_allowed_token_type", "token_revoked", "invalid_auth"])
async def test_each_app_token_refusal_is_named(
    upstreams: tuple[Sandbox, FakeSlack, str], error: str
) -> None:
    upstreams[1].fail_next("apps.connections.open", error)
    message = await start_fails(upstreams, app_token=SecretStr(APP_TOKEN))
    assert message.startswith(f"Slack refused SLACK_APP_TOKEN ({error}): it must be the app's")


async def test_sigterm_stops_the_bot_while_its_websocket_connects(tmp_path: Path) -> None:
    slack = FakeSlack(bot_token=TOKEN, app_token=APP_TOKEN)
    slack.refuse_sockets = True  # the handshake fails: the SDK retries it without end
    async with slack.serve() as api_url:
        env = bot_env(api_url, tmp_path, SLACK_APP_TOKEN=APP_TOKEN)
        async with bot_process(env, tmp_path) as bot:
            status, body = await bot.readyz()
            async with asyncio.timeout(WITHIN):
                await slack.wait_for(lambda: slack.socket_attempts > 0)
            bot.process.send_signal(signal.SIGTERM)
            code, lines = await bot.finished()
    assert status == 503 and body == {"ok": False, "socket": "not connected to Slack (Socket Mode)"}
    assert code == 0
    output = "\n".join(lines)
    assert "Traceback" not in output and "ticket=ticket-" not in output and APP_TOKEN not in output


async def test_sigterm_while_starting_gives_the_start_up(tmp_path: Path) -> None:
    async with black_hole() as (silent_url, connected):
        env = bot_env(silent_url, tmp_path, SLACK_SIGNING_SECRET="s")
        async with bot_process(env, tmp_path) as bot:
            async with asyncio.timeout(WITHIN):
                await connected.wait()  # auth.test is waiting for an answer
            bot.process.send_signal(signal.SIGTERM)
            code, lines = await bot.finished()
    assert (code, lines) == (0, ["aistack-bot: stopped while starting"])


async def test_socket_mode_round_trip_on_the_fake_websocket(
    upstreams: tuple[Sandbox, FakeSlack, str],
) -> None:
    slack = upstreams[1]
    async with sandbox_bot(upstreams=upstreams, engine_clock=FakeClock(), engine=TEST_SETTINGS,
                           app_token=SecretStr(APP_TOKEN)) as world:  # fmt: skip
        await until_ready(world)
        assert len(slack.calls_to("apps.connections.open")) == 1  # the start check's URL is used
        # a slash command over the socket: acked on it, and the request card is posted
        command = slash_command(world, "deploy alice")
        envelope_id = await slack.send_envelope("slash_commands", command)
        async with asyncio.timeout(WITHIN):
            await slack.wait_for(lambda: envelope_id in slack.acks)
        card = await world.carded("alice")
        assert card.state is DeploymentState.REQUESTED
        # bob approves on the card: the click comes over the socket too, and the stack goes live
        ts = await world.card_ts(card)
        assert card.channel and ts
        click = world.driver.click_payload("U0BOB", "aistack_approve", card.id,
                                           channel=card.channel, message_ts=ts,
                                           hook="socket")  # fmt: skip
        clicked = await slack.send_envelope("interactive", click)
        async with asyncio.timeout(WITHIN):
            await slack.wait_for(lambda: clicked in slack.acks)
        live = await world.settled("alice")
        assert (live.state, live.approver) == (DeploymentState.SUCCEEDED, "U0BOB")
        # Slack asks for a refresh: the bot opens a new connection, then leaves the old one
        first = slack.sockets[0]
        await slack.disconnect_sockets("refresh_requested")
        async with asyncio.timeout(WITHIN):
            await slack.wait_for(lambda: first.closed and len(slack.open_sockets()) == 1)
        await until_ready(world)
        assert len(slack.calls_to("apps.connections.open")) == 2
        await world.bot.notifier.wait_idle()
    assert slack.violations == []


async def until_ready(world: SandboxBot) -> None:
    """Poll /readyz (bounded) until it says ready."""
    base = world.driver.bot_url.removesuffix("/slack/events")
    async with asyncio.timeout(WITHIN), aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{base}/readyz") as reply:
                if reply.status == 200:
                    return
                assert (await reply.json()).get("socket"), "not ready, but not for the socket"
            await asyncio.sleep(0.02)


def slash_command(world: SandboxBot, text: str) -> dict[str, str]:
    """A slash command's payload as Socket Mode carries it: the form fields, as JSON."""
    return {"command": "/aistack", "text": text, "user_id": "U0ALICE", "user_name": "alice",
            "channel_id": "C0OPS", "channel_name": "ops", "team_id": "T0SANDBOX",
            "api_app_id": "A0AISTACK", "trigger_id": "9.9.9",
            "response_url": world.slack.hook_url("socket")}  # fmt: skip
