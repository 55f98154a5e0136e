"""Stop, start and restart through the saga against the sandbox; the stopped state in status
and list; `status --check` probing the URL now."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import open_deployer
from deployer.console import TerminalNotifier, describe, render_check, render_list, render_status
from deployer.core.events import EventKind
from deployer.core.models import Event, Probe
from deployer.core.probe_login import PROBE_USER, probe_password
from deployer.core.states import DeploymentState, Operation
from deployer.errors import NotFound
from deployer.sandbox.dokploy_tables import Row
from deployer.sandbox.server import API_KEY, Sandbox
from deployer.service import Deployer
from deployer.testing import ManualClock, RecordingNotifier
from tests.conftest import TEST_SETTINGS

S = DeploymentState
HOST = "alice.ai.example.test"
NO_DOCKER = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."


@pytest.fixture
async def live(deployer: Deployer) -> Deployer:
    """alice, deployed and running."""
    assert (await deployer.deploy("alice", requester="U1")).state is S.SUCCEEDED
    return deployer


def near(stamp: datetime | None, other: datetime) -> bool:
    """Stamped in the same write, read from the clock a moment apart."""
    return stamp is not None and abs((stamp - other).total_seconds()) < 1


async def ingress_status(sandbox: Sandbox, host: str = HOST) -> int:
    """What the URL answers aistack's probe, which has a login of its own (without one,
    Traefik answers the stack's login 401 whatever the container does)."""
    login = base64.b64encode(f"{PROBE_USER}:{probe_password(API_KEY, host)}".encode()).decode()
    headers = {"Host": host, "Authorization": f"Basic {login}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(sandbox.urls["ingress"], headers=headers) as reply,
    ):
        return reply.status


# -- stop, start, restart -----------------------------------------------------------------------
async def test_stop_stops_the_container_and_marks_the_stack_stopped(
    live: Deployer, sandbox: Sandbox, memory_store: MemoryStore
) -> None:
    stopped = await live.change("alice", Operation.STOP, requester="U1")
    assert stopped.state is S.SUCCEEDED
    assert HOST not in sandbox.dokploy.live_hosts()
    assert await ingress_status(sandbox) == 502  # Traefik's route is there, no container
    record = await memory_store.live("alice")
    assert record is not None and near(record.stopped_at, stopped.updated_at)
    [phase] = await memory_store.phases(stopped.id)
    assert phase.outputs["probe"].startswith("HTTP 502")  # seen down, not taken on trust


async def test_start_runs_it_again_and_waits_until_it_answers(
    live: Deployer, sandbox: Sandbox, memory_store: MemoryStore
) -> None:
    await live.change("alice", Operation.STOP, requester="U1")
    started = await live.change("alice", Operation.START, requester="U1")
    assert started.state is S.SUCCEEDED
    assert [p.name for p in await memory_store.phases(started.id)] == ["start", "health"]
    assert HOST in sandbox.dokploy.live_hosts() and await ingress_status(sandbox) == 200
    record = await memory_store.live("alice")
    assert record is not None and record.stopped_at is None


async def test_restart_reloads_the_application(live: Deployer, sandbox: Sandbox) -> None:
    restarted = await live.change("alice", Operation.RESTART, requester="U1")
    assert restarted.state is S.SUCCEEDED
    assert ("POST", "application.reload") in sandbox.dokploy.calls
    assert await ingress_status(sandbox) == 200


@pytest.mark.parametrize(
    ("first", "then", "refusal"),
    [
        (None, Operation.STOP, "alice is not live: there is nothing to stop"),
        (Operation.STOP, Operation.STOP, "alice is already stopped (since "),
        (None, Operation.START, "alice is running already; `restart` restarts it"),
    ],
)
async def test_refused_when_there_is_nothing_to_do(
    deployer: Deployer, first: Operation | None, then: Operation, refusal: str
) -> None:
    if then is Operation.START or first is not None:
        await deployer.deploy("alice", requester="U1")
    if first is not None:
        await deployer.change("alice", first, requester="U1")
    before = await deployer.latest("alice")
    with pytest.raises(NotFound) as refused:
        await deployer.request("alice", requester="U1", operation=then)
    assert str(refused.value).startswith(refusal)
    assert await deployer.latest("alice") == before  # nothing recorded


