"""PhaseOutputs: typed reads of the outputs a phase sees, and the progress it records in them.

The outputs stay what the checkpoints have always stored, one flat dict[str, str] (so a
deployment saved by an older release resumes): flags are "yes"/"no", lists are comma-joined.
Only this module spells those encodings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from deployer.core.releases import LIVE_RELEASE
from deployer.engine.records import IDS
from deployer.engine.saga import PhaseContext
from deployer.ports import AppSettings, Limits, ProjectRef

# what a deploy makes or keeps
Kind = Literal["project", "dns", "application", "domain", "security"]
Run = Literal["deploy", "restore"]  # the deploy's Dokploy run, or the one the image undo starts
YES, NO = "yes", "no"


class PhaseOutputs:
    def __init__(self, ctx: PhaseContext) -> None:
        self._ctx = ctx
        self._out = ctx.outputs

    def existed(self, kind: Kind) -> bool | None:
        """Whether `kind` was there before this deployment; None: it never got that far."""
        flag = self._out.get(f"{kind}_existed")
        return None if flag is None else flag == YES

    def candidates(self) -> list[ProjectRef]:
        """The projects named like the stack's that the preflight found."""
        listed = self._out["project_candidates"].split(",")
        return [ProjectRef(*entry.split("/", 1)) for entry in listed if entry]

    def live(self, key: str) -> str | None:
        """The id the stack's live deployment recorded under `key` (copied by the preflight)."""
        return self._out.get(f"live_{key}")

    def is_live(self, key: str) -> bool:
        """This deployment's `key` is the one the live deployment recorded."""
        return key in self._out and self.live(key) == self._out[key]

    def known_deployments(self, run: Run) -> set[str] | None:
        """The Dokploy deployments there before `run` asked for its own; None: not listed yet."""
        listed = self._out.get(f"{run}_known")
        return None if listed is None else set(filter(None, listed.split(",")))

    def requested(self, run: Run) -> bool:
        return f"{run}_requested" in self._out

    def before(self) -> AppSettings | None:
        """What this redeploy overwrote on the live application, once saved."""
        if "image_before" not in self._out:
            return None
        limits = Limits(
            self._out.get("memory_before") or None, self._out.get("cpus_before") or None
        )
        return AppSettings(self._out["image_before"], self._out.get("env_before", ""), limits)

    async def mark_existed(self, kind: Kind, existed: bool) -> None:
        await self._record({f"{kind}_existed": YES if existed else NO})

    async def mark_known(self, run: Run, deployment_ids: set[str]) -> None:
        await self._record({f"{run}_known": ",".join(sorted(deployment_ids))})

    async def mark_requested(self, run: Run) -> None:
        # core/releases.py reads the deploy's as DEPLOY_REQUESTED (tests hold them equal)
        await self._record({f"{run}_requested": YES})

    async def mark_before(self, settings: AppSettings) -> None:
        # "" for no limit: outputs are strings (a checkpoint from before limits reads as none)
        await self._record({"image_before": settings.image, "env_before": settings.env_text,
                            "memory_before": settings.limits.memory or "",
                            "cpus_before": settings.limits.cpus or ""})  # fmt: skip

    async def _record(self, values: Mapping[str, str]) -> None:
        # saved with the phase's checkpoint first: a crash after it resumes knowing this
        await self._ctx.save(values)
        self._out.update(values)


def survey_outputs(candidates: Iterable[ProjectRef], live: Mapping[str, str]) -> dict[str, str]:
    """The preflight's findings as outputs: the projects of our name, and the ids the live
    deployment recorded (as `live_<key>`), with its release (LIVE_RELEASE: what a failed
    redeploy puts back)."""
    listed = ",".join(f"{r.project_id}/{r.environment_id}" for r in candidates)
    return {
        "project_candidates": listed,
        **{f"live_{key}": value for key, value in live.items() if key in IDS},
        **({LIVE_RELEASE: live["release"]} if "release" in live else {}),
    }
