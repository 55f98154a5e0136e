"""Composition: settings -> upstreams -> adapters -> saga -> Deployer, opened and closed as one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.hetzner import HetznerDns
from deployer.adapters.probe import HttpProbe
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.adapters.stores import open_store
from deployer.clock import SystemClock
from deployer.core.phases import Timeout
from deployer.engine.journal import Journal
from deployer.engine.records import Records
from deployer.engine.saga import Saga
from deployer.engine.steps import Deps, stack_steps
from deployer.inventory import Inventory
from deployer.ports import Clock, Notifier, Store
from deployer.service import Deployer
from deployer.settings import DeployerSettings


def upstream(name: str, settings: DeployerSettings, clock: Clock) -> Upstream:
    policy = RetryPolicy(
        settings.retry_attempts, settings.retry_initial, settings.retry_max, settings.retry_deadline
    )
    return Upstream(
        name,
        policy,
        sleep=clock.sleep,
        fail_max=settings.breaker_fail_max,
        reset_seconds=settings.breaker_reset,
    )


def timeouts(settings: DeployerSettings) -> dict[Timeout, float]:
    return {
        Timeout.PHASE: settings.phase_timeout,
        Timeout.DEPLOY: settings.deploy_timeout,
        # the probe loop gives up at health_timeout; the phase limit is only a backstop
        Timeout.HEALTH: settings.health_timeout + settings.http_timeout + 5,
        Timeout.RESTORE: settings.phase_timeout
        + settings.deploy_timeout
        + settings.health_timeout
        + settings.http_timeout,
    }


@dataclass(frozen=True)
class Adapters:
    paas: DokployPaas
    dns: HetznerDns
    probe: HttpProbe

    async def close(self) -> None:
        await self.paas.close()
        await self.dns.close()
        await self.probe.close()


def adapters(settings: DeployerSettings, clock: Clock) -> Adapters:
    """The real clients of Dokploy, Hetzner DNS and the stack's URL, built from settings."""
    paas = DokployPaas(settings.dokploy_url, settings.dokploy_api_key,
                       upstream("Dokploy", settings, clock), settings.http_timeout)  # fmt: skip
    dns = HetznerDns(
        settings.hetzner_url, settings.hetzner_token, settings.dns_zone,
        upstream("Hetzner DNS", settings, clock), settings.http_timeout,
        sleep=clock.sleep, clock=clock.monotonic, poll_initial=settings.dns_poll_initial,
    )  # fmt: skip
    probe = HttpProbe(path=settings.health_path, accepted=settings.health_statuses,
                      timeout=settings.http_timeout, resolve=settings.health_resolve,
                      scheme=settings.health_scheme)  # fmt: skip
    return Adapters(paas, dns, probe)


@asynccontextmanager
async def open_deployer(
    settings: DeployerSettings,
    notifier: Notifier,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Deployer]:
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        if store is None:
            store = await open_store(settings.database_url)
            stack.push_async_callback(store.close)
        made = adapters(settings, clock)
        stack.push_async_callback(made.close)
        worker = settings.worker
        journal = Journal(store, notifier, retry_initial=worker.rollback_retry_initial,
                          retry_max=worker.rollback_retry_max)  # fmt: skip
        records = Records(store)
        steps = stack_steps(
            Deps(settings, made.paas, made.dns, made.probe, clock, records.live_ids)
        )
        saga = Saga(journal, steps, timeouts(settings))
        inventory = Inventory(settings, store, made.paas, made.dns)
        yield Deployer(settings, journal, inventory, saga)
