"""Hypothesis against the real endpoint (signed, as Slack sends) and the stack-name validator.

One bot serves every example (`live`, a module fixture: the bot runs on an event loop in a
background thread and each synchronous example submits its round trip to that loop).

"Answered in time" is read from the answer, not from a stopwatch: Bolt sends a listener's
answer only once the listener has called `ack()`, and when no ack comes within its ack
timeout (3 s, Slack's own window) it answers 404 `{"error": "unhandled request"}` instead.
So a 200 from a listener of ours is an ack that beat the timeout; a 404 is only acceptable
where no listener of ours matches (Bolt says so at once, there is nothing to wait for).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import COMMANDS
from bot.sandbox.driver import DriverResponse
from bot.sandbox.world import SandboxBot
from deployer.core.names import MAX_LENGTH, MIN_LENGTH, RESERVED, validate_stack_name
from deployer.errors import InvalidStackName
from tests.bot.blockkit import unsafe_markup
from tests.security.conftest import (
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    LiveBot,
    handled,
    message_texts,
    snapshot,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PEOPLE = [ALICE, BOB, CAROL, MALLORY, "U0NOBODY"]


def _posted(world: SandboxBot) -> list[Any]:
    return [c for c in world.slack.calls if c.method in ("chat.postMessage", "chat.update")]


def acked(reply: DriverResponse) -> Any:
    """Assert a listener of ours acked before Bolt's ack timeout; return the ack's body (a
    JSON message, plain text, or nothing)."""
    assert reply.status == 200, (reply.status, reply.body)
    ack = reply.json()
    assert not (isinstance(ack, dict) and "error" in ack), reply.body  # nor an error body
    return ack


def well_formed(reply: DriverResponse) -> None:
    """A signed request Slack could send gets an answer it can read: an ack (200), our
    "malformed request" (400) or Bolt's "no listener for this" (404); never a 500, never a
    401 (every request here is signed), never a body that is neither empty nor JSON."""
    assert reply.status in (200, 400, 404), (reply.status, reply.body)
    if reply.status == 200:
        acked(reply)
    else:
        answer = reply.json()
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str), reply.body


async def still_serving(world: SandboxBot) -> None:
    reply = await world.driver.command(ALICE, "help")
    assert reply.status == 200
    await handled(world)
    assert "/aistack deploy" in str(world.slack.responses_for(reply.response_url_hook or ""))


# -- (a) any slash-command text ------------------------------------------------------------
MARKUP = [
    "<@U1>", "<@U0BOB|bob>", "<@W0EVE123>", "<!channel>", "<!here|here>", "<!subteam^S0EVIL>",
    "<#C0EVIL|ops>", "<http://x|y>", "<mailto:a@b.example>", "`", "```", "\n", "\r\n", "\t",
    "\x00", "\x1b[31m", "\u202e", "\u200b", "\u00a0", "&amp;", "&lt;", "*b*", "--image",
    "--dry-run", "--image=", "\u2014image", "--mine", "-", "=",
]  # fmt: skip
WORDS = st.one_of(
    st.sampled_from(MARKUP),
    st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    st.sampled_from([*COMMANDS, "mine", "alice"]),
    st.text(max_size=30),
)
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\t", "\u00a0", ""])
VERBS = st.sampled_from([*COMMANDS, "DEPLOY", "Deploy", "deplyo", "\u2014", ""])
SHAPED = st.builds(  # a subcommand, then anything
    lambda verb, sep, words: verb + sep + "".join(w + s for w, s in words),
    VERBS, SEPARATORS, st.lists(st.tuples(WORDS, SEPARATORS), max_size=6),
)  # fmt: skip
COMMAND_TEXT = st.one_of(
    SHAPED,
    st.text(max_size=200),
    st.builds(lambda text, word, n: text + (word + " ") * n, SHAPED, WORDS, st.integers(100, 400)),
)


async def command_round(world: SandboxBot, user: str, text: str) -> None:
    posts = len(_posted(world))
    reply = await world.driver.command(user, text)
    ack = acked(reply)  # `/aistack` is ours whatever the text: acked, not timed out
    await handled(world)
    answer = message_texts(ack) if isinstance(ack, dict) else [reply.body]
    for payload in world.slack.responses_for(reply.response_url_hook or ""):
        answer += message_texts(payload)
    for call in _posted(world)[posts:]:  # a request's card is its answer
        answer += message_texts(call.args)
    assert any(a.strip() for a in answer), "the user got no answer"
    assert not [m for a in answer for m in unsafe_markup(a)], answer
    assert not any("<@W0EVE123>" in a or "<#C0EVIL" in a for a in answer), answer


@settings(FUZZ, max_examples=100)
@given(user=st.sampled_from(PEOPLE), text=COMMAND_TEXT)
def test_any_command_text_gets_a_timely_answer(live: LiveBot, user: str, text: str) -> None:
    live.run(command_round(live.world, user, text))


# -- (b) any stack name --------------------------------------------------------------------
DNS_LABEL = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
NAMES = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"[a-z0-9-]{0,45}", fullmatch=True),
    st.text(alphabet="abxyz09-AZ _.\u00e9\u0131\u212a\u200b\n", max_size=50),
    st.sampled_from(sorted(RESERVED)).map(lambda n: f" {n}\t"),
)


@settings(FUZZ, max_examples=300)
@given(raw=NAMES, suffix=st.sampled_from(["", "ai.example.com", "a" * 200 + ".example.com"]))
def test_a_stack_name_is_a_dns_label_or_a_clear_refusal(raw: str, suffix: str) -> None:
    try:
        name = validate_stack_name(raw, suffix=suffix)
    except InvalidStackName as exc:
        assert str(exc).strip(), f"empty message for {raw!r}"
        return
    assert DNS_LABEL.fullmatch(name), name
    assert MIN_LENGTH <= len(name) <= MAX_LENGTH and name[2:4] != "--"
    assert name not in RESERVED and name == raw.strip()
    assert not suffix or len(f"{name}.{suffix}") <= 253
    assert validate_stack_name(name, suffix=suffix) == name


# -- (c) interactive payloads --------------------------------------------------------------
OURS = ["aistack_approve", "aistack_reject", "aistack_destroy", "aistack_rollback", "aistack_retry",
        "aistack_retry_rollback", "aistack_extend", "aistack_stop"]  # fmt: skip
ACTION_IDS = st.one_of(
    st.sampled_from(OURS),
    st.sampled_from(["aistack_", "aistack_destroy", "AISTACK_APPROVE", "aistack_approve ", ""]),
    st.text(max_size=40),
)
MISSING = object()
VALUES = st.one_of(
    st.just(MISSING),
    st.sampled_from(["", " ", "null", "../../etc/passwd", "' OR 1=1 --"]),
    st.uuids().map(lambda u: u.hex),  # looks like ours, is nobody's
    st.text(max_size=80),
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1_000, 20_000)),
    st.none() | st.integers() | st.booleans() | st.lists(st.integers(), max_size=3),
)


def click_payload(action_id: str, value: Any, user: str, channel: str) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "button", "action_id": action_id, "block_id": "b"}
    if value is not MISSING:
        action["value"] = value
    return {
        "type": "block_actions", "trigger_id": "1.2.3", "api_app_id": "A0AISTACK",
        "user": {"id": user, "name": user.lower()}, "team": {"id": "T0SANDBOX"},
        "channel": {"id": channel}, "response_url": "http://127.0.0.1:9/hook/x",
        "container": {"type": "message", "channel_id": channel, "message_ts": "1.2"},
        "actions": [action],
    }  # fmt: skip


def click_body(action_id: str, value: Any, user: str, channel: str) -> str:
    return urlencode({"payload": json.dumps(click_payload(action_id, value, user, channel))})


async def click_round(world: SandboxBot, body: str, *, ours: bool = False) -> None:
    """A signed click: a well-formed answer (an ack when `ours`: one of our buttons, in a
    well-formed payload), and nothing changed."""
    before, posts = await snapshot(world), len(_posted(world))
    reply = await world.driver.post_raw(body, world.driver.signed_headers(body))
    assert reply.status < 500, (reply.status, reply.body)
    well_formed(reply)
    if ours:
        assert acked(reply) is None, reply.body  # a click's ack is an empty 200
    await handled(world)
    assert await snapshot(world) == before
    assert len(_posted(world)) == posts  # at most an ephemeral to the clicker


@FUZZ
@given(
    action_id=ACTION_IDS,
    value=VALUES,
    user=st.sampled_from(PEOPLE),
    channel=st.sampled_from(["C0OPS", "C0ELSEWHERE", "D0DIRECT"]),
)
def test_any_click_is_answered_and_changes_nothing(
    live: LiveBot, action_id: str, value: Any, user: str, channel: str
) -> None:
    body = click_body(action_id, value, user, channel)
    live.run(click_round(live.world, body, ours=action_id in OURS))


def test_the_bot_still_serves_after_the_fuzzing(live: LiveBot) -> None:
    live.run(still_serving(live.world))


# -- (c) payloads of the wrong shape, one by one ----------------------------------------------
def _payload(**changes: Any) -> str:
    payload = click_payload(OURS[0], "0" * 32, BOB, "C0OPS") | changes
    return json.dumps({k: v for k, v in payload.items() if v is not MISSING})


SHAPES = {
    "no actions": _payload(actions=MISSING),
    "no type": _payload(type=MISSING),
    "user is null, action unknown": _payload(user=None, actions=[{"action_id": "x"}]),
    "payload not JSON": "{not json",
    "payload a JSON list": "[1, 2]",
    "actions empty": _payload(actions=[]),
    "actions null": _payload(actions=None),
    "action not an object": _payload(actions=["aistack_approve"]),
    "action without action_id": _payload(actions=[{"value": "x"}]),
}


@pytest.mark.parametrize(
    "payload",
    [pytest.param(p, id=k) for k, p in SHAPES.items()],
)
def test_a_payload_of_the_wrong_shape_is_answered_and_changes_nothing(
    live: LiveBot, payload: str
) -> None:
    live.run(click_round(live.world, urlencode({"payload": payload})))
    live.run(still_serving(live.world))


@pytest.fixture(scope="module")
def without_user_or_channel(live: LiveBot) -> list[tuple[int, str, bool]]:
    """Clicks on our buttons with no `user`, or no `channel` (as from a modal), one after the
    other: each answer comes with the listener's ack, so neither waits out Bolt's ack timeout
    (had one not been acked, it would come back 404 `unhandled request` after it)."""

    async def send(body: str) -> tuple[int, str, bool]:
        world = live.world
        before, posts = await snapshot(world), len(_posted(world))
        reply = await world.driver.post_raw(body, world.driver.signed_headers(body))
        await handled(world)
        unchanged = await snapshot(world) == before and len(_posted(world)) == posts
        return reply.status, reply.body, unchanged

    async def each() -> list[tuple[int, str, bool]]:
        bodies = [urlencode({"payload": _payload(**{key: MISSING})}) for key in ("user", "channel")]
        return [await send(body) for body in bodies]

    return live.run(each())


def test_a_click_without_user_or_channel_changes_nothing(
    live: LiveBot, without_user_or_channel: list[tuple[int, str, bool]]
) -> None:
    for status, _, unchanged in without_user_or_channel:
        assert status < 500 and unchanged
    live.run(still_serving(live.world))


def test_a_click_without_user_or_channel_is_acked_in_time(
    without_user_or_channel: list[tuple[int, str, bool]],
) -> None:
    """Acked (an empty 200), not Bolt's 404 `unhandled request` after its ack timeout."""
    assert [(s, b) for s, b, _ in without_user_or_channel] == [(200, "")] * 2
