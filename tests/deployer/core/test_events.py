"""Event kinds: the strings users, Slack and the audit trail see do not change."""

from __future__ import annotations

from deployer.core.events import EventKind
from deployer.core.models import Event
from deployer.core.states import DeploymentState

K = EventKind


def test_the_kinds_are_the_strings_already_stored() -> None:
    states = {f"deployment.{s}" for s in DeploymentState}
    assert {str(k) for k in EventKind} == states | {
        "deployment.not_started",
        "phase.running",
        "phase.done",
        "phase.failed",
        "phase.interrupted",
        "undo.running",
        "undo.done",
        "undo.failed",
        "rollback.retry_scheduled",
        "rollback.retry_requested",
        "rollback.given_up",
        "stack.transferred",
        "stack.extended",
        "stack.expiry_notice",
        "stack.expired",
        "stack.grace_ended",
        "credentials.sent",
    }


def test_every_state_has_the_kind_of_its_transition() -> None:
    for state in DeploymentState:
        kind = K.entering(state)
        assert kind == f"deployment.{state}" and kind.transition
    assert not K.DEPLOYMENT_NOT_STARTED.transition  # a report: the state stays as it was


def test_a_stored_string_comes_back_as_its_member() -> None:
    event = Event.model_validate({"deployment_id": "d", "stack": "a", "kind": "undo.failed"})
    assert event.kind is K.UNDO_FAILED
    assert event.model_dump(mode="json")["kind"] == "undo.failed"
    assert f"{event.kind:<12}|" == "undo.failed |"  # formats as its string (history columns)


def test_failures_and_starts() -> None:
    assert {k for k in EventKind if k.failure} == {
        K.PHASE_FAILED,
        K.UNDO_FAILED,
        K.DEPLOYMENT_ROLLBACK_FAILED,
    }
    assert {k for k in EventKind if k.started} == {
        K.DEPLOYMENT_RUNNING,
        K.PHASE_RUNNING,
        K.UNDO_RUNNING,
    }
