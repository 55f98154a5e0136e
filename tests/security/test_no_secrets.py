"""No secret in any log line, Slack message, stored error or exception text.

One realistic run through the real bot: a deploy, a deploy that fails and is rolled back,
one whose rollback fails, status / list / history / preflight, then a bot whose Dokploy key
and one whose Hetzner token are refused (AuthError), and one whose Slack token is refused at
start. structlog's events and the stdlib's records (DEBUG and up, tracebacks included) are
captured throughout; every surface is searched for every secret value.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from bot.sandbox.world import SECRET, TOKEN, SandboxBot
from bot.settings import load_bot_settings
from deployer import AuthError, ConfigError, DeploymentState, load_settings
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import API_KEY
from deployer.sandbox.server import TOKEN as HETZNER_TOKEN
from tests.security.conftest import ALICE, BOB, CAROL, bot, handled

S = DeploymentState
BAD_DOKPLOY_KEY = "dk-wrong-7f3a9c1e5b2d"
BAD_HETZNER_TOKEN = "hz-wrong-4e8d2a6f0c1b"
BAD_SLACK_TOKEN = "xoxb-wrong-9c1e5b7f3a4e"
APP_TOKEN = "xapp-1-A0TEST-4e1b2c3d5f6a"
STACK_SECRET = "sk-stack-2b6f0c4e8d1a"  # AISTACK_STACK_ENV: the stack's own API key
SECRETS = {
    "Dokploy API key": API_KEY,
    "Hetzner token": HETZNER_TOKEN,
    "Slack bot token": TOKEN,
    "Slack signing secret": SECRET,
    "refused Dokploy key": BAD_DOKPLOY_KEY,
    "refused Hetzner token": BAD_HETZNER_TOKEN,
    "refused Slack token": BAD_SLACK_TOKEN,
    "stack environment secret": STACK_SECRET,
}


class Surfaces:
    """Everything a person could read afterwards, by where it was found."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []

    def add(self, where: str, *items: Any) -> None:
        self.found += [(where, item if isinstance(item, str) else repr(item)) for item in items]

    def raised(self, exc: BaseException) -> None:
        self.errors.append(exc)
        for link in _chain(exc):
            self.add(f"exception {type(link).__name__}", str(link), repr(link))
        self.add("traceback", "".join(traceback.format_exception(exc)))

    async def world(self, world: SandboxBot, acks: list[str]) -> None:
        await handled(world)
        self.add("Slack Web API call", *(f"{c.method} {c.args!r}" for c in world.slack.calls))
        self.add("respond() post", *world.slack.responses)
        self.add("ack body", *acks)
        store = world.store
        for latest in await store.list_latest():
            for event in await store.events(latest.stack):
                dep = await store.get(event.deployment_id)
                self.add("stored deployment", dep.error, dep.leftovers, event)
                self.add("stored phase", *await store.phases(dep.id))
        base = world.driver.bot_url.removesuffix("/slack/events")
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/readyz", "/metrics"):
                async with session.get(base + path) as reply:
                    self.add(f"GET {path}", await reply.text())


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


async def commands(world: SandboxBot, user: str, *texts: str) -> list[str]:
    return [(await world.driver.command(user, text)).body for text in texts]


async def deployed(world: SandboxBot, user: str, name: str, approver: str) -> Any:
    await world.driver.command(user, f"deploy {name}")
    dep = await world.carded(name, within=5)
    await world.click(approver, "approve", dep)
    return await world.settled(name, within=10)


