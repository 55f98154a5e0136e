"""ReleaseBook: a stack's releases read from the store, and what a roll back puts back.

A roll back is a deploy of an earlier release's image, environment, container port and
limits onto the live stack: it goes through the same saga (which adopts the live resources,
and whose image undo puts the current release back if the roll back does not answer). This
module only decides which release and what spec; the Deployer records and runs it.
"""

from __future__ import annotations

from deployer.config import StackConfig
from deployer.core.models import Deployment, StackSpec
from deployer.core.releases import Release, restored_spec, rollback_target
from deployer.errors import NotFound, PermanentError
from deployer.ports import DeploymentReads


class ReleaseBook:
    def __init__(self, store: DeploymentReads, stack: StackConfig) -> None:
        self._store = store
        self._stack = stack

    async def releases(self, stack: str) -> list[Release]:
        """Every release of the stack, oldest first, the live one marked."""
        made = await self._store.releases(stack)
        if not made:
            raise NotFound(f"{stack} has no releases: no deploy of it ever went live")
        live = await self._store.live(stack)
        live_id = live.deployment_id if live is not None else None
        return [Release.of(dep, live=dep.id == live_id) for dep in made]

    async def target(self, stack: str, to: int | None) -> int:
        """The release a roll back puts back: `to`, or the one before the live release.
        Refused, saying why, when the stack is not live or there is nothing to put back."""
        live, made = await self._live(stack)
        try:
            return rollback_target((d.release or 0 for d in made), live.release or 0, to, stack)
        except ValueError as exc:
            raise NotFound(str(exc)) from None

    async def spec_to_restore(self, stack: str, number: int) -> StackSpec:
        """The spec that puts release `number` back on the live stack."""
        live, made = await self._live(stack)
        if number == live.release:
            raise NotFound(f"release {number} is what {stack} runs now: nothing to roll back")
        release = next((d for d in made if d.release == number), None)
        if release is None:
            raise NotFound(f"{stack} has no release {number}")
        spec = restored_spec(live.spec, release.spec)
        refused = self._stack.image_refusal(spec.image)
        if refused is not None:  # the list changed since: the preflight would refuse it too
            raise PermanentError(f"release {number} cannot be put back: {refused}")
        return spec

    async def _live(self, stack: str) -> tuple[Deployment, list[Deployment]]:
        live = await self._store.live(stack)
        if live is None:
            raise NotFound(f"{stack} is not live: there is nothing to roll back")
        return await self._store.get(live.deployment_id), await self._store.releases(stack)
