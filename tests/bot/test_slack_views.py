"""The Slack fake's views and conversations under the real AsyncWebClient: the Home tab, a
modal opened with a trigger id and updated, a DM opened; answers checked against the spec's
response schemas, and Slack's refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.checks import SPEC_PATH
from bot.sandbox.slack import FakeSlack

TRIGGER = "1700000000.1.0a1b2c3d4e5f6a7b"  # as the driver issues them
HOME: dict[str, Any] = {"type": "home", "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Your stacks*"}}]}  # fmt: skip
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "aistack_request",
    "title": {"type": "plain_text", "text": "Request a stack"},
    "submit": {"type": "plain_text", "text": "Request"},
    "blocks": [{"type": "input", "block_id": "name", "label": {"type": "plain_text",
                "text": "Name"}, "element": {"type": "plain_text_input", "action_id": "v"}}],
}  # fmt: skip


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    yield FakeSlack(users={"U0ALICE": "Alice", "U0BOB": "Bob"})


@pytest.fixture
async def client(fake: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with fake.serve() as api:
        yield AsyncWebClient(token="xoxb-sandbox", base_url=api)


def _schema_check(method: str, answer: dict[str, Any]) -> None:
    spec = json.loads(SPEC_PATH.read_text())
    operation = next(iter(spec["paths"][f"/{method}"].values()))
    schema = {**operation["responses"]["200"]["schema"], "definitions": spec["definitions"]}
    jsonschema.Draft4Validator(schema).validate(answer)


async def test_a_home_tab_is_published_and_republished(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.views_publish(user_id="U0ALICE", view=HOME)
    again = await client.views_publish(user_id="U0ALICE", view={**HOME, "blocks": []})
    assert first["view"]["id"] == again["view"]["id"]  # one Home tab per person
    assert fake.views.home("U0ALICE") == {**HOME, "blocks": []}
    assert fake.views.home("U0BOB") is None
    assert fake.violations == []


async def test_a_modal_opens_once_per_trigger_and_updates_by_id(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    opened = await client.views_open(trigger_id=TRIGGER, view=MODAL)
    with pytest.raises(SlackApiError) as used:
        await client.views_open(trigger_id=TRIGGER, view=MODAL)
    assert used.value.response["error"] == "trigger_exchanged"
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Almost there"}}
    updated = await client.views_update(view_id=opened["view"]["id"], view=changed)
    (modal,) = fake.views.modals()
    assert updated["view"]["id"] == modal.id and modal.payload == changed
    assert modal.history == [MODAL]
    assert fake.violations == []


async def test_a_dm_is_opened_with_one_known_person(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    opened = await client.conversations_open(users="U0ALICE")
    assert opened["channel"]["id"] == "D0ALICE"
    posted = await client.chat_postMessage(channel=opened["channel"]["id"], text="hello")
    assert posted["ok"] and [m.text for m in fake.direct_messages("U0ALICE")] == ["hello"]
    for users, error in (("U0NOBODY", "user_not_found"), ("", "not_enough_users"),
                         ("U0ALICE,U0BOB", "too_many_users")):  # fmt: skip
        with pytest.raises(SlackApiError) as refused:
            await client.conversations_open(users=users)
        assert refused.value.response["error"] == error


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({"method": "views.open", "trigger_id": "not-a-trigger", "view": MODAL},
         "invalid_trigger_id"),
        ({"method": "views.open", "trigger_id": TRIGGER, "view": {**MODAL, "title": {
            "type": "plain_text", "text": "x" * 25}}}, "invalid_arguments"),
        ({"method": "views.open", "trigger_id": TRIGGER, "view": {**MODAL, "blocks": [
            MODAL["blocks"][0]] * 101}}, "invalid_arguments"),
        ({"method": "views.publish", "user_id": "U0ALICE", "view": MODAL}, "invalid_arguments"),
        ({"method": "views.publish", "user_id": "U0NOBODY", "view": HOME}, "user_not_found"),
        ({"method": "views.update", "view_id": "V99999999", "view": MODAL}, "not_found"),
    ],
)  # fmt: skip
async def test_slack_refuses_what_it_would_refuse(
    fake: FakeSlack, client: AsyncWebClient, call: dict[str, Any], error: str
) -> None:
    method = call.pop("method")
    with pytest.raises(SlackApiError) as refused:
        await client.api_call(method, json=call)
    assert refused.value.response["error"] == error
    if error == "invalid_arguments":
        assert fake.violations  # the bot sent something Slack would not take


async def test_answers_match_the_spec_response_schemas(client: AsyncWebClient) -> None:
    published = await client.views_publish(user_id="U0ALICE", view=HOME)
    opened = await client.views_open(trigger_id=TRIGGER, view=MODAL)
    updated = await client.views_update(view_id=opened["view"]["id"], view=MODAL)
    dm = await client.conversations_open(users="U0BOB")
    for method, answer in (("views.publish", published), ("views.open", opened),
                           ("views.update", updated), ("conversations.open", dm)):  # fmt: skip
        _schema_check(method, answer.data)  # type: ignore[arg-type]
