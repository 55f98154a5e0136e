"""Admission: what a request acts on, and whether it may be recorded at all.

Before the Deployer records a request it settles the spec the request runs (the live
stack's for a stop, start, restart or new login; the one the stack was made with for a
destroy; an earlier release's for a roll back) and refuses, saying why, what cannot be: a
stack that is not live, already as asked, never existed, or a new stack past the quota.
Kept apart from service.py, which records, approves and runs what is admitted.
"""

from __future__ import annotations

from deployer.config import StackConfig
from deployer.core.lifetime import when
from deployer.core.models import StackSpec
from deployer.core.quota import quota_refusal
from deployer.core.states import HOLDING, Operation
from deployer.engine.records import Records
from deployer.errors import AmbiguousResource, NotFound, QuotaExceeded
from deployer.inventory import Inventory
from deployer.ports import DeploymentReads
from deployer.releases import ReleaseBook

# Operations on the live stack as it is: they need one, and run its recorded spec.
LIVE_ONLY = frozenset({Operation.STOP, Operation.START, Operation.RESTART, Operation.CREDENTIALS})


class Admission:
    def __init__(
        self, store: DeploymentReads, records: Records, inventory: Inventory,
        releases: ReleaseBook, stack: StackConfig,
    ) -> None:  # fmt: skip
        self._store = store
        self._records = records
        self._inventory = inventory
        self._releases = releases
        self._stack = stack

    async def spec_for(
        self, spec: StackSpec, operation: Operation, restores: int | None
    ) -> StackSpec:
        """The spec a request of `operation` runs, from the one its name and image give."""
        if operation is Operation.DESTROY:
            return await self._spec_to_destroy(spec)
        if operation is Operation.CREDENTIALS:
            return await self._login_spec(spec.name)
        if operation in LIVE_ONLY:
            return await self._live_spec(spec.name, operation)
        if restores is not None:
            return await self._releases.spec_to_restore(spec.name, restores)
        return spec

    async def within_quota(self, stack: str, requester: str, operation: Operation) -> None:
        """A deploy of a stack nobody holds is a new stack: refused past the limits of what
        one person and the server may hold (live, or approved and on its way)."""
        if operation is not Operation.DEPLOY or await self._store.live(stack) is not None:
            return
        held = {live.stack: live.owner for live in await self._store.live_stacks()}
        for dep in await self._store.list_latest():
            if dep.operation is Operation.DEPLOY and dep.state in HOLDING:
                held.setdefault(dep.stack, dep.requester)
        limits = self._stack
        refused = quota_refusal(requester, stack, held, limits.max_per_user, limits.max_total)
        if refused is not None:
            raise QuotaExceeded(refused)

    async def _live_spec(self, stack: str, operation: Operation) -> StackSpec:
        """The spec of the live stack an operation acts on; refused, saying why, when it is
        not live or already as asked (a stop of a stopped stack, a start of a running one)."""
        live = await self._store.live(stack)
        if live is None:
            raise NotFound(f"{stack} is not live: there is nothing to {operation}")
        if operation is Operation.STOP and live.stopped_at is not None:
            raise NotFound(f"{stack} is already stopped (since {when(live.stopped_at)})")
        if operation is Operation.START and live.stopped_at is None:
            raise NotFound(f"{stack} is running already; `restart` restarts it")
        return (await self._store.get(live.deployment_id)).spec

    async def _login_spec(self, stack: str) -> StackSpec:
        """The live stack's spec, for a new password on its login (stopped or running)."""
        live = await self._store.live(stack)
        if live is None:
            raise NotFound(f"{stack} is not live: it has no login to renew")
        return (await self._store.get(live.deployment_id)).spec

    async def _spec_to_destroy(self, spec: StackSpec) -> StackSpec:
        """The spec the stack was made with (the live one: the latest may be someone's
        request still waiting); a stack that never existed is refused, so a typo creates no
        record."""
        live = await self._records.live_deployment(spec.name)
        latest = live or await self._store.latest(spec.name)
        if latest is not None:
            return latest.spec
        views = await self._inventory.projects_named(spec.project_name)
        if len(views) > 1:  # no record says which one is the stack's
            ids = ", ".join(v.project_id for v in views)
            raise AmbiguousResource(
                f"Dokploy has {len(views)} projects named {spec.project_name} ({ids}) and no "
                "record says which is this stack's: aistack will not guess; remove the ones "
                "that are not by hand"
            )
        if views or await self._inventory.dns_values(spec.name):
            return spec  # made by hand or before our records: a teardown finds it by name
        raise NotFound(f"no stack named {spec.name}: nothing recorded, nothing in Dokploy or DNS")
