"""Deployer: the lifecycle commands the CLI and the bot drive (request, roll back, approve,
reject, transfer, retry, give up), and the reads they need. It plans, records and runs; what
exists right now is the Inventory's (inventory.py). Its store, journal and settings stay
inside; which release a roll back puts back is the ReleaseBook's (releases.py), and what a
request acts on (and whether the quota admits it) is the Admission's (admission.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from deployer.admission import Admission
from deployer.core.events import EventKind
from deployer.core.models import Deployment, Event, StackSpec, StackStatus
from deployer.core.plan import Target, describe
from deployer.core.releases import Release
from deployer.core.states import TERMINAL, DeploymentState, Operation
from deployer.engine.journal import Journal
from deployer.engine.records import Records, Takeover
from deployer.engine.saga import Saga
from deployer.engine.worker import Worker
from deployer.errors import IllegalTransition, NotFound, PermanentError
from deployer.expiry import Cause, Lifetimes, SweepReport, sweep_every
from deployer.inventory import Inventory, PreflightReport
from deployer.ports import LiveStack
from deployer.releases import ReleaseBook
from deployer.settings import DeployerSettings
from deployer.stack_logs import StackLogs

S = DeploymentState
log = structlog.get_logger("aistack.service")


class Deployer:
    def __init__(
        self, settings: DeployerSettings, journal: Journal, inventory: Inventory, saga: Saga
    ) -> None:
        self._settings = settings
        self._journal = journal
        self._store = journal.store
        self._clock = journal.clock
        self._inventory = inventory
        self._saga = saga
        self._records = Records(journal.store)
        self._releases = ReleaseBook(journal.store, settings.stack)
        self._admission = Admission(journal.store, self._records, inventory, self._releases,
                                    settings.stack)  # fmt: skip
        self.work_queued = asyncio.Event()  # wakes this process's workers
        self._lifetimes = Lifetimes(journal, settings.lifetime, self.request)

    def spec(self, name: str, image: str | None = None) -> StackSpec:
        return self._settings.stack.spec_for(name, image)

    async def request(
        self,
        name: str,
        *,
        requester: str,
        operation: Operation = Operation.DEPLOY,
        image: str | None = None,
        dedup_key: str | None = None,
        channel: str | None = None,
        approved: bool = False,
        restores: int | None = None,
        lifetime: float | None = None,
        cause: Cause | None = None,
    ) -> Deployment:
        """Record a new deployment in `requested` (or, `approved`: approved by its requester
        and queued), with its audit events, in one write; the store refuses it while another
        one holds the stack (requests waiting for approval do not: they may wait side by
        side). `channel` is where the request came from (a chat channel; None from the CLI),
        recorded with it so whoever answers there finds it even after a crash. `restores`:
        a roll back, a deploy of that earlier release's spec onto the live stack. `lifetime`
        (`--for`, seconds) is refused past AISTACK_STACK_TTL_MAX before anything is recorded;
        `cause` is why aistack asks (expired, grace ended): its event is stored first."""
        self._lifetimes.refuse(lifetime)
        spec = await self._admission.spec_for(self.spec(name, image), operation, restores)
        await self._admission.within_quota(spec.name, requester, operation)
        now = self._clock.now()
        lifetime = await self._lifetimes.lifetime(spec.name, operation, lifetime, now)
        draft = Deployment(stack=spec.name, operation=operation, requester=requester, spec=spec,
                           channel=channel, created_at=now, updated_at=now,
                           restores=restores, lifetime=lifetime)  # fmt: skip
        asked = {"image": spec.image, "operation": str(operation),
                 **({} if restores is None else {"restores": restores})}  # fmt: skip
        events = [self._journal.event(draft, EventKind.DEPLOYMENT_REQUESTED, state=str(S.REQUESTED),
                           actor=requester, data=asked)]  # fmt: skip
        if cause is not None:  # why aistack asks comes first
            events.insert(0, self._journal.event(draft, cause.kind, actor=requester,
                                                 data=cause.data))  # fmt: skip
        if approved:
            draft = draft.model_copy(update={"state": S.QUEUED, "version": 2,
                                             "approver": requester})  # fmt: skip
            events += [self._journal.event(draft, EventKind.entering(s), state=str(s),
                                           actor=requester)
                       for s in (S.APPROVED, S.QUEUED)]  # fmt: skip
        dep = await self._journal.create(draft, events, dedup_key=dedup_key)
        if dep.state is S.QUEUED:
            self.work_queued.set()
        return dep

    async def request_rollback(
        self, name: str, *, requester: str, to: int | None = None, dedup_key: str | None = None,
        channel: str | None = None, approved: bool = False,
    ) -> Deployment:  # fmt: skip
        """Request a roll back: release `to`, or the one before the live release, put back
        on the live stack (a deploy through the same saga). Refused, saying why, when the
        stack is not live, has no earlier release, or `to` is unknown or runs now."""
        number = await self._releases.target(self.spec(name).name, to)
        return await self.request(name, requester=requester, dedup_key=dedup_key,
                                  channel=channel, approved=approved, restores=number)  # fmt: skip

    async def approve(self, dep: Deployment, approver: str) -> Deployment:
        # checked again: other stacks may have been made while this request waited
        await self._admission.within_quota(dep.stack, dep.requester, dep.operation)
        dep = await self._journal.move(dep, S.APPROVED, actor=approver, approver=approver)
        queued = await self._journal.move(dep, S.QUEUED, actor=approver)
        self.work_queued.set()
        return queued

    async def reject(self, dep: Deployment, who: str) -> Deployment:
        return await self._journal.move(dep, S.REJECTED, actor=who, approver=who)

    async def expire(self, dep: Deployment, why: str) -> Deployment:
        """End a request that can never be decided (nobody can be asked where it came from)."""
        return await self._journal.move(dep, S.EXPIRED, error=why)

    async def expire_requests(self, ttl_seconds: float) -> list[Deployment]:
        """Requests nobody decided on within the TTL become `expired` (every one of them:
        several may wait side by side for one stack)."""
        cutoff = self._clock.now() - timedelta(seconds=ttl_seconds)
        stale = [d for d in await self._store.awaiting_approval() if d.created_at < cutoff]
        return [await self._journal.move(d, S.EXPIRED) for d in stale]

    async def supersede(self, dep: Deployment) -> list[Deployment]:
        """The owner's own request settles what happens to her stack: every other request
        for it that waits for approval is closed (rejected, saying by what). Nothing is
        closed for anyone else's request."""
        if dep.requester != await self.owner(dep.stack):
            return []
        why = f"superseded by {dep.requester}'s own {dep.operation}"
        closed = []
        for other in await self._store.awaiting_approval(dep.stack):
            if other.id == dep.id:
                continue
            try:
                closed.append(await self._journal.move(
                    other, S.REJECTED, actor=dep.requester, approver=dep.requester, error=why,
                    data={"superseded_by": dep.id},
                ))  # fmt: skip
            except IllegalTransition:  # decided on meanwhile: that decision stands
                continue
        return closed

    async def transfer(self, name: str, *, owner: str, to: str, by: str) -> LiveStack:
        """Give a live stack from `owner` (as the caller saw it when it decided who may) to
        `to`: compare-and-set, recorded as `stack.transferred` (actor, from, to) in the same
        write. Who may do it is the caller's rule (the owner or an approver)."""
        stack = self.spec(name).name
        live = await self._store.live(stack)
        if live is None:
            raise NotFound(f"{stack} is not live: nobody owns it, so there is nothing to transfer")
        change = {"from": owner, "to": to, "outcome": f"owner {owner} -> {to}"}
        kind = EventKind.STACK_TRANSFERRED
        event = Event(deployment_id=live.deployment_id, stack=stack, kind=kind, actor=by,
                      data=change, at=self._clock.now())  # fmt: skip
        moved = await self._store.transfer(stack, owner, to, event)
        log.info(str(kind), stack_name=stack, actor=by, owner_was=owner, owner=to)
        return moved

    async def retry_rollback(self, dep: Deployment, who: str) -> None:
        """Ask the worker to try a failed rollback again now rather than at its next pause."""
        await self._store.schedule_retry(dep.id, self._clock.now())
        self.work_queued.set()
        await self._journal.emit(
            dep, EventKind.ROLLBACK_RETRY_REQUESTED, state=str(dep.state), actor=who
        )

    async def give_up(self, name: str, who: str) -> Deployment:
        """Stop retrying a failed rollback automatically: an operator takes it from here.
        The stack stays held until a retry (after cleaning by hand) finds nothing left."""
        dep = await self._stuck(name)
        await self._store.give_up(dep.id)
        await self._journal.emit(dep, EventKind.ROLLBACK_GIVEN_UP, state=str(dep.state), actor=who,
                                data={"leftovers": list(dep.leftovers)})  # fmt: skip
        return dep

    async def retry_now(self, name: str, who: str) -> Deployment:
        """Operator path (CLI): retry a failed rollback or teardown now and wait for it."""
        dep = await self._stuck(name)
        await self.retry_rollback(dep, who)
        return await self._work_until(
            dep, lambda d: d.version > dep.version and d.state in TERMINAL
        )

    async def _stuck(self, name: str) -> Deployment:
        dep = await self._store.latest(self.spec(name).name)
        if dep is None or dep.state is not S.ROLLBACK_FAILED:
            state = dep.state if dep else "unknown"
            raise PermanentError(f"{name} is {state}, not rollback_failed: nothing to retry")
        return dep

    def plan(
        self, spec: StackSpec, operation: Operation = Operation.DEPLOY, restores: int | None = None
    ) -> list[str]:
        s = self._settings
        target = Target(s.dokploy.url, s.dns.zone, s.dns.mode, s.dns.record_name(spec.name),
                        str(s.dns.ingress_ip), s.stack.https,
                        login=s.stack.auth == "basic")  # fmt: skip
        return describe(spec, target, operation, restores=restores)

    async def run(self, dep: Deployment) -> Deployment:
        return await self._saga.run(dep)

    def worker(self, *, owner: str | None = None) -> Worker:
        limits = self._settings.worker
        return Worker(self._journal, self.run, limits, owner=owner, wake=self.work_queued)

    async def deploy(
        self, name: str, *, requester: str, image: str | None = None, lifetime: float | None = None
    ) -> Deployment:
        """Operator path (CLI): request, approve as the operator, work the queue until done."""
        dep = await self.request(name, requester=requester, image=image, lifetime=lifetime)
        return await self._work_until_settled(await self.approve(dep, requester))

    async def rollback(self, name: str, *, requester: str, to: int | None = None) -> Deployment:
        """Operator path (CLI): request a roll back as the operator and wait for its end."""
        dep = await self.request_rollback(name, requester=requester, to=to, approved=True)
        return await self._work_until_settled(dep)

    async def destroy(self, name: str, *, requester: str) -> Deployment:
        dep = await self.request(name, requester=requester, operation=Operation.DESTROY)
        return await self._work_until_settled(await self.approve(dep, requester))

    async def change(self, name: str, operation: Operation, *, requester: str) -> Deployment:
        """Operator path (CLI) of a stop, start or restart: request, approve, work until done."""
        dep = await self.request(name, requester=requester, operation=operation)
        return await self._work_until_settled(await self.approve(dep, requester))

    async def releases(self, name: str) -> list[Release]:
        """What the stack has run, release by release, oldest first (no env values)."""
        return await self._releases.releases(self.spec(name).name)

    async def credentials(self, name: str, *, requester: str) -> Deployment:
        """Operator path (CLI): a new password for the stack's login, to its owner (the
        courier: the operator's terminal), worked until done."""
        dep = await self.request(name, requester=requester, operation=Operation.CREDENTIALS,
                                 approved=True)  # fmt: skip
        return await self._work_until_settled(dep)

    async def history(self, name: str) -> list[Event]:
        events = await self._store.events(self.spec(name).name)
        if not events:
            raise NotFound(f"no history for {name}: it was never requested")
        return events

    async def _work_until_settled(self, dep: Deployment) -> Deployment:
        return await self._work_until(dep, lambda d: d.state in TERMINAL)

    async def _work_until(self, dep: Deployment, done: Callable[[Deployment], bool]) -> Deployment:
        async def settled() -> bool:
            return done(await self._store.get(dep.id))

        await self.worker().run_until(settled)
        return await self._store.get(dep.id)

    # -- a stack's lifetime (deployer/expiry.py) -----------------------------------------
    async def extend(self, name: str, *, by: str, lifetime: float | None = None) -> LiveStack:
        """The live stack expires `lifetime` (default AISTACK_STACK_TTL) from now, at most
        AISTACK_STACK_TTL_MAX, recorded as `stack.extended`. Who may is the caller's rule
        (the owner, an approver; the CLI is the operator)."""
        return await self._lifetimes.extend(self.spec(name).name, by=by, lifetime=lifetime)

    async def sweep_lifetimes(self) -> SweepReport:
        """One round of the lifecycle sweep: reminders due, stops at expiry and destroys
        after the grace requested, each once whoever else sweeps."""
        report = await self._lifetimes.sweep()
        if report.stopped or report.destroyed:
            self.work_queued.set()
        return report

    async def keep_lifetimes(self, stop: asyncio.Event) -> None:
        """The sweep at start and every AISTACK_LIFECYCLE_INTERVAL until `stop` (the bot,
        `aistack worker`): every replica may run it, each step happens once."""
        await sweep_every(self.sweep_lifetimes, self._settings.lifetime.interval, stop)

    # -- reads ------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The time on the deployer's clock: how long a stack has run is measured to it."""
        return self._clock.now()

    async def get(self, deployment_id: str) -> Deployment:
        return await self._store.get(deployment_id)

    async def latest(self, name: str) -> Deployment | None:
        return await self._store.latest(self.spec(name).name)

    async def status(self, name: str) -> StackStatus:
        return await self._inventory.status(self.spec(name))

    async def check(self, name: str) -> StackStatus:
        """The status, with what the stack's URL answers right now (not probed when stopped)."""
        return await self._inventory.check(self.spec(name))

    async def logs(self, name: str, *, tail: int = 100, build: bool = False) -> StackLogs:
        """The live stack's last container lines (or its live release's build log), with
        the values of its environment masked. Who may read them is the caller's rule."""
        spec = self.spec(name)
        return await self._inventory.logs(spec.name, tail, build, also_masked=spec.env)

    async def list_stacks(self) -> list[StackStatus]:
        return await self._inventory.list_stacks()

    async def orphans(self) -> list[str]:
        return await self._inventory.orphans()

    async def preflight(self) -> PreflightReport:
        return await self._inventory.preflight()

    def image_refusal(self, image: str) -> str | None:
        """Why AISTACK_ALLOWED_IMAGES refuses `image` (None: it is allowed)."""
        return self._settings.stack.image_refusal(image)

    @property
    def allowed_images(self) -> tuple[str, ...]:
        return self._settings.stack.image_patterns

    async def owner(self, stack: str) -> str | None:
        """Who owns the live stack: whoever first made it live (a redeploy by someone else
        keeps the owner) until a transfer; None when it is not live."""
        return await self._records.owner(stack)

    async def takeover(self, dep: Deployment) -> Takeover | None:
        """Whose live stack `dep` would replace or remove, if not its requester's own."""
        return await self._records.takeover(dep)
