"""`aistack releases` and `aistack rollback`, run as an operator runs them: a process per
command, state in SQLite, the sandbox served by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.sandbox.server import Sandbox
from tests.deployer.cli_helpers import aistack, cli_env

V2 = "ghcr.io/sst/opencode:v2"
SECRET = "cli-never-printed-value"


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sandbox, tmp_path / "aistack.db") | {
        "AISTACK_STACK_ENV": json.dumps({"TOKEN": SECRET}),
        "AISTACK_HEALTH_TIMEOUT": "1",
    }


async def test_rollback_puts_the_previous_release_back_and_releases_list_it(
    env: dict[str, str], sandbox: Sandbox
) -> None:
    assert (await aistack(env, "deploy", "alice")).code == 0
    assert (await aistack(env, "deploy", "alice", "--image", V2)).code == 0
    back = await aistack(env, "rollback", "alice")
    assert back.code == 0, back.output
    assert "alice: live at https://alice.ai.example.test" in back.output
    assert back.output.endswith("alice: back on release 1 (now release 3)\n")
    (app,) = sandbox.dokploy.store.applications.values()
    assert app["dockerImage"] == "ghcr.io/sst/opencode:latest"

    listed = await aistack(env, "releases", "alice")
    assert listed.code == 0, listed.output
    rows = listed.output.splitlines()
    assert rows[0].split()[:4] == ["#", "IMAGE", "ENV", "PORT"]
    assert [row.split()[0] for row in rows[1:]] == ["1", "2", "3"]
    assert V2 in rows[2] and rows[3].endswith("roll back of 1  <- live")
    assert "cli:" in rows[1] and "4 GiB memory, 2 CPUs" in rows[1]
    assert SECRET not in listed.output


async def test_rollback_refusals_exit_with_their_codes(env: dict[str, str]) -> None:
    assert (await aistack(env, "deploy", "alice")).code == 0
    alone = await aistack(env, "rollback", "alice")
    assert (alone.code, "alice has no release before release 1" in alone.output) == (6, True)
    current = await aistack(env, "rollback", "alice", "--to", "1")
    assert (current.code, "release 1 is what alice runs now" in current.output) == (6, True)
    bad = await aistack(env, "rollback", "alice", "--to", "zero")
    assert bad.code == 2 and "a release number is a whole number from 1" in bad.output
    never = await aistack(env, "releases", "bob")
    assert (never.code, "bob has no releases" in never.output) == (6, True)


async def test_an_upgrade_that_does_not_answer_exits_1_saying_what_it_reverted_to(
    env: dict[str, str], sandbox: Sandbox
) -> None:
    assert (await aistack(env, "deploy", "alice")).code == 0
    sandbox.dokploy.silent_images.add("ghcr.io/sst/opencode:silent")
    failed = await aistack(env, "deploy", "alice", "--image", "ghcr.io/sst/opencode:silent")
    assert failed.code == 1, failed.output
    assert (
        "alice: upgrade failed, reverted to release 1 (redeployed, and it answers)" in failed.output
    )
    history = await aistack(env, "history", "alice", "--json")
    ended = [json.loads(line) for line in history.output.splitlines()][-1]
    assert ended["kind"] == "deployment.rolled_back"
    assert (ended["data"]["reverted_to"], ended["data"]["redeployed"]) == (1, True)
    assert SECRET not in history.output
