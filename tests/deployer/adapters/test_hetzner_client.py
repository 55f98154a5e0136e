"""HetznerDns over HTTP against the sandbox fake: actions, retries, rate limits."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from deployer.adapters.hetzner import HetznerDns
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.errors import AuthError, PermanentError, TransientError, UpstreamUnavailable
from deployer.sandbox.faults import FailRule
from deployer.sandbox.hetzner import FakeHetznerDns
from deployer.sandbox.server import TOKEN, ZONE, Sandbox
from deployer.testing import FakeClock


@pytest.fixture
async def dns(sandbox: Sandbox, clock: FakeClock) -> AsyncIterator[HetznerDns]:
    dns = make(sandbox, clock)
    yield dns
    await dns.close()


def make(sandbox: Sandbox, clock: FakeClock, token: str = TOKEN) -> HetznerDns:
    upstream = Upstream("Hetzner DNS", RetryPolicy(attempts=4), sleep=clock.sleep)
    return HetznerDns(
        f"{sandbox.urls['dns']}/v1",
        SecretStr(token),
        ZONE,
        upstream,
        0.5,
        clock=clock,
    )


def records(sandbox: Sandbox) -> dict[str, list[str]]:
    return {
        r["name"]: sorted(r["records"])
        for r in sandbox.dns.snapshot()["zones"][ZONE]
        if r["type"] == "A"
    }


async def test_zone_is_found_by_name_with_its_rrset_count(dns: HetznerDns) -> None:
    zone = await dns.zone()
    assert zone.name == ZONE
    assert zone.rrset_count == 2  # a fresh zone holds @/SOA and @/NS


async def test_upsert_creates_then_replaces_then_leaves_alone(
    dns: HetznerDns, sandbox: Sandbox
) -> None:
    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)
    assert records(sandbox) == {"alice.ai": ["203.0.113.10"]}
    await dns.upsert_a_record("alice.ai", "203.0.113.11", 60)
    assert records(sandbox) == {"alice.ai": ["203.0.113.11"]}
    writes = len([c for c in sandbox.dns.calls if c[0] != "GET"])
    await dns.upsert_a_record("alice.ai", "203.0.113.11", 60)
    assert len([c for c in sandbox.dns.calls if c[0] != "GET"]) == writes
    assert await dns.a_record("alice.ai") == ["203.0.113.11"]


async def test_writes_wait_for_their_action(
    dns: HetznerDns, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.dns.action_polls = 2
    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)
    assert clock.sleeps == [1.0, 2.0, 4.0]  # polled until the third look said success


async def test_delete_treats_missing_as_already_gone(dns: HetznerDns, sandbox: Sandbox) -> None:
    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)
    assert await dns.delete_a_record("alice.ai") is True
    assert await dns.delete_a_record("alice.ai") is False
    assert records(sandbox) == {}


async def test_a_record_another_writer_created_first_is_adopted(
    dns: HetznerDns, sandbox: Sandbox
) -> None:
    """Between our look and our create, someone else creates the RRSet: the create's 409
    uniqueness_error sends us to read it again and set our value, not to fail."""

    async def racer() -> None:
        body = {"name": "alice.ai", "type": "A", "records": [{"value": "203.0.113.99"}]}
        sandbox.dns.create_rrset(sandbox.dns.primary_zone(ZONE), body)

    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60, before_create=racer)
    assert records(sandbox) == {"alice.ai": ["203.0.113.10"]}


async def test_failed_action_is_an_error_naming_its_code(dns: HetznerDns, sandbox: Sandbox) -> None:
    sandbox.dns.fail_actions.add("alice.ai")
    with pytest.raises(PermanentError, match="action_failed"):
        await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)


async def test_locked_zone_and_5xx_are_retried(
    dns: HetznerDns, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.dns.faults.fail_ops["rrsets.create"] = FailRule(status=423, times=1)
    sandbox.dns.faults.fail_ops["rrsets.get"] = FailRule(status=503, times=1)
    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)
    assert records(sandbox) == {"alice.ai": ["203.0.113.10"]}
    assert clock.sleeps[:2] == [1.0, 2.0]  # the retries; then the action poll


async def test_429_waits_until_ratelimit_reset(
    dns: HetznerDns, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.dns.faults.retry_after = 30
    sandbox.dns.faults.burst_429 = 1
    assert await dns.a_record("nothing.ai") is None
    assert len(clock.sleeps) == 1 and 25 <= clock.sleeps[0] <= 31


async def test_bad_token_is_an_auth_error_without_the_token(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    dns = make(sandbox, clock, token="not-the-token")
    try:
        with pytest.raises(AuthError, match="AISTACK_HETZNER_TOKEN") as caught:
            await dns.zone()
    finally:
        await dns.close()
    assert "not-the-token" not in str(caught.value)


async def test_wildcard_rrset_is_readable(dns: HetznerDns) -> None:
    await dns.upsert_a_record("*.ai", "203.0.113.10", 60)
    assert await dns.a_record("*.ai") == ["203.0.113.10"]


async def test_quick_zone_names_a_refused_address_and_gives_up_fast(clock: FakeClock) -> None:
    with socket.socket() as probe:  # a 127.0.0.1 port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    upstream = Upstream("Hetzner DNS", RetryPolicy(), sleep=clock.sleep)
    dns = HetznerDns(
        f"http://127.0.0.1:{port}/v1", SecretStr(TOKEN), ZONE, upstream, 0.5, clock=clock
    )
    try:
        with pytest.raises(TransientError) as caught:
            await dns.zone(quick=True)
    finally:
        await dns.close()
    assert not isinstance(caught.value, UpstreamUnavailable)
    assert str(caught.value) == (
        f"Hetzner DNS: connection failed to 127.0.0.1:{port} (GET v1/zones/{ZONE}): "
        "connection refused"
    )
    assert clock.sleeps == [0.5]


# -- a restarted bot adopts a record only once the action that wrote it is over --------------


def killed_mid_create(fake: FakeHetznerDns) -> None:
    """The create reached Hetzner, then the bot died before its action finished."""
    body = {"name": "alice.ai", "type": "A", "ttl": 60, "records": [{"value": "203.0.113.10"}]}
    fake.create_rrset(fake.primary_zone(ZONE), body)


async def test_adopting_a_record_waits_for_the_action_still_running_on_it(
    dns: HetznerDns, sandbox: Sandbox, clock: FakeClock
) -> None:
    sandbox.dns.action_polls = 2
    killed_mid_create(sandbox.dns)
    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)
    assert ("GET", "zones.actions.list") in sandbox.dns.calls  # the fake's own listing
    assert clock.sleeps == [1.0, 2.0, 4.0]  # polled until the third look said success
    assert all(a.status == "success" for a in sandbox.dns.actions.values())
    assert [c for c in sandbox.dns.calls if c[0] != "GET"] == []  # adopted: nothing written again
    assert records(sandbox) == {"alice.ai": ["203.0.113.10"]}


@pytest.mark.parametrize("status", [404, 410])
async def test_adopting_without_a_zone_actions_listing_still_works(
    dns: HetznerDns, sandbox: Sandbox, clock: FakeClock, status: int
) -> None:
    """A Hetzner (or an older fake) that does not serve the listing (404 `not_found`) or has
    retired it (410 `deprecated_api_endpoint`): the record is adopted without the wait,
    instead of failing the deploy."""
    sandbox.dns.action_polls = 2
    sandbox.dns.faults.fail_ops["zones.actions.list"] = FailRule(status=status)
    killed_mid_create(sandbox.dns)
    await dns.upsert_a_record("alice.ai", "203.0.113.10", 60)
    assert records(sandbox) == {"alice.ai": ["203.0.113.10"]}
    assert [c for c in sandbox.dns.calls if c[0] != "GET"] == []
    assert clock.sleeps == []  # nothing awaited: the create's action is still running
    assert [a.status for a in sandbox.dns.actions.values()] == ["running"]
