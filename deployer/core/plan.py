"""What a deployment would create, and where: shown on request cards and by --dry-run. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from deployer.core.limits import said
from deployer.core.models import StackSpec
from deployer.core.releases import env_fingerprint
from deployer.core.states import Operation


@dataclass(frozen=True)
class Target:
    """Where things go: the parts of the settings a plan mentions (no secrets)."""

    dokploy_url: str
    dns_zone: str
    dns_mode: str
    record_name: str
    ingress_ip: str
    https: bool
    login: bool = False  # a basic-auth login guards the URL (AISTACK_STACK_AUTH=basic)


_CONTAINER: dict[Operation, str] = {
    Operation.STOP: "Stop the container of {app}; nothing is removed, {url} stops answering",
    Operation.START: "Start the container of {app} again, then wait until {url} answers",
    Operation.RESTART: "Restart the container of {app}, then wait until {url} answers",
}


def describe(
    spec: StackSpec, target: Target, operation: Operation = Operation.DEPLOY,
    *, restores: int | None = None,
) -> list[str]:  # fmt: skip
    """One line per resource, in the order the phases make (or remove) them; a roll back
    (`restores`) says what it puts back."""
    record = f"{target.record_name}.{target.dns_zone}"
    if restores is not None:
        return _restore(spec, restores)
    if operation in _CONTAINER:
        return [_CONTAINER[operation].format(app=spec.app_name, url=spec.url)]
    if operation is Operation.CREDENTIALS:
        return [f"Set a new password for the login on {spec.url}; it goes to the owner alone"]
    if operation is Operation.DESTROY:
        return [
            f"Remove Dokploy application {spec.app_name} and its domain {spec.host}",
            f"Remove Dokploy project {spec.project_name}",
            f"Remove DNS A record {record}"
            if target.dns_mode == "record"
            else "Leave the wildcard DNS record as it is",
        ]
    dns = (
        f"DNS A record {record} -> {target.ingress_ip} (Hetzner Cloud DNS)"
        if target.dns_mode == "record"
        else f"No DNS record: check that the wildcard for {record} points at {target.ingress_ip}"
    )
    tls = "HTTPS with a Let's Encrypt certificate" if target.https else "plain HTTP"
    limits = said(spec.memory_limit, spec.cpu_limit)
    within = f", limited to {limits}" if limits else ""
    return [
        f"Dokploy project {spec.project_name} on {target.dokploy_url}",
        f"Dokploy application {spec.app_name} running {spec.image}{within}",
        f"Domain {spec.host} -> container port {spec.container_port} ({tls})",
        dns,
        *_login(spec, target),
        f"Deploy, then wait until {spec.url} answers",
    ]


def _login(spec: StackSpec, target: Target) -> list[str]:
    if not target.login:
        return []
    return [f"A login on {spec.url} (HTTP basic auth); its password goes to the owner alone"]


def _restore(spec: StackSpec, number: int) -> list[str]:
    limits = said(spec.memory_limit, spec.cpu_limit) or "no limits"
    env = f"environment {env_fingerprint(spec.env)}" if spec.env else "no environment"
    return [
        f"Put release {number} back on Dokploy application {spec.app_name}: image {spec.image}, "
        f"{env}, {limits}",
        f"Keep the domain {spec.host} and its DNS record as they are",
        f"Deploy, then wait until {spec.url} answers; if it does not, the release live now "
        "is put back",
    ]
