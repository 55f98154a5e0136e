"""The Slack sandbox: FakeSlack under the real AsyncWebClient; SlackDriver against a Bolt app."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jsonschema  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.checks import SPEC_PATH
from bot.sandbox.driver import SlackDriver
from bot.sandbox.slack import FakeSlack

CHANNEL = "C0OPS"
SECRET = "test-secret"
CARD: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*RUNNING*"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "aistack_approve",
                "value": "dep-1",
                "text": {"type": "plain_text", "text": "Approve"},
            }
        ],
    },
]
LONG_LABEL = {"type": "plain_text", "text": "x" * 76}


@pytest.fixture(autouse=True)
def _no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLACK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> FakeSlack:
    return FakeSlack(
        users={"U0ALICE": "Alice", "U0BOB": "Bob"}, usergroups={"S0APPROVERS": ["U0ALICE"]}
    )


@pytest.fixture
async def api(fake: FakeSlack) -> AsyncIterator[str]:
    async with fake.serve() as base_url:
        yield base_url


@pytest.fixture
def client(api: str) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-sandbox", base_url=api)


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


# -- FakeSlack through AsyncWebClient --------------------------------------------------------------


async def test_card_update_thread_reply_and_ephemeral(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="deploying", blocks=CARD)
    ts = posted["ts"]
    assert posted["channel"] == CHANNEL and posted["message"]["blocks"] == CARD
    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "*DEPLOYED*"}}]
    updated = await client.chat_update(channel=CHANNEL, ts=ts, text="deployed", blocks=done)
    assert (updated["ts"], updated["text"]) == (ts, "deployed")
    reply = await client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="phase 1 done")
    ephemeral = await client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")

    card = fake.card(CHANNEL, ts)
    assert (card.text, card.blocks) == ("deployed", done)
    assert card.history == [("deploying", CARD)]
    assert [m.text for m in fake.thread(CHANNEL, ts)] == ["phase 1 done"]
    assert reply["ts"] > ts and ephemeral["message_ts"] > reply["ts"]
    assert [(e.user, e.text) for e in fake.ephemerals] == [("U0ALICE", "only you")]
    assert [c.method for c in fake.calls] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
        "chat.postEphemeral",
    ]
    assert fake.violations == []


async def test_form_encoded_blocks_arrive_as_json_text(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    form = {"channel": CHANNEL, "text": "hi", "blocks": json.dumps(CARD)}
    posted = await client.api_call("chat.postMessage", data=form)
    assert fake.card(CHANNEL, posted["ts"]).blocks == CARD
    assert fake.violations == []


async def test_update_with_text_but_no_blocks_wipes_the_card(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    ts = (await client.chat_postMessage(channel=CHANNEL, text="card", blocks=CARD))["ts"]
    await client.chat_update(channel=CHANNEL, ts=ts, text="now plain")
    assert fake.card(CHANNEL, ts).blocks == []
    assert len(fake.violations) == 1 and "without blocks" in fake.violations[0]


async def test_missing_text_is_a_violation_though_slack_accepts_it(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    with pytest.warns(UserWarning):  # slack_sdk warns too
        await client.chat_postMessage(channel=CHANNEL, blocks=CARD)
    assert fake.violations == ["chat.postMessage: `text` missing: always pass the fallback text"]


async def test_unknown_argument_is_refused(fake: FakeSlack, client: AsyncWebClient) -> None:
    error = await slack_error(client.chat_postMessage(channel=CHANNEL, text="x", colour="red"))
    assert error.response["error"] == "invalid_arguments"
    assert error.response["response_metadata"]["messages"] == ["unknown argument `colour`"]
    assert fake.violations == ["chat.postMessage: unknown argument `colour`"]


async def test_missing_and_mistyped_arguments_are_refused(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    await slack_error(client.api_call("chat.postMessage", json={"text": "x"}))
    form = {"channel": CHANNEL, "text": "x", "blocks": "not json", "unfurl_links": "maybe"}
    await slack_error(client.api_call("chat.postMessage", data=form))
    float_ts: Any = 1700000000.0001  # a float loses the ts's digits; Slack wants the string
    await slack_error(client.chat_update(channel=CHANNEL, ts=float_ts, text="x"))
    assert fake.violations[0] == "chat.postMessage: missing required argument `channel`"
    assert "`blocks` is not a valid string" in fake.violations[1]
    assert "`unfurl_links` is not a valid boolean" in fake.violations[2]
    assert "`ts` is not a valid string" in fake.violations[3]
    assert fake.messages == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "pointer"),
    [
        ({"blocks": [{"type": "divider"}] * 51}, "invalid_blocks", "/blocks]"),
        (
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "invalid_blocks",
            "/blocks/0/text/text]",
        ),
        (
            {
                "blocks": [
                    {"type": "divider", "block_id": "a"},
                    {"type": "divider", "block_id": "a"},
                ]
            },
            "invalid_blocks",
            "/blocks/1/block_id]",
        ),
        (
            {"blocks": [{**CARD[1], "elements": [{**CARD[1]["elements"][0], "text": LONG_LABEL}]}]},
            "invalid_blocks",
            "/blocks/0/elements/0/text/text]",
        ),
        ({"text": "x" * 4001}, "msg_too_long", None),
    ],
    ids=["51-blocks", "section-3001", "duplicate-block-id", "button-76", "text-4001"],
)
async def test_block_kit_limits(
    fake: FakeSlack, client: AsyncWebClient, kwargs: dict[str, Any], error: str, pointer: str | None
) -> None:
    args = {"channel": CHANNEL, "text": "fallback", **kwargs}
    raised = await slack_error(client.chat_postMessage(**args))
    assert raised.response["error"] == error
    if pointer:
        assert raised.response["errors"][0].endswith(pointer)
    assert len(fake.violations) == 1 and fake.messages == {}


async def test_update_of_an_unknown_message(fake: FakeSlack, client: AsyncWebClient) -> None:
    raised = await slack_error(
        client.chat_update(channel=CHANNEL, ts="1700000000.999900", text="x", blocks=CARD)
    )
    assert raised.response["error"] == "message_not_found"
    assert fake.violations == []


async def test_rate_limit_raises_429_with_retry_after(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.ratelimit_next("chat.postMessage", 1, retry_after=7)
    raised = await slack_error(client.chat_postMessage(channel=CHANNEL, text="x"))
    assert raised.response.status_code == 429
    assert raised.response["error"] == "ratelimited"
    assert raised.response.headers["Retry-After"] == "7"
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"]


async def test_rate_limit_retry_handler_succeeds(
    fake: FakeSlack, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("slack_sdk.http_retry.builtin_async_handlers.random.random", lambda: 0.0)
    handler = AsyncRateLimitErrorRetryHandler(max_retry_count=1)
    client = AsyncWebClient(token="xoxb-sandbox", base_url=api, retry_handlers=[handler])
    fake.ratelimit_next("chat.postMessage", 1, retry_after=0)
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert fake.max_posts_per_second(CHANNEL) == 1  # the refused attempt posted nothing


async def test_fail_next_answers_an_error_with_http_200(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage", "not_in_channel")
    raised = await slack_error(client.chat_postMessage(channel=CHANNEL, text="x"))
    assert (raised.response.status_code, raised.response["error"]) == (200, "not_in_channel")
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"]


async def test_usergroups_and_users(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert (await client.usergroups_users_list(usergroup="S0APPROVERS"))["users"] == ["U0ALICE"]
    raised = await slack_error(client.usergroups_users_list(usergroup="S0NOPE"))
    assert raised.response["error"] == "no_such_subteam"
    alice = (await client.users_info(user="U0ALICE", include_locale=True))["user"]
    assert (alice["id"], alice["real_name"], alice["is_bot"], alice["deleted"]) == (
        "U0ALICE",
        "Alice",
        False,
        False,
    )
    assert (await client.users_info(user="U0AISTACK"))["user"]["is_bot"] is True
    raised = await slack_error(client.users_info(user="U0NOBODY"))
    assert raised.response["error"] == "user_not_found"
    assert fake.violations == []


async def test_auth(fake: FakeSlack, api: str, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("U0AISTACK", "B0AISTACK", "T0SANDBOX")
    assert "chat:write" in me.headers["x-oauth-scopes"]
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=api)
    assert (await slack_error(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=api)
    assert (await slack_error(anonymous.auth_test())).response["error"] == "not_authed"
    unknown = await slack_error(client.api_call("chat.delete", json={"channel": CHANNEL}))
    assert unknown.response["error"] == "unknown_method"


async def test_max_posts_per_second_uses_a_sliding_window() -> None:
    now = [0.0]
    fake = FakeSlack(clock=lambda: now[0])
    async with fake.serve() as api:
        client = AsyncWebClient(token="xoxb-sandbox", base_url=api)
        for at in (0.0, 0.5, 0.9, 1.2, 1.3, 3.0):
            now[0] = at
            await client.chat_postMessage(channel=CHANNEL, text=f"at {at}")
        await client.chat_postMessage(channel="C0OTHER", text="elsewhere")
    assert fake.max_posts_per_second(CHANNEL) == 4  # 0.5, 0.9, 1.2, 1.3
    assert fake.max_posts_per_second("C0OTHER") == 1
    assert fake.max_posts_per_second("C0EMPTY") == 0


async def test_answers_match_the_spec_response_schemas(client: AsyncWebClient) -> None:
    spec = json.loads(SPEC_PATH.read_text())
    channel = "C0123456789"  # the spec's channel pattern wants 8+ characters after the C
    ts = (await client.chat_postMessage(channel=channel, text="x", blocks=CARD))["ts"]
    answers = {
        "auth.test": await client.auth_test(),
        "chat.postMessage": await client.chat_postMessage(channel=channel, text="y"),
        "chat.postEphemeral": await client.chat_postEphemeral(
            channel=channel, user="U0BOB", text="z"
        ),
        "usergroups.users.list": await client.usergroups_users_list(usergroup="S0APPROVERS"),
        "users.info": await client.users_info(user="U0ALICE"),
    }
    for method, answer in answers.items():
        operation = next(iter(spec["paths"][f"/{method}"].values()))
        schema = {**operation["responses"]["200"]["schema"], "definitions": spec["definitions"]}
        jsonschema.Draft4Validator(schema).validate(answer.data)
    user_schema = {
        **spec["definitions"]["objs_user"]["items"][0],
        "definitions": spec["definitions"],
    }
    jsonschema.Draft4Validator(user_schema).validate(answers["users.info"]["user"])
    # chat.update's schema types message.blocks as an object; Slack (and the fake) send an array
    updated = await client.chat_update(channel=channel, ts=ts, text="x", blocks=CARD)
    assert isinstance(updated["message"]["blocks"], list)


async def test_response_url_posts_are_captured_and_checked(fake: FakeSlack, api: str) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(6):
            async with session.post(fake.hook_url("h1"), json={"text": f"#{n}"}) as resp:
                assert (resp.status, await resp.text()) == (200, "ok")
        bad = {"text": "x", "blocks": [{"type": "divider", "block_id": "a"}] * 2}
        async with session.post(fake.hook_url("h2"), json=bad) as resp:
            assert (resp.status, await resp.text()) == (400, "invalid_blocks")
    assert [r["text"] for r in fake.responses_for("h1")] == [f"#{n}" for n in range(6)]
    assert len(fake.responses) == 7
    assert fake.violations == [
        "response_url h1: used 6 times; Slack accepts 5",
        "response_url h2: duplicate block_id `a` [json-pointer:/blocks/1/block_id]",
    ]
    fake.reset()
    assert (fake.responses, fake.violations, fake.calls) == ([], [], [])


def test_every_reference_in_the_packaged_subset_resolves_inside_it() -> None:
    subset = json.loads(SPEC_PATH.read_text())
    refs = {part.split('"')[0] for part in json.dumps(subset).split('"#/definitions/')[1:]}
    assert refs and refs <= set(subset["definitions"])


# -- SlackDriver against a real Bolt app -----------------------------------------------------------


@dataclass
class Bolt:
    url: str
    commands: list[dict[str, Any]] = field(default_factory=list)
    clicks: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # a listener has finished


@pytest.fixture
async def bolt(api: str) -> AsyncIterator[Bolt]:
    app = AsyncApp(client=AsyncWebClient(token="xoxb-sandbox", base_url=api), signing_secret=SECRET)
    runner = web.AppRunner(web.Application(), access_log=None)
    seen = Bolt(url="")

    @app.command("/aistack")
    async def aistack(ack: Any, command: dict[str, Any], respond: Any) -> None:
        seen.commands.append(command)
        await ack()
        await respond("hi")
        seen.done.set()

    @app.action("aistack_approve")
    async def approve(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.clicks.append(body)
        await ack()
        # Bolt's per-request client adds team_id to every call; the fake must accept it
        channel, user = body["channel"]["id"], body["user"]["id"]
        await client.chat_postEphemeral(channel=channel, user=user, text="noted")
        seen.done.set()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    runner.app.router.add_post("/slack/events", events)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        seen.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        yield seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def driver(bolt: Bolt, api: str) -> AsyncIterator[SlackDriver]:
    async with SlackDriver(bolt.url, SECRET, response_base=api) as running:
        yield running


async def test_signed_command_is_acked_and_respond_reaches_the_hook(
    fake: FakeSlack, bolt: Bolt, driver: SlackDriver
) -> None:
    answer = await driver.command("U0ALICE", "deploy foo")
    assert answer.status == 200
    assert answer.response_url_hook is not None
    async with asyncio.timeout(2):
        await fake.wait_for(lambda: bool(fake.responses))
        await bolt.done.wait()
    assert [r["text"] for r in fake.responses_for(answer.response_url_hook)] == ["hi"]
    assert fake.responses == fake.responses_for(answer.response_url_hook)
    command = bolt.commands[0]
    assert set(command) == {
        "team_id",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "response_url",
        "trigger_id",
        "is_enterprise_install",
    }
    assert (command["command"], command["text"], command["user_id"]) == (
        "/aistack",
        "deploy foo",
        "U0ALICE",
    )
    assert command["response_url"] == fake.hook_url(answer.response_url_hook)
    assert len(fake.calls_to("auth.test")) == 1  # Bolt's lazy token check
    assert fake.violations == []


async def test_forged_signature_and_stale_timestamp_get_401(
    bolt: Bolt, driver: SlackDriver
) -> None:
    body = "team_id=T0SANDBOX&user_id=U0ALICE&command=%2Faistack&text=help"
    forged = await driver.post_raw(body, driver.signed_headers(body, secret="not-the-secret"))
    stale = await driver.post_raw(
        body, driver.signed_headers(body, timestamp=int(time.time()) - 301)
    )
    tampered = await driver.post_raw(body + "x", driver.signed_headers(body))
    assert [r.status for r in (forged, stale, tampered)] == [401, 401, 401]
    assert forged.json() == {"error": "invalid request"}
    assert bolt.commands == []


async def test_click_reaches_the_action_listener(
    fake: FakeSlack, bolt: Bolt, driver: SlackDriver, client: AsyncWebClient
) -> None:
    ts = (await client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=CARD))["ts"]
    card = fake.card(CHANNEL, ts).to_slack()
    answer = await driver.click(
        "U0BOB", "aistack_approve", "dep-1", channel=CHANNEL, message_ts=ts, message=card
    )
    assert (answer.status, answer.body) == (200, "")
    [body] = bolt.clicks
    assert body["type"] == "block_actions" and body["user"]["id"] == "U0BOB"
    assert body["actions"][0] | {"action_ts": None} == {
        "type": "button",
        "action_id": "aistack_approve",
        "block_id": "block-aistack_approve",
        "value": "dep-1",
        "text": {"type": "plain_text", "text": "aistack_approve"},
        "action_ts": None,
    }
    assert body["container"]["message_ts"] == ts and body["message"]["blocks"] == CARD
    assert body["response_url"] == fake.hook_url(answer.response_url_hook or "")
    async with asyncio.timeout(2):
        await bolt.done.wait()
    assert fake.calls_to("chat.postEphemeral")[0].args["team_id"] == "T0SANDBOX"
    assert fake.violations == []
