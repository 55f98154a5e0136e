"""PURE: deployment views -> Block Kit messages: its card and its thread replies.

The request card, the status card edited in place as the deployment moves on, one thread line
per phase boundary and the outcome reply that tells the requester how it ended. The answers to
commands (help, status, list, history, ...) are drawn in `bot/answers.py`, with the helpers
below. User- and upstream-controlled text always goes through `escape`, so nothing can become a
mention, a broadcast or a link; ids become mentions only when they look like Slack ids.
`message` and `pack` (bot/blocks.py) keep every message inside Slack's limits (specs/slack.md §6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.blocks import (
    MAX_TEXT,
    Block,
    Message,
    actions,
    button,
    clock,
    confirm,
    context,
    duration,
    escape,
    header,
    mention,
    message,
    pack,
    section,
    truncate,
    when,
)
from bot.container_cards import CONTAINER_OPS, done_line, failed_line, succeeded_line, takeover_line
from bot.reminders import expiry_line, extended_line, reminder_text
from deployer import (
    TERMINAL,
    Deployment,
    DeploymentState,
    Event,
    EventKind,
    Operation,
    PhaseRecord,
    PhaseState,
    Revert,
    Takeover,
    env_fingerprint,
    phases_for,
    reverted,
)

S = DeploymentState
K = EventKind
_TITLES: dict[str, str] = {p.name: p.title for op in Operation for p in phases_for(op)}


def utc(at: datetime) -> datetime:
    """The time in UTC; a naive one is taken to be UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def phase_title(phase: str | None) -> str:
    """A phase's title as people read it, escaped; its name if it has none."""
    return escape(_TITLES.get(phase or "", phase or "?"))


def bullets(items: Iterable[str]) -> list[str]:
    """One escaped bullet line per item."""
    return [f"• {escape(item)}" for item in items]


# -- the request card and the status card ---------------------------------------------------
def request_card(
    dep: Deployment, plan: list[str], *, expires_at: datetime | None, approval_required: bool,
    replaces: Takeover | None = None,
) -> Message:  # fmt: skip
    """The first post for a request: who asked, what it would do, Approve / Reject. One that
    `replaces` (or removes) someone else's live stack says so first and names its owner, who
    may reject it: it must not read like a new deploy."""
    asks = f"{mention(dep.requester)} asks to {dep.operation} *{escape(dep.stack)}*"
    if dep.restores is not None:
        asks = f"{mention(dep.requester)} asks to roll back *{escape(dep.stack)}* to "
        asks += _release(dep)
    first = owns = ""
    if replaces is not None:
        deploys, owner = dep.operation is Operation.DEPLOY, mention(replaces.owner)
        change = (f"image `{escape(replaces.image)}` → `{escape(dep.spec.image)}`" if deploys
                  else "its domain and DNS record go too")  # fmt: skip
        first = f":warning: This {'replaces' if deploys else 'removes'} {owner}'s live stack: "
        first += f"{change}\n"
        if dep.operation in CONTAINER_OPS:  # nothing replaced or removed
            first = takeover_line(dep, owner)
        owns = f"{owner} owns it and may reject it" if approval_required else ""
    blocks = [header(f"aistack: {title(dep)} {dep.stack}")]
    blocks.append(section(f"{first}{asks}\nImage: `{escape(dep.spec.image)}`"))
    blocks += pack(["*Plan*", *bullets(plan)] if plan else [])[0][:10]
    waiting = "Waiting for approval" if approval_required else "No approval needed · starting"
    expiry = f"expires {utc(expires_at):%H:%M} UTC" if expires_at and approval_required else ""
    blocks.append(context(waiting, expiry, owns))
    if approval_required:
        approve = _approve(dep)
        blocks.append(actions(approve, button("Reject", "aistack_reject", dep.id, "danger")))
    blocks.append(_meta(dep))
    return message(f"{first}{asks} · {waiting.lower()}", blocks)


def title(dep: Deployment) -> str:
    """What a deployment does, as its card's header says it: a roll back is a deploy."""
    return "roll back" if dep.restores is not None else str(dep.operation)


def _release(dep: Deployment) -> str:
    """`release 2 (image `X`, env fingerprint `F`)`: what a roll back puts back."""
    spec = dep.spec
    return (f"release {dep.restores} (image `{escape(spec.image)}`, env fingerprint "
            f"`{env_fingerprint(spec.env)}`)")  # fmt: skip


