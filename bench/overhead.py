"""2. Deploy overhead: one deploy through the saga vs the same calls made one after another."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from typing import Any

from bench.common import NullNotifier, Row, Section, ratio
from deployer import DeploymentState
from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.hetzner import HetznerDns
from deployer.adapters.probe import HttpProbe
from deployer.adapters.store_memory import MemoryStore
from deployer.assemble import open_deployer, upstream
from deployer.clock import SystemClock
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


async def saga_once(name: str) -> tuple[float, Counter[str]]:
    async with _sandbox() as sandbox:
        settings = _slow(sandbox)
        store, clock = MemoryStore(), SystemClock()
        async with open_deployer(settings, NullNotifier(), store=store, clock=clock) as deployer:
            started = time.perf_counter()
            dep = await deployer.deploy(name, requester="U0BENCH")
            wall = time.perf_counter() - started
        if dep.state is not DeploymentState.SUCCEEDED:
            raise RuntimeError(f"saga deploy of {name} ended {dep.state}: {dep.error}")
        return wall, _calls(sandbox)


async def straight_once(name: str) -> tuple[float, Counter[str]]:
    """The calls the deploy phases make, one after another, on the same real adapters."""
    async with _sandbox() as sandbox:
        s = _slow(sandbox)
        clock = SystemClock()
        paas = DokployPaas(s.dokploy_url, s.dokploy_api_key, upstream("Dokploy", s, clock),
                           s.http_timeout)  # fmt: skip
        dns = HetznerDns(s.hetzner_url, s.hetzner_token, s.dns_zone,
                         upstream("Hetzner DNS", s, clock), s.http_timeout, sleep=clock.sleep,
                         clock=clock.monotonic, poll_initial=s.dns_poll_initial)  # fmt: skip
        probe = HttpProbe(path=s.health_path, accepted=s.health_statuses, timeout=s.http_timeout,
                          resolve=s.health_resolve, scheme=s.health_scheme)  # fmt: skip
        spec = s.spec_for(name)
        try:
            started = time.perf_counter()
            await paas.count_projects()
            await dns.zone()
            project = await paas.ensure_project(spec.project_name, f"aistack stack {spec.name}")
            await dns.upsert_a_record(s.record_name(spec.name), str(s.ingress_ip), s.dns_ttl)
            app = await paas.ensure_application(project, spec.app_name)
            await paas.configure_image(app.application_id, spec.image, spec.env)
            await paas.ensure_domain(app.application_id, spec.host, spec.container_port, s.https)
            known = await paas.deployment_ids(app.application_id)
            await paas.start_deploy(app.application_id, "aistack bench")
            delay = s.poll_initial
            while True:
                run = await paas.newest_deployment(app.application_id, known)
                if run is not None and run.status == "done":
                    break
                if run is not None and run.status in ("error", "cancelled"):
                    raise RuntimeError(f"straight-line deploy of {name} ended {run.status}")
                await clock.sleep(delay)
                delay = min(delay * 1.5, s.poll_max)
            while not (await probe.check(spec.url)).ready:
                await clock.sleep(s.health_interval)
            wall = time.perf_counter() - started
        finally:
            await asyncio.gather(paas.close(), dns.close(), probe.close())
        return wall, _calls(sandbox)


def _calls(sandbox: Sandbox) -> Counter[str]:
    return Counter({"dokploy": len(sandbox.dokploy.calls), "dns": len(sandbox.dns.calls)})


async def measure(repeats: int = REPEATS) -> tuple[Section, dict[str, Any]]:
    walls: dict[str, list[float]] = {"saga": [], "straight": []}
    calls: dict[str, list[Counter[str]]] = {"saga": [], "straight": []}
    for i in range(repeats):  # alternate, so drift hits both alike
        for kind, once in (("saga", saga_once), ("straight", straight_once)):
            wall, counted = await once(f"{kind}-{i}")
            walls[kind].append(wall)
            calls[kind].append(counted)
    med = {kind: statistics.median(values) for kind, values in walls.items()}
    per = {k: {u: statistics.median(c[u] for c in v) for u in ("dokploy", "dns")}
           for k, v in calls.items()}  # fmt: skip
    rows = [
        Row(f"deploy wall time, median of {repeats} (s)", f"{med['saga']:.3f}",
            f"{med['straight']:.3f}", ratio(med["saga"], med["straight"])),  # fmt: skip
        Row("  every run (s)", " ".join(f"{w:.2f}" for w in walls["saga"]),
            " ".join(f"{w:.2f}" for w in walls["straight"])),  # fmt: skip
    ]
    rows += [
        Row(f"  {up} calls per deploy", f"{per['saga'][up]:.0f}", f"{per['straight'][up]:.0f}",
            ratio(per["saga"][up], per["straight"][up]))  # fmt: skip
        for up in ("dokploy", "dns")
    ]
    saved = med["straight"] - med["saga"]
    notes = [
        f"overhead: the saga (worker, store checkpoints, journal, DNS beside project and "
        f"application) takes {med['saga']:.2f} s against {med['straight']:.2f} s for the same "
        f"calls in a straight line ({ratio(med['saga'], med['straight'])}; "
        f"{'saves' if saved >= 0 else 'costs'} {abs(saved):.2f} s), with {LATENCY * 1000:.0f} ms "
        f"per upstream call and a {DEPLOY_DELAY:.0f} s build; most of both is the build and "
        "the deployment.all polling granularity (0.25-0.5 s).",
    ]
    title = (
        f"2. Deploy overhead: saga vs straight-line script, real adapters, "
        f"{LATENCY * 1000:.0f} ms/call, build {DEPLOY_DELAY:.0f} s"
    )
    raw = {"wall_s": walls, "median_s": med, "calls_per_deploy": per,
           "latency_s": LATENCY, "deploy_delay_s": DEPLOY_DELAY, "settings": POLLING}  # fmt: skip
    return Section(title, rows, notes), raw
