"""2. Deploy overhead: one deploy through the saga vs the same calls made one after another."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.common import NullNotifier, Row, Section, ratio
from deployer import DeploymentState
from deployer.adapters.stores.memory import MemoryStore
from deployer.assemble import adapters, open_deployer
from deployer.clock import SystemClock
from deployer.core.phases import DEPLOY_PHASES
from deployer.ports import Limits
from deployer.sandbox.server import Sandbox
from deployer.settings import DeployerSettings

LATENCY = 0.05  # added to every Dokploy and DNS call
DEPLOY_DELAY = 2.0  # the fake's build time
POLLING = {"poll_initial": 0.25, "poll_max": 0.5, "health_interval": 0.25, "dns_poll_initial": 0.25}
REPEATS = 3


def _sandbox() -> Sandbox:
    return Sandbox(deploy_delay=DEPLOY_DELAY, action_polls=1)


def _slow(sandbox: Sandbox) -> DeployerSettings:
    sandbox.dokploy.faults.latency = sandbox.dns.faults.latency = LATENCY
    return sandbox.settings(**POLLING)


@dataclass(frozen=True)
class Run:
    wall: float
    calls: Counter[str]  # Dokploy and DNS calls
    phases: dict[str, float] = field(default_factory=dict)  # saga only: seconds per phase


async def saga_once(name: str) -> Run:
    async with _sandbox() as sandbox:
        settings = _slow(sandbox)
        store, clock = MemoryStore(), SystemClock()
        async with open_deployer(settings, NullNotifier(), store=store, clock=clock) as deployer:
            started = time.perf_counter()
            dep = await deployer.deploy(name, requester="U0BENCH")
            wall = time.perf_counter() - started
        if dep.state is not DeploymentState.SUCCEEDED:
            raise RuntimeError(f"saga deploy of {name} ended {dep.state}: {dep.error}")
        phases = {r.name: r.duration or 0.0 for r in await store.phases(dep.id)}
        return Run(wall, _calls(sandbox), phases)


def critical_path(phases: dict[str, float]) -> float:
    """The longest chain of phase durations through the catalogue's `needs`."""
    finish: dict[str, float] = {}
    for phase in DEPLOY_PHASES:
        finish[phase.name] = max((finish[n] for n in phase.needs), default=0.0)
        finish[phase.name] += phases.get(phase.name, 0.0)
    return max(finish.values())


async def straight_once(name: str) -> Run:
    """The calls the deploy phases make, one after another, on the same real adapters."""
    async with _sandbox() as sandbox:
        s = _slow(sandbox)
        clock = SystemClock()
        spec = s.stack.spec_for(name)
        made = adapters(s, clock)
        paas, dns, probe = made.paas, made.dns, made.probe
        try:
            started = time.perf_counter()
            survey = await paas.survey_projects(spec.project_name)
            await dns.zone()
            project = await paas.ensure_project(
                spec.project_name, f"aistack stack {spec.name}", absent=not survey.named
            )
            record = s.dns.record_name(spec.name)
            await dns.upsert_a_record(record, str(s.dns.ingress_ip), s.dns.ttl)
            app = await paas.ensure_application(project, spec.app_name, absent=True)
            limits = Limits.of(spec.memory_limit, spec.cpu_limit)  # as the image phase sends them
            await paas.configure_image(app.application_id, spec.image, spec.env or None, limits)
            await paas.ensure_domain(
                app.application_id, spec.host, spec.container_port, s.stack.https, absent=True
            )
            await _logins(s, paas, app.application_id, spec.host, spec.name)
            known: set[str] = set()  # a new application has no older deployment
            await paas.start_deploy(app.application_id, "aistack bench")
            delay = s.deadlines.poll_initial
            while True:
                run = await paas.newest_deployment(app.application_id, known)
                if run is not None and run.status == "done":
                    break
                if run is not None and run.status in ("error", "cancelled"):
                    raise RuntimeError(f"straight-line deploy of {name} ended {run.status}")
                await clock.sleep(delay)
                delay = min(delay * 1.25, s.deadlines.poll_max)
            while not (await probe.check(spec.url)).ready:
                await clock.sleep(s.health.interval)
            wall = time.perf_counter() - started
        finally:
            await made.close()
        return Run(wall, _calls(sandbox))


