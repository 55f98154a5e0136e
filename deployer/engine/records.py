"""What our records say a stack is made of: the deployment that made it live, its ids, and
who owns it.

Teardowns and redeploys act on these ids, never on a name alone: Dokploy allows two projects
of one name, and the other one may be someone else's. The store keeps one row per live stack
(in the same write as the transition that makes or ends it), so reading them is one lookup,
not a walk through the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.core.models import Deployment
from deployer.core.states import PhaseState
from deployer.ports import DeploymentReads

IDS = ("project_id", "environment_id", "application_id", "app_name", "domain_id", "security_id")


@dataclass(frozen=True)
class Takeover:
    """A request that would change or remove a live stack someone else owns: the card says
    so first, and the owner may reject it."""

    owner: str
    image: str  # what the live stack runs now


class Records:
    def __init__(self, store: DeploymentReads) -> None:
        self._store = store

    async def live_deployment(self, stack: str) -> Deployment | None:
        """The last successful deploy, unless a destroy followed (a failed redeploy since
        then leaves the stack live, and its owner's)."""
        live = await self._store.live(stack)
        return None if live is None else await self._store.get(live.deployment_id)

    async def owner(self, stack: str) -> str | None:
        """Who owns the live stack: whoever first made it live, unless it was transferred."""
        live = await self._store.live(stack)
        return None if live is None else live.owner

    async def takeover(self, dep: Deployment) -> Takeover | None:
        """What `dep` would take from someone else; None when the stack is not live or is
        the requester's own."""
        live = await self._store.live(dep.stack)
        if live is None or live.owner == dep.requester:
            return None
        made = await self._store.get(live.deployment_id)
        return Takeover(owner=live.owner, image=made.spec.image)

    async def live_ids(self, stack: str) -> dict[str, str]:
        """The Dokploy ids the live deployment made or adopted, and the number of its
        release as `release` (empty: not live)."""
        dep = await self.live_deployment(stack)
        if dep is None:
            return {}
        found: dict[str, str] = {} if dep.release is None else {"release": str(dep.release)}
        for record in await self._store.phases(dep.id):
            if record.state is PhaseState.DONE:
                found.update({k: v for k, v in record.outputs.items() if k in IDS})
        return found
