"""The step registry against the catalogue: a gap is refused when the saga is built."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.adapters.stores.memory import MemoryStore
from deployer.core.phases import DEPLOY_PHASES, PhaseName
from deployer.engine.journal import Journal
from deployer.engine.saga import PhaseContext, PhaseStep, Saga, undo_steps
from deployer.engine.steps import Deps, stack_steps
from deployer.testing import FakeClock, RecordingNotifier

UNUSED: Any = None  # building the registry calls no port


def registry() -> dict[PhaseName, PhaseStep]:
    return dict(stack_steps(Deps(UNUSED, UNUSED, UNUSED, UNUSED, UNUSED, UNUSED)))


def saga(steps: dict[PhaseName, PhaseStep]) -> Saga:
    return Saga(Journal(MemoryStore(), RecordingNotifier(), FakeClock()), steps, {})


class NoUndo:
    async def do(self, ctx: PhaseContext) -> dict[str, str]:
        return {}

    def leftover(self, ctx: PhaseContext) -> str:
        return ""


def test_the_registry_has_every_phase_and_the_undos_the_catalogue_registers() -> None:
    undos = undo_steps(registry())
    assert set(undos) == {p.name for p in DEPLOY_PHASES if p.undo}


def test_a_phase_without_a_step_is_refused_when_the_saga_is_built() -> None:
    steps = registry()
    del steps[PhaseName.REMOVE_PROJECT]
    with pytest.raises(ValueError, match="phase remove_project has no step"):
        saga(steps)


def test_a_step_without_the_undo_its_phase_registers_is_refused() -> None:
    steps = registry()
    steps[PhaseName.DOMAIN] = NoUndo()
    with pytest.raises(ValueError, match="phase domain: its step has no undo"):
        saga(steps)


def test_a_step_with_an_undo_its_phase_does_not_register_is_refused() -> None:
    # the saga would never call it: a compensation that silently never runs
    steps = registry()
    steps[PhaseName.HEALTH] = steps[PhaseName.DNS]
    with pytest.raises(ValueError, match="phase health: its step has an undo"):
        saga(steps)
