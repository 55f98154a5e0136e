"""Inventory: what exists, read live. Status, list, orphans and the preflight check join our
records with what Dokploy and the DNS zone hold right now; nothing here changes anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployer.core.events import EventKind
from deployer.core.models import Deployment, Probe, ProjectView, StackSpec, StackStatus
from deployer.core.names import validate_stack_name
from deployer.core.reconcile import drift
from deployer.core.states import ACTIVE, DeploymentState, Operation
from deployer.engine.records import Records
from deployer.errors import InvalidStackName, NotFound
from deployer.ports import Clock, Dns, Paas, Prober, Store, ZoneInfo
from deployer.settings import DeployerSettings
from deployer.stack_logs import StackLogs, read_logs

# The operations after whose success the stack runs (a stop's success stops it)
RUNS = frozenset({Operation.DEPLOY, Operation.START, Operation.RESTART})


@dataclass(frozen=True)
class PreflightReport:
    dokploy_url: str
    projects: int
    zone: ZoneInfo
    ingress_ip: str
    dns_mode: str
    wildcard: list[str] | None = None


class Inventory:
    def __init__(
        self, settings: DeployerSettings, store: Store, paas: Paas, dns: Dns, prober: Prober,
        clock: Clock,
    ) -> None:  # fmt: skip
        self._settings = settings
        self._store = store
        self._paas = paas
        self._dns = dns
        self._prober = prober
        self._clock = clock
        self._records = Records(store)

    async def status(self, spec: StackSpec) -> StackStatus:
        dep = await self._store.latest(spec.name)
        views = await self.projects_named(spec.project_name)
        if dep is None and not views:
            raise NotFound(f"no stack named {spec.name}: nothing recorded, nothing in Dokploy")
        return await self._status(spec, dep, views, await self.dns_values(spec.name))

    async def list_stacks(self) -> list[StackStatus]:
        """Every stack our records, Dokploy or DNS know of: three reads, whatever the count."""
        prefix, _, _ = self._settings.stack.project_pattern.partition("{name}")
        live: dict[str, list[ProjectView]] = {}
        for view in await self._paas.stacks(prefix):
            live.setdefault(view.project_name, []).append(view)
        records = {d.stack: d for d in await self._store.list_latest()}
        dns = await self._dns_by_stack()
        names = set(records) | {self._name_of(p) for p in live} | set(dns or {})
        result = []
        for name in sorted(n for n in names if n and _is_stack_name(n)):
            dep = records.get(name)
            spec = dep.spec if dep else self._settings.stack.spec_for(name)
            values = None if dns is None else dns.get(name, [])
            result.append(await self._status(spec, dep, live.get(spec.project_name, []), values))
        return result

    async def orphans(self) -> list[str]:
        """Stack names with Dokploy or DNS resources that no live record owns."""
        return [s.name for s in await self.list_stacks()
                if (s.live or s.dns_values) and _unowned(s.deployment, s.owner)]  # fmt: skip

    async def preflight(self) -> PreflightReport:
        projects = await self._paas.count_projects(quick=True)  # say what is wrong, fast
        zone = await self._dns.zone(quick=True)
        s, wildcard = self._settings, None
        if s.dns.mode == "wildcard":
            wildcard = await self._dns.a_record(s.dns.wildcard_name) or []
        return PreflightReport(s.dokploy.url, projects, zone, str(s.dns.ingress_ip), s.dns.mode,
                               wildcard)  # fmt: skip

    async def projects_named(self, project_name: str) -> list[ProjectView]:
        views = await self._paas.stacks(project_name)
        return [v for v in views if v.project_name == project_name]

    async def dns_values(self, stack: str) -> list[str] | None:
        """The stack's A record values (None in wildcard mode: we make no record)."""
        if self._settings.dns.mode != "record":
            return None
        return await self._dns.a_record(self._settings.dns.record_name(stack)) or []

    async def _dns_by_stack(self) -> dict[str, list[str]] | None:
        """The A records of stacks, by stack (None in wildcard mode: we make none)."""
        if self._settings.dns.mode != "record":
            return None
        found: dict[str, list[str]] = {}
        for record, values in (await self._dns.a_records()).items():
            stack = self._settings.dns.stack_of_record(record)
            if stack is not None and _is_stack_name(stack):  # else someone else's record
                found[stack] = values
        return found

    async def _status(
        self,
        spec: StackSpec,
        dep: Deployment | None,
        views: list[ProjectView],  # every Dokploy project of the stack's name
        values: list[str] | None,  # None: DNS not checked (wildcard mode)
    ) -> StackStatus:
        phases = tuple(await self._store.phases(dep.id)) if dep else ()
        owner = await self._records.owner(spec.name)
        ours = (await self._records.live_ids(spec.name)).get("project_id")
        live, others = _ours(views, ours)
        found = drift(dep, live, values, owned=owner is not None, others=others,
                      ingress_ip=str(self._settings.dns.ingress_ip),
                      dns_checked=values is not None)  # fmt: skip
        return StackStatus(name=spec.name, url=spec.url, deployment=dep, owner=owner,
                           phases=phases, live=live, drift=found,
                           dns_values=tuple(values) if values else None,
                           **await self._life(spec.name, dep))  # fmt: skip

    # -- day two: how the live stack runs, its URL now, its logs ------------------------------
    async def check(self, spec: StackSpec) -> StackStatus:
        """The status, and what the URL answers right now (one request, no waiting). A
        stack that is not live, or stopped, is not probed: nothing should answer there."""
        status = await self.status(spec)
        if status.owner is None or status.stopped_at is not None:
            return status
        answer = await self._prober.check(spec.url)
        probe = Probe(ready=answer.ready, detail=answer.detail, at=self._clock.now())
        return status.model_copy(update={"probe": probe})

    async def logs(
        self, stack: str, tail: int, build: bool, also_masked: Mapping[str, str]
    ) -> StackLogs:
        return await read_logs(self._store, self._paas, stack, tail=tail, build=build,
                               also_masked=also_masked)  # fmt: skip

    async def _life(self, stack: str, latest: Deployment | None) -> dict[str, Any]:
        """What the live row knows: its release, since when it runs or is stopped, when it
        expires. Nothing when the stack is not live."""
        live = await self._store.live(stack)
        if live is None:
            return {}
        made = await self._store.get(live.deployment_id)
        up_since = None if live.stopped_at else await self._up_since(stack, latest, made)
        return {"release": made.release, "up_since": up_since, "stopped_at": live.stopped_at,
                "expires_at": live.expires_at}  # fmt: skip

    async def _up_since(self, stack: str, latest: Deployment | None, made: Deployment) -> datetime:
        """When the running stack last started: the success of its latest deploy, start or
        restart. The latest deployment is that one, mostly; else (a failed restart, a request
        waiting) the trail is read back to it."""
        if latest is not None and _ran(latest):
            return latest.updated_at
        for event in reversed(await self._store.events(stack)):
            if event.kind is EventKind.DEPLOYMENT_SUCCEEDED:
                succeeded = await self._store.get(event.deployment_id)
                if _ran(succeeded):
                    return succeeded.updated_at
        return made.updated_at

    def _name_of(self, project_name: str) -> str:
        prefix, _, suffix = self._settings.stack.project_pattern.partition("{name}")
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


def _ran(dep: Deployment) -> bool:
    """A deploy, start or restart that succeeded: the stack runs since it ended."""
    return dep.state is DeploymentState.SUCCEEDED and dep.operation in RUNS


def _unowned(latest: Deployment | None, owner: str | None) -> bool:
    """Nobody owns it live and no deployment is working on it right now."""
    return owner is None and (latest is None or latest.state not in ACTIVE)
