"""The registry: every phase of the catalogue with the step object that runs it on the real
ports (`stack_steps`). The saga checks it against the catalogue when it is built.

Identity: every undo and teardown acts on the ids recorded when a resource was made or
adopted. A name may only *find* a resource when no id is recorded, and two resources of one
name are refused (AmbiguousResource), never guessed between. A deploy saves
`<kind>_existed` just before it sends a create, so an undo knows without asking whether it
made something, kept something, or never touched it.

Modules: base.py (what the steps share), deploy.py (the deploy phases), teardown.py (locate,
and the removals that reuse the deploy phases' undo), container.py (stop, start, restart),
security.py (the login on a stack's URL, and a new password for it).
"""

from __future__ import annotations

from collections.abc import Mapping

from deployer.core.phases import PhaseName
from deployer.engine.saga import PhaseStep
from deployer.engine.steps.base import Deps
from deployer.engine.steps.container import container_steps
from deployer.engine.steps.deploy import (
    ApplicationStep,
    DeployStep,
    DnsStep,
    DomainStep,
    HealthStep,
    ImageStep,
    PreflightStep,
    ProjectStep,
    Rollout,
)
from deployer.engine.steps.security import RotateStep, SecurityStep
from deployer.engine.steps.teardown import LocateStep, RemovalStep

__all__ = ["Deps", "stack_steps"]


def stack_steps(deps: Deps) -> Mapping[PhaseName, PhaseStep]:
    rollout = Rollout(deps)
    project, dns, application = ProjectStep(deps), DnsStep(deps), ApplicationStep(deps)
    container = container_steps(deps)
    return {
        PhaseName.PREFLIGHT: PreflightStep(deps),
        PhaseName.PROJECT: project,
        PhaseName.DNS: dns,
        PhaseName.APPLICATION: application,
        PhaseName.IMAGE: ImageStep(deps, rollout),
        PhaseName.DOMAIN: DomainStep(deps),
        PhaseName.DEPLOY: DeployStep(rollout),
        PhaseName.HEALTH: HealthStep(rollout),
        PhaseName.LOCATE: LocateStep(deps),
        PhaseName.REMOVE_DNS: RemovalStep(dns, "dns"),
        PhaseName.REMOVE_APPLICATION: RemovalStep(application, "application", "application_id"),
        PhaseName.REMOVE_PROJECT: RemovalStep(project, "project", "project_id"),
        PhaseName.STOP: container["stop"],
        PhaseName.START: container["start"],
        PhaseName.RESTART: container["restart"],
        PhaseName.SECURITY: SecurityStep(deps),
        PhaseName.ROTATE: RotateStep(deps),
    }
