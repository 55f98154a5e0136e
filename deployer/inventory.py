"""Inventory: what exists, read live. Status, list, orphans and the preflight check join our
records with what Dokploy and the DNS zone hold right now; nothing here changes anything."""

from __future__ import annotations

from dataclasses import dataclass

from deployer.core.models import Deployment, ProjectView, StackSpec, StackStatus
from deployer.core.names import validate_stack_name
from deployer.core.reconcile import drift
from deployer.core.states import ACTIVE
from deployer.engine.records import Records
from deployer.errors import InvalidStackName, NotFound
from deployer.ports import Dns, Paas, Store, ZoneInfo
from deployer.settings import DeployerSettings


@dataclass(frozen=True)
class PreflightReport:
    dokploy_url: str
    projects: int
    zone: ZoneInfo
    ingress_ip: str
    dns_mode: str
    wildcard: list[str] | None = None


class Inventory:
    def __init__(self, settings: DeployerSettings, store: Store, paas: Paas, dns: Dns) -> None:
        self._settings = settings
        self._store = store
        self._paas = paas
        self._dns = dns
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
                           dns_values=tuple(values) if values else None)  # fmt: skip

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


def _unowned(latest: Deployment | None, owner: str | None) -> bool:
    """Nobody owns it live and no deployment is working on it right now."""
    return owner is None and (latest is None or latest.state not in ACTIVE)
