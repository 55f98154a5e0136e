"""SandboxBot: the real bot, in HTTP mode, between the Slack fake and the deployer sandbox.

The demo, the tests and the benchmark all drive this: people type commands and click
buttons through `SlackDriver` (signed, as Slack sends them); the bot answers through the
real AsyncWebClient into `FakeSlack`; deployments run against the Dokploy/DNS/ingress fakes.
The bot keeps its cards in a card ledger (a MemoryLedger on the MemoryStore unless given):
where a deployment's card is, is asked of it (`card_ts`, `carded`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from bot.ledger import CardLedger, MemoryLedger
from bot.runtime import Bot, running_bot
from bot.sandbox.driver import SlackDriver
from bot.sandbox.slack import FakeSlack, Message
from bot.settings import BotSettings
from deployer import TERMINAL, Deployment
from deployer.adapters.stores.memory import MemoryStore
from deployer.ports import Clock, Store
from deployer.sandbox.server import Sandbox

SECRET = "sandbox-signing-secret"
TOKEN = "xoxb-sandbox"
CHANNEL = "C0OPS"
APPROVERS = "S0APPROVERS"
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0MALLORY": "mallory"}
GROUPS = {APPROVERS: ["U0BOB", "U0CAROL"]}
Upstreams = tuple[Sandbox, FakeSlack, str]


def anything(dep: Deployment) -> bool:
    return True


@dataclass
class SandboxBot:
    engine: Sandbox
    slack: FakeSlack
    bot: Bot
    driver: SlackDriver
    store: Store  # the bot's store: tests read and arrange state through it
    ledger: CardLedger

    async def settled(self, name: str, within: float = 30.0) -> Deployment:
        """The stack's latest deployment once it is terminal and its card is drawn."""
        return await self.until(name, lambda d: d.state in TERMINAL, within)

    async def until(
        self, name: str, check: Callable[[Deployment], bool], within: float = 30.0
    ) -> Deployment:
        return await self._until(name, check, within, carded=False)

    async def carded(
        self, name: str, check: Callable[[Deployment], bool] = anything, within: float = 30.0
    ) -> Deployment:
        """The stack's latest deployment once `check` holds and its card is posted."""
        return await self._until(name, check, within, carded=True)

    async def _until(
        self, name: str, check: Callable[[Deployment], bool], within: float, *, carded: bool
    ) -> Deployment:
        async with asyncio.timeout(within):
            while True:
                dep = await self.bot.deployer.latest(name)
                if dep is not None and check(dep) and (not carded or await self.card_ts(dep)):
                    await self.bot.notifier.wait_idle()
                    return dep
                await asyncio.sleep(0.01)

    async def card_ts(self, dep: Deployment) -> str | None:
        """The ts of the deployment's card (None: not posted)."""
        card = await self.ledger.card(dep.id)
        return None if card is None else card.ts

    async def card(self, dep: Deployment) -> Message:
        ts = await self.card_ts(dep)
        assert dep.channel and ts, "this deployment has no card"
        return self.slack.card(dep.channel, ts)

    async def thread(self, dep: Deployment) -> list[Message]:
        ts = await self.card_ts(dep)
        assert dep.channel and ts, "this deployment has no card"
        return self.slack.thread(dep.channel, ts)

    async def told(self, user: str, words: str, within: float = 10.0) -> str:
        """Wait until `user` has been told something containing `words`; return it."""

        def found() -> list[str]:
            return [t for t in self.said_to(user) if words in t]

        async with asyncio.timeout(within):  # re-checked whenever Slack is called or posted to
            await self.slack.wait_for(lambda: bool(found()))
        return found()[-1]

    async def click(self, user: str, action: str, dep: Deployment) -> None:
        """`user` clicks a button on the deployment's card."""
        ts = await self.card_ts(dep)
        assert dep.channel and ts, "this deployment has no card"
        reply = await self.driver.click(
            user, f"aistack_{action}", dep.id, channel=dep.channel, message_ts=ts
        )
        assert reply.status == 200, reply.body

    def said_to(self, user: str) -> list[str]:
        """Every answer the user saw, through chat.postEphemeral or respond(): its text and
        the text of its blocks (a table or a log lives in the blocks alone)."""
        direct = [e.text + _texts(e.blocks) for e in self.slack.ephemerals if e.user == user]
        hooks = [str(r.get("text", "")) + _texts(r.get("blocks"))  # respond() to commands
                 for r in self.slack.responses]  # fmt: skip
        return direct + hooks


def _texts(blocks: object) -> str:
    """Every `text` string inside Block Kit blocks, one per line."""
    if isinstance(blocks, dict):
        found = [blocks["text"]] if isinstance(blocks.get("text"), str) else []
        return "".join(f"\n{t}" for t in found) + "".join(_texts(v) for v in blocks.values())
    if isinstance(blocks, list):
        return "".join(_texts(item) for item in blocks)
    return ""


@asynccontextmanager
async def sandbox_bot(
    *, upstreams: Upstreams | None = None, deploy_delay: float = 0.01, **options: Any
) -> AsyncIterator[SandboxBot]:
    """A bot on fresh fakes, or on `upstreams` (sandbox, fake Slack, its URL) already
    running: a second bot on the same store, ledger and fakes is a restart, or another
    replica.
    `options` are those of `running_bot` and `engine` (deployer settings), and the rest
    are BotSettings."""
    if upstreams is not None:
        async with _bot(upstreams, **options) as running:
            yield running
        return
    fake = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    async with (
        Sandbox(deploy_delay=deploy_delay) as sandbox,
        fake.serve() as api_url,
        _bot((sandbox, fake, api_url), **options) as running,
    ):
        yield running


@asynccontextmanager
async def _bot(
    upstreams: Upstreams,
    *,
    store: Store | None = None,
    ledger: CardLedger | None = None,
    clock: Clock | None = None,
    engine_clock: Clock | None = None,
    slack_clock: Clock | None = None,
    workers: int = 4,
    post_interval: float = 0.0,
    engine: dict[str, Any] | None = None,
    **bot_settings: Any,
) -> AsyncIterator[SandboxBot]:
    sandbox, fake, api_url = upstreams
    defaults: dict[str, Any] = {
        "bot_token": SecretStr(TOKEN),
        "signing_secret": SecretStr(SECRET),
        "api_url": api_url,
        "approvers": frozenset({APPROVERS}),
        "card_interval": 0.0,
    }
    settings = BotSettings(_env_file=None, **(defaults | bot_settings))
    store = store or MemoryStore()
    ledger = ledger or MemoryLedger(store, clock=clock)
    async with running_bot(
        settings, sandbox.settings(**(engine or {})), store=store, ledger=ledger, clock=clock,
        engine_clock=engine_clock, slack_clock=slack_clock, workers=workers,
        post_interval=post_interval,
    ) as bot:  # fmt: skip
        runner = web.AppRunner(bot.web, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        try:
            async with SlackDriver(url, SECRET, response_base=api_url, names=PEOPLE) as driver:
                yield SandboxBot(sandbox, fake, bot, driver, store, ledger)
        finally:
            await runner.cleanup()
