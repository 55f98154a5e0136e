"""Composition: settings -> upstreams -> adapters -> saga -> Deployer, opened and closed as one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.hetzner import HetznerDns
from deployer.adapters.probe import HttpProbe
from deployer.adapters.resilience import Upstream
from deployer.adapters.stores import open_store
from deployer.clock import SystemClock
from deployer.config import ResilienceConfig
from deployer.core.phases import Timeout
from deployer.engine.delivery import Delivery
from deployer.engine.journal import Journal
from deployer.engine.records import Records
from deployer.engine.saga import Saga
from deployer.engine.steps import Deps, stack_steps
from deployer.errors import ConfigError
from deployer.inventory import Inventory
from deployer.ports import Clock, Courier, Notifier, Store
from deployer.service import Deployer
from deployer.settings import DeployerSettings


def upstream(name: str, resilience: ResilienceConfig, clock: Clock) -> Upstream:
    return Upstream(
        name,
        resilience.retry,
        sleep=clock.sleep,
        fail_max=resilience.breaker_fail_max,
        reset_seconds=resilience.breaker_reset,
    )


def timeouts(settings: DeployerSettings) -> dict[Timeout, float]:
    limits, health = settings.deadlines, settings.health
    http = settings.resilience.http_timeout
    return {
        Timeout.PHASE: limits.phase_timeout,
        Timeout.DEPLOY: limits.deploy_timeout,
        # the probe loop gives up at health.timeout; the phase limit is only a backstop
        Timeout.HEALTH: health.timeout + http + 5,
        Timeout.RESTORE: limits.phase_timeout + limits.deploy_timeout + health.timeout + http,
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
    """The real clients of Dokploy, Hetzner DNS and the stack's URL, each from its group."""
    dokploy, dns, health = settings.dokploy, settings.dns, settings.health
    resilience = settings.resilience
    http = resilience.http_timeout
    paas = DokployPaas(dokploy.url, dokploy.api_key, upstream("Dokploy", resilience, clock),
                       http)  # fmt: skip
    hetzner = HetznerDns(
        dns.url, dns.token, dns.zone, upstream("Hetzner DNS", resilience, clock), http,
        clock=clock, poll_initial=dns.poll_initial,
    )  # fmt: skip
    probe = HttpProbe(path=health.path, accepted=health.statuses, timeout=http,
                      resolve=health.resolve, scheme=health.scheme,
                      login=health.login)  # fmt: skip
    return Adapters(paas, hetzner, probe)


@asynccontextmanager
async def open_deployer(
    settings: DeployerSettings,
    notifier: Notifier,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    courier: Courier | None = None,
) -> AsyncIterator[Deployer]:
    """The deployer, its store and clients open; closed when the block ends. `courier` gives
    owners their logins (None: the notifier, when it can, as the CLI's terminal does)."""
    clock = clock or SystemClock()
    courier = courier_for(settings, notifier, courier)
    async with AsyncExitStack() as stack:
        if store is None:
            store = await open_store(settings.store.database_url, clock=clock)
            stack.push_async_callback(store.close)
        made = adapters(settings, clock)
        stack.push_async_callback(made.close)
        worker = settings.worker
        journal = Journal(store, notifier, clock, retry_initial=worker.rollback_retry_initial,
                          retry_max=worker.rollback_retry_max)  # fmt: skip
        records = Records(store)
        delivery = Delivery(courier, journal, records) if courier is not None else None
        steps = stack_steps(
            Deps(settings, made.paas, made.dns, made.probe, clock, records.live_ids, delivery)
        )
        saga = Saga(journal, steps, timeouts(settings))
        inventory = Inventory(settings, store, made.paas, made.dns, made.probe, clock)
        yield Deployer(settings, journal, inventory, saga)


def courier_for(
    settings: DeployerSettings, notifier: Notifier, courier: Courier | None
) -> Courier | None:
    """The courier given, else the notifier if it is one. None only with AISTACK_STACK_AUTH
    =none (a `credentials` then fails saying why); with logins on, nobody to hand a password
    to is refused at start."""
    if courier is not None:
        return courier
    if isinstance(notifier, Courier):
        return notifier
    if settings.stack.auth == "basic":
        raise ConfigError(
            "AISTACK_STACK_AUTH=basic gives every stack a password, but nothing here can hand "
            "it to the owner; set AISTACK_STACK_AUTH=none, or run the bot or the CLI"
        )
    return None
