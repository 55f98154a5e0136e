"""Drift: where our record of a stack and what Dokploy and DNS hold disagree. Pure."""

from __future__ import annotations

from deployer.core.states import DeploymentState
from deployer.models import Deployment, ProjectView

S = DeploymentState
# States after which the stack should exist upstream, and after which it should not.
SHOULD_EXIST = frozenset({S.SUCCEEDED})
SHOULD_NOT_EXIST = frozenset({S.ROLLED_BACK, S.DESTROYED, S.REJECTED, S.EXPIRED})


def drift(
    deployment: Deployment | None,
    live: ProjectView | None,
    dns_values: list[str] | None,
    *,
    ingress_ip: str,
    dns_checked: bool,
) -> tuple[str, ...]:
    """Say, in words an operator acts on, every way the record and the upstreams disagree."""
    found: list[str] = []
    state = deployment.state if deployment else None
    project = deployment.spec.project_name if deployment else (live.project_name if live else "")
    if state in SHOULD_EXIST:
        if live is None:
            found.append(f"the record says live but Dokploy has no project {project}")
        elif live.application_id is None:
            found.append(f"the record says live but project {project} has no application")
        if dns_checked and ingress_ip not in (dns_values or []):
            found.append(f"the record says live but DNS does not point at {ingress_ip}")
    if live is not None and (state is None or state in SHOULD_NOT_EXIST):
        owner = "no record owns it" if state is None else f"the record says {state}"
        found.append(f"Dokploy holds project {live.project_name} but {owner} (orphan)")
    if dns_checked and dns_values and (state is None or state in SHOULD_NOT_EXIST):
        found.append(f"DNS still has a record ({', '.join(dns_values)}) for a stack that is gone")
    return tuple(found)
