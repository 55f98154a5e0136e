from deployer.core.phases import CATALOGUES, DEPLOY_PHASES, TEARDOWN_PHASES, PhaseName, phases_for
from deployer.core.states import Operation


def test_phase_names_are_the_strings_checkpoints_already_hold() -> None:
    # Stored checkpoints name their phase by these strings: renaming one orphans them.
    assert [p.name for p in DEPLOY_PHASES] == [
        "preflight", "project", "dns", "application", "image", "domain", "security", "deploy",
        "health",
    ]  # fmt: skip
    assert [p.name for p in TEARDOWN_PHASES] == [
        "locate", "remove_dns", "remove_application", "remove_project",
    ]  # fmt: skip
    assert [p.name for p in phases_for(Operation.STOP)] == ["stop"]
    assert [p.name for p in phases_for(Operation.START)] == ["start", "health"]
    assert [p.name for p in phases_for(Operation.RESTART)] == ["restart", "health"]
    assert [p.name for p in phases_for(Operation.CREDENTIALS)] == ["rotate_credentials"]


def test_every_operation_has_a_catalogue_and_every_phase_name_is_used() -> None:
    assert set(CATALOGUES) == set(Operation)
    names = {p.name for catalogue in CATALOGUES.values() for p in catalogue}
    assert names == set(PhaseName)


def test_day_two_operations_make_nothing_to_undo() -> None:
    for operation in (Operation.STOP, Operation.START, Operation.RESTART, Operation.CREDENTIALS):
        assert not any(p.undo for p in phases_for(operation)), operation
