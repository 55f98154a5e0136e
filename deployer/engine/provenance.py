"""Provenance: what a deployment made, adopted or never touched, read from its outputs.

A deploy saves `<kind>_existed` ("no" just before it sends a create, "yes" when it found or
adopted the resource), so an undo knows without asking upstream whether to remove, keep, or
do nothing. Pure functions of the phase outputs (read through PhaseOutputs).
"""

from __future__ import annotations

from deployer.core.states import Operation
from deployer.engine.outputs import Kind, PhaseOutputs
from deployer.engine.saga import PhaseContext, Undone
from deployer.errors import AmbiguousResource
from deployer.ports import ProjectRef

GONE = Undone("nothing to undo: already gone", changed=False)
NEVER_MADE = Undone("nothing to undo: this deployment made none", changed=False)


def kept_it(what: str) -> Undone:
    return Undone(f"kept {what}: it was there before this deployment", changed=False)


def removed(removed: bool, what: str) -> Undone:
    return Undone(f"removed {what}") if removed else GONE


def kept(ctx: PhaseContext, kind: Kind) -> bool:
    return PhaseOutputs(ctx).existed(kind) is True


def untouched(ctx: PhaseContext, kind: Kind) -> bool:
    """A deploy that never sent a create for `kind`: nothing of it can be ours to undo."""
    return ctx.deployment.operation is Operation.DEPLOY and PhaseOutputs(ctx).existed(kind) is None


def fresh(out: PhaseOutputs, parent: Kind, kind: Kind) -> bool:
    """This deployment made the parent and has not tried `kind` yet: nothing to look up."""
    return out.existed(parent) is False and out.existed(kind) is None


def adoptable(out: PhaseOutputs) -> ProjectRef | None:
    """From the preflight's listing: the live stack's project when it is still there, else
    the only project of our name; none means create; two or more are refused."""
    candidates = out.candidates()
    live = out.live("project_id")
    for ref in candidates:
        if ref.project_id == live:
            return ref
    if len(candidates) > 1:
        ids = ", ".join(r.project_id for r in candidates)
        raise AmbiguousResource(
            f"Dokploy has {len(candidates)} projects named like this stack's ({ids}): aistack "
            "will not guess which is its own; remove or rename the one that is not"
        )
    return candidates[0] if candidates else None
