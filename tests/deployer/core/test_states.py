import itertools

import pytest

from deployer.core.states import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    DeploymentState,
    check_transition,
)
from deployer.errors import IllegalTransition

S = DeploymentState

HAPPY_DEPLOY = [S.REQUESTED, S.APPROVED, S.QUEUED, S.RUNNING, S.SUCCEEDED]
FAILED_DEPLOY = [S.REQUESTED, S.APPROVED, S.QUEUED, S.RUNNING, S.ROLLING_BACK, S.ROLLED_BACK]
DESTROY = [S.REQUESTED, S.APPROVED, S.QUEUED, S.DESTROYING, S.DESTROYED]


@pytest.mark.parametrize("path", [HAPPY_DEPLOY, FAILED_DEPLOY, DESTROY])
def test_documented_lifecycles_are_legal(path: list[DeploymentState]) -> None:
    for current, target in itertools.pairwise(path):
        assert check_transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.REQUESTED, S.RUNNING),
        (S.SUCCEEDED, S.RUNNING),
        (S.ROLLED_BACK, S.ROLLING_BACK),
        (S.REJECTED, S.APPROVED),
        (S.RUNNING, S.QUEUED),
    ],
)
def test_illegal_transition_is_refused_and_says_what_is_allowed(
    current: DeploymentState, target: DeploymentState
) -> None:
    with pytest.raises(IllegalTransition, match=f"cannot go from {current} to {target}"):
        check_transition(current, target)


def test_terminal_states_lead_nowhere_except_a_rollback_retry() -> None:
    for state in TERMINAL - {S.ROLLBACK_FAILED}:
        assert TRANSITIONS[state] == frozenset()
    assert TRANSITIONS[S.ROLLBACK_FAILED] == {S.ROLLING_BACK, S.DESTROYING}


def test_every_state_is_in_the_table_and_leftovers_hold_the_stack() -> None:
    assert set(TRANSITIONS) == set(DeploymentState)
    assert S.ROLLBACK_FAILED in ACTIVE
    assert S.SUCCEEDED not in ACTIVE
