"""Identity: teardowns, undos and redeploys act on the ids our records hold, never on a name
alone. Dokploy allows two projects of one name; the one we did not make is reported, not
touched, and two candidates with no record to choose between them are refused."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from deployer.core.states import DeploymentState
from deployer.errors import AmbiguousResource
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer
from deployer.settings import DeployerSettings

S = DeploymentState


async def hand_made(settings: DeployerSettings, procedure: str, body: dict[str, Any]) -> Any:
    """What an operator does in Dokploy's UI, beside aistack: a raw API call."""
    headers = {"x-api-key": settings.dokploy_api_key.get_secret_value()}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{settings.dokploy_url}/api/{procedure}", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def hand_made_project(settings: DeployerSettings, name: str) -> str:
    made = await hand_made(settings, "project.create", {"name": name, "description": "by hand"})
    return str(made["project"]["projectId"])


def project_ids(sandbox: Sandbox, name: str) -> list[str]:
    return [p["projectId"] for p in sandbox.dokploy.snapshot()["projects"] if p["name"] == name]


async def test_destroy_removes_our_project_not_a_newer_one_of_the_same_name(
    deployer: Deployer, sandbox: Sandbox, settings: DeployerSettings
) -> None:
    await deployer.deploy("alpha", requester="U1")
    ours = project_ids(sandbox, "ai-stack-alpha")
    theirs = await hand_made_project(settings, "ai-stack-alpha")  # newer: listed first
    gone = await deployer.destroy("alpha", requester="U1")
    assert gone.state is S.DESTROYED
    assert project_ids(sandbox, "ai-stack-alpha") == [theirs]
    assert ours[0] != theirs
    assert sandbox.dokploy.snapshot()["applications"] == []
    assert sandbox.resources()["domains"] == []


async def test_status_and_list_report_a_same_named_project_alike_and_leave_it_alone(
    deployer: Deployer, sandbox: Sandbox, settings: DeployerSettings
) -> None:
    await deployer.deploy("alpha", requester="U1")
    theirs = await hand_made_project(settings, "ai-stack-alpha")
    status = await deployer.status("alpha")
    listed = {s.name: s for s in await deployer.list_stacks()}["alpha"]
    assert status.drift == listed.drift
    assert status.drift == (
        f"Dokploy also holds a project named ai-stack-alpha ({theirs}): not this stack's; "
        "aistack leaves it alone",
    )
    assert status.live is not None and status.live.project_id != theirs
    assert status.live.application_id is not None  # the live view is ours, with its app
    assert await deployer.orphans() == []  # gc removes nothing of a live stack


async def test_a_redeploy_works_on_the_live_stack_beside_a_same_named_project(
    deployer: Deployer, sandbox: Sandbox, settings: DeployerSettings
) -> None:
    await deployer.deploy("alpha", requester="U1")
    theirs = await hand_made_project(settings, "ai-stack-alpha")
    again = await deployer.deploy("alpha", requester="U1", image="nginx:1.27")
    assert again.state is S.SUCCEEDED
    apps = sandbox.dokploy.store.applications.values()
    assert [(a["name"], a["dockerImage"]) for a in apps] == [("opencode-alpha", "nginx:1.27")]
    assert all(a["environmentId"] not in _envs_of(sandbox, theirs) for a in apps)


def _envs_of(sandbox: Sandbox, project_id: str) -> set[str]:
    envs = sandbox.dokploy.store.environments.values()
    return {e["environmentId"] for e in envs if e["projectId"] == project_id}


async def test_two_candidates_and_no_record_are_refused_naming_both_ids(
    deployer: Deployer, sandbox: Sandbox, settings: DeployerSettings
) -> None:
    first = await hand_made_project(settings, "ai-stack-ghost")
    second = await hand_made_project(settings, "ai-stack-ghost")
    with pytest.raises(AmbiguousResource) as refused:
        await deployer.destroy("ghost", requester="U1")
    assert first in str(refused.value) and second in str(refused.value)
    assert await deployer.latest("ghost") is None  # refused before anything recorded
    deploy = await deployer.deploy("ghost", requester="U1")  # a deploy refuses them too
    assert deploy.state is S.ROLLED_BACK
    assert deploy.error is not None and first in deploy.error and second in deploy.error
    assert sorted(project_ids(sandbox, "ai-stack-ghost")) == sorted([first, second])
    assert deploy.leftovers == ()


async def test_a_deploy_adopts_the_only_project_of_its_name_and_keeps_it_on_rollback(
    deployer: Deployer, sandbox: Sandbox, settings: DeployerSettings
) -> None:
    theirs = await hand_made_project(settings, "ai-stack-bob")
    sandbox.dokploy.fail_deploys.add("opencode-bob")
    failed = await deployer.deploy("bob", requester="U1")
    assert failed.state is S.ROLLED_BACK
    assert project_ids(sandbox, "ai-stack-bob") == [theirs]  # it was there: kept
    assert sandbox.dokploy.snapshot()["applications"] == []  # what we made: undone


async def test_names_that_are_not_stack_names_are_someone_elses(
    deployer: Deployer, settings: DeployerSettings, clock: Any
) -> None:
    from deployer.assemble import adapters

    await hand_made_project(settings, "ai-stack-Team Alpha")
    made = adapters(settings, clock)
    await made.dns.upsert_a_record("a.ai", "127.0.0.1", 60)  # too short to be a stack's
    await made.close()
    await deployer.deploy("alice", requester="U1")
    assert [s.name for s in await deployer.list_stacks()] == ["alice"]
    assert await deployer.orphans() == []
