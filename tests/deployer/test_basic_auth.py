"""Protected by default: every stack's URL asks for a login (Dokploy's security router), its
password goes to the owner once and nowhere else, and `credentials` sets a new one.

Through the saga against the sandbox: the Dokploy fake keeps the rows, the fake ingress
answers 401 without the login as Traefik's basicAuth does. The courier is the recording
notifier (`open_deployer` takes the notifier as courier when it is one).
"""

from __future__ import annotations

import asyncio
import base64
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import adapters, open_deployer
from deployer.core.models import Deployment, Event
from deployer.core.probe_login import PROBE_USER, probe_password
from deployer.core.states import DeploymentState, Operation, PhaseState
from deployer.errors import ConfigError, NotFound, PermanentUpstreamError, StackBusy
from deployer.sandbox.server import API_KEY, Sandbox
from deployer.service import Deployer
from deployer.settings import DeployerSettings, load_settings
from deployer.testing import FakeClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS
from tests.deployer.cli_helpers import cli_env

S = DeploymentState
HOST = "alice.ai.example.test"


async def answer(sandbox: Sandbox, login: tuple[str, str] | None = None) -> int:
    """What the stack's URL answers through the (fake) ingress, with or without a login."""
    headers = {"Host": HOST}
    if login is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(login).encode()).decode()
    async with (
        aiohttp.ClientSession() as session,
        session.get(sandbox.urls["ingress"], headers=headers) as reply,
    ):
        return reply.status


