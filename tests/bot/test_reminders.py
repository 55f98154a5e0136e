"""PURE: the words and buttons of a stack's lifetime in Slack (bot/reminders.py), inside
Slack's limits and drawn from the events alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import messages, reminders
from deployer import Deployment, Event, EventKind, Operation, StackSpec
from tests.bot.blockkit import action_ids, all_texts, check_message, unsafe_markup

K = EventKind
EXPIRY = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
SPEC = StackSpec(name="alice", project_name="ai-stack-alice", app_name="opencode-alice",
                 host="alice.ai.example.test", image="nginx:1", container_port=80)  # fmt: skip


def notice(**data: object) -> Event:
    defaults = {"owner": "U0ALICE", "expires_at": EXPIRY.isoformat(), "stopped": False,
                "destroy_at": (EXPIRY + timedelta(days=3)).isoformat(), "grace": "3 days",
                "extend_by": "1 week"}  # fmt: skip
    return Event(deployment_id="d" * 32, stack="alice", kind=K.STACK_EXPIRY_NOTICE,
                 data=defaults | data)  # fmt: skip


def test_a_running_stack_is_offered_extend_stop_and_a_confirmed_destroy() -> None:
    message = reminders.reminder(notice(), yours=True)
    check_message(message)
    assert action_ids(message.blocks) == ["aistack_extend", "aistack_stop", "aistack_destroy"]
    destroy = message.blocks[1]["elements"][2]
    assert destroy["confirm"]["title"]["text"] == "Destroy alice?"
    assert message.text.startswith(":hourglass: Your stack *alice* expires 2026-12-08 09:00 UTC")
    assert not any(unsafe_markup(t) for t in all_texts(message))


def test_a_stopped_stack_is_told_when_it_goes_and_not_offered_a_stop() -> None:
    message = reminders.reminder(notice(stopped=True), yours=False)
    check_message(message)
    assert action_ids(message.blocks) == ["aistack_extend", "aistack_destroy"]
    assert "*alice* is stopped and expires 2026-12-08 09:00 UTC: it is destroyed " \
           "2026-12-11 09:00 UTC unless it is extended." in message.text  # fmt: skip


def test_unreadable_times_show_as_a_question_mark_not_a_failure() -> None:
    text = reminders.reminder_text(notice(expires_at="soon"), yours=False)
    assert "*alice* expires ?. Then" in text


def test_the_thread_says_the_reminder_and_who_extended() -> None:
    assert messages.thread_line(notice()) == reminders.reminder_text(notice(), yours=False)
    extended = Event(deployment_id="d" * 32, stack="alice", kind=K.STACK_EXTENDED,
                     actor="U0BOB", data={"from": EXPIRY.isoformat(), "to": (
                         EXPIRY + timedelta(days=7)).isoformat()})  # fmt: skip
    assert messages.thread_line(extended) == (
        ":hourglass: <@U0BOB> extended *alice*: it now expires 2026-12-15 09:00 UTC "
        "(was 2026-12-08 09:00 UTC)"
    )


def test_the_live_card_says_when_it_expires_and_a_stop_card_why() -> None:
    now = EXPIRY - timedelta(days=1)
    live = Deployment(stack="alice", spec=SPEC, state="succeeded", created_at=now,
                      updated_at=now)  # fmt: skip
    card = messages.card(live, [], total=8, now=now, live_until=EXPIRY)
    check_message(card)
    assert "Expires 2026-12-08 09:00 UTC" in str(card.blocks)
    assert "Expires" not in str(messages.card(live, [], total=8, now=now).blocks)

    expired = Event(deployment_id="s" * 32, stack="alice", kind=K.STACK_EXPIRED, data={
        "owner": "U0ALICE", "expired_at": EXPIRY.isoformat(), "grace": "3 days",
        "destroy_at": (EXPIRY + timedelta(days=3)).isoformat()})  # fmt: skip
    why = reminders.cause_line(expired)
    assert why is not None
    stop = live.model_copy(update={"operation": Operation.STOP, "requester": "aistack"})
    card = messages.card(stop, [], total=1, now=now, cause=why)
    check_message(card)
    assert card.blocks[2]["text"]["text"] == why  # under the summary
    assert reminders.cause_line(notice()) is None
