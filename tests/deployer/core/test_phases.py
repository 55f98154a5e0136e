from deployer.core.phases import DEPLOY_PHASES, TEARDOWN_PHASES, PhaseName


def test_phase_names_are_the_strings_checkpoints_already_hold() -> None:
    # Stored checkpoints name their phase by these strings: renaming one orphans them.
    assert [p.name for p in DEPLOY_PHASES] == [
        "preflight", "project", "dns", "application", "image", "domain", "deploy", "health",
    ]  # fmt: skip
    assert [p.name for p in TEARDOWN_PHASES] == [
        "locate", "remove_dns", "remove_application", "remove_project",
    ]  # fmt: skip


def test_every_phase_name_is_in_one_catalogue() -> None:
    names = [p.name for p in (*DEPLOY_PHASES, *TEARDOWN_PHASES)]
    assert sorted(names) == sorted(PhaseName)
