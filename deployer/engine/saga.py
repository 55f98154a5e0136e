"""The orchestrator: runs a deployment's phases, checkpoints them, compensates on failure.

Forward: a phase starts when everything it needs is done, so independent phases run side by
side. Before a phase's work begins its record is stored as `running`: that record is the
registration of its undo, durable across a crash. After, `done` with the ids it made.
A failed deploy stops its other phases at once (their work is about to be undone); a failed
teardown lets independent branches run to their end and skips only what depends on the
failure, so one refused removal does not leave the others undone.
Backward: on failure, undo steps run in reverse catalogue order (a fixed key: a retry
undoes in the same order as the first attempt), shielded from cancellation, each outcome
recorded; the deployment ends `rolled_back`, or `rollback_failed` naming what is left.
A deployment picked up again (after a crash or for a retry) resumes from its checkpoints:
done phases are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import structlog

from deployer.core.events import EventKind
from deployer.core.models import Deployment, PhaseRecord
from deployer.core.phases import CATALOGUES, PhaseDef, PhaseName, Timeout, phases_for
from deployer.core.releases import reverted
from deployer.core.states import DeploymentState, Operation, PhaseState
from deployer.engine.journal import Journal
from deployer.ports import compensating

S = DeploymentState
UNDOABLE = frozenset(
    {
        PhaseState.RUNNING,
        PhaseState.DONE,
        PhaseState.FAILED,
        PhaseState.UNDOING,
        PhaseState.UNDO_FAILED,
    }
)


@dataclass
class PhaseContext:
    """What a step sees: the deployment, the outputs so far, and a way to save progress."""

    deployment: Deployment
    outputs: dict[str, str]
    save: Callable[[Mapping[str, str]], Awaitable[None]] = field(repr=False)


@dataclass(frozen=True)
class Undone:
    """What an undo did, in words; `changed` is False when nothing of ours was there to
    remove or put back (kept, never made, already gone), so no one reads it as rolled back."""

    outcome: str
    changed: bool = True


class PhaseStep(Protocol):
    """One phase's code: `do` returns the outputs to checkpoint; `leftover` names what the
    phase leaves behind when it, or its undo, does not finish ("" for nothing)."""

    async def do(self, ctx: PhaseContext) -> Mapping[str, str]: ...
    def leftover(self, ctx: PhaseContext) -> str: ...


@runtime_checkable
class UndoableStep(PhaseStep, Protocol):
    """The step of a phase whose PhaseDef says `undo`: it can also be compensated."""

    async def undo(self, ctx: PhaseContext) -> Undone: ...


def undo_steps(steps: Mapping[PhaseName, PhaseStep]) -> dict[PhaseName, UndoableStep]:
    """The undoable steps, once the registry is checked against the catalogue: every phase
    has a step, with an undo exactly when its PhaseDef says so. A gap fails at start-up,
    not in the middle of a rollback."""
    undos: dict[PhaseName, UndoableStep] = {}
    for phase in (phase for catalogue in CATALOGUES.values() for phase in catalogue):
        step = steps.get(phase.name)
        if step is None:
            raise ValueError(f"phase {phase.name} has no step")
        if isinstance(step, UndoableStep):
            undos[phase.name] = step
        if (phase.name in undos) != phase.undo:
            has = "has no undo" if phase.undo else "has an undo"
            raise ValueError(
                f"phase {phase.name}: its step {has}, its PhaseDef says undo={phase.undo}"
            )
    return undos


class PhaseFailed(Exception):
    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(f"{phase}: {reason}")


class Saga:
    def __init__(
        self,
        journal: Journal,
        steps: Mapping[PhaseName, PhaseStep],
        timeouts: Mapping[Timeout, float],
    ) -> None:
        self._journal = journal
        self._store = journal.store
        self._clock = journal.clock
        self._steps = steps
        self._undos = undo_steps(steps)
        self._timeouts = timeouts

    async def run(self, deployment: Deployment) -> Deployment:
        """Drive a deployment from where it stands to a terminal state (or until cancelled)."""
        dep = deployment
        with structlog.contextvars.bound_contextvars(deployment_id=dep.id, stack_name=dep.stack):
            dep = await self._start(dep)
            if dep.state in (S.RUNNING, S.DESTROYING):
                dep = await self._forward(dep)
            if dep.state is S.ROLLING_BACK:
                dep = await _shielded(self._compensate(dep))
        return dep

    async def _start(self, dep: Deployment) -> Deployment:
        destroy = dep.operation is Operation.DESTROY
        if dep.state is S.QUEUED:
            return await self._journal.move(dep, S.DESTROYING if destroy else S.RUNNING)
        if dep.state is S.ROLLBACK_FAILED:  # retry rollback / retry teardown
            return await self._journal.move(dep, S.DESTROYING if destroy else S.ROLLING_BACK)
        return dep

    # -- forward ----------------------------------------------------------------------------
    async def _forward(self, dep: Deployment) -> Deployment:
        try:
            await self._run_phases(dep)
        except PhaseFailed as failed:
            if dep.operation is Operation.DESTROY:
                leftovers = await self._teardown_leftovers(dep)
                return await self._journal.move(
                    dep, S.ROLLBACK_FAILED, error=str(failed), leftovers=leftovers
                )
            return await self._journal.move(dep, S.ROLLING_BACK, error=str(failed))
        if dep.operation is Operation.DESTROY:
            return await self._journal.move(dep, S.DESTROYED, leftovers=[])
        return await self._journal.move(dep, S.SUCCEEDED, data={"url": dep.spec.url})

    async def _run_phases(self, dep: Deployment) -> None:
        plan = phases_for(dep.operation)
        records = {r.name: r for r in await self._store.phases(dep.id)}
        done = {n for n, r in records.items() if r.state is PhaseState.DONE}
        outputs = _merged(records.values(), only_done=True)
        running: dict[asyncio.Task[Mapping[str, str]], PhaseDef] = {}
        failure: PhaseFailed | None = None
        try:
            failure = await self._drive(dep, plan, records, done, outputs, running)
        finally:
            await _cancel_all(running)  # only non-empty when the saga itself is cancelled
        if failure is not None:
            raise failure

    async def _drive(
        self,
        dep: Deployment,
        plan: tuple[PhaseDef, ...],
        records: dict[str, PhaseRecord],
        done: set[str],
        outputs: dict[str, str],
        running: dict[asyncio.Task[Mapping[str, str]], PhaseDef],
    ) -> PhaseFailed | None:
        failure: PhaseFailed | None = None
        # A phase that needs a failed one never becomes ready, so a failure skips exactly
        # what depends on it; a deploy also stops everything else (fail fast).
        fail_fast = dep.operation is Operation.DEPLOY
        tried = set(done)  # a phase runs at most once per pass
        while True:
            if failure is None or not fail_fast:
                for phase in _ready(plan, done, tried):
                    tried.add(phase.name)
                    task = asyncio.create_task(self._phase(dep, phase, plan, records, outputs))
                    running[task] = phase
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                phase = running.pop(task)
                if task.cancelled() or task.exception() is not None:
                    failure = failure or _as_failure(phase, task)
                    continue
                done.add(phase.name)
                outputs.update(task.result())
            if failure is not None and fail_fast:
                await _cancel_all(running)
                running.clear()
        return failure

    async def _phase(
        self,
        dep: Deployment,
        phase: PhaseDef,
        plan: tuple[PhaseDef, ...],
        records: dict[str, PhaseRecord],
        outputs: dict[str, str],
    ) -> Mapping[str, str]:
        previous = records.get(phase.name)
        record = PhaseRecord(
            deployment_id=dep.id,
            name=phase.name,
            state=PhaseState.RUNNING,
            attempt=(previous.attempt if previous else 0) + 1,
            outputs=dict(previous.outputs) if previous else {},
            # resumed after a crash: the phase has been under way since its first start
            started_at=(previous and previous.started_at) or self._clock.now(),
        )
        index = [p.name for p in plan].index(phase.name) + 1
        where = {"index": index, "total": len(plan)}
        # Stored before any work: this record is the registration of the phase's undo.
        await self._journal.checkpoint(
            dep, record, EventKind.PHASE_RUNNING, **where, data={"title": phase.title}
        )
        holder = [record]

        async def save(progress: Mapping[str, str]) -> None:
            holder[0] = holder[0].model_copy(update={"outputs": {**holder[0].outputs, **progress}})
            await self._store.save_phase(holder[0])

        ctx = PhaseContext(dep, {**outputs, **record.outputs}, save)
        limit = self._timeouts[phase.timeout]
        try:
            async with asyncio.timeout(limit):
                made = dict(await self._steps[phase.name].do(ctx))
        except BaseException as exc:
            reason = _reason(exc, limit)
            failed = self._finish(holder[0], PhaseState.FAILED, error=reason)
            # A cancelled phase did not fail: it was stopped (shutdown, or a sibling failed).
            kind = (
                EventKind.PHASE_INTERRUPTED
                if isinstance(exc, asyncio.CancelledError)
                else EventKind.PHASE_FAILED
            )
            await asyncio.shield(
                self._journal.checkpoint(
                    dep,
                    failed,
                    kind,
                    **where,
                    duration=failed.duration,
                    data={"title": phase.title, "error": reason},
                )
            )
            if isinstance(exc, Exception):
                raise PhaseFailed(phase.name, reason) from exc
            raise
        done = self._finish(holder[0], PhaseState.DONE, outputs={**holder[0].outputs, **made})
        await self._journal.checkpoint(
            dep,
            done,
            EventKind.PHASE_DONE,
            **where,
            duration=done.duration,
            data={"title": phase.title, **made},
        )
        return done.outputs  # what later phases see: results and the progress saved on the way

    # -- backward ---------------------------------------------------------------------------
    async def _compensate(self, dep: Deployment) -> Deployment:
        plan: dict[str, PhaseDef] = {p.name: p for p in phases_for(dep.operation)}
        records = await self._store.phases(dep.id)
        outputs = _merged(records, only_done=False)
        pending = [r for r in records if plan[r.name].undo and r.state in UNDOABLE]
        # The catalogue is in dependency order, so its reverse undoes every phase after what
        # depends on it. Unlike start times, it is the same on every retry.
        order = list(plan)
        pending.sort(key=lambda r: order.index(r.name), reverse=True)
        leftovers = []
        for record in pending:
            phase = plan[record.name]
            if not await self._undo(dep, record, phase, outputs):
                leftovers.append(self._steps[phase.name].leftover(self._ctx(dep, outputs)))
        if any(leftovers):
            return await self._journal.move(
                dep, S.ROLLBACK_FAILED, leftovers=[x for x in leftovers if x]
            )
        return await self._journal.move(dep, S.ROLLED_BACK, leftovers=[],
                                        data=await self._reverted(dep))  # fmt: skip

    async def _reverted(self, dep: Deployment) -> dict[str, Any]:
        """A failed deploy of a live stack says which release its image undo put back."""
        revert = reverted(await self._store.phases(dep.id))
        if revert is None:
            return {}
        rolling = {} if dep.restores is None else {"restores": dep.restores}
        return {"reverted_to": revert.release, "redeployed": revert.redeployed, **rolling}

    async def _undo(
        self, dep: Deployment, record: PhaseRecord, phase: PhaseDef, outputs: dict[str, str]
    ) -> bool:
        undoing = record.model_copy(
            update={
                "state": PhaseState.UNDOING,
                "error": None,
                "started_at": self._clock.now(),
                "finished_at": None,
            }
        )
        await self._journal.checkpoint(dep, undoing, EventKind.UNDO_RUNNING)
        limit = self._timeouts[phase.undo_timeout]
        try:
            # an open circuit breaker left by the failure being undone must not refuse its undo
            with compensating():
                async with asyncio.timeout(limit):
                    outcome = await self._undos[phase.name].undo(self._ctx(dep, outputs))
        except Exception as exc:
            reason = _reason(exc, limit)
            failed = self._finish(undoing, PhaseState.UNDO_FAILED, error=reason)
            await self._journal.checkpoint(
                dep, failed, EventKind.UNDO_FAILED, duration=failed.duration, data={"error": reason}
            )
            return False
        state = PhaseState.UNDONE if outcome.changed else PhaseState.NOTHING_TO_UNDO
        undone = self._finish(undoing, state)
        await self._journal.checkpoint(
            dep,
            undone,
            EventKind.UNDO_DONE,
            duration=undone.duration,
            data={"outcome": outcome.outcome},
        )
        return True

    async def _teardown_leftovers(self, dep: Deployment) -> list[str]:
        records = {r.name: r for r in await self._store.phases(dep.id)}
        ctx = self._ctx(dep, _merged(records.values(), only_done=False))
        items = (
            self._steps[p.name].leftover(ctx)
            for p in phases_for(dep.operation)
            if p.name not in records or records[p.name].state is not PhaseState.DONE
        )
        return [item for item in items if item]

    def _finish(self, record: PhaseRecord, state: PhaseState, **changes: Any) -> PhaseRecord:
        return record.model_copy(
            update={"state": state, "finished_at": self._clock.now(), **changes}
        )

    def _ctx(self, dep: Deployment, outputs: dict[str, str]) -> PhaseContext:
        async def no_save(_: Mapping[str, str]) -> None:
            return None

        return PhaseContext(dep, dict(outputs), no_save)


def _reason(exc: BaseException, limit: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {limit:.0f} s"
    return "interrupted" if isinstance(exc, asyncio.CancelledError) else str(exc)


def _ready(plan: tuple[PhaseDef, ...], done: set[str], tried: set[str]) -> list[PhaseDef]:
    return [p for p in plan if p.name not in tried and all(n in done for n in p.needs)]


def _merged(records: Any, *, only_done: bool) -> dict[str, str]:
    merged: dict[str, str] = {}
    for record in records:
        if not only_done or record.state is PhaseState.DONE:
            merged.update(record.outputs)
    return merged


def _as_failure(phase: PhaseDef, task: asyncio.Task[Any]) -> PhaseFailed:
    if task.cancelled():
        return PhaseFailed(phase.name, "interrupted")
    exc = task.exception()
    return exc if isinstance(exc, PhaseFailed) else PhaseFailed(phase.name, str(exc))


async def _cancel_all(tasks: Mapping[asyncio.Task[Any], PhaseDef]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


async def _shielded(work: Awaitable[Deployment]) -> Deployment:
    """Compensation runs to its end even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
