"""The deployer's public surface is a decision: this list changes with it, in the same commit."""

import inspect

import deployer

SURFACE = {
    # states and their groups
    "ACTIVE", "TERMINAL", "DeploymentState", "Operation", "PhaseState",
    # values
    "Deployment", "Event", "EventKind", "PhaseDef", "PhaseRecord", "PreflightReport", "StackLogs",
    "StackSpec", "StackStatus", "Takeover", "Release", "Revert", "LiveStack",
    # errors
    "AistackError", "AuthError", "ConfigError", "DeployFailed", "Gone", "IllegalTransition",
    "InvalidStackName", "LifetimeTooLong", "NotFound", "PermanentError", "QuotaExceeded",
    "StackBusy", "TransientError", "UpstreamError", "UpstreamUnavailable",
    # ports a caller implements or passes in
    "Clock", "DeploymentReads", "Notifier", "Store", "SystemClock",
    # the facade, how to open it, and its worker
    "Deployer", "DeployerSettings", "Worker", "load_settings", "open_deployer", "open_store",
    # helpers the bot shares
    "configure_logging", "describe_validation_error",
    "duration_seconds", "phases_for", "validate_stack_name",
    "env_fingerprint", "reverted",
}  # fmt: skip


def test_the_public_surface_is_exactly_the_agreed_one() -> None:
    assert set(deployer.__all__) == SURFACE
    assert len(deployer.__all__) == len(SURFACE), "a name is listed twice"


def test_public_surface_is_sorted_and_every_name_exists() -> None:
    assert deployer.__all__ == sorted(deployer.__all__, key=lambda n: (not n.isupper(), n))
    for name in deployer.__all__:
        assert hasattr(deployer, name), name


def test_the_module_namespace_holds_nothing_public_beyond_the_surface() -> None:
    # An import added to __init__ without listing it would widen the surface silently
    # (submodules show up as attributes once imported anywhere; they are not names).
    loose = {n for n, v in vars(deployer).items()
             if not n.startswith("_") and n not in SURFACE and not inspect.ismodule(v)}  # fmt: skip
    assert loose == set()
