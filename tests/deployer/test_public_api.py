import deployer


def test_public_surface_is_sorted_and_every_name_exists() -> None:
    assert deployer.__all__ == sorted(deployer.__all__, key=lambda n: (not n.isupper(), n))
    for name in deployer.__all__:
        assert hasattr(deployer, name), name


def test_public_surface_is_deliberate() -> None:
    # Growing the surface is a decision: update this list in the same change.
    assert set(deployer.__all__) >= {"Deployer", "open_deployer", "DeployerSettings"}
    assert not any(name.startswith("_") for name in deployer.__all__)
