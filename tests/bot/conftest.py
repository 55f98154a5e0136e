from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer.testing import FakeClock, RecordedSleeps
from tests.bot.ledgers import Database
from tests.conftest import TEST_SETTINGS
from tests.deployer.conftest import fresh_schema


@pytest.fixture(autouse=True)
def no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack variables from the developer's shell must not leak in (OAuth mode, tokens)."""
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN",
                 "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def slack_waits() -> RecordedSleeps:
    """The bot's Slack sleeps, recorded instead of slept."""
    return RecordedSleeps()


@pytest.fixture
async def world(slack_waits: RecordedSleeps) -> AsyncIterator[SandboxBot]:
    async with sandbox_bot(
        engine_clock=FakeClock(), engine=TEST_SETTINGS, slack_clock=slack_waits
    ) as w:
        yield w
        await w.bot.notifier.wait_idle()
    assert w.slack.violations == []  # every Slack Web API call passed the OpenAPI check


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database for card ledgers: in memory, a SQLite file, or a PostgreSQL schema."""
    async with AsyncExitStack() as stack:
        if request.param == "postgres":
            where = await stack.enter_async_context(fresh_schema())
        else:
            where = str(tmp_path / "aistack.db")
        made = Database(request.param, where)
        stack.push_async_callback(made.opened.aclose)
        yield made