async def _logins(s: DeployerSettings, paas: Any, app_id: str, host: str, user: str) -> None:
    """The security phase's calls: aistack's probe login (looked up, then made) and the
    owner's (made at once: a new application has none)."""
    probe = s.health.login(host)
    if probe is None:
        return
    if await paas.find_basic_auth(app_id, probe[0]) is None:
        await paas.add_basic_auth(app_id, *probe)
    await paas.add_basic_auth(app_id, user, "bench-password-not-a-secret")


def _calls(sandbox: Sandbox) -> Counter[str]:
    return Counter({"dokploy": len(sandbox.dokploy.calls), "dns": len(sandbox.dns.calls)})


async def measure(repeats: int = REPEATS) -> tuple[Section, dict[str, Any]]:
    runs: dict[str, list[Run]] = {"saga": [], "straight": []}
    for i in range(repeats):  # alternate, so drift hits both alike
        for kind, once in (("saga", saga_once), ("straight", straight_once)):
            runs[kind].append(await once(f"{kind}-{i}"))
    walls = {kind: [r.wall for r in done] for kind, done in runs.items()}
    med = {kind: statistics.median(values) for kind, values in walls.items()}
    per = {
        k: {u: statistics.median(r.calls[u] for r in v) for u in ("dokploy", "dns")}
        for k, v in runs.items()
    }
    dns_phase = statistics.median(r.phases["dns"] for r in runs["saga"])
    outside = statistics.median(r.wall - critical_path(r.phases) for r in runs["saga"])
    rows = [
        Row(
            f"deploy wall time, median of {repeats} (s)",
            f"{med['saga']:.3f}",
            f"{med['straight']:.3f}",
            ratio(med["saga"], med["straight"]),
        ),
        Row(
            "  every run (s)",
            " ".join(f"{w:.2f}" for w in walls["saga"]),
            " ".join(f"{w:.2f}" for w in walls["straight"]),
        ),
    ]
    rows += [
        Row(
            f"  {up} calls per deploy",
            f"{per['saga'][up]:.0f}",
            f"{per['straight'][up]:.0f}",
            ratio(per["saga"][up], per["straight"][up]),
        )
        for up in ("dokploy", "dns")
    ]
    rows += [
        Row("  saga: DNS phase, beside project+application (s)", f"{dns_phase:.3f}"),
        Row("  saga: time outside the phases' critical path (ms)", f"{outside * 1000:.1f}"),
    ]
    saved = med["straight"] - med["saga"]
    notes = [
        f"overhead: one deploy takes {med['saga']:.2f} s through the saga against "
        f"{med['straight']:.2f} s for the same {per['straight']['dokploy']:.0f} Dokploy and "
        f"{per['straight']['dns']:.0f} DNS calls in a straight line "
        f"({ratio(med['saga'], med['straight'])}, {'saving' if saved >= 0 else 'costing'} "
        f"{abs(saved):.2f} s): the DNS phase ({dns_phase:.2f} s) runs beside the project and "
        f"application, and image beside domain; the saga's own bookkeeping (worker claim, state "
        f"moves, checkpoints) adds {outside * 1000:.0f} ms outside the phases. Most of both is the "
        f"{DEPLOY_DELAY:.0f} s build, seen through deployment.all polls every 0.25-0.5 s.",
    ]
    title = (
        f"2. Deploy overhead: saga vs straight-line script, real adapters, "
        f"{LATENCY * 1000:.0f} ms/call, build {DEPLOY_DELAY:.0f} s"
    )
    raw = {
        "wall_s": walls,
        "saga_phases_s": [r.phases for r in runs["saga"]],
        "saga_dns_phase_s": dns_phase,
        "saga_outside_phases_s": outside,
        "median_s": med,
        "calls_per_deploy": per,
        "latency_s": LATENCY,
        "deploy_delay_s": DEPLOY_DELAY,
        "settings": POLLING,
    }
    return Section(title, rows, notes), raw