def _approve(dep: Deployment) -> Block:
    """Approving a destroy removes a live stack: like Destroy on its card, it asks first."""
    approve = button("Approve", "aistack_approve", dep.id, "primary")
    if dep.operation is Operation.DESTROY:
        removes = f"Approving removes {_removes(dep)} This cannot be undone."
        approve["confirm"] = confirm(f"Destroy {dep.stack}?", removes, "Destroy")
    return approve


def _removes(dep: Deployment) -> str:
    spec = dep.spec
    return f"*{escape(spec.name)}*, its domain {escape(spec.host)} and its DNS record."


def _meta(dep: Deployment) -> Block:
    approved = dep.approver and dep.state not in (S.REQUESTED, S.REJECTED, S.EXPIRED)
    return context(
        f"id `{escape(dep.id[:8])}`",
        f"Requested by {mention(dep.requester)}",
        f"Approved by {mention(dep.approver)}" if approved else "",
    )


@dataclass(frozen=True)
class _Card:
    dep: Deployment
    phases: list[PhaseRecord]
    total: int
    now: datetime
    paused: bool
    live_until: datetime | None = None  # the live stack's expiry, on its live card
    stopped_since: datetime | None = None  # ... and since when it is stopped

    @property
    def name(self) -> str:
        return f"*{escape(self.dep.stack)}*"

    @property
    def elapsed(self) -> float:
        end = self.dep.updated_at if self.dep.state in TERMINAL else self.now
        return (end - self.dep.created_at).total_seconds()

    def failure(self) -> str:
        failed = next((r for r in self.phases if r.state is PhaseState.FAILED), None)
        if failed is None:
            return f"Failed: {escape(self.dep.error or 'unknown error')}"
        error = escape(failed.error or self.dep.error or "?")
        return f"Failed at {phase_title(failed.name)}: {error}"

    def titles(self, state: PhaseState) -> list[str]:
        return [phase_title(r.name) for r in self.phases if r.state is state]


Body = tuple[str, list[Block]]


def card(
    dep: Deployment,
    phases: list[PhaseRecord],
    *,
    total: int,
    now: datetime,
    paused: bool = False,
    plan: Sequence[str] = (),
    expires_at: datetime | None = None,
    replaces: Takeover | None = None,
    live_until: datetime | None = None,
    stopped_since: datetime | None = None,
    cause: str | None = None,
) -> Message:
    """The one status card of a deployment, edited in place as its state changes.

    A request is redrawn as it was first posted: approvers decide on its `plan`, see when it
    `expires_at`, and whose live stack it `replaces`. The live deployment's card says when
    the stack expires (`live_until`) and since when it is stopped (`stopped_since`); an
    operation aistack asked for says why (`cause`)."""
    if dep.state is S.REQUESTED:
        return request_card(
            dep, list(plan), expires_at=expires_at, approval_required=True, replaces=replaces
        )
    body = _BODIES.get(dep.state, _one_line)
    if dep.operation in CONTAINER_OPS:
        body = _CONTAINER_BODIES.get(dep.state, body)
    line, extra = body(_Card(dep, phases, total, now, paused, live_until, stopped_since))
    summary = {**section(line), "block_id": "summary"}
    blocks = [header(f"aistack: {title(dep)} {dep.stack}"), summary, *extra, _meta(dep)]
    if cause:
        blocks.insert(2, section(cause))
    return message(line.replace("\n", " "), blocks)


def _running(c: _Card) -> Body:
    total = c.total or len(phases_for(c.dep.operation))
    step = min(len(c.titles(PhaseState.DONE)) + 1, total)
    doing = " + ".join(c.titles(PhaseState.RUNNING))
    verb = _DOING.get(c.dep.operation, "Destroying")
    if c.dep.restores is not None:
        verb = f"Putting release {c.dep.restores} back on"
    line = f":hourglass_flowing_sand: {verb} {c.name} — phase {step} of {total}"
    line += f": {doing}" if doing else ""
    line += f" · {clock(c.elapsed)} elapsed"
    paused = ":double_vertical_bar: Paused: the bot is restarting; it resumes on its own"
    return line, [context(paused)] if c.paused else []


