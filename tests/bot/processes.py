"""Real `python -m bot` processes against the sandboxes, for tests that SIGKILL them.

People act through signed requests (SlackDriver); the test reads the database the bots share
(the deployer's store, the bot's card ledger) and the Slack fake's calls and messages. Waits
poll with a bounded loop, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bot import messages as m
from bot.ledger import CardLedger, open_ledger
from bot.sandbox.driver import SlackDriver
from bot.sandbox.slack import Call, FakeSlack, Message
from bot.sandbox.world import GROUPS, PEOPLE, SECRET, TOKEN, anything
from chaos.process import BotProcess
from chaos.run import chaos_env
from deployer import Deployment
from deployer.adapters.stores import open_store
from deployer.ports import Store
from deployer.sandbox.server import Sandbox

T = TypeVar("T")
CHANNEL = "C0OPS"


@dataclass
class Bots:
    sandbox: Sandbox
    slack: FakeSlack
    api_url: str
    store: Store
    ledger: CardLedger
    env: dict[str, str]
    logs: Path
    running: list[BotProcess] = field(default_factory=list)
    drivers: list[SlackDriver] = field(default_factory=list)

    async def start(self) -> SlackDriver:
        """One more bot process (a restart, or another replica); a driver to its URL."""
        bot = BotProcess(self.env, self.logs / f"bot{len(self.running)}.log")
        url = await bot.start()
        self.running.append(bot)
        self.drivers.append(SlackDriver(url, SECRET, response_base=self.api_url, names=PEOPLE))
        return self.drivers[-1]

    async def until(self, what: str, check: Callable[[], Awaitable[T | None]],
                    within: float = 60.0) -> T:  # fmt: skip
        """Poll `check` until it answers something; fail naming `what` after `within` s."""
        try:
            async with asyncio.timeout(within):
                while True:
                    found = await check()
                    if found is not None and found is not False:
                        return found
                    await asyncio.sleep(0.02)  # another process writes: nothing to wait on
        except TimeoutError:
            raise AssertionError(f"not within {within:.0f} s: {what}") from None

    async def latest(self, name: str, check: Callable[[Deployment], bool]) -> Deployment:
        async def found() -> Deployment | None:
            dep = await self.store.latest(name)
            return dep if dep is not None and check(dep) else None

        return await self.until(f"{name} as wanted", found)

    async def carded(self, name: str, check: Callable[[Deployment], bool] = anything) -> Deployment:
        """The stack's latest deployment once `check` holds and its card is posted."""

        async def found() -> Deployment | None:
            dep = await self.store.latest(name)
            if dep is None or not check(dep) or await self.card_ts(dep) is None:
                return None
            return dep

        return await self.until(f"{name} as wanted, with its card", found)

    async def card_ts(self, dep: Deployment) -> str | None:
        card = await self.ledger.card(dep.id)
        return None if card is None else card.ts

    async def failed_post(self, after: int) -> Call:
        """The next chat.postMessage Slack refused, among the calls after index `after`."""

        async def found() -> Call | None:
            failed = [c for c in self.slack.calls[after:]
                      if c.method == "chat.postMessage" and c.error]  # fmt: skip
            return failed[0] if failed else None

        return await self.until("a refused chat.postMessage", found, within=20)

    async def thread(self, dep: Deployment) -> list[Message]:
        ts = await self.card_ts(dep)
        assert dep.channel and ts
        return self.slack.thread(dep.channel, ts)

    def cards(self) -> list[Message]:
        return [m for m in self.slack.messages.values() if m.thread_ts is None]


@asynccontextmanager
async def bots(
    workdir: Path, database_url: str, *, deploy_delay: float = 0.2, **env: str
) -> AsyncIterator[Bots]:
    """The sandboxes and the Slack fake; bots started with `start()`, killed at the end."""
    slack = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    sandbox = Sandbox(deploy_delay=deploy_delay, action_polls=1)
    async with sandbox, slack.serve() as api_url:
        base = chaos_env(sandbox, api_url, workdir / "unused.db")
        settings = {f"AISTACK_{k}": v for k, v in env.items()}
        world_env = base | {"AISTACK_DATABASE_URL": database_url} | settings
        store = await open_store(database_url)
        ledger = await open_ledger(database_url, store)
        world = Bots(sandbox, slack, api_url, store, ledger, world_env, workdir)
        try:
            yield world
        finally:
            for bot in world.running:
                bot.kill()
            for driver in world.drivers:
                await driver.close()
            await ledger.close()
            await store.close()


async def expected_thread(store: Store, dep: Deployment) -> str:
    """One line per phase and undo, in the order the store logged them, then the outcome."""
    lines = [m.thread_line(e) for e in await store.events_for(dep.id)]
    outcome = m.outcome_line(dep, await store.phases(dep.id))
    return "\n".join(line for line in [*lines, outcome] if line)


def thread_text(replies: list[Message]) -> str:
    return "\n".join(reply.text for reply in replies)


def phase_steps(replies: list[Message]) -> list[int]:
    """The phase numbers the thread reports, in the order it reports them."""
    return [int(n) for reply in replies for n in re.findall(r"\[(\d+)/\d+\]", reply.text)]