async def realistic_run(surfaces: Surfaces) -> None:
    async with bot(engine={"stack_env": {"OPENAI_API_KEY": STACK_SECRET}}) as world:
        assert (await deployed(world, ALICE, "alice", BOB)).state is S.SUCCEEDED
        world.engine.dokploy.fail_deploys |= {"opencode-bob", "opencode-carol"}
        assert (await deployed(world, BOB, "bob", CAROL)).state is S.ROLLED_BACK
        world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400)
        assert (await deployed(world, CAROL, "carol", BOB)).state is S.ROLLBACK_FAILED
        acks = await commands(world, ALICE, "status alice", "status carol", "list", "list --mine",
                              "history alice", "history carol", "preflight",
                              "deploy dave --dry-run")  # fmt: skip
        await surfaces.world(world, acks)

    refused = {"dokploy_api_key": BAD_DOKPLOY_KEY}, {"hetzner_token": BAD_HETZNER_TOKEN}
    for engine in refused:
        async with bot(engine=engine) as world:
            with pytest.raises(AuthError) as caught:
                await world.bot.deployer.preflight()
            surfaces.raised(caught.value)
            acks = await commands(world, ALICE, "preflight", "status alice", "list")
            failed = await deployed(world, ALICE, "alice", BOB)
            assert failed.state is S.ROLLED_BACK and "AISTACK_" in (failed.error or "")
            await surfaces.world(world, acks)

    with pytest.raises(ConfigError) as start:
        async with bot(bot_token=SecretStr(BAD_SLACK_TOKEN)):
            pass
    surfaces.raised(start.value)


async def test_no_secret_in_logs_slack_store_or_exceptions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    surfaces = Surfaces()
    with capture_logs() as events:
        await realistic_run(surfaces)
    surfaces.add("structlog event", *events)
    render = logging.Formatter("%(name)s %(levelname)s %(message)s")
    surfaces.add("stdlib log record", *(render.format(r) for r in caplog.records))

    leaks = [(name, where, text[:300]) for where, text in surfaces.found
             for name, value in SECRETS.items() if value in text]  # fmt: skip
    assert leaks == []
    # The run did what it claims: otherwise "no leak" would prove nothing.
    kinds = {e.get("event") for e in events}
    assert {"deployment.rolled_back", "deployment.rollback_failed"} <= kinds
    said = "\n".join(text for where, text in surfaces.found if where == "respond() post")
    assert "check AISTACK_DOKPLOY_API_KEY" in said and "check AISTACK_HETZNER_TOKEN" in said
    assert any(r.name.startswith("slack_sdk") for r in caplog.records)  # DEBUG records too
    assert [type(e) for e in surfaces.errors] == [AuthError, AuthError, ConfigError]


def test_settings_show_no_secret() -> None:
    engine = load_settings(
        _env_file=None, dokploy_url="http://127.0.0.1:1", dokploy_api_key=API_KEY,
        hetzner_token=HETZNER_TOKEN, dns_zone="example.test", domain_suffix="ai.example.test",
        ingress_ip="127.0.0.1", stack_env={"OPENAI_API_KEY": STACK_SECRET},
    )  # fmt: skip
    slack = load_bot_settings(_env_file=None, bot_token=TOKEN, signing_secret=SECRET,
                              app_token=APP_TOKEN, approvers="S0APPROVERS")  # fmt: skip
    for settings in (engine, slack):
        shown = [repr(settings), str(settings), settings.model_dump_json()]
        for secret in (API_KEY, HETZNER_TOKEN, TOKEN, SECRET, APP_TOKEN):
            assert not any(secret in text for text in shown), (type(settings).__name__, secret)
    assert engine.dokploy_api_key.get_secret_value() == API_KEY  # still there to be used
    with pytest.raises(ConfigError) as refused:  # a bot token where the app token goes
        load_bot_settings(_env_file=None, bot_token=TOKEN, signing_secret=SECRET,
                          app_token=BAD_SLACK_TOKEN, approvers="S0APPROVERS")  # fmt: skip
    assert BAD_SLACK_TOKEN not in str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"dokploy_url": API_KEY},  # the key pasted into the URL's variable
        {"ingress_ip": HETZNER_TOKEN},
        {"dns_ttl": API_KEY},
    ],
    ids=["key as url", "token as ip", "key as ttl"],
)
def test_a_setting_error_names_the_variable_not_the_value(overrides: dict[str, str]) -> None:
    values = {
        "dokploy_url": "http://127.0.0.1:1", "dokploy_api_key": API_KEY,
        "hetzner_token": HETZNER_TOKEN, "dns_zone": "example.test",
        "domain_suffix": "ai.example.test", "ingress_ip": "127.0.0.1",
    }  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **(values | overrides))
    text = "".join(traceback.format_exception(caught.value))
    assert f"AISTACK_{next(iter(overrides)).upper()}" in str(caught.value)
    assert API_KEY not in text and HETZNER_TOKEN not in text
