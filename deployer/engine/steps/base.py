"""What the phase steps share: the settings and ports they work with (Deps, Phase), how a
deploy records that it made a resource (`made`), and the lookups an undo falls back on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from deployer.core.states import Operation
from deployer.engine.delivery import Delivery
from deployer.engine.outputs import Kind, PhaseOutputs
from deployer.engine.provenance import untouched
from deployer.engine.saga import PhaseContext
from deployer.ports import Clock, Dns, Paas, Prober, ProjectRef
from deployer.settings import DeployerSettings

Outputs = Mapping[str, str]
Recorded = Callable[[str], Awaitable[Outputs]]  # stack -> ids its live deployment holds
T = TypeVar("T")


@dataclass(frozen=True)
class Deps:
    """What the steps are built from."""

    settings: DeployerSettings
    paas: Paas
    dns: Dns
    prober: Prober
    clock: Clock
    recorded: Recorded
    delivery: Delivery | None = None  # a new login to its owner (the login phases need it)


class Phase:
    """The base of a phase's step: the settings and the ports, each step using its own."""

    def __init__(self, deps: Deps) -> None:
        self._s = deps.settings
        self._paas = deps.paas
        self._dns = deps.dns
        self._prober = deps.prober
        self._clock = deps.clock
        self._recorded = deps.recorded


async def made(ctx: PhaseContext, kind: Kind, ensure: Callable[..., Awaitable[T]]) -> T:
    """Run an `ensure_*` and record whether the resource was there before this deployment
    (a redeploy of a live stack), so that the undo keeps what it did not make.

    "Not there" is checkpointed just before the create is sent, so a run resumed after a
    crash, or a retry after a lost response, never takes its own creation for someone
    else's; finding it without creating means it existed."""
    out = PhaseOutputs(ctx)

    async def creating() -> None:
        if out.existed(kind) is None:
            await out.mark_existed(kind, False)

    result = await ensure(before_create=creating)
    if out.existed(kind) is None:
        await out.mark_existed(kind, True)
    return result


async def project_of(paas: Paas, ctx: PhaseContext) -> ProjectRef | None:
    """The stack's project: its recorded ids, else (a deploy that sent a create) by name."""
    out = ctx.outputs
    if "project_id" in out and "environment_id" in out:
        return ProjectRef(out["project_id"], out["environment_id"])
    if ctx.deployment.operation is Operation.DESTROY or untouched(ctx, "project"):
        return None  # the teardown's locate already looked; a deploy never asked
    return await paas.find_project(ctx.deployment.spec.project_name)


async def application_of(paas: Paas, ctx: PhaseContext) -> str | None:
    """The stack's application id: recorded, else (a deploy that sent a create) by name."""
    if "application_id" in ctx.outputs:
        return ctx.outputs["application_id"]
    if ctx.deployment.operation is Operation.DESTROY or untouched(ctx, "application"):
        return None
    ref = await project_of(paas, ctx)
    if ref is None:
        return None
    app = await paas.find_application(ref.project_id, ctx.deployment.spec.app_name)
    return app.application_id if app else None
