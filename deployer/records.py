"""What our records say a stack is made of: the deployment that made it live, and its ids.

Teardowns and redeploys act on these ids, never on a name alone: Dokploy allows two projects
of one name, and the other one may be someone else's.
"""

from __future__ import annotations

from deployer.core.states import PhaseState
from deployer.models import Deployment
from deployer.ports import Store

IDS = ("project_id", "environment_id", "application_id", "app_name", "domain_id")


class Records:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def live_deployment(self, stack: str) -> Deployment | None:
        """The last successful deploy, unless a destroy followed (a failed redeploy since
        then leaves the stack live, and its owner's)."""
        ends = [e for e in await self._store.events(stack)
                if e.kind in ("deployment.succeeded", "deployment.destroyed")]  # fmt: skip
        if not ends or ends[-1].kind != "deployment.succeeded":
            return None
        return await self._store.get(ends[-1].deployment_id)

    async def live_ids(self, stack: str) -> dict[str, str]:
        """The Dokploy ids the live deployment made or adopted (empty: not live)."""
        dep = await self.live_deployment(stack)
        if dep is None:
            return {}
        found: dict[str, str] = {}
        for record in await self._store.phases(dep.id):
            if record.state is PhaseState.DONE:
                found.update({k: v for k, v in record.outputs.items() if k in IDS})
        return found