@pytest.mark.parametrize("verb", [Operation.START, Operation.RESTART])
async def test_without_docker_start_and_restart_fail_saying_so_and_nothing_changes(
    live: Deployer, sandbox: Sandbox, memory_store: MemoryStore, verb: Operation
) -> None:
    if verb is Operation.START:
        await live.change("alice", Operation.STOP, requester="U1")
    sandbox.dokploy.store.docker_error = NO_DOCKER
    failed = await live.change("alice", verb, requester="U1")
    assert failed.state is S.ROLLED_BACK
    [phase] = [p for p in await memory_store.phases(failed.id) if p.error]
    said = f"Dokploy could not {verb} the container (500 INTERNAL_SERVER_ERROR)"
    assert phase.error == said
    assert "docker" not in (failed.error or "").lower()  # Dokploy's own text is not passed on
    record = await memory_store.live("alice")
    assert record is not None
    assert (record.stopped_at is not None) is (verb is Operation.START)  # as it was


async def test_a_stop_dokploy_answers_but_does_not_do_fails_after_waiting(
    live: Deployer, sandbox: Sandbox, memory_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop_that_fails_in_docker(i: Row) -> Row:  # recording 89: 200, the app as it was
        return sandbox.dokploy.store.application_view(sandbox.dokploy.store.application(
            i["applicationId"]))  # fmt: skip

    monkeypatch.setitem(sandbox.dokploy._handlers, "application.stop", stop_that_fails_in_docker)
    failed = await live.change("alice", Operation.STOP, requester="U1")
    assert failed.state is S.ROLLED_BACK
    assert "Dokploy took the stop, but https://alice.ai.example.test still answers (HTTP 200) " \
        "after 30 s" in (failed.error or "")  # fmt: skip
    record = await memory_store.live("alice")
    assert record is not None and record.stopped_at is None  # still running, as it is


# -- the stopped state in status and list -------------------------------------------------------
async def test_status_knows_the_release_and_since_when_it_runs(live: Deployer) -> None:
    made = await live.latest("alice")
    status = await live.status("alice")
    assert made is not None and status.release == 1
    assert status.up_since == made.updated_at and status.stopped_at is None
    restarted = await live.change("alice", Operation.RESTART, requester="U1")
    status = await live.status("alice")
    assert status.up_since == restarted.updated_at and status.release == 1


async def test_a_stopped_stack_shows_since_when_and_a_start_clears_it(live: Deployer) -> None:
    stopped = await live.change("alice", Operation.STOP, requester="U1")
    [listed] = await live.list_stacks()
    assert near(listed.stopped_at, stopped.updated_at) and listed.up_since is None
    assert listed.release == 1
    started = await live.change("alice", Operation.START, requester="U1")
    [listed] = await live.list_stacks()
    assert listed.stopped_at is None and listed.up_since == started.updated_at


async def test_a_failed_restart_keeps_the_time_of_the_last_start(
    live: Deployer, sandbox: Sandbox
) -> None:
    started = await live.latest("alice")
    sandbox.dokploy.store.docker_error = NO_DOCKER
    assert (await live.change("alice", Operation.RESTART, requester="U1")).state is S.ROLLED_BACK
    status = await live.status("alice")
    assert started is not None and status.up_since == started.updated_at  # read in the trail


async def test_a_stack_that_is_not_live_has_no_life_to_show(live: Deployer) -> None:
    await live.destroy("alice", requester="U1")
    status = await live.status("alice")
    assert (status.release, status.up_since, status.stopped_at, status.expires_at) == (None,) * 4


# -- status --check -------------------------------------------------------------------------------
async def test_check_probes_the_url_of_a_running_stack_now(
    live: Deployer, sandbox: Sandbox
) -> None:
    hits = len(sandbox.ingress.hits)
    checked = await live.check("alice")
    assert checked.probe is not None and checked.probe.ready
    assert checked.probe.words == "answers (200)"
    assert len(sandbox.ingress.hits) == hits + 1  # one request, no waiting


async def test_check_says_what_a_failing_stack_answers(live: Deployer, sandbox: Sandbox) -> None:
    sandbox.dokploy.store.stopped.add(next(iter(sandbox.dokploy.store.applications)))
    checked = await live.check("alice")  # our records still say it runs: Dokploy lost it
    assert checked.probe is not None and not checked.probe.ready
    assert checked.probe.words.startswith("does not answer: HTTP 502")


async def test_a_stopped_or_gone_stack_is_not_probed(live: Deployer, sandbox: Sandbox) -> None:
    await live.change("alice", Operation.STOP, requester="U1")
    hits = len(sandbox.ingress.hits)
    assert (await live.check("alice")).probe is None
    await live.destroy("alice", requester="U1")
    assert (await live.check("alice")).probe is None
    assert len(sandbox.ingress.hits) == hits  # the status reads nothing of the URL either


def test_the_probe_reads_as_people_say_it() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    assert Probe(ready=True, detail="HTTP 401", at=at).words == "answers (401: login required)"
    assert Probe(ready=False, detail="connection refused (x)", at=at).words == (
        "does not answer: connection refused (x)"
    )


# -- the CLI's words ------------------------------------------------------------------------------
@pytest.fixture
def calendar() -> ManualClock:
    return ManualClock(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))