def logins(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every login Dokploy holds: the owners' and aistack's probe's."""
    return list(sandbox.dokploy.store.security.values())


def rows(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The owners' logins."""
    return [row for row in logins(sandbox) if row["username"] != PROBE_USER]


PROBE = (PROBE_USER, probe_password(API_KEY, HOST))  # what aistack's probe sends


async def phase_outputs(store: MemoryStore, dep: Deployment, phase: str) -> dict[str, str]:
    return {p.name: p for p in await store.phases(dep.id)}[phase].outputs


def sent(notifier: RecordingNotifier) -> list[Event]:
    return [e for e in notifier.events if e.kind == "credentials.sent"]


class StuckCourier:
    """Takes the login and never hands it over: the process dies before it does."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.passwords: list[str] = []

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None:
        self.passwords.append(password)
        self.reached.set()
        await asyncio.Event().wait()


class BrokenCourier:
    """Fails, saying what it was sending: the failure must not repeat it."""

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None:
        raise RuntimeError(f"could not send {password}")


# -- the deploy's login ---------------------------------------------------------------------
async def test_a_deploy_gives_its_owner_a_login_once_and_the_url_asks_for_it(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier, memory_store: MemoryStore
) -> None:
    plan = deployer.plan(deployer.spec("alice"))
    assert "A login on https://alice.ai.example.test (HTTP basic auth)" in "\n".join(plan)
    dep = await deployer.deploy("alice", requester="U1")
    assert dep.state is S.SUCCEEDED
    (login,) = notifier.logins("alice")
    assert (login.owner, login.username, login.deployment_id) == ("U1", "alice", dep.id)
    assert len(login.password) >= 24
    (row,) = rows(sandbox)
    assert (row["username"], row["password"]) == ("alice", login.password)
    assert await answer(sandbox) == 401  # health accepts 401: the deploy went through
    assert await answer(sandbox, ("alice", "wrong")) == 401
    assert await answer(sandbox, ("alice", login.password)) == 200
    assert await answer(sandbox, PROBE) == 200  # aistack's own login: derived, never sent
    (probe,) = [row for row in logins(sandbox) if row["username"] == PROBE_USER]
    assert probe["password"] == PROBE[1] and PROBE not in [
        (d.username, d.password) for d in notifier.delivered
    ]
    outputs = await phase_outputs(memory_store, dep, "security")
    assert outputs == {"security_id": row["securityId"], "security_username": "alice",
                       "security_existed": "no", "login_sent_to": "U1"}  # fmt: skip
    (event,) = sent(notifier)
    assert (event.actor, event.data["to"], event.data["username"]) == ("U1", "U1", "alice")


async def test_the_probe_sees_past_the_login_to_the_container(
    deployer: Deployer, sandbox: Sandbox
) -> None:
    await deployer.deploy("alice", requester="U1")
    stopped = await deployer.change("alice", Operation.STOP, requester="U1")
    assert stopped.state is S.SUCCEEDED  # it saw the stack go down: its probe has a login
    assert await answer(sandbox) == 401  # Traefik asks for a login first, container or not
    assert await answer(sandbox, PROBE) == 502  # behind it: no container
    started = await deployer.change("alice", Operation.START, requester="U1")
    assert started.state is S.SUCCEEDED and await answer(sandbox, PROBE) == 200


async def test_a_redeploy_keeps_the_login_its_owner_has(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier, memory_store: MemoryStore
) -> None:
    await deployer.deploy("alice", requester="U1")
    (row,) = rows(sandbox)
    again = await deployer.deploy("alice", requester="U2", image="nginx:1.27")
    assert again.state is S.SUCCEEDED
    assert len(notifier.logins("alice")) == 1 and len(sent(notifier)) == 1  # nothing new sent
    assert rows(sandbox) == [row]  # the same login, the same password
    outputs = await phase_outputs(memory_store, again, "security")
    assert outputs["security_id"] == row["securityId"] and "login_sent_to" not in outputs


async def test_a_login_found_on_an_adopted_application_gets_a_password_its_owner_has(
    deployer: Deployer, sandbox: Sandbox, settings: DeployerSettings, clock: FakeClock,
    notifier: RecordingNotifier, memory_store: MemoryStore,
) -> None:  # fmt: skip
    made = adapters(settings, clock)  # made by hand before aistack knew of it
    try:
        project = await made.paas.ensure_project("ai-stack-alice", "by hand")
        app = await made.paas.ensure_application(project, "opencode-alice")
        await made.paas.add_basic_auth(app.application_id, "alice", "nobody-here-knows-it")
    finally:
        await made.close()
    dep = await deployer.deploy("alice", requester="U1")
    assert dep.state is S.SUCCEEDED
    (login,) = notifier.logins("alice")
    (row,) = rows(sandbox)
    assert row["password"] == login.password != "nobody-here-knows-it"
    outputs = await phase_outputs(memory_store, dep, "security")
    assert outputs["security_existed"] == "yes"  # not ours to remove on a failure


async def test_with_auth_none_a_stack_gets_no_login(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    store = MemoryStore()
    settings = sandbox.settings(stack_auth="none", **TEST_SETTINGS)
    async with open_deployer(settings, notifier, store=store, clock=clock) as deployer:
        dep = await deployer.deploy("alice", requester="U1")
        assert not any("login" in line for line in deployer.plan(dep.spec))
    assert dep.state is S.SUCCEEDED
    assert logins(sandbox) == [] and notifier.delivered == []
    assert await answer(sandbox) == 200
    assert await phase_outputs(store, dep, "security") == {}


async def test_a_failed_first_deploy_leaves_no_login_behind(
    deployer: Deployer, sandbox: Sandbox, memory_store: MemoryStore
) -> None:
    sandbox.dokploy.fail_deploys.add("opencode-alice")
    failed = await deployer.deploy("alice", requester="U1")
    assert failed.state is S.ROLLED_BACK
    assert logins(sandbox) == []  # it went with the application
    undo = {p.name: p.state for p in await memory_store.phases(failed.id)}
    assert undo["security"] is PhaseState.NOTHING_TO_UNDO


async def test_a_failed_redeploy_removes_the_login_it_made_and_keeps_the_stack_open_as_it_was(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    store = MemoryStore()
    open_settings = sandbox.settings(stack_auth="none", **TEST_SETTINGS)
    async with open_deployer(open_settings, notifier, store=store, clock=clock) as deployer:
        await deployer.deploy("alice", requester="U1")
    sandbox.dokploy.fail_images.add("nginx:nope")
    async with open_deployer(sandbox.settings(**TEST_SETTINGS), notifier, store=store,
                             clock=clock) as deployer:  # fmt: skip
        failed = await deployer.deploy("alice", requester="U1", image="nginx:nope")
    assert failed.state is S.ROLLED_BACK
    assert len(notifier.logins("alice")) == 1  # made, and sent, before the deploy failed
    undo = {p.name: p.state for p in await store.phases(failed.id)}
    assert undo["security"] is PhaseState.UNDONE
    assert logins(sandbox) == [] and await answer(sandbox) == 200


async def test_a_login_that_cannot_reach_its_owner_fails_the_deploy_without_saying_it(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    store = MemoryStore()
    async with open_deployer(sandbox.settings(**TEST_SETTINGS), notifier, store=store,
                             clock=clock, courier=BrokenCourier()) as deployer:  # fmt: skip
        failed = await deployer.deploy("alice", requester="U1")
    assert failed.state is S.ROLLED_BACK
    assert failed.error == "security: the login for alice could not be sent to U1 (RuntimeError)"
    assert logins(sandbox) == [] and sent(notifier) == []


def test_stack_auth_is_basic_by_default_or_none(sandbox: Sandbox) -> None:
    values = {key.removeprefix("AISTACK_").lower(): v for key, v in sandbox.env().items()}
    assert load_settings(**values).stack.auth == "basic"
    assert load_settings(**values, stack_auth="none").stack.auth == "none"
    with pytest.raises(ConfigError, match="AISTACK_STACK_AUTH"):
        load_settings(**values, stack_auth="password")


def test_logins_need_someone_to_hand_the_password_to(sandbox: Sandbox) -> None:
    class Silent:
        async def notify(self, event: Event) -> None:
            return None

    async def opening(settings: DeployerSettings) -> None:
        async with open_deployer(settings, Silent(), store=MemoryStore()):
            return None

    with pytest.raises(ConfigError, match="AISTACK_STACK_AUTH=basic gives every stack"):
        asyncio.run(opening(sandbox.settings(**TEST_SETTINGS)))
    asyncio.run(opening(sandbox.settings(stack_auth="none", **TEST_SETTINGS)))


# -- a crash between Dokploy having the password and the owner having it ---------------------
async def test_a_crash_before_the_owner_has_the_password_sends_a_new_one_on_resume(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    store, settings, stuck = MemoryStore(), sandbox.settings(**TEST_SETTINGS), StuckCourier()
    async with open_deployer(settings, notifier, store=store, clock=clock,
                             courier=stuck) as deployer:  # fmt: skip
        dep = await deployer.approve(await deployer.request("alice", requester="U1"), "U2")
        run = asyncio.create_task(deployer.run(dep))
        await stuck.reached.wait()
        run.cancel()  # the process dies: Dokploy has a password nobody was given
        with pytest.raises(asyncio.CancelledError):
            await run
    interrupted = await store.get(dep.id)
    assert interrupted.state is S.RUNNING
    (lost,) = stuck.passwords
    async with open_deployer(settings, notifier, store=store, clock=clock) as deployer:
        finished = await deployer.run(interrupted)  # the next process resumes it
    assert finished.state is S.SUCCEEDED
    (login,) = notifier.logins("alice")
    (row,) = rows(sandbox)  # the same login, with a new password
    assert login.password != lost and row["password"] == login.password
    assert await answer(sandbox, ("alice", lost)) == 401
    assert await answer(sandbox, ("alice", login.password)) == 200
    security = {p.name: p for p in await store.phases(dep.id)}["security"]
    assert security.attempt == 2 and security.outputs["security_id"] == row["securityId"]


# -- credentials: a new password for a live stack ---------------------------------------------
async def test_credentials_sets_a_new_password_and_only_the_owner_gets_it(
    deployer: Deployer, sandbox: Sandbox, notifier: RecordingNotifier, memory_store: MemoryStore
) -> None:
    made = await deployer.deploy("alice", requester="U1")
    (first,) = notifier.logins("alice")
    assert deployer.plan(made.spec, Operation.CREDENTIALS) == [
        "Set a new password for the login on https://alice.ai.example.test; it goes to the "
        "owner alone"
    ]
    rotated = await deployer.credentials("alice", requester="U2")  # an approver asks
    assert (rotated.state, rotated.operation) == (S.SUCCEEDED, Operation.CREDENTIALS)
    second = notifier.logins("alice")[-1]
    assert second.owner == "U1" and second.password != first.password
    assert await answer(sandbox, ("alice", first.password)) == 401
    assert await answer(sandbox, ("alice", second.password)) == 200
    assert len(rows(sandbox)) == 1
    live = await memory_store.live("alice")
    assert live is not None and live.deployment_id == made.id  # the stack is what it was
    event = sent(notifier)[-1]
    assert (event.deployment_id, event.actor, event.data["to"]) == (rotated.id, "U2", "U1")
    kinds = [e.kind for e in await deployer.history("alice") if e.deployment_id == rotated.id]
    assert "credentials.sent" in kinds and kinds[-1] == "deployment.succeeded"


async def test_credentials_makes_a_login_for_a_stack_deployed_without_one(
    sandbox: Sandbox, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    settings = sandbox.settings(stack_auth="none", **TEST_SETTINGS)
    async with open_deployer(settings, notifier, store=MemoryStore(), clock=clock) as deployer:
        await deployer.deploy("alice", requester="U1")
        assert await answer(sandbox) == 200
        rotated = await deployer.credentials("alice", requester="U1")
    assert rotated.state is S.SUCCEEDED
    (login,) = notifier.logins("alice")
    assert await answer(sandbox) == 401
    assert await answer(sandbox, ("alice", login.password)) == 200


async def test_credentials_needs_a_live_stack_and_a_free_one(deployer: Deployer) -> None:
    with pytest.raises(NotFound, match="alice is not live: it has no login to renew"):
        await deployer.credentials("alice", requester="U1")
    assert await deployer.latest("alice") is None  # nothing recorded for it
    await deployer.deploy("alice", requester="U1")
    queued = await deployer.request("alice", requester="U1", approved=True)  # a redeploy
    with pytest.raises(StackBusy):
        await deployer.request("alice", requester="U1", operation=Operation.CREDENTIALS,
                               approved=True)  # fmt: skip
    assert queued.state is S.QUEUED


# -- the CLI --------------------------------------------------------------------------------
async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`aistack --log-level info ARGS`: exit code, stdout, stderr (the log) apart."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deployer.cli", "--log-level", "info", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_prints_each_login_once_on_stdout_and_never_in_its_log(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = cli_env(sandbox, tmp_path / "aistack.db")
    code, deployed, deploy_log = await cli(env, "deploy", "alice")
    assert code == 0, deployed + deploy_log
    code, rotated, rotate_log = await cli(env, "credentials", "alice")
    assert code == 0, rotated + rotate_log
    first, second = (re.findall(r", password (\S+)", text) for text in (deployed, rotated))
    assert len(first) == len(second) == 1 and first != second
    assert rows(sandbox)[0]["password"] == second[0]
    assert "alice: login for https://alice.ai.example.test (owner cli:" in rotated
    assert "credentials.sent" in deploy_log and "credentials.sent" in rotate_log
    assert first[0] not in deploy_log + rotate_log and second[0] not in deploy_log + rotate_log
    code, refused, _ = await cli(env, "credentials", "bob")
    assert code == 6 and "bob is not live: it has no login to renew" in refused


# -- secrecy ----------------------------------------------------------------------------------
async def test_no_password_in_a_log_line_an_event_a_checkpoint_or_an_error(
    sandbox: Sandbox, settings: DeployerSettings, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    store = MemoryStore()
    with structlog.testing.capture_logs() as logs:
        async with open_deployer(settings, notifier, store=store, clock=clock) as deployer:
            await deployer.deploy("alice", requester="U1")
            await deployer.credentials("alice", requester="U1")
            app = (await phase_outputs(store, (await store.releases("alice"))[0],
                                       "application"))["application_id"]  # fmt: skip
            made = adapters(settings, clock)
            try:  # a duplicate create: Dokploy's 400 text lists the password (recording 79)
                with pytest.raises(PermanentUpstreamError) as duplicate:
                    await made.paas.add_basic_auth(app, "alice", notifier.delivered[-1].password)
            finally:
                await made.close()
    passwords = [login.password for login in notifier.delivered]
    assert len(passwords) == 2 and rows(sandbox)[0]["password"] == passwords[-1]
    passwords.append(PROBE[1])
    recorded = [*notifier.events, *await store.events("alice")]
    texts = [repr(logs), str(duplicate.value), *(e.model_dump_json() for e in recorded)]
    for dep_id in {e.deployment_id for e in recorded}:
        texts.append((await store.get(dep_id)).model_dump_json())
        texts += [p.model_dump_json() for p in await store.phases(dep_id)]
    assert len(logs) > 20 and len(texts) > 40
    for password in passwords:
        assert not [text for text in texts if password in text]
