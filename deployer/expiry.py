"""A stack's lifetime: the one a request records, extending it, and the lifecycle sweep
that does what an expiry calls for, once whoever sweeps.

A new stack lives AISTACK_STACK_TTL, or what `--for` asked (at most AISTACK_STACK_TTL_MAX);
a redeploy keeps its expiry; a deploy or start of a stack whose expiry passed gets a fresh
one (core/lifetime.py `lifetime_for`). Every sweep round reads the live stacks and, for
each, does the step its times make due (core/lifetime.py `due`):
- a reminder of the coming expiry: `mark_noticed` records it with its event in one write and
  says False to every replica but the first; the bot turns the event into the owner's direct
  message and a reply under the stack's card (bot/threads.py), once, from the event log;
- a stop at expiry, and a destroy once it stayed stopped past the grace: requested as
  operations approved by aistack, each with its reason as the first event of the same write
  and a dedup key made of the times that called for it, so replicas sweeping side by side
  and a sweep that restarts after a crash make one request, which a worker then runs.

Due times live in the store (the live stack's row), never in memory: a process that died
anywhere between two steps leaves the next sweep, here or on another replica, exactly the
steps not done yet. A stack another operation holds is skipped until a later round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from deployer.config import LifetimeConfig
from deployer.core.events import EventKind
from deployer.core.lifetime import (
    Due,
    destroy_at,
    due,
    lifetime_for,
    lifetime_refusal,
    said,
    when,
)
from deployer.core.models import Deployment, Event
from deployer.core.states import HOLDING, DeploymentState, Operation
from deployer.engine.journal import Journal
from deployer.errors import (
    AistackError,
    IllegalTransition,
    LifetimeTooLong,
    NotFound,
    StackBusy,
)
from deployer.ports import LiveStack

log = structlog.get_logger("aistack.expiry")
AISTACK = "aistack"  # who requests and approves what the sweep does
# A stop at expiry that failed (Dokploy down) is tried again this long after it ended.
STOP_RETRY_SECONDS = 3600.0


@dataclass(frozen=True)
class Cause:
    """Why aistack requests an operation: an event stored first, in the request's write."""

    kind: EventKind
    data: dict[str, Any]


class Requests(Protocol):
    """Deployer.request, as the sweep uses it."""

    async def __call__(
        self, name: str, *, requester: str, operation: Operation, dedup_key: str | None,
        channel: str | None, approved: bool, cause: Cause | None,
    ) -> Deployment: ...  # fmt: skip


@dataclass
class SweepReport:
    """What one round did: the stacks whose owners were reminded, the stops and destroys
    it requested (replays of a request made before are not listed), the stacks skipped
    because another operation holds them, and those it could not handle (the error is
    logged)."""

    reminded: list[str] = field(default_factory=list)
    stopped: list[Deployment] = field(default_factory=list)
    destroyed: list[Deployment] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


Step = Callable[[LiveStack, datetime, SweepReport], Awaitable[None]]


