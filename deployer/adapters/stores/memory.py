"""MemoryStore: the Store port in a process's memory (unit tests and `aistack --sandbox`).

It keeps the same promises as the SQL stores (one deployment holds a stack at a time,
versioned compare-and-set transitions that keep the live stacks, leases), behind one
asyncio.Lock. No write awaits anything once it holds the lock, so a cancellation lands before
a write or after it, never inside (the SQL stores get the same promise from `runs_to_end`).
Models are copied through JSON on the way in and out, so callers share nothing mutable with
the store, as with a database.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel

from deployer.clock import SystemClock
from deployer.core.models import Deployment, Event, PhaseRecord
from deployer.core.states import DeploymentState, check_transition
from deployer.errors import IllegalTransition, NotFound, StackBusy
from deployer.ports import Clock, LiveStack
from deployer.storage import utc

from .common import (
    LEASED_STATES,
    active_stack,
    busy_message,
    failed_rollbacks,
    live_change,
    not_transferred,
    stale_message,
)

M = TypeVar("M", bound=BaseModel)


def _copy(model: M) -> M:
    return type(model).model_validate_json(model.model_dump_json())


@dataclass
class _Lease:
    owner: str
    expires_at: datetime


class MemoryStore:
    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # stamps updated_at and owner_since
        self._lock = asyncio.Lock()
        self._deployments: dict[str, Deployment] = {}
        self._active: dict[str, str] = {}  # stack -> deployment id: the "unique index"
        self._retry_at: dict[str, datetime] = {}
        self._dedup: dict[str, str] = {}
        self._phases: dict[str, dict[str, PhaseRecord]] = {}
        self._events: list[Event] = []
        self._leases: dict[str, _Lease] = {}
        self._live: dict[str, LiveStack] = {}  # stack -> who owns it, what it is made of
        self._seq = itertools.count(1)  # the events' ids, as the SQL stores number them

    async def close(self) -> None:
        """Nothing to release; the data lives as long as the object."""

    # -- deployments ---------------------------------------------------------------------

    async def create(
        self, deployment: Deployment, *, dedup_key: str | None = None,
        events: Sequence[Event] = (),
    ) -> Deployment:  # fmt: skip
        async with self._lock:
            if dedup_key is not None and dedup_key in self._dedup:
                return _copy(self._deployments[self._dedup[dedup_key]])
            if deployment.id in self._deployments:  # a retried create: already done
                return _copy(self._deployments[deployment.id])
            if holder := self._active.get(deployment.stack):
                raise StackBusy(busy_message(self._deployments[holder]))
            self._hold(deployment.stack, deployment.state, deployment.id)
            self._deployments[deployment.id] = _copy(deployment)
            if dedup_key is not None:
                self._dedup[dedup_key] = deployment.id
            for event in events:
                self._append(event)
            return _copy(deployment)

    async def get(self, deployment_id: str) -> Deployment:
        async with self._lock:
            return _copy(self._get(deployment_id))

    async def latest(self, stack: str) -> Deployment | None:
        async with self._lock:
            mine = [d for d in self._deployments.values() if d.stack == stack]
            return _copy(max(mine, key=_by_created)) if mine else None

    async def list_latest(self) -> list[Deployment]:
        async with self._lock:
            newest: dict[str, Deployment] = {}
            for d in self._deployments.values():
                if d.stack not in newest or _by_created(d) > _by_created(newest[d.stack]):
                    newest[d.stack] = d
            return [_copy(newest[stack]) for stack in sorted(newest)]

    async def transition(
        self,
        deployment: Deployment,
        target: DeploymentState,
        *,
        error: str | None = None,
        leftovers: Sequence[str] | None = None,
        approver: str | None = None,
        event: Event | None = None,
        retry_at: datetime | None = None,
    ) -> Deployment:
        check_transition(deployment.state, target)
        async with self._lock:
            current = self._get(deployment.id)
            if (current.version, current.state) != (deployment.version, deployment.state):
                raise IllegalTransition(stale_message(deployment, target, current))
            self._hold(current.stack, target, current.id)
            attempts = current.rollback_attempts + failed_rollbacks(target)
            changes = {"state": target, "version": current.version + 1,
                       "updated_at": self._clock.now(), "rollback_attempts": attempts}  # fmt: skip
            changes |= _given(error=error, leftovers=leftovers, approver=approver)
            moved = Deployment.model_validate(current.model_dump() | changes)
            self._deployments[moved.id] = moved
            self._retry_at.pop(moved.id, None)
            if retry_at is not None:
                self._retry_at[moved.id] = utc(retry_at)
            moved = self._keep_live(moved, target)
            if event is not None:
                self._append(event)
            return _copy(moved)

    def _keep_live(self, moved: Deployment, target: DeploymentState) -> Deployment:
        now = self._clock.now()
        change = live_change(moved, target, now)
        kept = self._live.get(moved.stack)
        if change is None or (kept is None and change.kind in ("stop", "run")):
            return moved
        if change.kind == "end":
            self._live.pop(moved.stack, None)
            return moved
        if kept is None:
            kept = LiveStack(moved.stack, moved.requester, now, moved.id)
        if change.kind == "stop":
            self._live[moved.stack] = replace(kept, stopped_at=now)
            return moved
        kept = replace(kept, stopped_at=None)
        if change.expires_at is not None:
            kept = replace(kept, expires_at=change.expires_at, noticed_for=None)
        if change.kind == "run":
            self._live[moved.stack] = kept
            return moved
        self._live[moved.stack] = replace(kept, deployment_id=moved.id)
        numbers = [d.release or 0 for d in self._deployments.values() if d.stack == moved.stack]
        moved = moved.model_copy(update={"release": max(numbers, default=0) + 1})
        self._deployments[moved.id] = moved
        return moved

    async def releases(self, stack: str) -> list[Deployment]:
        async with self._lock:
            made = [d for d in self._deployments.values()
                    if d.stack == stack and d.release is not None]  # fmt: skip
            return [_copy(d) for d in sorted(made, key=lambda d: d.release or 0)]

    async def extend(self, stack: str, expires_at: datetime, event: Event) -> LiveStack:
        async with self._lock:
            current = self._live.get(stack)
            if current is None:
                raise NotFound(f"{stack} is not live: there is nothing to extend")
            moved = replace(current, expires_at=utc(expires_at), noticed_for=None)
            self._live[stack] = moved
            self._append(event)
            return moved

    async def mark_noticed(self, stack: str, expires_at: datetime, event: Event) -> bool:
        async with self._lock:
            current = self._live.get(stack)
            if current is None or current.expires_at != utc(expires_at):
                return False
            if current.noticed_for == current.expires_at:
                return False
            self._live[stack] = replace(current, noticed_for=current.expires_at)
            self._append(event)
            return True

    async def awaiting_approval(self, stack: str | None = None) -> list[Deployment]:
        async with self._lock:
            waiting = [
                d
                for d in self._deployments.values()
                if d.state is DeploymentState.REQUESTED and stack in (None, d.stack)
            ]
            return [_copy(d) for d in sorted(waiting, key=_by_created)]

    async def live(self, stack: str) -> LiveStack | None:
        async with self._lock:
            return self._live.get(stack)

    async def live_stacks(self) -> list[LiveStack]:
        async with self._lock:
            return sorted(self._live.values(), key=lambda live: live.stack)

    async def transfer(self, stack: str, owner: str, to: str, event: Event) -> LiveStack:
        async with self._lock:
            current = self._live.get(stack)
            if current is None or current.owner != owner:
                raise not_transferred(stack, owner, current)
            moved = LiveStack(stack, to, self._clock.now(), current.deployment_id)
            self._live[stack] = moved
            self._append(event)
            return moved

    def _get(self, deployment_id: str) -> Deployment:
        try:
            return self._deployments[deployment_id]
        except KeyError:
            raise NotFound(f"no deployment {deployment_id}") from None

    def _hold(self, stack: str, state: DeploymentState, deployment_id: str) -> None:
        """Take (or give up) the stack for `deployment_id`, like the unique index would."""
        holder = self._active.get(stack)
        if active_stack(stack, state) is None:
            if holder == deployment_id:
                del self._active[stack]
        elif holder is None:
            self._active[stack] = deployment_id
        elif holder != deployment_id:
            raise StackBusy(busy_message(self._deployments[holder]))

    # -- phases and events ---------------------------------------------------------------

    async def save_phase(self, record: PhaseRecord, event: Event | None = None) -> None:
        async with self._lock:
            self._get(record.deployment_id)
            self._phases.setdefault(record.deployment_id, {})[record.name] = _copy(record)
            if event is not None:
                self._append(event)

    def _append(self, event: Event) -> None:
        self._events.append(_copy(event).model_copy(update={"seq": next(self._seq)}))

    async def phases(self, deployment_id: str) -> list[PhaseRecord]:
        async with self._lock:
            return [_copy(p) for p in self._phases.get(deployment_id, {}).values()]

    async def append_event(self, event: Event) -> None:
        async with self._lock:
            self._append(event)

    async def events(self, stack: str) -> list[Event]:
        async with self._lock:
            return [_copy(e) for e in self._events if e.stack == stack]

    async def events_for(self, deployment_id: str) -> list[Event]:
        async with self._lock:
            return [_copy(e) for e in self._events if e.deployment_id == deployment_id]

    async def events_after(self, seq: int, limit: int = 500) -> list[Event]:
        async with self._lock:
            return [_copy(e) for e in self._events if (e.seq or 0) > seq][:limit]

    # -- the work queue ------------------------------------------------------------------

    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None:
        now = utc(now)
        async with self._lock:
            ready = [d for d in self._deployments.values() if self._needs_work(d, now)]
            if not ready:
                return None
            chosen = min(ready, key=_by_created)
            self._leases[chosen.id] = _Lease(owner, now + timedelta(seconds=lease_seconds))
            return _copy(chosen)

    def _needs_work(self, d: Deployment, now: datetime) -> bool:
        lease = self._leases.get(d.id)
        if lease is not None and lease.expires_at > now:
            return False
        if d.state == DeploymentState.ROLLBACK_FAILED:
            retry_at = self._retry_at.get(d.id)
            return retry_at is not None and retry_at <= now
        return d.state in LEASED_STATES

    async def heartbeat(
        self, deployment_id: str, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        async with self._lock:
            lease = self._leases.get(deployment_id)
            if lease is None or lease.owner != owner:
                return False
            lease.expires_at = utc(now) + timedelta(seconds=lease_seconds)
            return True

    async def release(self, deployment_id: str, owner: str) -> None:
        async with self._lock:
            lease = self._leases.get(deployment_id)
            if lease is not None and lease.owner == owner:
                del self._leases[deployment_id]

    async def queued_before(self, cutoff: datetime) -> list[Deployment]:
        cutoff = utc(cutoff)
        async with self._lock:
            late = [
                d
                for d in self._deployments.values()
                if d.state == DeploymentState.QUEUED and d.updated_at < cutoff
            ]
            return [_copy(d) for d in sorted(late, key=lambda d: (d.updated_at, d.id))]

    async def schedule_retry(self, deployment_id: str, at: datetime) -> None:
        async with self._lock:
            self._get(deployment_id)
            self._retry_at[deployment_id] = utc(at)

    async def give_up(self, deployment_id: str) -> None:
        async with self._lock:
            self._get(deployment_id)
            self._retry_at.pop(deployment_id, None)


def _by_created(d: Deployment) -> tuple[datetime, str]:
    return (d.created_at, d.id)


def _given(**values: object) -> dict[str, object]:
    """The keyword arguments that were passed (None means: keep what is stored)."""
    return {key: value for key, value in values.items() if value is not None}
