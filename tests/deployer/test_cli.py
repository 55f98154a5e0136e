"""The operator CLI, run as a user runs it: a process per command, state in SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.core.models import Event
from deployer.sandbox.server import API_KEY, Sandbox
from tests.deployer.cli_helpers import aistack, aistack_head, cli_env


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sandbox, tmp_path / "aistack.db")


async def test_deploy_then_status_in_another_process(env: dict[str, str]) -> None:
    deployed = await aistack(env, "deploy", "alice")
    assert deployed.code == 0, deployed.output
    assert "alice: live at https://alice.ai.example.test (total" in deployed.output
    assert "ok   [9/9] Wait until the stack answers" in deployed.output
    status = await aistack(env, "status", "alice")
    assert status.code == 0, status.output
    assert "alice  succeeded  https://alice.ai.example.test" in status.output
    assert "dokploy: ai-stack-alice application done" in status.output
    assert "DRIFT" not in status.output


async def test_failed_deploy_exits_1_listing_each_undo(
    env: dict[str, str], sandbox: Sandbox
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    result = await aistack(env, "deploy", "bob")
    assert result.code == 1, result.output
    for undo in ("undo domain: removed domain bob.ai.example.test",
                 "undo application: removed application opencode-bob",
                 "undo dns: removed DNS record bob.ai",
                 "undo project: removed project ai-stack-bob"):  # fmt: skip
        assert undo in result.output
    assert "bob: rolled back, nothing left behind" in result.output


async def test_history_json_is_the_audit_trail(env: dict[str, str], sandbox: Sandbox) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    await aistack(env, "deploy", "bob")
    result = await aistack(env, "history", "bob", "--json")
    assert result.code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["deployment.requested", "deployment.approved", "deployment.queued"]
    assert kinds[-1] == "deployment.rolled_back"
    assert events[0]["actor"].startswith("cli")
    undone = [e["phase"] for e in events if e["kind"] == "undo.done"]
    assert sorted(undone) == ["application", "dns", "domain", "image", "project", "security"]
    assert undone.index("application") > max(undone.index("domain"), undone.index("image"))
    assert undone[-1] == "project"  # reverse order: the first made is the last undone
    assert all(e["duration"] is not None for e in events if e["kind"] == "phase.done")


async def test_destroy_leaves_nothing(env: dict[str, str], sandbox: Sandbox) -> None:
    assert (await aistack(env, "deploy", "alice")).code == 0
    result = await aistack(env, "destroy", "alice")
    assert result.code == 0, result.output
    assert "alice: destroyed" in result.output
    assert not any(sandbox.resources().values())


async def test_gc_finds_orphans_and_removes_them_only_when_told(
    env: dict[str, str], sandbox: Sandbox
) -> None:
    upstream = Upstream("Dokploy", RetryPolicy(), sleep=_no_sleep)
    paas = DokployPaas(sandbox.urls["dokploy"], SecretStr(API_KEY), upstream, 2.0)
    await paas.ensure_project("ai-stack-ghost", "made by hand")
    await paas.close()
    asked = await aistack(env, "gc", stdin=b"n\n")
    assert asked.code == 0 and "ghost" in asked.output and "nothing removed" in asked.output
    unattended = await aistack(env, "gc")  # no one to ask: declined, not failed
    assert unattended.code == 0 and "nothing removed" in unattended.output
    assert sandbox.resources()["projects"] == ["ai-stack-ghost"]
    removed = await aistack(env, "gc", "--yes")
    assert removed.code == 0, removed.output
    assert sandbox.resources()["projects"] == []
    assert "no orphans" in (await aistack(env, "gc")).output


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("deploy", "Alice"), 2, "lowercase: try 'alice'"),
        (("deploy", "www"), 2, "reserved"),
        (("status", "nobody"), 6, "no stack named nobody"),
        (("history", "nobody"), 6, "never requested"),
    ],
)
async def test_bad_input_gets_a_specific_answer_and_exit_code(
    env: dict[str, str], args: tuple[str, ...], code: int, says: str
) -> None:
    result = await aistack(env, *args)
    assert result.code == code, result.output
    assert says in result.output


async def test_destroy_of_a_stack_that_never_existed_exits_6_and_records_nothing(
    env: dict[str, str],
) -> None:
    result = await aistack(env, "destroy", "nobody")
    assert result.code == 6, result.output
    assert "nobody" in result.output
    history = await aistack(env, "history", "nobody")
    assert history.code == 6 and "never requested" in history.output, history.output


@pytest.mark.parametrize("args", [("history", "alice", "--json"), ("history", "alice")])
async def test_output_closed_early_ends_quietly_with_141(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert (await aistack(env, "deploy", "alice")).code == 0
    await _pad_history(tmp_path / "aistack.db", "alice", size=256_000)
    first, result = await aistack_head(env, *args)
    assert b"deployment.requested" in first
    assert result.code == 141, result.output
    assert result.output == ""  # no traceback, no "Exception ignored" at exit


async def _pad_history(database: Path, stack: str, size: int) -> None:
    """More history than a pipe holds (64 KiB), so the CLI is still writing when `head` quits."""
    store = await SqliteStore.open(database)
    try:
        dep = await store.latest(stack)
        assert dep is not None
        for _ in range(size // 8_000):
            note = Event(
                deployment_id=dep.id,
                stack=stack,
                kind="deployment.not_started",
                data={"error": "x" * 8_000},
            )
            await store.append_event(note)
    finally:
        await store.close()


async def test_missing_setting_is_named(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "AISTACK_DOKPLOY_URL"}
    result = await aistack(env, "list")
    assert result.code == 2
    assert "AISTACK_DOKPLOY_URL is required" in result.output


async def test_unreachable_dokploy_exits_4_with_a_clear_message(env: dict[str, str]) -> None:
    env = env | {"AISTACK_DOKPLOY_URL": "http://127.0.0.1:9", "AISTACK_RETRY_ATTEMPTS": "2"}
    result = await aistack(env, "preflight")
    assert result.code == 4, result.output
    assert "Dokploy: connection failed" in result.output


async def _no_sleep(_: float) -> None:
    return None


async def test_give_up_then_retry_after_cleaning_by_hand(
    env: dict[str, str], sandbox: Sandbox
) -> None:
    from deployer.sandbox.faults import FailRule

    sandbox.dokploy.fail_deploys.add("opencode-bob")
    sandbox.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    stuck = await aistack(env, "deploy", "bob")
    assert stuck.code == 3 and "ai-stack-bob" in stuck.output
    gave_up = await aistack(env, "give-up", "bob")
    assert gave_up.code == 0 and "no more automatic retries" in gave_up.output
    sandbox.dokploy.faults.clear()  # the operator fixed the cause
    retried = await aistack(env, "retry-rollback", "bob")
    assert retried.code == 0, retried.output
    assert not any(sandbox.resources().values())
    history = await aistack(env, "history", "bob")
    assert "rollback.given_up" in history.output and "rolled_back" in history.output
    nothing = await aistack(env, "retry-rollback", "bob")
    assert nothing.code == 4 and "not rollback_failed" in nothing.output