def _succeeded(c: _Card) -> Body:
    # It removes the stack, so it says Destroy; its action id stays the listeners' rollback.
    destroy = button("Destroy", "aistack_destroy", c.dep.id, "danger")
    removes = f"This removes {_removes(c.dep)}"
    destroy["confirm"] = confirm(f"Destroy {c.dep.stack}?", removes, "Destroy")
    url = escape(c.dep.spec.url)
    line = f":white_check_mark: {c.name} is live at {url} · total {duration(c.elapsed)}"
    if c.dep.restores is not None:
        line = (f":white_check_mark: {c.name} is back on release {c.dep.restores} (now release "
                f"{c.dep.release}) and is live at {url} · total {duration(c.elapsed)}")  # fmt: skip
    elif c.dep.release is not None and c.dep.release > 1:
        line += f" · release {c.dep.release}"
    if c.dep.release is None or c.dep.release < 2:  # nothing earlier to put back
        return line, [*_expiry(c), *_login_note(c), actions(destroy)]
    return line, [*_expiry(c), *_login_note(c), actions(_roll_back(c.dep), destroy)]


def _roll_back(dep: Deployment) -> Block:
    """Like `/aistack rollback <stack>` by whoever clicks: the release before the live one."""
    roll_back = button("Roll back", "aistack_roll_back", dep.id, "primary")
    puts = (f"This puts the release before the live one back on *{escape(dep.stack)}* (its "
            "image and environment), redeploys it and waits until it answers. The owner's "
            "roll back starts at once; anyone else's waits for approval.")  # fmt: skip
    roll_back["confirm"] = confirm(f"Roll back {dep.stack}?", puts, "Roll back")
    return roll_back


def _expiry(c: _Card) -> list[Block]:
    """Whether the live stack is stopped, and when it expires (bot/reminders.py), above its
    buttons."""
    lines = [expiry_line(c.live_until)]
    if c.stopped_since is not None:
        start = f"`/aistack start {escape(c.dep.stack)}` starts it"
        lines.insert(0, f":double_vertical_bar: Stopped since {when(c.stopped_since)}; {start}")
    return [context(line) for line in lines if line]


def _login_note(c: _Card) -> list[Block]:
    """Where the new login went (never what it is): the owner's direct messages."""
    sent = next((r.outputs.get("login_sent_to") for r in c.phases if r.name == "security"), None)
    if not sent:
        return []
    return [context(f":closed_lock_with_key: Its login went to {mention(sent)} privately, "
                    "in a direct message")]  # fmt: skip


def _rolled_back(c: _Card) -> Body:
    revert = reverted(c.phases)
    if revert is not None:
        line = f":leftwards_arrow_with_hook: {_reverted(c, revert)}"
        return line, [actions(button("Retry", "aistack_retry", c.dep.id, "primary"))]
    undone = c.titles(PhaseState.UNDONE)
    what = f"Rolled back: {', '.join(undone)}." if undone else "Nothing had to be undone."
    line = f":leftwards_arrow_with_hook: {c.failure()}\n{what} Nothing is left behind."
    return line, [actions(button("Retry", "aistack_retry", c.dep.id, "primary"))]


def _reverted(c: _Card, revert: Revert) -> str:
    """A failed upgrade (or roll back) of a live stack, and the release it runs again."""
    what = f"Roll back to release {c.dep.restores}" if c.dep.restores is not None else "Upgrade"
    n = revert.release
    how = (f"release {n} was deployed again and answers" if revert.redeployed else
           f"the new image never reached the container: it still runs release {n}")  # fmt: skip
    return f"{what} failed, reverted to release {n}: {c.failure()}\n{c.name} is live: {how}."


def _rollback_failed(c: _Card) -> Body:
    what = "teardown" if c.dep.operation is Operation.DESTROY else "rollback"
    leftovers = "\n".join(bullets(c.dep.leftovers)) or "nothing recorded"
    line = f":warning: {what.capitalize()} failed — left behind:\n{leftovers}"
    advice = (
        f"{c.failure()}\nWhat to do: fix the cause and press *Retry {what}*, or remove "
        "what is listed by hand in Dokploy and the DNS zone."
    )
    retry = button(f"Retry {what}", "aistack_retry_rollback", c.dep.id, "primary")
    return line, [section(advice), actions(retry)]


def _one_line(c: _Card) -> Body:
    by = f" by {mention(c.dep.approver)}" if c.dep.approver else ""
    queued = f":large_green_circle: Approved{by} · queued"
    removed = f":wastebasket: {c.name} was removed (requested by {mention(c.dep.requester)})"
    lines = {
        S.APPROVED: queued,
        S.QUEUED: queued,
        S.ROLLING_BACK: f":rotating_light: {c.failure()} — rolling back",
        S.DESTROYED: removed,
        S.REJECTED: f":no_entry_sign: Rejected{by}",
        S.EXPIRED: ":hourglass: Expired: nobody approved it in time",
    }
    return lines.get(c.dep.state, f"{c.name} is {c.dep.state}"), []


