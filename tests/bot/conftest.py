from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.world import SandboxBot, sandbox_bot
from deployer.testing import FakeClock, RecordedSleeps
from tests.conftest import TEST_SETTINGS


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
    async with sandbox_bot(clock=FakeClock(), engine=TEST_SETTINGS, slack_sleep=slack_waits) as w:
        yield w
        await w.bot.notifier.wait_idle()
    assert w.slack.violations == []  # every Slack Web API call passed the OpenAPI check
