"""Request signing through the real HTTP endpoint (../shared/specs/slack.md §1, §2.4).

Anything not signed with our secret, within 300 s either way, is answered 401 and changes
nothing: no deployment, no Dokploy or DNS resource, no Slack call beyond the start-up
auth.test. A signed request replayed inside the window is deduplicated on its trigger_id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from slack_sdk import signature

from bot.sandbox.world import SandboxBot
from tests.security.conftest import ALICE, handled

Headers = dict[str, str]


def command_body(world: SandboxBot, text: str = "deploy alice", trigger: str = "1.2.abc") -> str:
    """`/aistack <text>` by alice in C0OPS, form-encoded exactly as Slack sends it."""
    return urlencode({
        "team_id": "T0SANDBOX", "channel_id": "C0OPS", "channel_name": "ops",
        "user_id": ALICE, "user_name": "alice", "command": "/aistack", "text": text,
        "api_app_id": "A0AISTACK", "response_url": world.slack.hook_url("sig"),
        "trigger_id": trigger, "is_enterprise_install": "false",
    })  # fmt: skip


def now() -> int:
    """The current second, rounded up: `now() + 301` is at least 301 s ahead of the bot's clock,
    `now() - 301` at least 301 s behind it."""
    return math.ceil(time.time())


def _without(name: str) -> Callable[[SandboxBot, str], tuple[str, Headers]]:
    def build(world: SandboxBot, body: str) -> tuple[str, Headers]:
        headers = world.driver.signed_headers(body)
        del headers[name]
        return body, headers

    return build


def _v1(world: SandboxBot, body: str) -> tuple[str, Headers]:
    headers = world.driver.signed_headers(body)
    headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"].removeprefix("v0=")
    return body, headers


def _upper_hex(world: SandboxBot, body: str) -> tuple[str, Headers]:
    headers = world.driver.signed_headers(body)
    headers["X-Slack-Signature"] = "v0=" + headers["X-Slack-Signature"][3:].upper()
    return body, headers


def _moved_timestamp(world: SandboxBot, body: str) -> tuple[str, Headers]:
    headers = world.driver.signed_headers(body)
    headers["X-Slack-Request-Timestamp"] = str(int(headers["X-Slack-Request-Timestamp"]) - 1)
    return body, headers


def _header_only_hmac(world: SandboxBot, body: str) -> tuple[str, Headers]:
    """The right secret over the wrong base string (no `v0:` prefix, no timestamp)."""
    headers = world.driver.signed_headers(body)
    mac = hmac.new(world.driver.signing_secret.encode(), body.encode(), hashlib.sha256)
    headers["X-Slack-Signature"] = "v0=" + mac.hexdigest()
    return body, headers


FORGERIES: dict[str, Callable[[SandboxBot, str], tuple[str, Headers]]] = {
    "wrong secret": lambda w, b: (b, w.driver.signed_headers(b, secret="not-the-secret")),
    "tampered body": lambda w, b: (
        b.replace("deploy+alice", "deploy+mallory"),
        w.driver.signed_headers(b),
    ),
    "appended field": lambda w, b: (b + "&user_id=U0BOB", w.driver.signed_headers(b)),
    "stale, 301 s old": lambda w, b: (b, w.driver.signed_headers(b, timestamp=now() - 301)),
    "future, 301 s ahead": lambda w, b: (b, w.driver.signed_headers(b, timestamp=now() + 301)),
    "no timestamp header": _without("X-Slack-Request-Timestamp"),
    "no signature header": _without("X-Slack-Signature"),
    "no headers at all": lambda w, b: (b, {"Content-Type": "application/x-www-form-urlencoded"}),
    "v1= signature": _v1,
    "upper-case hex": _upper_hex,
    "timestamp moved after signing": _moved_timestamp,
    "hmac of the body alone": _header_only_hmac,
    "empty body, original signature": lambda w, b: ("", w.driver.signed_headers(b)),
    "empty body, no signature": lambda w, b: ("", {}),
}


async def assert_nothing_happened(world: SandboxBot) -> None:
    await handled(world)
    assert await world.store.list_latest() == []
    assert not any(world.engine.resources().values())
    assert [c.method for c in world.slack.calls] == ["auth.test"]  # the bot's start-up check
    assert world.slack.responses == [] and world.slack.ephemerals == []


NOT_A_NUMBER = pytest.param(
    lambda w, b: (b, w.driver.signed_headers(b) | {"X-Slack-Request-Timestamp": "soon"}),
    id="timestamp not a number",
)


@pytest.mark.parametrize(
    "forge", [*(pytest.param(f, id=k) for k, f in FORGERIES.items()), NOT_A_NUMBER]
)
async def test_a_request_not_signed_by_slack_gets_401_and_changes_nothing(
    world: SandboxBot, forge: Callable[[SandboxBot, str], tuple[str, Headers]]
) -> None:
    body, headers = forge(world, command_body(world))
    reply = await world.driver.post_raw(body, headers)
    assert reply.status == 401, (reply.status, reply.body)
    assert reply.json() == {"error": "invalid request"}
    await assert_nothing_happened(world)


async def test_the_same_body_properly_signed_is_accepted_inside_the_window(
    world: SandboxBot,
) -> None:
    """The control for the table above: the forged requests fail only on their signature,
    and the window is 300 s (not less) both ways."""
    for text, skew in (("deploy alice", -298), ("deploy carol", +297)):
        body = command_body(world, text, trigger=f"1.2.{text[7:]}")
        headers = world.driver.signed_headers(body, timestamp=now() + skew)
        reply = await world.driver.post_raw(body, headers)
        assert reply.status == 200, reply.body
    for name in ("alice", "carol"):
        dep = await world.carded(name, within=5)
        assert dep.requester == ALICE


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '"text"'], ids=["text", "list", "str"])
async def test_an_unsigned_garbled_interaction_gets_401_not_500(
    world: SandboxBot, payload: str
) -> None:
    body = urlencode({"payload": payload})
    reply = await world.driver.post_raw(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 401, (reply.status, reply.body)
    await assert_nothing_happened(world)


async def test_a_signed_request_replayed_within_the_window_creates_one_deployment(
    world: SandboxBot,
) -> None:
    body = command_body(world, trigger="1.2.replayed")
    headers = world.driver.signed_headers(body)
    first = await world.driver.post_raw(body, headers)
    second = await world.driver.post_raw(body, headers)  # byte for byte the same request
    assert (first.status, second.status) == (200, 200)
    await world.carded("alice", within=5)
    await handled(world)
    events = await world.store.events("alice")
    assert [e.kind for e in events].count("deployment.requested") == 1
    cards = [c for c in world.slack.calls_to("chat.postMessage") if "thread_ts" not in c.args]
    assert len(cards) == 1
    assert world.slack.responses == []  # no "busy" answer to the replay either


async def test_a_request_replayed_after_the_window_gets_401(
    world: SandboxBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = command_body(world, trigger="1.2.late")
    headers = world.driver.signed_headers(body)
    accepted = await world.driver.post_raw(body, headers)
    assert accepted.status == 200
    dep = await world.carded("alice", within=5)
    await handled(world)
    calls = len(world.slack.calls)
    # The very same bytes and headers, captured and sent again 301 s later.
    monkeypatch.setattr(signature.Clock, "now", lambda _: time.time() + 301)
    late = await world.driver.post_raw(body, headers)
    # What the bot sees then, without the clock trick: a signature made 301 s ago.
    stale = await world.driver.post_raw(
        body, world.driver.signed_headers(body, timestamp=now() - 301)
    )
    assert (late.status, stale.status) == (401, 401)
    assert json.loads(late.body) == {"error": "invalid request"}
    await handled(world)
    assert len(world.slack.calls) == calls and world.slack.responses == []
    assert await world.store.list_latest() == [await world.store.get(dep.id)]
