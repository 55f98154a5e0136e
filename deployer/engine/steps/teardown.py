"""The teardown phases' steps: locate the stack's resources, then remove each with the undo
of the deploy phase that makes it, on the ids the locate found."""

from __future__ import annotations

from deployer.engine.records import IDS
from deployer.engine.saga import PhaseContext, UndoableStep
from deployer.engine.steps.base import Outputs, Phase


class LocateStep(Phase):
    async def do(self, ctx: PhaseContext) -> Outputs:
        """The ids the live deployment recorded; a name lookup only when none are."""
        recorded = await self._recorded(ctx.deployment.stack)
        if "project_id" in recorded:
            return {key: recorded[key] for key in IDS if key in recorded}
        spec, found = ctx.deployment.spec, dict[str, str]()
        ref = await self._paas.find_project(spec.project_name)
        if ref is not None:
            found.update(project_id=ref.project_id, environment_id=ref.environment_id)
            app = await self._paas.find_application(ref.project_id, spec.app_name)
            if app is not None:
                found.update(application_id=app.application_id, app_name=app.app_name)
        return found

    def leftover(self, ctx: PhaseContext) -> str:
        return ""  # only reads


class RemovalStep:
    """Removes what a deploy phase makes, by running that phase's undo; its outcome is saved
    under `key`. With `needs_id`, nothing is named as left over when that id is unknown."""

    def __init__(self, made_by: UndoableStep, key: str, needs_id: str | None = None) -> None:
        self._made_by = made_by
        self._key = key
        self._needs_id = needs_id

    async def do(self, ctx: PhaseContext) -> Outputs:
        return {self._key: (await self._made_by.undo(ctx)).outcome}

    def leftover(self, ctx: PhaseContext) -> str:
        if self._needs_id is not None and self._needs_id not in ctx.outputs:
            return ""  # locate found none (or never ran): name nothing that may not exist
        return self._made_by.leftover(ctx)
