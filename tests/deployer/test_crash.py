"""Crash recovery: a worker process killed with SIGKILL at many points; new workers finish.

The sandbox runs in this test's process; workers are real `aistack worker` processes on the
same SQLite file. After every kill the next worker waits out the dead one's lease, reclaims
the deployment and resumes from its checkpoints.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path

from deployer.adapters.stores.sqlite import SqliteStore
from deployer.assemble import open_deployer
from deployer.core.phases import DEPLOY_PHASES
from deployer.core.states import TERMINAL, DeploymentState
from deployer.sandbox.server import Sandbox
from deployer.testing import RecordingNotifier
from tests.deployer.cli_helpers import cli_env, start_worker

S = DeploymentState
STACKS = ["ana", "ben", "cai", "dee", "eli", "fay"]
FAILING = {"ben", "eli"}  # their builds fail: they must end rolled back, leaving nothing
KILLS = 12
DEADLINE = 120.0


async def test_workers_killed_at_many_points_still_finish_every_job(tmp_path: Path) -> None:
    database = tmp_path / "aistack.db"
    async with Sandbox(deploy_delay=0.15, action_polls=1) as sandbox:
        sandbox.dokploy.fail_deploys.update(f"opencode-{n}" for n in FAILING)
        env = cli_env(sandbox, database)
        store = await SqliteStore.open(database)
        try:
            ids = await _enqueue(sandbox, store)
            kills = await _kill_repeatedly(env, store, ids)
            await _finish(env, store, ids)
            await _check(sandbox, store, ids, kills)
        finally:
            await store.close()


async def _enqueue(sandbox: Sandbox, store: SqliteStore) -> list[str]:
    settings = sandbox.settings(max_stacks_per_user=50)  # one requester, many stacks
    async with open_deployer(settings, RecordingNotifier(), store=store) as deployer:
        return [
            (await deployer.approve(await deployer.request(n, requester="U1"), "U2")).id
            for n in STACKS
        ]


async def _event_count(store: SqliteStore, ids: list[str]) -> int:
    return sum([len(await store.events_for(i)) for i in ids])


async def _kill_repeatedly(env: dict[str, str], store: SqliteStore, ids: list[str]) -> int:
    """Kill a worker KILLS times: after it has written 1, 2, 3... more events, plus a delay
    that varies, so kills land between phases and inside them."""
    kills = 0
    for grow, pause in zip(itertools.cycle([1, 2, 4, 3]), itertools.cycle([0, 0.02, 0.07])):
        if kills == KILLS or await _all_terminal(store, ids):
            break
        before = await _event_count(store, ids)
        worker = await start_worker(env)
        if await _wait_for_growth(store, ids, before + grow, worker):
            await asyncio.sleep(pause)
            if worker.returncode is None:
                worker.kill()  # SIGKILL: no cleanup, the lease stays until it expires
                kills += 1
        await worker.wait()
    return kills


async def _wait_for_growth(
    store: SqliteStore, ids: list[str], target: int, worker: asyncio.subprocess.Process
) -> bool:
    started = time.monotonic()
    while time.monotonic() - started < 10:
        if await _event_count(store, ids) >= target:
            return True
        if worker.returncode is not None:
            return False
        await asyncio.sleep(0.005)
    return False


async def _finish(env: dict[str, str], store: SqliteStore, ids: list[str]) -> None:
    """One worker that stays up until every job has ended: it waits out the leases the killed
    workers left (1 s) itself, polling the queue as a long-running worker does."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deployer.cli", "worker",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(DEADLINE):
            # another process writes the store: no event reaches this one, so poll it
            while not await _all_terminal(store, ids):
                assert worker.returncode is None, f"the last worker exited ({worker.returncode})"
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"jobs did not finish within {DEADLINE:.0f} s") from None
    finally:
        if worker.returncode is None:
            worker.terminate()  # SIGTERM: it stops taking jobs and exits
        await worker.wait()


async def _all_terminal(store: SqliteStore, ids: list[str]) -> bool:
    return all([(await store.get(i)).state in TERMINAL for i in ids])


async def _check(sandbox: Sandbox, store: SqliteStore, ids: list[str], kills: int) -> None:
    assert kills >= KILLS // 2, f"only {kills} kills landed"
    final = {(await store.get(i)).stack: await store.get(i) for i in ids}
    assert {n: d.state for n, d in final.items()} == {
        n: S.ROLLED_BACK if n in FAILING else S.SUCCEEDED for n in STACKS
    }
    live = sorted(set(STACKS) - FAILING)
    assert sandbox.resources() == {
        "projects": sorted(f"ai-stack-{n}" for n in live),
        "applications": sorted(f"opencode-{n}" for n in live),
        "domains": sorted(f"{n}.ai.example.test" for n in live),
        "dns": sorted(f"{n}.ai/A" for n in live),
    } or _sorted(sandbox.resources()) == _sorted({
        "projects": [f"ai-stack-{n}" for n in live],
        "applications": [f"opencode-{n}" for n in live],
        "domains": [f"{n}.ai.example.test" for n in live],
        "dns": [f"{n}.ai/A" for n in live],
    })  # fmt: skip
    for name, dep in final.items():
        kinds = [e.kind for e in await store.events_for(dep.id)]
        assert kinds[:4] == ["deployment.requested", "deployment.approved",
                             "deployment.queued", "deployment.running"], name  # fmt: skip
        assert kinds[-1] == f"deployment.{dep.state}", name
        done = {e.phase for e in await store.events_for(dep.id) if e.kind == "phase.done"}
        if dep.state is S.SUCCEEDED:
            assert done == {p.name for p in DEPLOY_PHASES}, name


def _sorted(resources: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in resources.items()}
