"""A live stack's logs, masked: its container's last lines (Dokploy `application.readLogs`) or
the build log of the Dokploy deployment that made its live release (`deployment.readLogs`).

Not to be confused with `deployer/logs.py`, which configures aistack's own logging.

Secrets: every value of the stack's configured environment (the live spec's env, and what the
settings would give it now) is replaced by MASK wherever it appears, longest value first, so
a value holding a shorter one is masked whole. Values shorter than MIN_MASKED characters are
left as they are: `1`, `yes` or `dev` are no secrets, and masking them would blank out
ordinary words of every line. A multi-line value is masked whole and line by line (a log
prints it over several lines). The text is never logged: only how many lines and masks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from deployer.core.lifetime import when
from deployer.core.phases import PhaseName
from deployer.core.states import PhaseState
from deployer.engine.records import Records
from deployer.errors import NotFound
from deployer.ports import DeploymentReads, Paas

MASK = "••••"
MIN_MASKED = 4
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
log = structlog.get_logger("aistack.stack_logs")


@dataclass(frozen=True)
class StackLogs:
    """What `logs` found: the lines (masked, oldest first), or why there are none."""

    stack: str
    build: bool  # the build log of the live release; else the container's output
    lines: tuple[str, ...] = ()
    absent: str | None = None  # why there is nothing to show (stopped, no container, ...)
    masked: int = 0  # how many places were masked


def secrets_of(values: Iterable[str]) -> list[str]:
    """What to mask, longest first: each value long enough, and each long enough line of a
    value spanning lines."""
    found: set[str] = set()
    for value in values:
        lines = [line.strip() for line in value.splitlines()] if "\n" in value else []
        found.update(part for part in (value, *lines) if len(part.strip()) >= MIN_MASKED)
    return sorted(found, key=lambda s: (-len(s), s))


def mask(text: str, values: Iterable[str]) -> tuple[str, int]:
    """`text` with every secret among `values` replaced by MASK, and how many were."""
    count = 0
    for secret in secrets_of(values):
        count += text.count(secret)
        text = text.replace(secret, MASK)
    return text, count


async def read_logs(
    store: DeploymentReads, paas: Paas, stack: str, *, tail: int, build: bool,
    also_masked: Mapping[str, str],
) -> StackLogs:  # fmt: skip
    """The live stack's last `tail` lines of container output (or, `build`, of the build
    log of its live release). Refused when the stack is not live; a stack with no running
    container, or no build log, answers with `absent` saying why: that is no fault."""
    live = await store.live(stack)
    if live is None:
        raise NotFound(f"{stack} is not live: there are no logs to show")
    made = await store.get(live.deployment_id)
    secrets = [*made.spec.env.values(), *also_masked.values()]
    if build:
        raw, absent = await _build_log(store, paas, stack, made.id, tail)
    elif live.stopped_at is not None:
        stopped = when(live.stopped_at)
        raw, absent = None, f"{stack} is stopped (since {stopped}): no container runs, no logs"
    else:
        raw, absent = await _container_log(store, paas, stack, tail)
    if raw is None:
        return StackLogs(stack, build, absent=absent)
    text, count = mask(_ANSI.sub("", raw), secrets)
    lines = tuple(line.rstrip("\r") for line in text.splitlines())
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    log.info("logs read", stack_name=stack, build=build, lines=len(lines), masked=count)
    return StackLogs(stack, build, lines, masked=count)


async def _container_log(
    store: DeploymentReads, paas: Paas, stack: str, tail: int
) -> tuple[str | None, str]:
    app = (await Records(store).live_ids(stack)).get("application_id")
    if app is None:
        raise NotFound(f"{stack} recorded no Dokploy application: there are no logs to show")
    raw = await paas.application_logs(app, tail)
    why = (f"{stack} has no running container (stopped, or Dokploy cannot reach Docker): "
           "no logs to show")  # fmt: skip
    return raw, why


async def _build_log(
    store: DeploymentReads, paas: Paas, stack: str, deployment_id: str, tail: int
) -> tuple[str | None, str]:
    """The build log of the Dokploy deployment the live release's deploy phase recorded."""
    phases = await store.phases(deployment_id)
    ran = next((p for p in phases if p.name == PhaseName.DEPLOY and p.state is PhaseState.DONE
                and "deployment_id" in p.outputs), None)  # fmt: skip
    if ran is None:
        return None, f"{stack}'s live release recorded no Dokploy deployment: no build log"
    dokploy_id = ran.outputs["deployment_id"]
    raw = await paas.deployment_log(dokploy_id, tail)
    return raw, f"Dokploy no longer has the build log of {stack} (deployment {dokploy_id})"
