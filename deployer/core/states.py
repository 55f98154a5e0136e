"""Deployment and phase states, and the one table that says which changes are legal."""

from __future__ import annotations

from enum import StrEnum

from deployer.errors import IllegalTransition


class DeploymentState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"


class Operation(StrEnum):
    """What a deployment does to its stack. A roll back is a deploy of an older release."""

    DEPLOY = "deploy"
    DESTROY = "destroy"
    STOP = "stop"
    START = "start"
    RESTART = "restart"
    CREDENTIALS = "credentials"  # a new basic-auth password, to the owner


class PhaseState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNDOING = "undoing"
    UNDONE = "undone"
    NOTHING_TO_UNDO = "nothing_to_undo"  # the undo ran and found nothing of ours to change
    UNDO_FAILED = "undo_failed"


S = DeploymentState
TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    S.REQUESTED: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED}),
    S.APPROVED: frozenset({S.QUEUED}),
    S.QUEUED: frozenset({S.RUNNING, S.DESTROYING}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.ROLLING_BACK}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.ROLLBACK_FAILED}),
    # Retry: the worker or an operator tries the undo steps (or the teardown) again.
    S.ROLLBACK_FAILED: frozenset({S.ROLLING_BACK, S.DESTROYING}),
    # A destroy that cannot finish leaves resources behind, exactly like a failed rollback.
    S.DESTROYING: frozenset({S.DESTROYED, S.ROLLBACK_FAILED}),
    S.SUCCEEDED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.DESTROYED: frozenset(),
}

TERMINAL: frozenset[DeploymentState] = frozenset(
    {S.SUCCEEDED, S.REJECTED, S.EXPIRED, S.ROLLED_BACK, S.ROLLBACK_FAILED, S.DESTROYED}
)
# States in which a deployment is in progress: asked for, or at work (or left unfinished).
ACTIVE: frozenset[DeploymentState] = frozenset(
    {S.REQUESTED, S.APPROVED, S.QUEUED, S.RUNNING, S.ROLLING_BACK, S.DESTROYING, S.ROLLBACK_FAILED}
)
# States in which a deployment holds its stack: no other may be approved or asked for.
# rollback_failed holds it too: resources are left over and must be cleaned first. A request
# waiting for approval does not: a stranger's request must not lock the owner out of her
# own stack, and several requests may wait side by side until an approver picks one.
HOLDING: frozenset[DeploymentState] = ACTIVE - {S.REQUESTED}


def check_transition(current: DeploymentState, target: DeploymentState) -> DeploymentState:
    """Return `target` if the table allows `current -> target`; raise IllegalTransition if not."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (terminal)"
        raise IllegalTransition(
            f"cannot go from {current} to {target}; from {current} the next state is {allowed}"
        )
    return target
