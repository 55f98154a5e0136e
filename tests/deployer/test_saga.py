"""The saga against the real adapters and the sandbox: forward, rollback, resume, teardown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from deployer.adapters.stores.memory import MemoryStore
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.assemble import adapters, open_deployer
from deployer.core.phases import DEPLOY_PHASES
from deployer.core.states import DeploymentState, PhaseState
from deployer.errors import NotFound
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.settings import DeployerSettings
from deployer.testing import FakeClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS

S = DeploymentState
ALICE = {  # what a deploy of alice makes in the sandbox
    "projects": ["ai-stack-alice"],
    "applications": ["opencode-alice"],
    "domains": ["alice.ai.example.test"],
    "dns": ["alice.ai/A"],
}


def owned(sandbox: Sandbox, name: str) -> dict[str, list[str]]:
    """Every sandbox resource that belongs to stack `name`."""
    return {kind: [r for r in items if name in r] for kind, items in sandbox.resources().items()}


def nothing_of(sandbox: Sandbox, name: str) -> bool:
    return not any(owned(sandbox, name).values())


async def test_deploy_creates_every_resource_and_ends_live(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    dep = await deployer.deploy("alice", requester="U1")
    assert dep.state is S.SUCCEEDED
    assert owned(sandbox, "alice") == ALICE
    done = [e.phase for e in notifier.events if e.kind == "phase.done"]
    assert sorted(done) == sorted(p.name for p in DEPLOY_PHASES)
    final = notifier.events[-1]
    assert final.kind == "deployment.succeeded"
    assert final.data["url"] == "https://alice.ai.example.test"


async def test_dns_runs_beside_the_dokploy_project(
    deployer: Deployer, notifier: RecordingNotifier
) -> None:
    await deployer.deploy("alice", requester="U1")
    order = [(e.kind, e.phase) for e in notifier.events if e.phase in ("project", "dns")]
    # both started before either finished
    assert order[:2] in (
        [("phase.running", "project"), ("phase.running", "dns")],
        [("phase.running", "dns"), ("phase.running", "project")],
    )


async def test_each_phase_logs_one_line_with_its_duration(deployer: Deployer) -> None:
    with capture_logs() as logs:
        await deployer.deploy("alice", requester="U1")
    done = [line for line in logs if line["event"] == "phase.done"]
    assert sorted(line["phase"] for line in done) == sorted(p.name for p in DEPLOY_PHASES)
    assert all(line["duration_s"] >= 0 and line["stack_name"] == "alice" for line in done)


# Each phase in turn fails (permanently) at the call that does its work.
FAILURES = {
    "preflight": ("dokploy", "project.all"),
    "project": ("dokploy", "project.create"),
    "dns": ("dns", "rrsets.create"),
    "application": ("dokploy", "application.create"),
    "image": ("dokploy", "application.saveDockerProvider"),
    "domain": ("dokploy", "domain.create"),
    "deploy": ("build", ""),
    "health": ("ingress", "ingress.get"),
}


@pytest.mark.parametrize("phase", list(FAILURES))
async def test_failure_at_any_phase_rolls_back_everything(
    phase: str, deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    where, op = FAILURES[phase]
    if where == "dokploy":
        sandbox.dokploy.faults.fail_ops[op] = FailRule(status=400, times=1)
    elif where == "dns":
        sandbox.dns.faults.fail_ops[op] = FailRule(status=422, times=1)
    elif where == "build":
        sandbox.dokploy.fail_deploys.add("opencode-bob")
    else:
        sandbox.ingress.faults.error_rate = 1.0
    dep = await deployer.deploy("bob", requester="U1")
    assert dep.state is S.ROLLED_BACK
    assert dep.error is not None and dep.error.startswith(phase)
    assert nothing_of(sandbox, "bob"), owned(sandbox, "bob")
    failed = [e.phase for e in notifier.events if e.kind == "phase.failed"]
    assert phase in failed
    assert "undo.failed" not in notifier.kinds()


async def test_rollback_lists_each_undo(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    await deployer.deploy("bob", requester="U1")
    undone = {e.phase: e.data["outcome"] for e in notifier.events if e.kind == "undo.done"}
    assert undone["domain"] == "removed domain bob.ai.example.test"
    assert undone["application"] == "removed application opencode-bob"
    assert undone["dns"] == "removed DNS record bob.ai"
    assert undone["project"].startswith("removed project ai-stack-bob (")
    order = [e.phase for e in notifier.events if e.kind == "undo.running"]
    assert order.index("domain") < order.index("application") < order.index("project")


async def test_lost_create_responses_create_nothing_twice(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.faults.lose_response_ops.update(
        {"project.create": 1, "application.create": 1, "domain.create": 1}
    )
    sandbox.dns.faults.lose_response_ops["rrsets.create"] = 1
    dep = await deployer.deploy("alice", requester="U1")
    assert dep.state is S.SUCCEEDED
    assert owned(sandbox, "alice") == ALICE


async def test_undo_that_keeps_failing_ends_rollback_failed_naming_leftovers(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    sandbox.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    dep = await deployer.deploy("bob", requester="U1")
    assert dep.state is S.ROLLBACK_FAILED
    assert len(dep.leftovers) == 1
    assert dep.leftovers[0].startswith("Dokploy project ai-stack-bob (")
    assert owned(sandbox, "bob")["projects"] == ["ai-stack-bob"]
    assert owned(sandbox, "bob")["applications"] == []  # everything else was undone
    assert "undo.failed" in notifier.kinds()


async def test_retry_rollback_cleans_up_once_the_upstream_recovers(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    sandbox.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    failed = await deployer.deploy("bob", requester="U1")
    sandbox.dokploy.faults.clear()
    retried = await deployer.run(failed)
    assert retried.state is S.ROLLED_BACK
    assert nothing_of(sandbox, "bob")


async def test_transient_upstream_errors_are_ridden_out(
    deployer: Deployer, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.dokploy.faults.burst_429 = 2
    sandbox.dns.faults.burst_429 = 2
    dep = await deployer.deploy("alice", requester="U1")
    assert dep.state is S.SUCCEEDED
    assert clock.sleeps  # waited (on the fake clock) instead of failing


async def test_a_cancelled_run_resumes_from_its_checkpoints(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    from tests.conftest import TEST_SETTINGS

    store = MemoryStore()
    settings = sandbox.settings(**TEST_SETTINGS)
    sandbox.dokploy.deploy_delay = 0.3
    async with open_deployer(settings, notifier, store=store, clock=clock) as deployer:
        dep = await deployer.approve(await deployer.request("alice", requester="U1"), "U2")
        first = asyncio.create_task(deployer.run(dep))
        await notifier.wait_for("phase.running", "deploy")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        interrupted = await store.get(dep.id)
        assert interrupted.state is S.RUNNING
        first_start = {p.name: p for p in await store.phases(dep.id)}["deploy"].started_at
        finished = await deployer.run(interrupted)
    assert finished.state is S.SUCCEEDED
    phases = {p.name: p for p in await store.phases(dep.id)}
    assert phases["project"].attempt == 1  # done before the crash: not run again
    assert phases["deploy"].attempt == 2 and phases["deploy"].started_at == first_start
    done = [e for e in notifier.events if e.kind == "phase.done" and e.phase == "deploy"]
    assert done[0].duration == phases["deploy"].duration  # its real length, from the first start
    assert all(p.state is PhaseState.DONE for p in phases.values())
    assert len(sandbox.dokploy.snapshot()["applications"]) == 1


async def test_destroy_removes_everything_the_deploy_made(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    await deployer.deploy("alice", requester="U1")
    gone = await deployer.destroy("alice", requester="U1")
    assert gone.state is S.DESTROYED
    assert nothing_of(sandbox, "alice")


async def test_destroy_of_a_stack_that_is_already_gone_succeeds(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    await deployer.deploy("alice", requester="U1")
    await deployer.destroy("alice", requester="U1")
    again = await deployer.destroy("alice", requester="U1")
    assert again.state is S.DESTROYED


async def test_destroy_of_a_stack_that_never_existed_is_refused_and_records_nothing(
    deployer: Deployer,
) -> None:
    with pytest.raises(NotFound, match="no stack named nobody"):
        await deployer.destroy("nobody", requester="U1")
    assert await deployer.latest("nobody") is None


async def test_wildcard_mode_checks_the_wildcard_and_creates_no_record(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    from tests.conftest import TEST_SETTINGS

    settings = sandbox.settings(dns_mode="wildcard", **TEST_SETTINGS)
    async with open_deployer(settings, notifier, store=MemoryStore(), clock=clock) as deployer:
        refused = await deployer.deploy("alice", requester="U1")
        assert refused.state is S.ROLLED_BACK
        assert refused.error is not None and "does not point at the ingress" in refused.error
        made = adapters(settings, clock)  # the operator fixes the zone by hand
        await made.dns.upsert_a_record("*.ai", "127.0.0.1", 60)
        await made.close()
        live = await deployer.deploy("alice", requester="U1")
    assert live.state is S.SUCCEEDED
    assert sandbox.resources()["dns"] == ["*.ai/A"]


async def test_a_failed_teardown_names_what_is_left_and_a_retry_finishes_it(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    await deployer.deploy("alice", requester="U1")
    sandbox.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400, times=None)
    stuck = await deployer.destroy("alice", requester="U1")
    assert stuck.state is S.ROLLBACK_FAILED
    assert len(stuck.leftovers) == 1
    assert stuck.leftovers[0].startswith("Dokploy project ai-stack-alice (")
    assert owned(sandbox, "alice")["dns"] == []  # the branch beside the failure ran to its end
    sandbox.dokploy.faults.clear()
    done = await deployer.run(stuck)
    assert done.state is S.DESTROYED
    assert nothing_of(sandbox, "alice")


async def test_a_failed_redeploy_keeps_the_live_stack(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    store = MemoryStore()
    first_env = {"FOO": "bar baz #not a comment", "QUOTE": "it's"}
    live_settings = sandbox.settings(stack_env=first_env, **TEST_SETTINGS)
    async with open_deployer(live_settings, notifier, store=store, clock=clock) as deployer:
        await deployer.deploy("alice", requester="U1")
    before = owned(sandbox, "alice")
    app = next(iter(sandbox.dokploy.store.applications.values()))
    env_text, builds = app["env"], len(sandbox.dokploy.store.deployments)
    sandbox.dokploy.fail_images.add("nginx:broken")
    changed = sandbox.settings(stack_env={"OTHER": "1"}, **TEST_SETTINGS)
    async with open_deployer(changed, notifier, store=store, clock=clock) as deployer:
        redeploy = await deployer.deploy("alice", requester="U2", image="nginx:broken")
        assert redeploy.state is S.ROLLED_BACK
        assert owned(sandbox, "alice") == before  # nothing of the live stack was removed
        # everything the redeploy changed is back, deployed again, and answering
        now = sandbox.dokploy.store.applications[app["applicationId"]]
        assert now["dockerImage"] == "ghcr.io/sst/opencode:latest"
        assert now["env"] == env_text  # byte for byte
        assert len(sandbox.dokploy.store.deployments) == builds + 2  # the broken one, the restore
        assert sandbox.dokploy.container_env(app["applicationId"]) == first_env
        assert "alice.ai.example.test" in sandbox.dokploy.live_hosts()
        undone = {e.phase: e.data["outcome"] for e in notifier.events
                  if e.kind == "undo.done" and e.deployment_id == redeploy.id}  # fmt: skip
        assert undone.pop("image").startswith(
            "put image ghcr.io/sst/opencode:latest and its environment back on opencode-alice, "
            "redeployed it"
        )
        assert undone and all(o.startswith("kept") for o in undone.values())
        apps = sandbox.dokploy.snapshot()["applications"]
        assert [a["name"] for a in apps] == ["opencode-alice"]
        status = await deployer.status("alice")
        assert status.drift == ()  # still live, still owned: gc must not touch it
        assert status.owner == "U1"  # and still the first deployer's
        assert await deployer.orphans() == []


async def test_list_shows_a_dns_record_nobody_owns_and_gc_would_remove_it(
    deployer: Deployer, settings: DeployerSettings, clock: FakeClock
) -> None:
    made = adapters(settings, clock)
    await made.dns.upsert_a_record("ghost.ai", "127.0.0.1", 60)  # left over, made by hand
    await made.dns.upsert_a_record("www.ai", "127.0.0.1", 60)  # not a stack's record
    await made.close()
    await deployer.deploy("alice", requester="U1")
    listed = {s.name: s for s in await deployer.list_stacks()}
    assert set(listed) == {"alice", "ghost"}
    assert listed["ghost"].drift and listed["alice"].drift == ()
    assert await deployer.orphans() == ["ghost"]


async def test_what_a_lost_response_created_is_still_undone(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    # the creates succeed but their answers are lost: found again on retry, they are still
    # this deployment's own work, so the rollback must remove them (not keep them as "there")
    sandbox.dokploy.faults.lose_response_ops.update(
        {"project.create": 1, "application.create": 1, "domain.create": 1}
    )
    sandbox.dns.faults.lose_response_ops["rrsets.create"] = 1
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    dep = await deployer.deploy("bob", requester="U1")
    assert dep.state is S.ROLLED_BACK
    assert nothing_of(sandbox, "bob")


async def test_an_open_breaker_does_not_block_the_rollback(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    # default retries and breaker: five 500s from domain.create open the Dokploy breaker
    settings = sandbox.settings(http_timeout=0.5, phase_timeout=10.0)
    assert (settings.retry_attempts, settings.breaker_fail_max) == (5, 5)
    sandbox.dokploy.faults.fail_ops["domain.create"] = FailRule(status=500, times=None)
    async with open_deployer(settings, notifier, store=MemoryStore(), clock=clock) as deployer:
        dep = await deployer.deploy("bob", requester="U1")
    assert dep.state is S.ROLLED_BACK
    assert dep.leftovers == ()
    assert nothing_of(sandbox, "bob"), owned(sandbox, "bob")
    undone = {e.phase: e.data["outcome"] for e in notifier.events if e.kind == "undo.done"}
    assert undone["domain"].startswith("nothing to undo")  # it never came to be


async def test_a_retried_rollback_undoes_in_the_order_of_the_first(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    for op in ("application.delete", "project.remove"):
        sandbox.dokploy.faults.fail_ops[op] = FailRule(status=400, times=None)
    failed = await deployer.deploy("bob", requester="U1")
    assert failed.state is S.ROLLBACK_FAILED
    sandbox.dokploy.faults.clear()
    notifier.events.clear()
    retried = await deployer.run(failed)
    assert retried.state is S.ROLLED_BACK
    assert [e.phase for e in notifier.events if e.kind == "undo.running"] == [
        "application",
        "project",
    ]
    undone = {e.phase: e.data["outcome"] for e in notifier.events if e.kind == "undo.done"}
    assert undone["application"] == "removed application opencode-bob"  # not "already gone"
    assert nothing_of(sandbox, "bob")
    status = await deployer.status("bob")
    assert status.deployment is not None and status.deployment.leftovers == ()


async def test_a_deploy_dokploy_lost_fails_with_that_reason_not_a_timeout(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.lose_deploys = 1  # Dokploy restarted: its in-memory queue is gone
    dep = await deployer.deploy("bob", requester="U1")
    assert dep.state is S.ROLLED_BACK
    assert dep.error is not None
    assert "Dokploy did not start the deployment within 60 s" in dep.error
    assert nothing_of(sandbox, "bob")


async def test_a_failed_build_says_why_in_dokploys_words(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    sandbox.dokploy.fail_images.add("nginx:nope")
    dep = await deployer.deploy("bob", requester="U1", image="nginx:nope")
    assert dep.state is S.ROLLED_BACK
    assert dep.error is not None and "Pulling image failed" in dep.error


async def test_wildcard_mode_rolls_back_naming_only_what_it_made(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock, tmp_path: Any
) -> None:
    settings = sandbox.settings(dns_mode="wildcard", **TEST_SETTINGS)
    store = await SqliteStore.open(tmp_path / "aistack.db")
    try:
        async with open_deployer(settings, notifier, store=store, clock=clock) as deployer:
            refused = await deployer.deploy("alice", requester="U1")
            phases = {p.name: p.state for p in await store.phases(refused.id)}
    finally:
        await store.close()
    assert refused.state is S.ROLLED_BACK
    assert phases["dns"] is PhaseState.NOTHING_TO_UNDO  # no record was made, none undone
    assert notifier.kinds().count("deployment.rolled_back") == 1


async def test_a_first_deploy_makes_only_the_calls_that_can_change_its_result(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    await deployer.deploy("alice", requester="U1")
    calls = [op for _, op in sandbox.dokploy.calls]
    polls = calls.count("deployment.all")
    # the image's calls and domain.create run side by side: their order is not fixed
    assert sorted(op for op in calls if op != "deployment.all") == sorted(
        [
            "project.all",  # the preflight's listing: counts, and finds same-named projects
            "project.create",
            "application.create",
            "application.saveDockerProvider",  # no saveEnvironment: the environment is empty
            "application.update",  # the limits (AISTACK_STACK_MEMORY, AISTACK_STACK_CPUS)
            "domain.create",
            "application.one",  # aistack's probe login: is it there?
            "security.create",  # no: made (AISTACK_STACK_AUTH=basic)
            "application.one",  # its id: security.create answers only `true`
            "security.create",  # the owner's login, no look-up before it (a new application)
            "application.one",  # its id
            "application.deploy",
        ]
    )
    assert calls.index("application.deploy") > calls.index("application.update")
    assert polls >= 1
