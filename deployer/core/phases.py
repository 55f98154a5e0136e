"""The phase catalogue: what a deploy and a teardown consist of, as data.

A phase names what it needs; phases whose needs are met run concurrently, so the DNS
record is made beside the Dokploy project and application. `undo` says whether a
compensation is registered before the phase runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from deployer.core.states import Operation


class Timeout(StrEnum):
    """Which per-phase time limit applies (values come from settings)."""

    PHASE = "phase"
    DEPLOY = "deploy"
    HEALTH = "health"
    RESTORE = "restore"  # an undo that redeploys the previous release and waits for health


@dataclass(frozen=True)
class PhaseDef:
    name: str
    title: str
    needs: tuple[str, ...] = ()
    undo: bool = False
    timeout: Timeout = Timeout.PHASE
    undo_timeout: Timeout = Timeout.PHASE


DEPLOY_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef("preflight", "Check Dokploy and the DNS zone"),
    PhaseDef("project", "Dokploy project", ("preflight",), undo=True),
    PhaseDef("dns", "DNS record", ("preflight",), undo=True),
    PhaseDef("application", "Dokploy application", ("project",), undo=True),
    PhaseDef(
        "image",
        "Docker image and environment",
        ("application",),
        undo=True,
        undo_timeout=Timeout.RESTORE,
    ),
    PhaseDef("domain", "Domain and TLS", ("application",), undo=True),
    PhaseDef("deploy", "Deploy", ("image", "domain"), timeout=Timeout.DEPLOY),
    PhaseDef("health", "Wait until the stack answers", ("deploy", "dns"), timeout=Timeout.HEALTH),
)

TEARDOWN_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef("locate", "Find the stack's resources"),
    PhaseDef("remove_dns", "Remove DNS record", ("locate",)),
    PhaseDef("remove_application", "Remove application and domain", ("locate",)),
    PhaseDef("remove_project", "Remove project", ("remove_application",)),
)


def phases_for(operation: Operation) -> tuple[PhaseDef, ...]:
    return DEPLOY_PHASES if operation is Operation.DEPLOY else TEARDOWN_PHASES


def check_catalogue(phases: tuple[PhaseDef, ...]) -> None:
    """Every need names an earlier phase (so the graph has no cycle and runs to the end)."""
    seen: set[str] = set()
    for phase in phases:
        missing = set(phase.needs) - seen
        if missing:
            raise ValueError(f"phase {phase.name} needs {sorted(missing)} before it")
        seen.add(phase.name)


check_catalogue(DEPLOY_PHASES)
check_catalogue(TEARDOWN_PHASES)
