"""`aistack stop|start|restart`, `status --check` and `logs`, run as a user runs them: a
process per command, state in SQLite, the sandbox served by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.sandbox.server import Sandbox
from tests.deployer.cli_helpers import aistack, cli_env

NO_DOCKER = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."


@pytest.fixture
async def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    made = cli_env(sandbox, tmp_path / "aistack.db")
    deployed = await aistack(made, "deploy", "alice")
    assert deployed.code == 0, deployed.output
    return made


async def test_stop_check_start_restart(env: dict[str, str], sandbox: Sandbox) -> None:
    stopped = await aistack(env, "stop", "alice")
    assert stopped.code == 0, stopped.output
    assert "alice: stopping" in stopped.output
    assert "alice: stopped; its data is kept; `aistack start alice` starts it" in stopped.output
    assert "alice.ai.example.test" not in sandbox.dokploy.live_hosts()
    status = await aistack(env, "status", "alice")
    assert "  stopped since " in status.output and " · release 1" in status.output
    checked = await aistack(env, "status", "alice", "--check")
    assert checked.code == 0 and ": not probed" in checked.output
    started = await aistack(env, "start", "alice")
    assert started.code == 0, started.output
    assert "alice: running again, answers at https://alice.ai.example.test" in started.output
    checked = await aistack(env, "status", "alice", "--check")
    answers, running = checked.output.splitlines()[1:]
    assert answers == "  answers (200)"
    assert running.startswith("  running for under a minute · release 1 · expires ")
    restarted = await aistack(env, "restart", "alice")
    assert restarted.code == 0, restarted.output
    assert "alice: restarted, answers at https://alice.ai.example.test" in restarted.output


async def test_a_failed_start_exits_1_and_says_why(env: dict[str, str], sandbox: Sandbox) -> None:
    assert (await aistack(env, "stop", "alice")).code == 0
    sandbox.dokploy.store.docker_error = NO_DOCKER
    failed = await aistack(env, "start", "alice")
    assert failed.code == 1, failed.output
    assert "Dokploy could not start the container (500 INTERNAL_SERVER_ERROR)" in failed.output
    assert "alice: start failed; nothing changed" in failed.output
    assert "Docker daemon" not in failed.output


async def test_refusals_exit_with_their_codes(env: dict[str, str]) -> None:
    not_live = await aistack(env, "stop", "bob")
    assert not_live.code == 6 and "bob is not live: there is nothing to stop" in not_live.output
    running = await aistack(env, "start", "alice")
    assert running.code == 6 and "alice is running already" in running.output
    no_name = await aistack(env, "status", "--check")
    assert no_name.code == 2 and "--check needs a stack name" in no_name.output
    too_many = await aistack(env, "logs", "alice", "--tail", "5000")
    assert too_many.code == 2 and "a whole number from 1 to 1000" in too_many.output


async def test_logs_print_the_lines_as_written(env: dict[str, str], sandbox: Sandbox) -> None:
    sandbox.dokploy.container_prints("opencode-alice", "listening on :4096 <b>&", ":tada: ready")
    logs = await aistack(env, "logs", "alice", "--tail", "2")
    assert logs.code == 0, logs.output
    heading, *lines = logs.output.splitlines()
    assert heading == "# alice: last 2 lines of its container output"
    assert lines == ["listening on :4096 <b>&", ":tada: ready"]
    build = await aistack(env, "logs", "alice", "--build")
    assert build.output.splitlines()[-1] == "Docker Deployed: ✅"
    assert (await aistack(env, "stop", "alice")).code == 0
    stopped = await aistack(env, "logs", "alice")
    assert stopped.code == 0 and "alice is stopped (since " in stopped.output
