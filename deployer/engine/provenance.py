"""Provenance: what a deployment made, adopted or never touched, read from its outputs.

A deploy saves `<kind>_existed` ("no" just before it sends a create, "yes" when it found or
adopted the resource), so an undo knows without asking upstream whether to remove, keep, or
do nothing. Pure functions of the phase outputs.
"""

from __future__ import annotations

from collections.abc import Mapping

from deployer.core.states import Operation
from deployer.engine.saga import PhaseContext, Undone
from deployer.errors import AmbiguousResource
from deployer.ports import ProjectRef

Outputs = Mapping[str, str]
GONE = Undone("nothing to undo: already gone", changed=False)
NEVER_MADE = Undone("nothing to undo: this deployment made none", changed=False)


def kept_it(what: str) -> Undone:
    return Undone(f"kept {what}: it was there before this deployment", changed=False)


def removed(removed: bool, what: str) -> Undone:
    return Undone(f"removed {what}") if removed else GONE


def kept(ctx: PhaseContext, kind: str) -> bool:
    return ctx.outputs.get(f"{kind}_existed") == "yes"


def untouched(ctx: PhaseContext, kind: str) -> bool:
    """A deploy that never sent a create for `kind`: nothing of it can be ours to undo."""
    return ctx.deployment.operation is Operation.DEPLOY and f"{kind}_existed" not in ctx.outputs


def fresh(out: Outputs, parent: str, kind: str) -> bool:
    """This deployment made the parent and has not tried `kind` yet: nothing to look up."""
    return out.get(f"{parent}_existed") == "no" and f"{kind}_existed" not in out


def is_live(out: Outputs, key: str) -> bool:
    return key in out and out.get(f"live_{key}") == out[key]


def adoptable(out: Outputs) -> ProjectRef | None:
    """From the preflight's listing: the live stack's project when it is still there, else
    the only project of our name; none means create; two or more are refused."""
    candidates = [ProjectRef(*c.split("/", 1)) for c in out["project_candidates"].split(",") if c]
    live = out.get("live_project_id")
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
