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


class PhaseName(StrEnum):
    """Every phase's name, as stored in its checkpoint (so these strings never change)."""

    PREFLIGHT = "preflight"
    PROJECT = "project"
    DNS = "dns"
    APPLICATION = "application"
    IMAGE = "image"
    DOMAIN = "domain"
    DEPLOY = "deploy"
    HEALTH = "health"
    LOCATE = "locate"
    REMOVE_DNS = "remove_dns"
    REMOVE_APPLICATION = "remove_application"
    REMOVE_PROJECT = "remove_project"
    STOP = "stop"
    START = "start"
    RESTART = "restart"
    SECURITY = "security"
    ROTATE = "rotate_credentials"


@dataclass(frozen=True)
class PhaseDef:
    name: PhaseName
    title: str
    needs: tuple[PhaseName, ...] = ()
    undo: bool = False
    timeout: Timeout = Timeout.PHASE
    undo_timeout: Timeout = Timeout.PHASE


DEPLOY_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef(PhaseName.PREFLIGHT, "Check Dokploy and the DNS zone"),
    PhaseDef(PhaseName.PROJECT, "Dokploy project", (PhaseName.PREFLIGHT,), undo=True),
    PhaseDef(PhaseName.DNS, "DNS record", (PhaseName.PREFLIGHT,), undo=True),
    PhaseDef(PhaseName.APPLICATION, "Dokploy application", (PhaseName.PROJECT,), undo=True),
    PhaseDef(
        PhaseName.IMAGE,
        "Docker image and environment",
        (PhaseName.APPLICATION,),
        undo=True,
        undo_timeout=Timeout.RESTORE,
    ),
    PhaseDef(PhaseName.DOMAIN, "Domain and TLS", (PhaseName.APPLICATION,), undo=True),
    # The login comes before the deploy: the stack never serves without its password.
    PhaseDef(PhaseName.SECURITY, "Login (HTTP basic auth)", (PhaseName.APPLICATION,), undo=True),
    PhaseDef(
        PhaseName.DEPLOY,
        "Deploy",
        (PhaseName.IMAGE, PhaseName.DOMAIN, PhaseName.SECURITY),
        timeout=Timeout.DEPLOY,
    ),
    PhaseDef(
        PhaseName.HEALTH,
        "Wait until the stack answers",
        (PhaseName.DEPLOY, PhaseName.DNS),
        timeout=Timeout.HEALTH,
    ),
)

TEARDOWN_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef(PhaseName.LOCATE, "Find the stack's resources"),
    PhaseDef(PhaseName.REMOVE_DNS, "Remove DNS record", (PhaseName.LOCATE,)),
    PhaseDef(PhaseName.REMOVE_APPLICATION, "Remove application and domain", (PhaseName.LOCATE,)),
    PhaseDef(PhaseName.REMOVE_PROJECT, "Remove project", (PhaseName.REMOVE_APPLICATION,)),
)


# Day-two operations act on the live stack's recorded application and change nothing that
# would need undoing: a failed stop leaves it running, a failed start leaves it stopped.
# A stop waits until the URL stops answering (Dokploy's answer proves nothing): the health
# probe's limit.
STOP_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef(PhaseName.STOP, "Stop the container", timeout=Timeout.HEALTH),
)
START_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef(PhaseName.START, "Start the container"),
    PhaseDef(PhaseName.HEALTH, "Wait until the stack answers", (PhaseName.START,),
             timeout=Timeout.HEALTH),
)  # fmt: skip
RESTART_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef(PhaseName.RESTART, "Restart the container"),
    PhaseDef(PhaseName.HEALTH, "Wait until the stack answers", (PhaseName.RESTART,),
             timeout=Timeout.HEALTH),
)  # fmt: skip

# A new password for the live stack's login, sent to its owner: nothing to undo (the old
# password is not kept anywhere to put back).
CREDENTIALS_PHASES: tuple[PhaseDef, ...] = (
    PhaseDef(PhaseName.ROTATE, "New password for the login (HTTP basic auth)"),
)

CATALOGUES: dict[Operation, tuple[PhaseDef, ...]] = {
    Operation.DEPLOY: DEPLOY_PHASES,
    Operation.DESTROY: TEARDOWN_PHASES,
    Operation.STOP: STOP_PHASES,
    Operation.START: START_PHASES,
    Operation.RESTART: RESTART_PHASES,
    Operation.CREDENTIALS: CREDENTIALS_PHASES,
}


def phases_for(operation: Operation) -> tuple[PhaseDef, ...]:
    return CATALOGUES[operation]


def check_catalogue(phases: tuple[PhaseDef, ...]) -> None:
    """Every need names an earlier phase (so the graph has no cycle and runs to the end)."""
    seen: set[str] = set()
    for phase in phases:
        missing = set(phase.needs) - seen
        if missing:
            raise ValueError(f"phase {phase.name} needs {sorted(missing)} before it")
        seen.add(phase.name)


for _catalogue in CATALOGUES.values():
    check_catalogue(_catalogue)