@pytest.fixture
async def on_calendar(
    sandbox: Sandbox, calendar: ManualClock, notifier: RecordingNotifier
) -> AsyncIterator[Deployer]:
    settings = sandbox.settings(**TEST_SETTINGS)
    async with open_deployer(settings, notifier, store=MemoryStore(clock=calendar),
                             clock=calendar) as deployer:  # fmt: skip
        await deployer.deploy("alice", requester="U1")
        yield deployer


async def test_status_and_list_say_how_long_it_runs_and_since_when_it_is_stopped(
    on_calendar: Deployer, calendar: ManualClock
) -> None:
    calendar.advance(3 * 3600 + 60)
    status = await on_calendar.status("alice")
    running = "running for 3 h · release 1 · expires 2026-12-08 07:00 UTC"  # the default TTL
    assert f"  {running}" in render_status(status, calendar.now())
    assert render_list([status], calendar.now())[1].endswith(f"  {running}")
    await on_calendar.change("alice", Operation.STOP, requester="U1")
    calendar.advance(600)
    status = await on_calendar.status("alice")
    stopped = "stopped since 2026-12-01 10:01 UTC · release 1 · expires 2026-12-08 07:00 UTC"
    assert f"  {stopped}" in render_status(status, calendar.now())
    assert render_check(status, calendar.now())[1:] == [
        "  stopped since 2026-12-01 10:01 UTC: not probed", f"  {stopped}"]  # fmt: skip


async def test_check_in_the_cli_shows_the_answer_and_the_uptime(
    on_calendar: Deployer, calendar: ManualClock
) -> None:
    calendar.advance(3 * 86400)
    lines = render_check(await on_calendar.check("alice"), calendar.now())
    assert lines == [
        "alice  https://alice.ai.example.test",
        "  answers (200)",
        "  running for 3 days · release 1 · expires 2026-12-08 07:00 UTC",
    ]


def event(kind: EventKind, **data: Any) -> Event:
    return Event(deployment_id="d1", stack="alice", kind=kind, data=data)


@pytest.mark.parametrize(
    ("operation", "kind", "data", "line"),
    [
        ("stop", EventKind.DEPLOYMENT_RUNNING, {}, "alice: stopping"),
        ("stop", EventKind.DEPLOYMENT_SUCCEEDED, {"url": "https://a"},
         "alice: stopped; its data is kept; `aistack start alice` starts it"),
        ("start", EventKind.DEPLOYMENT_SUCCEEDED, {"url": "https://a"},
         "alice: running again, answers at https://a"),
        ("restart", EventKind.DEPLOYMENT_SUCCEEDED, {"url": "https://a"},
         "alice: restarted, answers at https://a"),
        ("start", EventKind.DEPLOYMENT_ROLLING_BACK, {"error": "boom"},
         "alice: start failed: boom"),
        ("start", EventKind.DEPLOYMENT_ROLLED_BACK, {}, "alice: start failed; nothing changed"),
    ],
)  # fmt: skip
def test_the_terminal_says_what_a_stop_start_or_restart_did(
    operation: str, kind: EventKind, data: dict[str, Any], line: str
) -> None:
    assert describe(event(kind, **data), operation=operation) == line


async def test_the_terminal_learns_the_operation_from_the_request() -> None:
    out = io.StringIO()
    terminal = TerminalNotifier(out, live=False)
    await terminal.notify(event(EventKind.DEPLOYMENT_REQUESTED, operation="restart"))
    await terminal.notify(event(EventKind.DEPLOYMENT_RUNNING))
    await terminal.notify(event(EventKind.DEPLOYMENT_SUCCEEDED, url="https://a"))
    await terminal.notify(event(EventKind.DEPLOYMENT_RUNNING))  # the request is forgotten
    running, done, again = out.getvalue().splitlines()
    assert (running, again) == ("alice: restarting", "alice: deploying")
    assert done.startswith("alice: restarted, answers at https://a (total ")


async def test_the_request_records_its_operation(
    live: Deployer, notifier: RecordingNotifier
) -> None:
    await live.change("alice", Operation.STOP, requester="U1")
    asked = [e.data.get("operation") for e in notifier.events if e.kind == "deployment.requested"]
    assert asked == ["deploy", "stop"]
