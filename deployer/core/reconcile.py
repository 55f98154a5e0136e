"""Drift: where our records of a stack and what Dokploy and DNS hold disagree. Pure."""

from __future__ import annotations

from deployer.core.models import Deployment, ProjectView
from deployer.core.states import ACTIVE


def drift(
    latest: Deployment | None,
    live: ProjectView | None,
    dns_values: list[str] | None,
    *,
    owned: bool,
    ingress_ip: str,
    dns_checked: bool,
    others: tuple[ProjectView, ...] = (),
) -> tuple[str, ...]:
    """Say, in words an operator acts on, every way the records and the upstreams disagree.

    `owned`: a record says the stack is live (its last deploy succeeded and no destroy
    followed; a failed redeploy since then keeps it live). While a deployment is active,
    resources come and go by design and nothing is called drift.

    `others`: projects of the stack's name that our records did not make (Dokploy allows
    duplicate names). aistack never acts on them; they are always reported."""
    duplicates = tuple(_duplicate(v, live) for v in others)
    if latest is not None and latest.state in ACTIVE:
        return duplicates
    found: list[str] = list(duplicates)
    project = latest.spec.project_name if latest else (live.project_name if live else "")
    if owned:
        if live is None:
            found.append(f"the record says live but Dokploy has no project {project}")
        elif live.application_id is None:
            found.append(f"the record says live but project {project} has no application")
        if dns_checked and ingress_ip not in (dns_values or []):
            found.append(f"the record says live but DNS does not point at {ingress_ip}")
        return tuple(found)
    if live is not None:
        owner = "no record owns it" if latest is None else f"the record says {latest.state}"
        found.append(f"Dokploy holds project {live.project_name} but {owner} (orphan)")
    if dns_checked and dns_values:
        found.append(f"DNS still has a record ({', '.join(dns_values)}) for a stack that is gone")
    return tuple(found)


def _duplicate(view: ProjectView, live: ProjectView | None) -> str:
    which = "not this stack's" if live is not None else "no record says which is this stack's"
    return (
        f"Dokploy also holds a project named {view.project_name} ({view.project_id}): "
        f"{which}; aistack leaves it alone"
    )
