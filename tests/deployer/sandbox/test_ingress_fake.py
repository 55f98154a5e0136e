"""The ingress fake (Traefik stand-in), over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from deployer.sandbox.faults import FailRule
from deployer.sandbox.ingress import FakeIngress

HOST = "alice-ai.dev.example.test"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def live() -> dict[str, int]:
    return {HOST: 1}


@pytest.fixture
async def ingress(live: dict[str, int]) -> FakeIngress:
    return FakeIngress(lambda: live)


@pytest.fixture
async def client(ingress: FakeIngress) -> AsyncIterator[Client]:
    client: Client = TestClient(TestServer(ingress.app(), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def test_live_host_answers_on_any_path(client: Client) -> None:
    for path in ("/", "/session/42?x=1"):
        async with client.get(path, headers={"Host": f"{HOST}:443"}) as resp:
            assert resp.status == 200
            assert await resp.json() == {"service": "opencode", "host": HOST}


async def test_unknown_or_stopped_host_is_404(client: Client, live: dict[str, int]) -> None:
    async with client.get("/", headers={"Host": "bob-ai.dev.example.test"}) as resp:
        assert (resp.status, await resp.text()) == (404, "no such stack\n")
    live.clear()  # the stack stopped: live_hosts() is read on every request
    async with client.get("/", headers={"Host": HOST}) as resp:
        assert resp.status == 404


async def test_fault_makes_the_stack_answer_502_for_a_while(
    client: Client, ingress: FakeIngress
) -> None:
    ingress.faults.fail_ops = {"ingress.get": FailRule(status=502, times=2, message="Bad Gateway")}
    statuses = []
    for _ in range(3):
        async with client.get("/", headers={"Host": HOST}) as resp:
            statuses.append((resp.status, resp.content_type))
    assert statuses == [(502, "text/plain"), (502, "text/plain"), (200, "application/json")]
    assert ingress.hits == [(HOST, "/")]  # the two 502s never reached a stack


async def test_control_routes(client: Client, ingress: FakeIngress) -> None:
    async with client.post("/_sandbox/faults", json={"error_rate": 1.0}) as resp:
        assert resp.status == 200
    async with client.get("/", headers={"Host": HOST}) as resp:
        assert resp.status == 503
    async with client.get("/_sandbox/state") as resp:
        assert (await resp.json())["live_hosts"] == {HOST: 1}
    async with client.post("/_sandbox/reset") as resp:
        assert resp.status == 200
    assert ingress.faults.error_rate == 0.0
