"""Worker: takes deployments from the store's queue under a lease and runs them.

A lease says "this worker is running this deployment until <time>"; a heartbeat moves the
time on while the saga runs. A worker that dies stops heartbeating, its lease expires and any
other worker reclaims the deployment, which resumes from its checkpoints. A deployment that
ends `rollback_failed` is claimed again when its retry is due (the journal sets the time, in
the write that records the failure), until nothing is left or an operator gives up on it. A
deployment that waits in the queue too long is reported once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import structlog

from deployer.config import WorkerConfig
from deployer.core.events import EventKind
from deployer.core.models import Deployment
from deployer.engine.journal import Journal

log = structlog.get_logger("aistack.worker")
Run = Callable[[Deployment], Coroutine[Any, Any, Deployment]]


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        journal: Journal,
        run: Run,
        settings: WorkerConfig,
        *,
        owner: str | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._journal = journal
        self._store = journal.store
        self._run = run
        self._s = settings
        self.owner = owner or default_owner()
        self._clock = journal.clock
        self._wake = wake  # set when work is queued: no need to wait for the next poll
        self._reported: set[str] = set()
        self.running: dict[str, Deployment] = {}  # what this worker is running right now

    async def run_once(self) -> Deployment | None:
        """Claim one deployment that needs work and drive it; None when there is none."""
        dep = await self._store.claim(self.owner, self._s.lease_seconds, self._clock.now())
        return None if dep is None else await self._drive(dep)

    async def run_until(self, done: Callable[[], Awaitable[bool]]) -> None:
        """Work the queue until `done()` says so (the CLI waits for its own deployment)."""
        while not await done():
            if await self.run_once() is None:
                await self.report_stale()
                await self._clock.sleep(self._s.idle_seconds)

    async def run_forever(self, stop: asyncio.Event, *, slots: int = 1) -> None:
        """Keep up to `slots` deployments running, claiming more as slots free up.

        One loop claims for all slots, so an idle process asks the store once per poll
        interval (or when woken), not once per slot."""
        running: set[asyncio.Task[Deployment | None]] = set()
        try:
            while not stop.is_set():
                if not await self._fill(running, slots) and not running:
                    await self.report_stale()
                await self._idle(stop, running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _fill(self, running: set[asyncio.Task[Deployment | None]], slots: int) -> int:
        claimed = 0
        while len(running) < slots:
            try:
                dep = await self._store.claim(self.owner, self._s.lease_seconds, self._clock.now())
            except Exception as exc:  # the store is down: try again at the next poll
                log.error("claim failed", owner=self.owner, error=repr(exc))
                break
            if dep is None:
                break
            running.add(asyncio.create_task(self._drive(dep), name=f"job:{dep.id[:8]}"))
            claimed += 1
        return claimed

    async def _drive(self, dep: Deployment) -> Deployment | None:
        log.info("claimed", deployment_id=dep.id, stack_name=dep.stack, state=str(dep.state),
                 owner=self.owner)  # fmt: skip
        self.running[dep.id] = dep
        try:
            result = await self._run_leased(dep)
        except Exception as exc:  # one bad job must not stop the worker; its lease lapses
            log.error("job failed", deployment_id=dep.id, error=repr(exc))
            return None
        finally:
            self.running.pop(dep.id, None)
            await asyncio.shield(self._store.release(dep.id, self.owner))
        return result

    async def _idle(
        self, stop: asyncio.Event, running: set[asyncio.Task[Deployment | None]]
    ) -> None:
        """Wait for new work, a free slot, a stop, or the poll interval, whichever is first."""
        waits = [asyncio.ensure_future(stop.wait())]
        if self._wake is not None:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait([*waits, *running], timeout=self._s.idle_seconds,
                               return_when="FIRST_COMPLETED")  # fmt: skip
        finally:
            for waiting in waits:
                waiting.cancel()
            if self._wake is not None:
                self._wake.clear()
        running.difference_update([task for task in running if task.done()])

    async def report_stale(self) -> list[Deployment]:
        """Deployments queued for longer than the limit: reported once as not started."""
        cutoff = self._clock.now() - timedelta(seconds=self._s.queue_limit_seconds)
        stale = [d for d in await self._store.queued_before(cutoff) if d.id not in self._reported]
        for dep in stale:
            self._reported.add(dep.id)
            await self._journal.emit(
                dep,
                EventKind.DEPLOYMENT_NOT_STARTED,
                state=str(dep.state),
                data={
                    "error": f"queued since {dep.updated_at:%Y-%m-%d %H:%M} UTC and not started: "
                    "is a worker running?"
                },
            )
        return stale

    async def _run_leased(self, dep: Deployment) -> Deployment | None:
        saga = asyncio.create_task(self._run(dep))
        beat = asyncio.create_task(self._heartbeat(dep, saga))
        try:
            return await saga
        except asyncio.CancelledError:
            if beat.done() and not beat.cancelled() and beat.result() is False:
                log.warning("lease lost; another worker took over", deployment_id=dep.id)
                return None
            raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, dep: Deployment, saga: asyncio.Task[Deployment]) -> bool:
        while True:
            await self._clock.sleep(self._s.heartbeat_seconds)
            kept = await self._store.heartbeat(
                dep.id, self.owner, self._s.lease_seconds, self._clock.now()
            )
            if not kept:
                saga.cancel()
                return False
