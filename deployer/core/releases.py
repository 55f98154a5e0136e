"""A stack's releases: what each successful deploy put live, as people read it, and which
release a failed deploy put back. Pure.

The store numbers every successful deploy of a stack from 1 (`Deployment.release`); a
Release is the view of one: image, environment fingerprint (never a value), port, limits,
who asked, who approved, when it went live, and the release it restored if it was a roll
back. A deploy of a live stack that fails is compensated by putting the live release back
(the image undo): `reverted` reads from the phase checkpoints which release that was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from deployer.core.limits import said
from deployer.core.models import Deployment, PhaseRecord, StackSpec
from deployer.core.phases import PhaseName
from deployer.core.states import PhaseState

NO_ENV = "none"
# The preflight copies the live release's number into its outputs under this key; the
# deploy phase records that it asked Dokploy to deploy under the other (engine/outputs.py,
# `mark_requested("deploy")`): from then on the container may run the new image.
LIVE_RELEASE = "live_release"
DEPLOY_REQUESTED = "deploy_requested"


def env_fingerprint(env: Mapping[str, str]) -> str:
    """A short stable hash of the environment's names and values, sorted by name: equal
    environments share it, a changed value changes it, and no value can be read from it.
    An empty environment is `none`."""
    if not env:
        return NO_ENV
    digest = hashlib.sha256()
    for name in sorted(env):
        digest.update(f"{len(name)}:{name}={len(env[name])}:{env[name]}\n".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Release:
    """One successful deploy of a stack, without its environment's values."""

    number: int
    image: str
    env_fingerprint: str
    container_port: int
    memory_limit: int | None  # bytes; None: no limit
    cpu_limit: int | None  # NanoCPUs; None: no limit
    requester: str
    approver: str | None
    at: datetime  # when it went live
    restores: int | None  # the release it put back, for a roll back
    deployment_id: str
    live: bool = False  # what the stack runs now

    @classmethod
    def of(cls, dep: Deployment, *, live: bool = False) -> Release:
        if dep.release is None:
            raise ValueError(f"deployment {dep.id} is no release: it did not go live")
        spec = dep.spec
        return cls(
            number=dep.release, image=spec.image, env_fingerprint=env_fingerprint(spec.env),
            container_port=spec.container_port, memory_limit=spec.memory_limit,
            cpu_limit=spec.cpu_limit, requester=dep.requester, approver=dep.approver,
            at=dep.updated_at, restores=dep.restores, deployment_id=dep.id, live=live,
        )  # fmt: skip

    @property
    def limits(self) -> str:
        """`4 GiB memory, 2 CPUs`, or `no limits`."""
        return said(self.memory_limit, self.cpu_limit) or "no limits"


def restored_spec(live: StackSpec, release: StackSpec) -> StackSpec:
    """The spec a roll back deploys: the live stack's names and host (settings may have
    moved on), with the release's image, environment, container port and limits."""
    return live.model_copy(
        update={
            "image": release.image,
            "env": dict(release.env),
            "container_port": release.container_port,
            "memory_limit": release.memory_limit,
            "cpu_limit": release.cpu_limit,
        }
    )


def rollback_target(numbers: Iterable[int], live: int, to: int | None, stack: str) -> int:
    """The release a roll back of `stack` puts back: `to`, or the one before the live
    release. Raises ValueError saying why when there is none to put back."""
    known = sorted(set(numbers))
    if to is None:
        earlier = [n for n in known if n < live]
        if not earlier:
            raise ValueError(
                f"{stack} has no release before release {live}: nothing to roll back to"
            )
        return earlier[-1]
    if to == live:
        raise ValueError(f"release {to} is what {stack} runs now: nothing to roll back")
    if to not in known:
        raise ValueError(f"{stack} has no release {to}; its releases are {_spans(known)}")
    return to


def _spans(numbers: list[int]) -> str:
    """`1-4` for a run, `1, 3` otherwise."""
    if numbers and numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(str(n) for n in numbers)


@dataclass(frozen=True)
class Revert:
    """A failed deploy of a live stack put its live release back."""

    release: int
    # The new image had been sent to Dokploy to deploy, so the old one was deployed again;
    # False: the failure came first and nothing reached the container.
    redeployed: bool


def reverted(phases: Iterable[PhaseRecord]) -> Revert | None:
    """Which live release a failed deploy put back, read from its checkpoints: the image
    undo changed the application back (it only does on a live stack's kept application),
    and the preflight recorded the live release's number. None for anything else."""
    by_name = {record.name: record for record in phases}
    image = by_name.get(PhaseName.IMAGE)
    preflight = by_name.get(PhaseName.PREFLIGHT)
    if image is None or image.state is not PhaseState.UNDONE or preflight is None:
        return None
    live = preflight.outputs.get(LIVE_RELEASE, "")
    if not live.isdigit():
        return None
    deploy = by_name.get(PhaseName.DEPLOY)
    return Revert(int(live), deploy is not None and DEPLOY_REQUESTED in deploy.outputs)
