"""Sandbox: the Dokploy, Hetzner DNS and ingress fakes served together on 127.0.0.1."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from deployer.sandbox.dokploy import FakeDokploy
from deployer.sandbox.hetzner import FakeHetznerDns
from deployer.sandbox.ingress import FakeIngress
from deployer.settings import DeployerSettings

HOST = "127.0.0.1"
API_KEY = "sandbox-key"
TOKEN = "sandbox-token"
ZONE = "example.test"
SUFFIX = f"ai.{ZONE}"


class Sandbox:
    """Start with `async with Sandbox() as sandbox:`; point settings at `sandbox.env()`."""

    def __init__(
        self,
        *,
        deploy_delay: float = 0.05,
        action_polls: int = 0,
        ports: tuple[int, int, int] = (0, 0, 0),
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        self.dokploy = FakeDokploy(
            api_keys=[API_KEY], deploy_delay=deploy_delay, rate_limit=rate_limit
        )
        self.dns = FakeHetznerDns(tokens=[TOKEN], zones=[ZONE], action_polls=action_polls)
        dokploy = self.dokploy
        self.ingress = FakeIngress(dokploy.live_hosts, stopped_hosts=dokploy.stopped_hosts,
                                   silent_hosts=dokploy.silent_hosts,
                                   logins=dokploy.logins)  # fmt: skip
        self._ports = ports
        self._runners: list[web.AppRunner] = []
        self.urls: dict[str, str] = {}

    async def __aenter__(self) -> Sandbox:
        apps = {"dokploy": self.dokploy.app(), "dns": self.dns.app(), "ingress": self.ingress.app()}
        for (name, app), port in zip(apps.items(), self._ports, strict=True):
            # cancel a handler whose client went away: a hung fake must not outlive the client
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, HOST, port)
            await site.start()
            bound = runner.addresses[0][1]
            self.urls[name] = f"http://{HOST}:{bound}"
        return self

    async def __aexit__(self, *_: Any) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    @property
    def ingress_port(self) -> int:
        return int(self.urls["ingress"].rsplit(":", 1)[1])

    def env(self) -> dict[str, str]:
        """The AISTACK_* settings that point the CLI or the bot at this sandbox."""
        return {
            "AISTACK_DOKPLOY_URL": self.urls["dokploy"],
            "AISTACK_DOKPLOY_API_KEY": API_KEY,
            "AISTACK_HETZNER_URL": f"{self.urls['dns']}/v1",
            "AISTACK_HETZNER_TOKEN": TOKEN,
            "AISTACK_DNS_ZONE": ZONE,
            "AISTACK_DOMAIN_SUFFIX": SUFFIX,
            "AISTACK_INGRESS_IP": HOST,
            "AISTACK_STACK_IMAGE": "ghcr.io/sst/opencode:latest",
            "AISTACK_HEALTH_SCHEME": "http",
            "AISTACK_HEALTH_RESOLVE": f"{HOST}:{self.ingress_port}",
        }

    def settings(self, **overrides: Any) -> DeployerSettings:
        values: dict[str, Any] = {
            k.removeprefix("AISTACK_").lower(): v for k, v in self.env().items()
        }
        values.update(overrides)
        return DeployerSettings(_env_file=None, **values)

    def resources(self) -> dict[str, list[str]]:
        """What the fakes hold, by kind: projects, applications, domains, DNS records."""
        dokploy = self.dokploy.snapshot()
        records = [
            f"{r['name']}/{r['type']}"
            for r in self.dns.snapshot()["zones"][ZONE]
            if r["type"] == "A"
        ]
        return {
            "projects": [p["name"] for p in dokploy["projects"]],
            "applications": [a["name"] for a in dokploy["applications"]],
            "domains": [d["host"] for d in dokploy["domains"]],
            "dns": records,
        }
