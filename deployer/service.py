"""Deployer: the small surface the CLI and the bot drive. It plans, records and runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from deployer.core.events import EventKind
from deployer.core.models import Deployment, Event, ProjectView, StackSpec, StackStatus, utcnow
from deployer.core.names import validate_stack_name
from deployer.core.plan import Target, describe
from deployer.core.reconcile import drift
from deployer.core.states import ACTIVE, TERMINAL, DeploymentState, Operation
from deployer.engine.journal import Journal, event_of
from deployer.engine.records import Records, Takeover
from deployer.engine.saga import Saga
from deployer.engine.worker import Worker, WorkerSettings
from deployer.errors import (
    AmbiguousResource,
    IllegalTransition,
    InvalidStackName,
    NotFound,
    PermanentError,
)
from deployer.ports import Dns, LiveStack, Paas, ZoneInfo
from deployer.settings import DeployerSettings

S = DeploymentState
log = structlog.get_logger("aistack.service")


@dataclass(frozen=True)
class PreflightReport:
    dokploy_url: str
    projects: int
    zone: ZoneInfo
    ingress_ip: str
    dns_mode: str
    wildcard: list[str] | None = None


class Deployer:
    def __init__(
        self, settings: DeployerSettings, journal: Journal, paas: Paas, dns: Dns, saga: Saga
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.store = journal.store
        self._paas = paas
        self._dns = dns
        self._saga = saga
        self._records = Records(journal.store)
        self.work_queued = asyncio.Event()  # wakes this process's workers

    def spec(self, name: str, image: str | None = None) -> StackSpec:
        return self.settings.spec_for(name, image)

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
    ) -> Deployment:
        """Record a new deployment in `requested` (or, `approved`: approved by its requester
        and queued), with its audit events, in one write; the store refuses it while another
        one holds the stack (requests waiting for approval do not: they may wait side by
        side). `channel` is where its card goes: a card never posted is found by it."""
        spec = self.spec(name, image)
        if operation is Operation.DESTROY:
            spec = await self._spec_to_destroy(spec)
        draft = Deployment(stack=spec.name, operation=operation, requester=requester, spec=spec,
                           channel=channel)  # fmt: skip
        events = [event_of(draft, EventKind.DEPLOYMENT_REQUESTED, state=str(S.REQUESTED),
                           actor=requester, data={"image": spec.image})]  # fmt: skip
        if approved:
            draft = draft.model_copy(update={"state": S.QUEUED, "version": 2,
                                             "approver": requester})  # fmt: skip
            events += [event_of(draft, EventKind.entering(s), state=str(s), actor=requester)
                       for s in (S.APPROVED, S.QUEUED)]  # fmt: skip
        dep = await self.journal.create(draft, events, dedup_key=dedup_key)
        if dep.state is S.QUEUED:
            self.work_queued.set()
        return dep

    async def approve(self, dep: Deployment, approver: str) -> Deployment:
        dep = await self.journal.move(dep, S.APPROVED, actor=approver, approver=approver)
        queued = await self.journal.move(dep, S.QUEUED, actor=approver)
        self.work_queued.set()
        return queued

    async def reject(self, dep: Deployment, who: str) -> Deployment:
        return await self.journal.move(dep, S.REJECTED, actor=who, approver=who)

    async def expire_requests(self, ttl_seconds: float) -> list[Deployment]:
        """Requests nobody decided on within the TTL become `expired` (every one of them:
        several may wait side by side for one stack)."""
        cutoff = utcnow() - timedelta(seconds=ttl_seconds)
        stale = [d for d in await self.store.awaiting_approval() if d.created_at < cutoff]
        return [await self.journal.move(d, S.EXPIRED) for d in stale]

    async def supersede(self, dep: Deployment) -> list[Deployment]:
        """The owner's own request settles what happens to her stack: every other request
        for it that waits for approval is closed (rejected, saying by what). Nothing is
        closed for anyone else's request."""
        if dep.requester != await self.owner(dep.stack):
            return []
        why = f"superseded by {dep.requester}'s own {dep.operation}"
        closed = []
        for other in await self.store.awaiting_approval(dep.stack):
            if other.id == dep.id:
                continue
            try:
                closed.append(await self.journal.move(
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
        live = await self.store.live(stack)
        if live is None:
            raise NotFound(f"{stack} is not live: nobody owns it, so there is nothing to transfer")
        change = {"from": owner, "to": to, "outcome": f"owner {owner} -> {to}"}
        kind = EventKind.STACK_TRANSFERRED
        event = Event(deployment_id=live.deployment_id, stack=stack, kind=kind, actor=by,
                      data=change)  # fmt: skip
        moved = await self.store.transfer(stack, owner, to, event)
        log.info(str(kind), stack_name=stack, actor=by, owner_was=owner, owner=to)
        return moved

    async def retry_rollback(self, dep: Deployment, who: str) -> None:
        """Ask the worker to try a failed rollback again now rather than at its next pause."""
        await self.store.schedule_retry(dep.id, utcnow())
        self.work_queued.set()
        await self.journal.emit(
            dep, EventKind.ROLLBACK_RETRY_REQUESTED, state=str(dep.state), actor=who
        )

    async def give_up(self, name: str, who: str) -> Deployment:
        """Stop retrying a failed rollback automatically: an operator takes it from here.
        The stack stays held until a retry (after cleaning by hand) finds nothing left."""
        dep = await self._stuck(name)
        await self.store.give_up(dep.id)
        await self.journal.emit(dep, EventKind.ROLLBACK_GIVEN_UP, state=str(dep.state), actor=who,
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
        dep = await self.store.latest(self.spec(name).name)
        if dep is None or dep.state is not S.ROLLBACK_FAILED:
            state = dep.state if dep else "unknown"
            raise PermanentError(f"{name} is {state}, not rollback_failed: nothing to retry")
        return dep

    def plan(self, spec: StackSpec, operation: Operation = Operation.DEPLOY) -> list[str]:
        s = self.settings
        target = Target(s.dokploy_url, s.dns_zone, s.dns_mode, s.record_name(spec.name),
                        str(s.ingress_ip), s.https)  # fmt: skip
        return describe(spec, target, operation)

    async def run(self, dep: Deployment) -> Deployment:
        return await self._saga.run(dep)

    def worker(self, *, owner: str | None = None) -> Worker:
        s = self.settings
        limits = WorkerSettings(
            lease_seconds=s.lease_seconds,
            heartbeat_seconds=s.heartbeat_seconds,
            queue_limit_seconds=s.queue_limit,
        )
        return Worker(self.journal, self.run, limits, owner=owner, wake=self.work_queued)

    async def deploy(self, name: str, *, requester: str, image: str | None = None) -> Deployment:
        """Operator path (CLI): request, approve as the operator, work the queue until done."""
        dep = await self.request(name, requester=requester, image=image)
        return await self._work_until_settled(await self.approve(dep, requester))

    async def destroy(self, name: str, *, requester: str) -> Deployment:
        dep = await self.request(name, requester=requester, operation=Operation.DESTROY)
        return await self._work_until_settled(await self.approve(dep, requester))

    async def history(self, name: str) -> list[Event]:
        events = await self.store.events(self.spec(name).name)
        if not events:
            raise NotFound(f"no history for {name}: it was never requested")
        return events

    async def orphans(self) -> list[str]:
        """Stack names with Dokploy or DNS resources that no live record owns."""
        return [s.name for s in await self.list_stacks()
                if (s.live or s.dns_values) and _unowned(s.deployment, s.owner)]  # fmt: skip

    async def _work_until_settled(self, dep: Deployment) -> Deployment:
        return await self._work_until(dep, lambda d: d.state in TERMINAL)

    async def _work_until(self, dep: Deployment, done: Callable[[Deployment], bool]) -> Deployment:
        async def settled() -> bool:
            return done(await self.store.get(dep.id))

        await self.worker().run_until(settled)
        return await self.store.get(dep.id)

    async def status(self, name: str) -> StackStatus:
        spec = self.spec(name)
        dep = await self.store.latest(spec.name)
        views = await self._live_views(spec.project_name)
        if dep is None and not views:
            raise NotFound(f"no stack named {spec.name}: nothing recorded, nothing in Dokploy")
        return await self._status(spec, dep, views, await self._dns_values(spec.name))

    async def _dns_values(self, stack: str) -> list[str] | None:
        if self.settings.dns_mode != "record":
            return None
        return await self._dns.a_record(self.settings.record_name(stack)) or []

    async def list_stacks(self) -> list[StackStatus]:
        """Every stack our records, Dokploy or DNS know of: three reads, whatever the count."""
        prefix, _, _ = self.settings.project_pattern.partition("{name}")
        live: dict[str, list[ProjectView]] = {}
        for view in await self._paas.stacks(prefix):
            live.setdefault(view.project_name, []).append(view)
        records = {d.stack: d for d in await self.store.list_latest()}
        dns = await self._dns_by_stack()
        names = set(records) | {self._name_of(p) for p in live} | set(dns or {})
        result = []
        for name in sorted(n for n in names if n and _is_stack_name(n)):
            dep = records.get(name)
            spec = dep.spec if dep else self.spec(name)
            values = None if dns is None else dns.get(name, [])
            result.append(await self._status(spec, dep, live.get(spec.project_name, []), values))
        return result

    async def _dns_by_stack(self) -> dict[str, list[str]] | None:
        """The A records of stacks, by stack (None in wildcard mode: we make none)."""
        if self.settings.dns_mode != "record":
            return None
        found: dict[str, list[str]] = {}
        for record, values in (await self._dns.a_records()).items():
            stack = self.settings.stack_of_record(record)
            if stack is not None and _is_stack_name(stack):  # else someone else's record
                found[stack] = values
        return found

    async def preflight(self) -> PreflightReport:
        projects = await self._paas.count_projects(quick=True)  # say what is wrong, fast
        zone = await self._dns.zone(quick=True)
        wildcard = None
        if self.settings.dns_mode == "wildcard":
            wildcard = await self._dns.a_record(self.settings.wildcard_name) or []
        return PreflightReport(
            self.settings.dokploy_url,
            projects,
            zone,
            str(self.settings.ingress_ip),
            self.settings.dns_mode,
            wildcard,
        )

    async def _status(
        self,
        spec: StackSpec,
        dep: Deployment | None,
        views: list[ProjectView],  # every Dokploy project of the stack's name
        values: list[str] | None,  # None: DNS not checked (wildcard mode)
    ) -> StackStatus:
        checked = values is not None
        phases = tuple(await self.store.phases(dep.id)) if dep else ()
        owner = await self._records.owner(spec.name)
        ours = (await self._records.live_ids(spec.name)).get("project_id")
        live, others = _ours(views, ours)
        found = drift(dep, live, values, owned=owner is not None, others=others,
                      ingress_ip=str(self.settings.ingress_ip), dns_checked=checked)  # fmt: skip
        return StackStatus(
            name=spec.name,
            url=spec.url,
            deployment=dep,
            owner=owner,
            phases=phases,
            live=live,
            dns_values=tuple(values) if values else None,
            drift=found,
        )

    async def owner(self, stack: str) -> str | None:
        """Who owns the live stack: whoever first made it live (a redeploy by someone else
        keeps the owner) until a transfer; None when it is not live."""
        return await self._records.owner(stack)

    async def takeover(self, dep: Deployment) -> Takeover | None:
        """Whose live stack `dep` would replace or remove, if not its requester's own."""
        return await self._records.takeover(dep)

    async def _live_views(self, project_name: str) -> list[ProjectView]:
        views = await self._paas.stacks(project_name)
        return [v for v in views if v.project_name == project_name]

    async def _spec_to_destroy(self, spec: StackSpec) -> StackSpec:
        """The spec the stack was made with (the live one: the latest may be someone's
        request still waiting); a stack that never existed is refused, so a typo creates no
        record."""
        live = await self._records.live_deployment(spec.name)
        latest = live or await self.store.latest(spec.name)
        if latest is not None:
            return latest.spec
        views = await self._live_views(spec.project_name)
        if len(views) > 1:  # no record says which one is the stack's
            ids = ", ".join(v.project_id for v in views)
            raise AmbiguousResource(
                f"Dokploy has {len(views)} projects named {spec.project_name} ({ids}) and no "
                "record says which is this stack's: aistack will not guess; remove the ones "
                "that are not by hand"
            )
        if views or await self._dns_values(spec.name):
            return spec  # made by hand or before our records: a teardown finds it by name
        raise NotFound(f"no stack named {spec.name}: nothing recorded, nothing in Dokploy or DNS")

    def _name_of(self, project_name: str) -> str:
        prefix, _, suffix = self.settings.project_pattern.partition("{name}")
        core = project_name.removeprefix(prefix)
        return core.removesuffix(suffix) if suffix else core


def _ours(
    views: list[ProjectView], recorded: str | None
) -> tuple[ProjectView | None, tuple[ProjectView, ...]]:
    """Split the projects of a stack's name into the one our records made (or, with no
    record, the only one) and the others, which drift reports and nothing touches."""
    mine = next((v for v in views if v.project_id == recorded), None)
    if mine is None and recorded is None and len(views) == 1:
        mine = views[0]
    return mine, tuple(v for v in views if v is not mine)


def _is_stack_name(name: str) -> bool:
    try:
        return validate_stack_name(name) == name
    except InvalidStackName:
        return False


def _unowned(latest: Deployment | None, owner: str | None) -> bool:
    """Nobody owns it live and no deployment is working on it right now."""
    return owner is None and (latest is None or latest.state not in ACTIVE)