class Lifetimes:
    """The Deployer's part that keeps a stack's lifetime (it lends its `request`)."""

    def __init__(self, journal: Journal, limits: LifetimeConfig, request: Requests) -> None:
        self._journal = journal
        self._store = journal.store
        self._clock = journal.clock
        self._limits = limits
        self._request = request
        self._steps: dict[Due, Step] = {
            Due.NOTICE: self._remind, Due.STOP: self._stop, Due.DESTROY: self._destroy,
        }  # fmt: skip

    @property
    def extension(self) -> float:
        """What an extend without `--for` gives: the TTL, or the most allowed when stacks
        never expire by default (such a stack's expiry was asked for with `--for`)."""
        return self._limits.ttl if self._limits.ttl is not None else self._limits.ttl_max

    # -- at request time, and extending -------------------------------------------------------
    def refuse(self, seconds: float | None) -> None:
        """Raise LifetimeTooLong for a lifetime past AISTACK_STACK_TTL_MAX, saying the most."""
        refused = None if seconds is None else lifetime_refusal(seconds, self._limits.ttl_max)
        if refused is not None:
            raise LifetimeTooLong(refused)

    async def lifetime(
        self, stack: str, operation: Operation, asked: float | None, now: datetime
    ) -> float | None:
        """The lifetime a deploy or a start records; None for any other operation."""
        if operation not in (Operation.DEPLOY, Operation.START):
            return None
        live = await self._store.live(stack)
        return lifetime_for(asked, now, live=live is not None,
                            expires_at=live.expires_at if live else None,
                            ttl=self._limits.ttl, longest=self._limits.ttl_max)  # fmt: skip

    async def extend(self, stack: str, *, by: str, lifetime: float | None) -> LiveStack:
        """New expiry: now + `lifetime` (default `extension`), recorded as `stack.extended`
        (actor, from, to) in the same write; its reminder is due again."""
        seconds = lifetime if lifetime is not None else self.extension
        self.refuse(seconds)
        live = await self._store.live(stack)
        if live is None:
            raise NotFound(f"{stack} is not live: there is nothing to extend")
        now = self._clock.now()
        until = now + timedelta(seconds=seconds)
        was = live.expires_at.isoformat() if live.expires_at else None
        change = {"from": was, "to": until.isoformat(), "outcome": f"expires {when(until)}"}
        event = Event(deployment_id=live.deployment_id, stack=stack, at=now,
                      kind=EventKind.STACK_EXTENDED, actor=by, data=change)  # fmt: skip
        moved = await self._store.extend(stack, until, event)
        await self._journal.announce(event)
        return moved

    # -- the sweep ---------------------------------------------------------------------------
    async def sweep(self) -> SweepReport:
        report = SweepReport()
        now = self._clock.now()
        for live in await self._store.live_stacks():
            step = due(now, expires_at=live.expires_at, stopped_at=live.stopped_at,
                       noticed_for=live.noticed_for, notice=self._limits.notice,
                       grace=self._limits.grace)  # fmt: skip
            if step is None:
                continue
            try:
                await self._steps[step](live, now, report)
            except StackBusy:  # another operation holds it: the next round looks again
                report.busy.append(live.stack)
            except (NotFound, IllegalTransition):  # it changed meanwhile: the next round sees
                continue
            except AistackError as exc:  # the store or a read failed: the others go on
                log.warning("lifetime step not done", stack_name=live.stack, step=str(step),
                            error=str(exc))  # fmt: skip
                report.failed.append(live.stack)
        return report

    async def _remind(self, live: LiveStack, now: datetime, report: SweepReport) -> None:
        assert live.expires_at is not None  # `due` says so
        grace_from = live.stopped_at or live.expires_at
        data = {
            "owner": live.owner,
            "expires_at": live.expires_at.isoformat(),
            "stopped": live.stopped_at is not None,
            "destroy_at": destroy_at(live.expires_at, grace_from, self._limits.grace).isoformat(),
            "grace": said(self._limits.grace),
            "extend_by": said(self.extension),
        }
        event = Event(deployment_id=live.deployment_id, stack=live.stack, at=now,
                      kind=EventKind.STACK_EXPIRY_NOTICE, actor=AISTACK, data=data)  # fmt: skip
        if await self._store.mark_noticed(live.stack, live.expires_at, event):
            await self._journal.announce(event)
            report.reminded.append(live.stack)

    async def _stop(self, live: LiveStack, now: datetime, report: SweepReport) -> None:
        assert live.expires_at is not None
        key = self._stop_key(live, await self._free(live.stack), now)
        if key is None:
            return
        data = {
            "owner": live.owner,
            "expired_at": live.expires_at.isoformat(),
            "destroy_at": destroy_at(live.expires_at, now, self._limits.grace).isoformat(),
            "grace": said(self._limits.grace),
        }
        cause = Cause(EventKind.STACK_EXPIRED, data)
        dep = await self._ask(live, Operation.STOP, key, cause)
        if dep.created_at >= now:  # not a replay of an earlier round's request
            report.stopped.append(dep)
            log.info("stack expired: stop requested", stack_name=live.stack,
                     expired=when(live.expires_at), deployment_id=dep.id)  # fmt: skip

    def _stop_key(self, live: LiveStack, latest: Deployment | None, now: datetime) -> str | None:
        """The once-only key of the stop at this expiry. A stop at expiry that failed (it
        ended rolled back, the stack still runs) is tried again after a pause, under a key
        naming the failed one: one retry per failure, whoever sweeps; None while it waits."""
        assert live.expires_at is not None
        key = f"expire:{live.stack}:{live.expires_at.isoformat()}"
        failed = (
            latest is not None and latest.operation is Operation.STOP
            and latest.requester == AISTACK and latest.state is DeploymentState.ROLLED_BACK
        )  # fmt: skip
        if not failed or latest is None:
            return key
        if latest.updated_at + timedelta(seconds=STOP_RETRY_SECONDS) > now:
            return None
        return f"{key}:after:{latest.id}"

    async def _destroy(self, live: LiveStack, now: datetime, report: SweepReport) -> None:
        assert live.expires_at is not None and live.stopped_at is not None
        await self._free(live.stack)
        key = f"grace:{live.stack}:{live.stopped_at.isoformat()}"
        data = {
            "owner": live.owner,
            "stopped_at": live.stopped_at.isoformat(),
            "expired_at": live.expires_at.isoformat(),
            "grace": said(self._limits.grace),
        }
        dep = await self._ask(
            live, Operation.DESTROY, key, Cause(EventKind.STACK_GRACE_ENDED, data)
        )
        if dep.created_at >= now:
            report.destroyed.append(dep)
            log.info("grace ended: destroy requested", stack_name=live.stack,
                     stopped=when(live.stopped_at), deployment_id=dep.id)  # fmt: skip

    async def _free(self, stack: str) -> Deployment | None:
        """The stack's latest deployment, once nothing holds the stack (StackBusy while an
        operation does: a request recorded by an earlier round, or anyone's)."""
        latest = await self._store.latest(stack)
        if latest is not None and latest.state in HOLDING:
            raise StackBusy(f"{stack} is held by {latest.operation} {latest.id[:8]}")
        return latest

    async def _ask(
        self, live: LiveStack, operation: Operation, key: str, cause: Cause
    ) -> Deployment:
        """Request the operation, approved by aistack; its card goes where the live
        deployment's went (None from the CLI: no card)."""
        channel = (await self._store.get(live.deployment_id)).channel
        return await self._request(live.stack, requester=AISTACK, operation=operation,
                                   dedup_key=key, channel=channel, approved=True,
                                   cause=cause)  # fmt: skip


async def sweep_every(
    sweep: Callable[[], Awaitable[SweepReport]], interval: float, stop: asyncio.Event
) -> None:
    """One round at once, then one every `interval` seconds until `stop`; a round that
    fails (the store is down) is logged and the next one tries again. The wait is on the
    stop event, not on the clock, like the bot's other background sweeps."""
    while not stop.is_set():
        try:
            await sweep()
        except Exception as exc:
            log.warning("lifetimes not swept", error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue
