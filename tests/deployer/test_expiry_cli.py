"""A stack's lifetime at the edges the operator sees: the AISTACK_* settings that set it, and
`aistack deploy --for`, `aistack extend` and `aistack sweep`, a process per command."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployer.adapters.stores.sqlite import SqliteStore
from deployer.core.events import EventKind
from deployer.core.models import Event
from deployer.errors import ConfigError
from deployer.sandbox.server import Sandbox
from deployer.settings import load_settings
from tests.deployer.cli_helpers import aistack, cli_env
from tests.deployer.test_settings import REQUIRED

DAY = 86400.0


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_the_lifetime_settings_and_their_defaults(env: pytest.MonkeyPatch) -> None:
    lifetime = load_settings().lifetime
    assert (lifetime.ttl, lifetime.ttl_max) == (7 * DAY, 30 * DAY)
    assert (lifetime.notice, lifetime.grace, lifetime.interval) == (86400, 3 * DAY, 60)
    env.setenv("AISTACK_STACK_TTL", "none")
    env.setenv("AISTACK_EXPIRY_NOTICE", "90m")
    lifetime = load_settings().lifetime
    assert (lifetime.ttl, lifetime.notice) == (None, 5400)


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("AISTACK_STACK_TTL", "forever",
         "AISTACK_STACK_TTL 'forever' is not a duration: use 3d, 36h, 90m or 2w, or none"),
        ("AISTACK_STACK_TTL_MAX", "none", "AISTACK_STACK_TTL_MAX 'none' is not a duration"),
        ("AISTACK_EXPIRY_NOTICE", "24", "AISTACK_EXPIRY_NOTICE '24' is not a duration"),
        ("AISTACK_STOPPED_GRACE", "0d", "AISTACK_STOPPED_GRACE '0d' is not a duration"),
        ("AISTACK_STACK_TTL", "60d",
         r"AISTACK_STACK_TTL_MAX \(30d\) must be at least AISTACK_STACK_TTL \(60d\)"),
        ("AISTACK_LIFECYCLE_INTERVAL", "0", "AISTACK_LIFECYCLE_INTERVAL"),
    ],
)  # fmt: skip
def test_a_bad_lifetime_setting_fails_start_up_naming_it(
    env: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    env.setenv(var, value)
    with pytest.raises(ConfigError, match=says):
        load_settings()


@pytest.fixture
def cli(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sandbox, tmp_path / "aistack.db")


async def test_deploy_for_sets_the_expiry_and_past_the_maximum_records_nothing(
    cli: dict[str, str], tmp_path: Path
) -> None:
    too_long = await aistack(cli, "deploy", "alice", "--for", "5w")
    assert too_long.code == 2, too_long.output
    assert "at most 30 days (AISTACK_STACK_TTL_MAX)" in too_long.output
    assert (await aistack(cli, "history", "alice")).code == 6  # nothing was recorded
    not_a_duration = await aistack(cli, "deploy", "alice", "--for", "soon")
    assert not_a_duration.code == 2
    assert "'soon' is not a duration: use 3d, 36h, 90m or 2w" in not_a_duration.output

    before = datetime.now(UTC)
    assert (await aistack(cli, "deploy", "alice", "--for", "2d")).code == 0
    store = await SqliteStore.open(tmp_path / "aistack.db")
    try:
        live = await store.live("alice")
    finally:
        await store.close()
    assert live is not None and live.expires_at is not None
    assert before + timedelta(days=2) <= live.expires_at <= datetime.now(UTC) + timedelta(days=2)


async def test_extend_says_the_new_expiry_and_refuses_past_the_maximum(
    cli: dict[str, str],
) -> None:
    assert (await aistack(cli, "deploy", "alice")).code == 0
    extended = await aistack(cli, "extend", "alice", "--for", "10d")
    assert extended.code == 0, extended.output
    expected = datetime.now(UTC) + timedelta(days=10)
    assert f"alice now expires {expected:%Y-%m-%d}" in extended.output
    refused = await aistack(cli, "extend", "alice", "--for", "31d")
    assert refused.code == 2 and "at most 30 days" in refused.output
    missing = await aistack(cli, "extend", "bob")
    assert missing.code == 6 and "bob is not live: there is nothing to extend" in missing.output


async def expired(database: Path, stack: str = "alice") -> None:
    """Give the live stack an expiry a minute past, as the store would hold it a week on."""
    store = await SqliteStore.open(database)
    try:
        live = await store.live(stack)
        assert live is not None
        past = datetime.now(UTC) - timedelta(minutes=1)
        said = Event(deployment_id=live.deployment_id, stack=stack, actor="test",
                     kind=EventKind.STACK_EXTENDED)  # fmt: skip
        await store.extend(stack, past, said)
    finally:
        await store.close()


async def stopped(database: Path, stack: str = "alice") -> bool:
    store = await SqliteStore.open(database)
    try:
        live = await store.live(stack)
    finally:
        await store.close()
    return live is not None and live.stopped_at is not None


async def test_sweep_stops_an_expired_stack_and_says_so(
    cli: dict[str, str], tmp_path: Path
) -> None:
    assert (await aistack(cli, "deploy", "alice")).code == 0
    quiet = await aistack(cli, "sweep")
    assert quiet.code == 0 and "nothing due" in quiet.output
    await expired(tmp_path / "aistack.db")
    swept = await aistack(cli, "sweep")
    assert swept.code == 0, swept.output
    assert "alice: stop requested" in swept.output
    history = await aistack(cli, "history", "alice", "--json")
    assert '"kind":"stack.expired"' in history.output.replace(" ", "")
    assert "nothing due" in (await aistack(cli, "sweep")).output  # stopped: the grace runs


async def test_the_worker_sweeps_as_it_runs_until_stopped(
    cli: dict[str, str], tmp_path: Path
) -> None:
    assert (await aistack(cli, "deploy", "alice")).code == 0
    await expired(tmp_path / "aistack.db")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deployer.cli", "--log-level", "info", "worker", env=cli,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert worker.stderr is not None
    said: list[str] = []
    try:
        async with asyncio.timeout(30):  # its first sweep requests the stop, then it runs it
            while "deployment.succeeded" not in (line := (await worker.stderr.readline()).decode()):
                assert line, f"the worker ended: {said}"
                said.append(line)
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.communicate()
    assert worker.returncode == 0
    assert any("stack expired: stop requested" in line for line in said)
    assert await stopped(tmp_path / "aistack.db")
