"""HttpProbe against the sandbox ingress, pinned to it like `curl --resolve`."""

from __future__ import annotations

import socket

from deployer.adapters.probe import HttpProbe
from deployer.sandbox.server import Sandbox
from deployer.service import Deployer

URL = "https://alice.ai.example.test"


def pinned(
    sandbox: Sandbox, port: int | None = None, accepted: tuple[int, ...] = (200,)
) -> HttpProbe:
    return HttpProbe(
        accepted=accepted,
        timeout=0.5,
        scheme="http",
        resolve=f"127.0.0.1:{port or sandbox.ingress_port}",
    )


async def test_unknown_host_is_not_ready_and_a_deployed_one_is(
    sandbox: Sandbox, deployer: Deployer
) -> None:
    probe = pinned(sandbox, accepted=(200, 401))  # as AISTACK_HEALTH_STATUSES by default
    try:
        not_yet = await probe.check(URL)
        assert not not_yet.ready and "404" in not_yet.detail
        await deployer.deploy("alice", requester="U1")
        ready = await probe.check(URL)
    finally:
        await probe.close()
    assert ready.ready and ready.detail == "HTTP 401"  # the stack's login asks who it is


async def test_ingress_5xx_means_not_yet(sandbox: Sandbox) -> None:
    sandbox.ingress.faults.error_rate = 1.0
    probe = pinned(sandbox)
    try:
        result = await probe.check(URL)
    finally:
        await probe.close()
    assert not result.ready and "not up yet" in result.detail


async def test_connection_refused_means_not_yet() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    probe = HttpProbe(timeout=0.5, scheme="http", resolve=f"127.0.0.1:{free_port}")
    try:
        result = await probe.check(URL)
    finally:
        await probe.close()
    assert not result.ready and "connection refused" in result.detail


async def test_target_keeps_the_host_and_uses_the_override_port(sandbox: Sandbox) -> None:
    probe = HttpProbe(path="/healthz", scheme="https", resolve="203.0.113.10:8443")
    try:
        assert probe.target(URL) == "https://alice.ai.example.test:8443/healthz"
    finally:
        await probe.close()
