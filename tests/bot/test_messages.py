"""bot.messages and bot.answers: cards, thread lines and answers, within Block Kit limits and
escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import answers as a
from bot import messages as m
from deployer.core.models import Deployment, Event, PhaseRecord, ProjectView, StackSpec, StackStatus
from deployer.core.states import DeploymentState, Operation, PhaseState
from deployer.ports import ZoneInfo
from deployer.service import PreflightReport
from tests.bot.blockkit import action_ids, all_texts, buttons, check_message, unsafe_markup

S = DeploymentState
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
REQUESTER, APPROVER = "U0REQ1", "U0APR2"
HOSTILE_IMAGE = "evil<!channel>"
HOSTILE_ERROR = "boom <@U1|x> & <!here>"
LEFTOVERS = ("Dokploy project opencode-alice (id p1)", "DNS A record alice.ai <!channel>")
PLAN = ["Dokploy project opencode-alice on https://dokploy.example.com", "DNS A -> 1.2.3.4"]


def spec(image: str = "ghcr.io/sst/opencode:latest", name: str = "alice") -> StackSpec:
    return StackSpec(
        name=name,
        project_name=f"opencode-{name}",
        app_name=f"opencode-{name}",
        host=f"{name}.ai.example.com",
        image=image,
        container_port=3000,
    )


def dep(state: S = S.REQUESTED, **changes: Any) -> Deployment:
    base = Deployment(
        id="0123456789abcdef",
        stack="alice",
        state=state,
        requester=REQUESTER,
        approver=None if state in (S.REQUESTED, S.EXPIRED) else APPROVER,
        spec=spec(changes.pop("image", "ghcr.io/sst/opencode:latest")),
        created_at=T0,
        updated_at=T0 + timedelta(seconds=62),
    )
    return base.model_copy(update=changes)


def phase(name: str, state: PhaseState, seconds: float | None = None, **kw: Any) -> PhaseRecord:
    finished = T0 + timedelta(seconds=seconds) if seconds is not None else None
    return PhaseRecord(
        deployment_id="0123456789abcdef",
        name=name,
        state=state,
        started_at=T0,
        finished_at=finished,
        **kw,
    )


PHASES = [
    phase("preflight", PhaseState.DONE, 0.2),
    phase("project", PhaseState.UNDONE, 0.4),
    phase("dns", PhaseState.UNDONE, 1.0),
    phase("application", PhaseState.DONE, 0.3),
    phase("deploy", PhaseState.FAILED, 12, error=HOSTILE_ERROR),
]


def render(state: S, phases: list[PhaseRecord] | None = None, **kw: Any) -> m.Message:
    paused = kw.pop("paused", False)
    now = T0 + timedelta(seconds=12)
    return m.card(dep(state, **kw), phases or [], total=8, now=now, paused=paused)


def joined(message: m.Message) -> str:
    return "\n".join(all_texts(message))


# -- the status card ------------------------------------------------------------------------
EXPECTED_BUTTONS = {
    S.REQUESTED: ["aistack_approve", "aistack_reject"],
    S.APPROVED: [],
    S.QUEUED: [],
    S.RUNNING: [],
    S.DESTROYING: [],
    S.SUCCEEDED: ["aistack_destroy"],
    S.ROLLING_BACK: [],
    S.ROLLED_BACK: ["aistack_retry"],
    S.ROLLBACK_FAILED: ["aistack_retry_rollback"],
    S.DESTROYED: [],
    S.REJECTED: [],
    S.EXPIRED: [],
}


@pytest.mark.parametrize("state", list(S))
def test_each_state_has_its_buttons_and_keeps_the_limits(state: S) -> None:
    message = render(state, PHASES, error=HOSTILE_ERROR, leftovers=LEFTOVERS)
    check_message(message)
    assert action_ids(message.blocks) == EXPECTED_BUTTONS[state]
    assert all(b["value"] == "0123456789abcdef" for b in buttons(message.blocks))
    assert "id `01234567`" in joined(message)


def test_every_state_has_a_card() -> None:
    assert set(EXPECTED_BUTTONS) == set(S)


def test_request_card() -> None:
    expires = T0 + timedelta(minutes=30)
    message = m.request_card(dep(), PLAN, expires_at=expires, approval_required=True)
    check_message(message)
    text = joined(message)
    assert message.blocks[0]["text"]["text"] == "aistack: deploy alice"
    assert f"<@{REQUESTER}> asks to deploy *alice*" in text
    assert "ghcr.io/sst/opencode:latest" in text
    assert "DNS A -&gt; 1.2.3.4" in text
    assert "Waiting for approval · expires 12:30 UTC" in text
    approve, reject = buttons(message.blocks)
    assert (approve["style"], reject["style"]) == ("primary", "danger")
    assert (approve["text"]["text"], reject["text"]["text"]) == ("Approve", "Reject")


def test_request_card_without_approval_has_no_buttons() -> None:
    expires = T0 + timedelta(minutes=30)
    message = m.request_card(dep(), PLAN, expires_at=expires, approval_required=False)
    assert action_ids(message.blocks) == []
    assert "expires" not in joined(message)


def test_destroy_request_says_destroy() -> None:
    message = m.card(dep(operation=Operation.DESTROY), [], total=4, now=T0)
    assert message.blocks[0]["text"]["text"] == "aistack: destroy alice"
    assert "asks to destroy *alice*" in message.text


def test_queued_names_the_approver() -> None:
    message = render(S.QUEUED)
    assert message.text == f":large_green_circle: Approved by <@{APPROVER}> · queued"
    assert f"Approved by <@{APPROVER}>" in message.blocks[-1]["elements"][0]["text"]


def test_running_shows_the_phase_and_elapsed_time() -> None:
    phases = [
        phase("preflight", PhaseState.DONE, 0.2),
        phase("project", PhaseState.DONE, 0.4),
        phase("application", PhaseState.RUNNING),
    ]
    message = render(S.RUNNING, phases)
    assert message.text == (
        ":hourglass_flowing_sand: Deploying *alice* — phase 3 of 8: Dokploy application"
        " · 0:12 elapsed"
    )
    assert "Paused" not in joined(message)


def test_running_names_concurrent_phases_and_pauses() -> None:
    phases = [
        phase("preflight", PhaseState.DONE, 0.2),
        phase("project", PhaseState.RUNNING),
        phase("dns", PhaseState.RUNNING),
    ]
    message = render(S.RUNNING, phases, paused=True)
    assert "phase 2 of 8: Dokploy project + DNS record" in message.text
    assert "Paused: the bot is restarting; it resumes on its own" in joined(message)


def test_destroying_says_destroying() -> None:
    message = render(S.DESTROYING, operation=Operation.DESTROY)
    assert message.text.startswith(":hourglass_flowing_sand: Destroying *alice* — phase 1 of 8")


def test_succeeded_shows_url_total_and_a_confirmed_destroy() -> None:
    # The button removes the stack, so it says Destroy (it said "Roll back"); its action id
    # stays the one the listeners know.
    message = render(S.SUCCEEDED)
    assert message.text == (
        ":white_check_mark: *alice* is live at https://alice.ai.example.com · total 1 min 02 s"
    )
    (button,) = buttons(message.blocks)
    assert (button["style"], button["text"]["text"]) == ("danger", "Destroy")
    assert button["action_id"] == "aistack_destroy"
    confirm = button["confirm"]
    assert confirm["title"]["text"] == "Destroy alice?"
    assert confirm["text"]["text"].startswith("This removes *alice*")
    assert "its domain alice.ai.example.com and its DNS record" in confirm["text"]["text"]
    assert (confirm["confirm"]["text"], confirm["deny"]["text"]) == ("Destroy", "Cancel")
    assert confirm["style"] == "danger"


def test_approving_a_destroy_asks_first_approving_a_deploy_does_not() -> None:
    expires = T0 + timedelta(minutes=30)
    destroy = dep(operation=Operation.DESTROY)
    message = m.request_card(destroy, PLAN, expires_at=expires, approval_required=True)
    check_message(message)
    approve, reject = buttons(message.blocks)
    assert approve["action_id"] == "aistack_approve" and "confirm" not in reject
    confirm = approve["confirm"]
    assert confirm["title"]["text"] == "Destroy alice?"
    assert "removes *alice*, its domain alice.ai.example.com" in confirm["text"]["text"]
    assert (confirm["confirm"]["text"], confirm["style"]) == ("Destroy", "danger")
    redrawn = m.card(destroy, [], total=4, now=T0, plan=PLAN, expires_at=expires)
    assert buttons(redrawn.blocks)[0]["confirm"] == confirm
    deploy = m.request_card(dep(), PLAN, expires_at=expires, approval_required=True)
    assert all("confirm" not in b for b in buttons(deploy.blocks))


def test_a_redrawn_request_shows_the_plan_and_expiry_of_its_first_drawing() -> None:
    expires = T0 + timedelta(minutes=30)
    first = m.request_card(dep(), PLAN, expires_at=expires, approval_required=True)
    redrawn = m.card(dep(), [], total=8, now=T0 + timedelta(minutes=5), plan=PLAN,
                     expires_at=expires)  # fmt: skip
    assert redrawn == first
    assert "*Plan*" in joined(redrawn) and "expires 12:30 UTC" in joined(redrawn)


def test_rolling_back_says_where_it_failed() -> None:
    message = render(S.ROLLING_BACK, PHASES)
    assert message.text == (
        ":rotating_light: Failed at Deploy: boom &lt;@U1|x&gt; &amp; &lt;!here&gt; — rolling back"
    )


def test_rolled_back_lists_what_was_undone() -> None:
    message = render(S.ROLLED_BACK, PHASES)
    assert "Failed at Deploy" in message.text
    assert "Rolled back: Dokploy project, DNS record." in message.text
    assert "Nothing had to be undone" in render(S.ROLLED_BACK, error="x").text


def test_rollback_failed_names_each_leftover() -> None:
    message = render(S.ROLLBACK_FAILED, PHASES, leftovers=LEFTOVERS)
    text = joined(message)
    assert message.text.startswith(":warning: Rollback failed — left behind:")
    assert "Dokploy project opencode-alice (id p1)" in message.text
    assert "DNS A record alice.ai &lt;!channel&gt;" in message.text
    assert "What to do:" in text
    assert buttons(message.blocks)[0]["text"]["text"] == "Retry rollback"


def test_failed_teardown_says_teardown() -> None:
    message = render(S.ROLLBACK_FAILED, leftovers=LEFTOVERS, operation=Operation.DESTROY)
    assert message.text.startswith(":warning: Teardown failed")
    assert action_ids(message.blocks) == ["aistack_retry_rollback"]


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (S.DESTROYED, f":wastebasket: *alice* was removed (requested by <@{REQUESTER}>)"),
        (S.REJECTED, f":no_entry_sign: Rejected by <@{APPROVER}>"),
        (S.EXPIRED, ":hourglass: Expired: nobody approved it in time"),
    ],
)
def test_endings(state: S, text: str) -> None:
    assert render(state).text == text


def test_a_rejected_card_does_not_say_approved() -> None:
    assert "Approved by" not in joined(render(S.REJECTED))


def test_total_time_of_a_live_card_counts_to_now() -> None:
    message = m.card(dep(S.RUNNING), [], total=8, now=T0 + timedelta(minutes=61, seconds=5))
    assert "1:01:05 elapsed" in message.text


# -- escaping ---------------------------------------------------------------------------------
def hostile_messages() -> list[m.Message]:
    hostile = {"image": HOSTILE_IMAGE, "error": HOSTILE_ERROR, "leftovers": LEFTOVERS}
    cards = [render(state, PHASES, **hostile) for state in S]
    status = StackStatus(
        name="alice",
        url="https://alice.ai.example.com",
        deployment=dep(S.ROLLBACK_FAILED, **hostile),
        phases=tuple(PHASES),
        live=ProjectView(project_id="p", project_name="x<!here>", application_status="<@U1>"),
        dns_values=("1.2.3.4", "<!channel>"),
        drift=("application status <!channel> differs",),
    )
    expires = T0 + timedelta(minutes=5)
    return [
        *cards,
        m.request_card(
            dep(image=HOSTILE_IMAGE), [HOSTILE_ERROR], expires_at=expires, approval_required=True
        ),
        a.dry_run_message(spec(HOSTILE_IMAGE), [HOSTILE_ERROR]),
        a.status_message(status),
        a.list_message([status]),
        a.history_message(
            "alice", [event("phase.failed", error=HOSTILE_ERROR, actor="<!channel>")]
        ),
        a.usage_error("unknown command '<!channel>'", "did you mean '<@U1>'?"),
        a.busy_message(HOSTILE_ERROR),
        a.refusal(f"only approvers; you wrote {HOSTILE_ERROR}"),
        a.help_message("/aistack deploy <name>"),
    ]


def test_hostile_text_never_reaches_slack_unescaped() -> None:
    for message in hostile_messages():
        for text in all_texts(message):
            assert unsafe_markup(text) == [], text
            assert HOSTILE_IMAGE not in text and "<@U1|x>" not in text
        check_message(message)


def test_outcome_lines_escape_what_they_quote() -> None:
    for state in (S.SUCCEEDED, S.ROLLED_BACK, S.ROLLBACK_FAILED):
        ended = dep(state, image=HOSTILE_IMAGE, error=HOSTILE_ERROR, stack="a<!here>")
        line = m.outcome_line(ended, PHASES)
        assert line is not None and unsafe_markup(line) == [], line
        assert line.startswith(f"<@{REQUESTER}> ")


def test_thread_lines_escape_errors() -> None:
    for kind in ("phase.failed", "undo.failed", "deployment.not_started", "undo.done"):
        line = m.thread_line(event(kind, error=HOSTILE_ERROR, outcome=HOSTILE_ERROR))
        assert line is not None and unsafe_markup(line) == []


@given(st.text(max_size=400), st.text(max_size=5000))
@settings(max_examples=60, deadline=None)
def test_any_image_and_error_are_escaped_and_fit(image: str, error: str) -> None:
    for state in (S.REQUESTED, S.SUCCEEDED, S.ROLLING_BACK, S.ROLLBACK_FAILED):
        failed = [phase("deploy", PhaseState.FAILED, 1, error=error)]
        message = render(state, failed, image=image, error=error, leftovers=(error,) * 3)
        check_message(message)
        assert all(unsafe_markup(text) == [] for text in all_texts(message))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a & b", "a &amp; b"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U1|x>", "&lt;@U1|x&gt;"),
        ("&lt;", "&amp;lt;"),
        ("plain", "plain"),
    ],
)
def test_escape(raw: str, shown: str) -> None:
    assert m.escape(raw) == shown


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("U0123ABC", "<@U0123ABC>"),
        ("W0123ABC", "<@W0123ABC>"),
        ("S0GROUP", "<!subteam^S0GROUP>"),
        ("U1", "U1"),
        ("u0123abc", "u0123abc"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("aistack", "aistack"),
        ("", "someone"),
        (None, "someone"),
    ],
)
def test_mention(who: str | None, shown: str) -> None:
    assert m.mention(who) == shown


# -- limits for big views ----------------------------------------------------------------------
def event(kind: str, n: int = 0, **data: Any) -> Event:
    actor = data.pop("actor", REQUESTER)
    return Event(
        deployment_id="0123456789abcdef",
        stack="alice",
        kind=kind,
        at=T0 + timedelta(seconds=n),
        actor=actor,
        phase="deploy" if kind.startswith(("phase", "undo")) else None,
        duration=12.3 if kind.startswith(("phase", "undo")) else None,
        index=7,
        total=8,
        data={"title": "Deploy", **data},
    )


def test_huge_history_is_capped_keeping_the_newest() -> None:
    events = [event("phase.failed", n, error=f"error number {n} " + "x" * 200) for n in range(3000)]
    message = a.history_message("alice", events)
    check_message(message)
    text = joined(message)
    assert "error number 2999 " in text and "error number 0 " not in text
    assert "older events not shown; newest last" in text
    assert text.index("error number 2998 ") < text.index("error number 2999 ")


def test_history_skips_running_events_and_handles_none() -> None:
    message = a.history_message("alice", [event("phase.running"), event("phase.done")])
    assert "phase.running" not in joined(message) and "phase.done deploy" in joined(message)
    assert a.history_message("alice", []).text == "No history for alice yet."


def stack(n: int, drift: tuple[str, ...] = (), requester: str = REQUESTER) -> StackStatus:
    name = f"stack-{n:04d}"
    return StackStatus(
        name=name,
        url=f"https://{name}.ai.example.com",
        deployment=dep(S.SUCCEEDED, stack=name, requester=requester),
        owner=requester,  # a succeeded deploy: its requester owns the live stack
        live=ProjectView(project_id="p", project_name=name, application_status="done"),
        drift=drift,
    )


def test_huge_list_says_how_many_were_left_out() -> None:
    message = a.list_message([stack(n, ("dns differs",) if n % 2 else ()) for n in range(2000)])
    check_message(message)
    text = joined(message)
    assert "stack-0000" in text and "stack-1999" not in text
    assert "more not shown" in text
    assert message.text == "2000 stacks, 1000 drifting"


def test_list_lines_and_mine() -> None:
    stacks = [stack(1, ("dns differs",)), stack(2, requester="U0OTHER")]
    line = a.list_message(stacks).blocks[1]["text"]["text"].splitlines()[0]
    assert line == (
        f"*stack-0001* · succeeded · app done · https://stack-0001.ai.example.com"
        f" · <@{REQUESTER}> · :warning: *DRIFT*"
    )
    mine = joined(a.list_message(stacks, mine_of="U0OTHER"))
    assert "stack-0002" in mine and "stack-0001" not in mine


def test_empty_list() -> None:
    assert a.list_message([]).text == "No stacks yet"
    assert a.list_message([stack(1)], mine_of="U0NOBODY").text == "You have no stacks yet"


# -- thread lines ----------------------------------------------------------------------------
def ev(kind: str, phase: str | None = None, **kw: Any) -> Event:
    return Event(deployment_id="d", stack="alice", kind=kind, phase=phase, **kw)


@pytest.mark.parametrize(
    ("happened", "line"),
    [
        (
            ev(
                "phase.done",
                "project",
                duration=0.4,
                index=2,
                total=8,
                data={"title": "Dokploy project"},
            ),
            ":white_check_mark: [2/8] Dokploy project — 0.4 s",
        ),
        (
            ev(
                "phase.failed",
                "deploy",
                duration=12.2,
                index=7,
                total=8,
                data={"title": "Deploy", "error": "<@U1>"},
            ),
            ":x: [7/8] Deploy failed after 12 s: &lt;@U1&gt;",
        ),
        (
            ev("undo.done", "project", duration=0.1, data={"outcome": "deleted"}),
            ":leftwards_arrow_with_hook: Undo Dokploy project: deleted",
        ),
        (
            ev("undo.failed", "dns", data={"error": "503"}),
            ":warning: Undo DNS record failed: 503",
        ),
        (
            ev("deployment.not_started", data={"error": "queued since 12:00 UTC"}),
            ":warning: alice has not started: queued since 12:00 UTC",
        ),
    ],
)
def test_thread_lines(happened: Event, line: str) -> None:
    assert m.thread_line(happened) == line


def test_the_outcome_mentions_the_requester_with_the_url_or_the_reason() -> None:
    live = m.outcome_line(dep(S.SUCCEEDED), [])
    assert live == (
        f"<@{REQUESTER}> :white_check_mark: *alice* is live at https://alice.ai.example.com"
    )
    failed = m.outcome_line(dep(S.ROLLED_BACK), PHASES)
    assert failed == (
        f"<@{REQUESTER}> :x: *alice* is not live. Failed at Deploy: "
        "boom &lt;@U1|x&gt; &amp; &lt;!here&gt;\nRolled back: nothing is left behind."
    )
    stuck = m.outcome_line(dep(S.ROLLBACK_FAILED, error="503"), [])
    assert stuck is not None and stuck.startswith(f"<@{REQUESTER}> :warning: *alice* is not live")
    assert "Failed: 503" in stuck and "The rollback left things behind" in stuck
    teardown = m.outcome_line(dep(S.ROLLBACK_FAILED, operation=Operation.DESTROY), [])
    assert teardown is not None and "was not removed" in teardown and "teardown" in teardown


@pytest.mark.parametrize("state", [S.DESTROYED, S.REJECTED, S.EXPIRED, S.RUNNING, S.REQUESTED])
def test_no_outcome_line_for_endings_nobody_waits_on(state: S) -> None:
    assert m.outcome_line(dep(state), PHASES) is None


@pytest.mark.parametrize("kind", ["phase.running", "undo.running", "deployment.succeeded"])
def test_no_thread_line_for_other_events(kind: str) -> None:
    assert m.thread_line(event(kind)) is None


@pytest.mark.parametrize(
    ("seconds", "shown", "clock"),
    [
        (0.44, "0.4 s", "0:00"),
        (12.7, "12 s", "0:12"),
        (62, "1 min 02 s", "1:02"),
        (3725, "1 h 02 min", "1:02:05"),
        (-1, "0.0 s", "0:00"),
    ],
)
def test_durations(seconds: float, shown: str, clock: str) -> None:
    assert (m.duration(seconds), m.clock(seconds)) == (shown, clock)


# -- answers -----------------------------------------------------------------------------------
def test_usage_error_says_what_was_wrong_then_what_is_right() -> None:
    message = a.usage_error("deploy needs a stack name", "/aistack deploy <name> [--dry-run]")
    check_message(message)
    body = message.blocks[0]["text"]["text"]
    assert body == ":warning: deploy needs a stack name\n`/aistack deploy &lt;name&gt; [--dry-run]`"


def test_help_shows_the_usage_escaped() -> None:
    message = a.help_message("/aistack deploy <name>   deploy a stack")
    assert "/aistack deploy &lt;name&gt;   deploy a stack" in joined(message)


def test_refusal_keeps_our_mentions_and_lists_approvers() -> None:
    message = a.refusal(
        "Only approvers can approve. Approvers: <@U0APR2>, <!subteam^S0OPS>",
        approvers=["S0GRP", "U0ABC", "<!channel>"],
    )
    assert message.text == (
        ":no_entry: Only approvers can approve. Approvers: <@U0APR2>, <!subteam^S0OPS>"
        " Approvers: <!subteam^S0GRP>, <@U0ABC>, &lt;!channel&gt;"
    )


def test_dry_run() -> None:
    message = a.dry_run_message(spec(), PLAN)
    check_message(message)
    assert message.text == "Dry run for alice: nothing was changed"
    assert "Dry run: nothing was changed." in joined(message)
    assert "DNS A -&gt; 1.2.3.4" in joined(message)


def test_status_highlights_drift_and_lists_phases() -> None:
    status = StackStatus(
        name="alice",
        url="https://alice.ai.example.com",
        deployment=dep(S.SUCCEEDED),
        owner=REQUESTER,
        phases=(phase("project", PhaseState.DONE, 0.4), phase("dns", PhaseState.UNDO_FAILED)),
        live=ProjectView(project_id="p", project_name="opencode-alice", application_status="done"),
        dns_values=("1.2.3.4",),
        drift=("DNS points at 9.9.9.9",),
    )
    message = a.status_message(status)
    check_message(message)
    text = joined(message)
    assert message.text == "alice: succeeded · 1 drift"
    assert f"Owner <@{REQUESTER}> · last deploy by <@{REQUESTER}> 2025-01-01 12:01 UTC" in text
    assert "Dokploy: project `opencode-alice`, application done" in text
    assert ":warning: *Drift:* DNS points at 9.9.9.9" in text
    assert ":white_check_mark: Dokploy project — done · 0.4 s" in text
    assert ":warning: DNS record — undo_failed" in text


def test_status_without_a_record() -> None:
    status = StackStatus(name="bob", url="https://bob.ai.example.com", deployment=None)
    assert "Dokploy: nothing" in joined(a.status_message(status))


def test_preflight() -> None:
    zone = ZoneInfo(zone_id=7, name="example.com", rrset_count=12)
    good = PreflightReport(
        "https://dokploy.example.com", 3, zone, "1.2.3.4", "wildcard", ["1.2.3.4"]
    )
    bad = PreflightReport("https://dokploy.example.com", 3, zone, "1.2.3.4", "wildcard", [])
    assert a.preflight_message(good).text == "Preflight: all good"
    assert "Wildcard does NOT cover the ingress (no record)" in joined(a.preflight_message(bad))
    check_message(a.preflight_message(bad))


def test_busy_message() -> None:
    assert a.busy_message("alice is busy").text == ":hourglass_flowing_sand: alice is busy"