_DOING = {Operation.DEPLOY: "Deploying", Operation.STOP: "Stopping",
          Operation.START: "Starting", Operation.RESTART: "Restarting"}  # fmt: skip


def _container_done(c: _Card) -> Body:
    return succeeded_line(c.dep, c.elapsed), []


def _container_failed(c: _Card) -> Body:
    return failed_line(c.dep, c.phases), []


# A stop, start or restart: its own card, no buttons (bot/container_cards.py)
_CONTAINER_BODIES: dict[DeploymentState, Callable[[_Card], Body]] = {
    S.SUCCEEDED: _container_done,
    S.ROLLING_BACK: _container_failed,
    S.ROLLED_BACK: _container_failed,
}

_BODIES: dict[DeploymentState, Callable[[_Card], Body]] = {
    S.RUNNING: _running,
    S.DESTROYING: _running,
    S.SUCCEEDED: _succeeded,
    S.ROLLED_BACK: _rolled_back,
    S.ROLLBACK_FAILED: _rollback_failed,
}


# -- thread replies -------------------------------------------------------------------------
def thread_line(event: Event) -> str | None:
    """One thread reply per phase boundary (and undo); None for events the card covers."""
    step = f"[{event.index}/{event.total}] " if event.index and event.total else ""
    title = escape(str(event.data.get("title") or "")) or phase_title(event.phase)
    took = duration(event.duration) if event.duration is not None else ""
    error = escape(str(event.data.get("error") or "unknown error"))
    lines = {
        K.PHASE_DONE: f":white_check_mark: {step}{title}{f' — {took}' if took else ''}",
        K.PHASE_FAILED: f":x: {step}{title} failed{f' after {took}' if took else ''}: {error}",
        K.UNDO_DONE: f":leftwards_arrow_with_hook: Undo {title}: "
        + escape(str(event.data.get("outcome") or "done")),
        K.UNDO_FAILED: f":warning: Undo {title} failed: {error}",
        K.DEPLOYMENT_NOT_STARTED: f":warning: {escape(event.stack)} has not started: {error}",
    }
    line = lines.get(event.kind) or _lifetime_line(event)
    return truncate(line, MAX_TEXT) if line else None


def _lifetime_line(event: Event) -> str | None:
    """A stack's reminder (posted with its buttons: bot/threads.py) and its extensions."""
    if event.kind == K.STACK_EXPIRY_NOTICE:
        return reminder_text(event, yours=False)
    return extended_line(event) if event.kind == K.STACK_EXTENDED else None


def outcome_line(dep: Deployment, phases: list[PhaseRecord]) -> str | None:
    """The thread reply that tells the requester how it ended (a mention notifies them, an
    edit of the card does not); None for endings nobody is waiting on."""
    c = _Card(dep, phases, 0, dep.updated_at, False)
    who = mention(dep.requester)
    if dep.operation in CONTAINER_OPS:
        return _container_outcome(dep, phases)
    revert = reverted(phases) if dep.state is S.ROLLED_BACK else None
    if revert is not None:
        return truncate(f"{who} :leftwards_arrow_with_hook: {_reverted(c, revert)}", MAX_TEXT)
    if dep.state is S.SUCCEEDED and dep.restores is not None:
        back = (f"{who} :white_check_mark: {c.name} is back on release {dep.restores} (now "
                f"release {dep.release}) and is live at {escape(dep.spec.url)}")  # fmt: skip
        return truncate(back, MAX_TEXT)
    what = "teardown" if dep.operation is Operation.DESTROY else "rollback"
    not_done = "was not removed" if dep.operation is Operation.DESTROY else "is not live"
    lines = {
        S.SUCCEEDED: f"{who} :white_check_mark: {c.name} is live at {escape(dep.spec.url)}",
        S.ROLLED_BACK: f"{who} :x: {c.name} is not live. {c.failure()}\n"
        "Rolled back: nothing is left behind.",
        S.ROLLBACK_FAILED: f"{who} :warning: {c.name} {not_done}. {c.failure()}\n"
        f"The {what} left things behind: the card lists them.",
    }
    line = lines.get(dep.state)
    return truncate(line, MAX_TEXT) if line else None


def _container_outcome(dep: Deployment, phases: list[PhaseRecord]) -> str | None:
    """How a stop, start or restart ended, to its requester (a mention notifies)."""
    lines = {S.SUCCEEDED: done_line(dep), S.ROLLED_BACK: failed_line(dep, phases)}
    line = lines.get(dep.state)
    return truncate(f"{mention(dep.requester)} {line}", MAX_TEXT) if line else None
