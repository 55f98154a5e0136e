from deployer.core.phases import CATALOGUES, DEPLOY_PHASES, TEARDOWN_PHASES, PhaseName, phases_for
from deployer.core.states import Operation


def test_phase_names_are_the_strings_checkpoints_already_hold() -> None:
    # Stored checkpoints name their phase by these strings: renaming one orphans them.
    assert [p.name for p in DEPLOY_PHASES] == [
        "preflight", "project", "dns", "application", "image", "domain", "deploy", "health",
    ]  # fmt: skip
    assert [p.name for p in TEARDOWN_PHASES] == [
        "locate", "remove_dns", "remove_application", "remove_project",
    ]  # fmt: skip
    assert [p.name for p in phases_for(Operation.STOP)] == ["stop"]
    assert [p.name for p in phases_for(Operation.START)] == ["start", "health"]
    assert [p.name for p in phases_for(Operation.RESTART)] == ["restart", "health"]


def test_every_operation_has_a_catalogue_and_every_phase_name_is_used() -> None:
    assert set(CATALOGUES) == set(Operation)
    names = {p.name for catalogue in CATALOGUES.values() for p in catalogue}
    assert names == set(PhaseName)


def test_day_two_operations_make_nothing_to_undo() -> None:
    for operation in (Operation.STOP, Operation.START, Operation.RESTART):
        assert not any(p.undo for p in phases_for(operation)), operation
