"""Security tests: the real bot in HTTP mode between the Slack fake and the deployer sandbox.

Helpers shared by the files here: a clean environment, a fresh world per test (`world`) or
one per module on a background loop (`live`, for hypothesis), "wait until the bot has
finished handling what it acked", and "everything Slack was ever shown".
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from bot.sandbox.checks import json_array
from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer.testing import FakeClock
from tests.bot.blockkit import texts
from tests.conftest import TEST_SETTINGS

ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"


@contextmanager
def clean_env() -> Iterator[None]:
    """No SLACK_* or AISTACK_* variable from the developer's shell reaches the bot's settings
    (SLACK_APP_TOKEN would switch to Socket Mode, AISTACK_CHANNELS would restrict it)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("SLACK_", "AISTACK_")):
                mp.delenv(name)
        yield


@pytest.fixture(autouse=True)
def no_slack_env() -> Iterator[None]:
    with clean_env():
        yield


def bot(**options: Any):  # type: ignore[no-untyped-def]
    """`sandbox_bot` as the tests here use it: a clock that never waits, fast timeouts."""
    return sandbox_bot(engine_clock=FakeClock(), engine=TEST_SETTINGS | options.pop("engine", {}),
                       **options)  # fmt: skip


@pytest.fixture
async def world() -> AsyncIterator[SandboxBot]:
    async with bot() as running:
        yield running
        await handled(running)
    assert running.slack.violations == []


async def handled(world: SandboxBot, within: float = 5.0) -> None:
    """Return once every command and click the bot acked has been handled, and every card
    and thread reply it caused has been written.

    No grace period is needed before looking: a listener spawns its work into `bot.tasks` in
    the same step as its `ack()` (nothing is awaited in between), and Bolt answers the HTTP
    request only after it has seen the ack, so the work is tracked before the answer is back."""
    async with asyncio.timeout(within):
        while len(world.bot.tasks):  # noqa: ASYNC110 - Tasks has no "all done" event to wait on
            await asyncio.sleep(0.005)  # a bounded poll: yields to the loop the work runs on
        await world.bot.notifier.wait_idle()


async def snapshot(world: SandboxBot) -> tuple[Any, ...]:
    """What the bot's store holds (each stack's latest deployment and its version) and
    what the fakes hold: equal before and after means nothing changed."""
    latest = await world.store.list_latest()
    records = tuple((d.stack, d.id, str(d.state), d.version) for d in latest)
    return records, world.engine.resources()


def message_texts(payload: Mapping[str, Any]) -> list[str]:
    """The top-level text and every text in the blocks of a Web API call, respond() post or
    ack body (blocks may arrive as JSON text)."""
    found = [payload["text"]] if isinstance(payload.get("text"), str) else []
    return found + list(texts(json_array(payload.get("blocks")) or []))


def shown(world: SandboxBot, acks: Iterable[str] = ()) -> list[str]:
    """Every text Slack was given: all Web API calls (cards, edits, thread replies,
    ephemerals), all respond() posts, and the given ack bodies."""
    out = [t for call in world.slack.calls for t in message_texts(call.args)]
    out += [t for payload in world.slack.responses for t in message_texts(payload)]
    for body in acks:
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = {"text": body}
        out += message_texts(parsed) if isinstance(parsed, dict) else [body]
    return out


class LiveBot:
    """The bot, started once on a loop in a background thread; `run` waits for a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stop = asyncio.Event()
        self._held: asyncio.Future[None] | None = None
        self.world: SandboxBot = self.run(self._start())

    async def _start(self) -> SandboxBot:
        started: asyncio.Future[SandboxBot] = self.loop.create_future()
        self._held = asyncio.ensure_future(self._hold(started))
        return await started

    async def _hold(self, started: asyncio.Future[SandboxBot]) -> None:
        try:
            async with bot() as world:
                started.set_result(world)
                await self._stop.wait()
                await handled(world)
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    def run(self, work: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        async def stop() -> None:
            self._stop.set()
            assert self._held is not None
            await self._held

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def live() -> Iterator[LiveBot]:
    """One bot for a whole module (hypothesis examples are many and synchronous)."""
    with clean_env():
        running = LiveBot()
    try:
        yield running
    finally:
        running.close()
    assert running.world.slack.violations == []
