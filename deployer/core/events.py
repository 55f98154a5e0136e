"""The kinds of event a deployment records: the one list of the strings users and the audit
trail see (`aistack history`, the events table, Slack). Their values never change: stored
events are read back by them."""

from __future__ import annotations

from enum import StrEnum

from deployer.core.states import DeploymentState


class EventKind(StrEnum):
    # A transition: the deployment entered the state named after the dot (see `entering`).
    DEPLOYMENT_REQUESTED = "deployment.requested"
    DEPLOYMENT_APPROVED = "deployment.approved"
    DEPLOYMENT_REJECTED = "deployment.rejected"
    DEPLOYMENT_EXPIRED = "deployment.expired"
    DEPLOYMENT_QUEUED = "deployment.queued"
    DEPLOYMENT_RUNNING = "deployment.running"
    DEPLOYMENT_SUCCEEDED = "deployment.succeeded"
    DEPLOYMENT_ROLLING_BACK = "deployment.rolling_back"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back"
    DEPLOYMENT_ROLLBACK_FAILED = "deployment.rollback_failed"
    DEPLOYMENT_DESTROYING = "deployment.destroying"
    DEPLOYMENT_DESTROYED = "deployment.destroyed"

    # A report on a deployment that changes nothing: queued too long, no worker took it.
    DEPLOYMENT_NOT_STARTED = "deployment.not_started"

    # A phase going forward: started, done, failed, or stopped (shutdown, a sibling failed).
    PHASE_RUNNING = "phase.running"
    PHASE_DONE = "phase.done"
    PHASE_FAILED = "phase.failed"
    PHASE_INTERRUPTED = "phase.interrupted"

    # A phase's undo, during a rollback or its retry.
    UNDO_RUNNING = "undo.running"
    UNDO_DONE = "undo.done"
    UNDO_FAILED = "undo.failed"

    # What happens to a failed rollback: its next automatic try, an operator's "now", an
    # operator taking it over by hand.
    ROLLBACK_RETRY_SCHEDULED = "rollback.retry_scheduled"
    ROLLBACK_RETRY_REQUESTED = "rollback.retry_requested"
    ROLLBACK_GIVEN_UP = "rollback.given_up"

    # A live stack's owner changed.
    STACK_TRANSFERRED = "stack.transferred"
    # Its life: a new expiry, the owner reminded of the coming one, and (once it is past)
    # the stop at expiry and the destroy after the grace, each requested by aistack.
    STACK_EXTENDED = "stack.extended"
    STACK_EXPIRY_NOTICE = "stack.expiry_notice"
    STACK_EXPIRED = "stack.expired"
    STACK_GRACE_ENDED = "stack.grace_ended"
    # A new basic-auth password reached the owner (the event never holds it).
    CREDENTIALS_SENT = "credentials.sent"

    @classmethod
    def entering(cls, state: DeploymentState) -> EventKind:
        """The kind of the transition into `state`: `deployment.<state>`."""
        return cls(f"deployment.{state}")

    @property
    def transition(self) -> bool:
        """A change of the deployment's state (its event's `state` is the one entered)."""
        return self in _TRANSITIONS

    @property
    def failure(self) -> bool:
        """Something failed: logged as a warning."""
        return self in _FAILURES

    @property
    def started(self) -> bool:
        """Something started: the event that ends it says how it went, and how long it took."""
        return self in _STARTS


_TRANSITIONS = frozenset(EventKind.entering(state) for state in DeploymentState)
_FAILURES = frozenset(
    {EventKind.PHASE_FAILED, EventKind.UNDO_FAILED, EventKind.DEPLOYMENT_ROLLBACK_FAILED}
)
_STARTS = frozenset({EventKind.DEPLOYMENT_RUNNING, EventKind.PHASE_RUNNING, EventKind.UNDO_RUNNING})
