"""Journal: every state change and phase event is stored (audit), logged and notified."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from deployer.core.events import EventKind
from deployer.core.models import Deployment, Event, PhaseRecord
from deployer.core.retry import rollback_retry_pause
from deployer.core.states import DeploymentState
from deployer.ports import Clock, Notifier, Store

log = structlog.get_logger("aistack.journal")


class Journal:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        clock: Clock,
        *,
        retry_initial: float = 60.0,
        retry_max: float = 3600.0,
    ) -> None:
        self.store = store
        self.clock = clock  # the engine's one clock: the saga and the worker read it here
        self._notifier = notifier
        self._retry_initial = retry_initial  # the pauses between retries of a failed rollback
        self._retry_max = retry_max

    async def move(
        self,
        dep: Deployment,
        target: DeploymentState,
        *,
        error: str | None = None,
        leftovers: Sequence[str] | None = None,
        actor: str = "aistack",
        approver: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Deployment:
        """Apply a transition (the store checks it) and record its event in the same write.

        A failed rollback gets the time of its next try in that write too, so a crash right
        after cannot leave resources behind that nothing will try to remove again."""
        data = dict(data or {})
        if error:
            data["error"] = error
        if leftovers:
            data["leftovers"] = list(leftovers)
        kind = EventKind.entering(target)
        event = self.event(dep, kind, state=str(target), actor=actor, data=data)
        retry_at = self._retry_at(dep) if target is DeploymentState.ROLLBACK_FAILED else None
        moved = await self.store.transition(
            dep,
            target,
            error=error,
            leftovers=leftovers,
            approver=approver,
            event=event,
            retry_at=retry_at,
        )
        await self._publish(event)
        if retry_at is not None:
            await self._retry_scheduled(moved, retry_at)
        return moved

    def _retry_at(self, dep: Deployment) -> datetime:
        # `dep` is the version the store's compare-and-set checks: its count is the stored one.
        attempt = dep.rollback_attempts + 1
        pause = rollback_retry_pause(attempt, self._retry_initial, self._retry_max)
        return self.clock.now() + timedelta(seconds=pause)

    async def _retry_scheduled(self, dep: Deployment, at: datetime) -> None:
        """Say when the next try is: the failure just counted was try n, that one is n + 1."""
        data = {"at": at.isoformat(), "attempt": dep.rollback_attempts + 1}
        await self.emit(dep, EventKind.ROLLBACK_RETRY_SCHEDULED, state=str(dep.state), data=data)

    async def create(
        self, draft: Deployment, events: Sequence[Event], *, dedup_key: str | None = None
    ) -> Deployment:
        """Store a new deployment with its events in one write: what a click decided (a
        request approved and queued at once) survives a crash whole, or not at all. A replay
        (same dedup key or id) returns what is stored and publishes nothing."""
        dep = await self.store.create(draft, dedup_key=dedup_key, events=events)
        if dep.id == draft.id:
            for event in events:
                await self._publish(event)
        return dep

    async def checkpoint(
        self, dep: Deployment, record: PhaseRecord, kind: EventKind, **fields: Any
    ) -> None:
        """Save a phase checkpoint and its event in one write: a crash keeps both or neither."""
        event = self.event(dep, kind, phase=record.name, **fields)
        await self.store.save_phase(record, event)
        await self._publish(event)

    async def emit(self, dep: Deployment, kind: EventKind, **fields: Any) -> None:
        event = self.event(dep, kind, **fields)
        await self.store.append_event(event)
        await self._publish(event)

    async def announce(self, event: Event) -> None:
        """Log and notify an event a store write already stored with its change (a stack
        extended, its owner reminded): the write is the record, this only tells."""
        await self._publish(event)

    def event(self, dep: Deployment, kind: EventKind, **fields: Any) -> Event:
        """An event of `dep`, stamped now and not yet stored (`create` stores the ones a new
        deployment starts with; the other methods store their own)."""
        return _event(dep, kind, at=self.clock.now(), **fields)

    async def _publish(self, event: Event) -> None:
        _log(event)
        try:
            await self._notifier.notify(event)
        except Exception as exc:  # a notifier outage must not stop the deployment
            log.warning("notifier failed", kind=str(event.kind), error=str(exc))


def _event(dep: Deployment, kind: EventKind, **fields: Any) -> Event:
    return Event(deployment_id=dep.id, stack=dep.stack, kind=kind, **fields)


def _log(event: Event) -> None:
    # "stack" is structlog's key for stack traces, so the stack's name goes as stack_name
    fields: dict[str, Any] = {"deployment_id": event.deployment_id, "stack_name": event.stack}
    if event.phase:
        fields["phase"] = event.phase
    if event.duration is not None:
        fields["duration_s"] = round(event.duration, 3)
    if "error" in event.data:
        fields["error"] = event.data["error"]
    if event.kind.failure:
        log.warning(str(event.kind), **fields)
    else:
        log.info(str(event.kind), **fields)
