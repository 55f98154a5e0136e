"""PURE: answers to commands -> Block Kit messages (help, refusals, dry run, status, list,
history, preflight).

The listeners post them, most of them ephemeral; a deployment's card and thread replies are
drawn in `bot/messages.py`. As there, user- and upstream-controlled text always goes through
`escape` and `message` and `pack` (bot/blocks.py) keep every message inside Slack's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.blocks import (
    Message,
    context,
    duration,
    escape,
    header,
    keep_mentions,
    mention,
    message,
    pack,
    section,
)
from bot.messages import bullets, phase_title, utc
from deployer import (
    Deployment,
    Event,
    Operation,
    PhaseRecord,
    PreflightReport,
    StackSpec,
    StackStatus,
)

_ICONS = {"done": ":white_check_mark:", "failed": ":x:", "undone": ":leftwards_arrow_with_hook:"}


def help_message(usage: str) -> Message:
    body = f"*aistack* deploys personal AI coding stacks.\n```{escape(usage)}```"
    return message("aistack commands", [section(body)])


def usage_error(problem: str, hint: str) -> Message:
    shown = f"`{escape(hint)}`" if hint.startswith("/aistack") else escape(hint)
    return message(escape(problem), [section(f":warning: {escape(problem)}\n{shown}")])


def refusal(text: str, *, approvers: Sequence[str] = ()) -> Message:
    """An ephemeral "no": our own text (its well-formed mentions kept) + the approver list."""
    line = f":no_entry: {keep_mentions(text)}"
    if approvers:
        line += " Approvers: " + ", ".join(mention(a) for a in approvers)
    return message(line, [section(line)])


def notice(text: str) -> Message:
    """An ephemeral "done": our own text, its well-formed mentions kept."""
    line = f":information_source: {keep_mentions(text)}"
    return message(line, [section(line)])


def busy_message(text: str) -> Message:
    line = f":hourglass_flowing_sand: {escape(text)}"
    return message(line, [section(line)])


def dry_run_message(spec: StackSpec, plan: list[str]) -> Message:
    intro = f"*Dry run: nothing was changed.* Deploying *{escape(spec.name)}* would create:"
    packed, _ = pack([intro, *bullets(plan)])
    meta = context(f"Image `{escape(spec.image)}`", escape(spec.url))
    blocks = [header(f"aistack: dry run for {spec.name}"), *packed, meta]
    return message(f"Dry run for {escape(spec.name)}: nothing was changed", blocks)


def latest_state(dep: Deployment | None) -> str:
    """The latest deployment's state, saying what it did when it did not deploy or destroy
    (`stop succeeded`: "succeeded" alone would read as a deploy's)."""
    if dep is None:
        return "no record"
    if dep.operation in (Operation.DEPLOY, Operation.DESTROY):
        return str(dep.state)
    return f"{dep.operation} {dep.state}"


def status_message(status: StackStatus, *, now: datetime | None = None) -> Message:
    dep, live = status.deployment, status.live
    state = latest_state(dep)
    lines = [f"*{escape(status.name)}* · {state} · {escape(status.url)}", *_record_lines(status)]
    if running := escape(status.life(now)):  # running for, stopped since, release, expiry
        lines.insert(1, running[:1].upper() + running[1:])
    app = escape(live.application_status or "none") if live else ""
    where = f"project `{escape(live.project_name)}`, application {app}" if live else "nothing"
    lines.append(f"Dokploy: {where}")
    if status.dns_values is not None:
        lines.append(f"DNS: {escape(', '.join(status.dns_values)) or 'no record'}")
    lines += [f":warning: *Drift:* {escape(d)}" for d in status.drift]
    lines += [_phase_line(r) for r in status.phases]
    packed, left = pack(lines)
    note = [context(f"{left} more lines not shown")] if left else []
    drift = f" · {len(status.drift)} drift" if status.drift else ""
    blocks = [header(f"aistack: status {status.name}"), *packed, *note]
    return message(f"{escape(status.name)}: {state}{drift}", blocks)


def _record_lines(status: StackStatus) -> list[str]:
    dep = status.deployment
    if dep is None:
        return []
    when = f"{utc(dep.updated_at):%Y-%m-%d %H:%M} UTC"
    owner = f"Owner {mention(status.owner)} · " if status.owner else "Not live · "
    lines = [f"{owner}last {dep.operation} by {mention(dep.requester)} {when}"]
    if dep.error:
        lines.append(f"Error: {escape(dep.error)}")
    if dep.leftovers:
        lines.append(":warning: Left behind: " + "; ".join(escape(x) for x in dep.leftovers))
    return lines


def _phase_line(record: PhaseRecord) -> str:
    took = f" · {duration(record.duration)}" if record.duration is not None else ""
    icon = _ICONS.get(record.state, ":warning:" if "fail" in record.state else ":white_circle:")
    return f"{icon} {phase_title(record.name)} — {record.state}{took}"


def list_message(
    stacks: list[StackStatus], *, mine_of: str | None = None, now: datetime | None = None
) -> Message:
    if mine_of is not None:
        stacks = [s for s in stacks if s.belongs_to(mine_of)]
    if not stacks:
        empty = "You have no stacks yet" if mine_of else "No stacks yet"
        hint = escape("Start one with `/aistack deploy <name>`.")
        return message(empty, [section(f"{empty}. {hint}")])
    packed, left = pack([_list_line(s) + _running(s, now) for s in stacks])
    note = [context(f"{left} more not shown; /aistack status NAME shows one")] if left else []
    blocks = [header("aistack: your stacks" if mine_of else "aistack: stacks"), *packed, *note]
    drifting = sum(1 for s in stacks if s.drift)
    return message(f"{len(stacks)} stacks" + (f", {drifting} drifting" if drifting else ""), blocks)


def _list_line(s: StackStatus) -> str:
    state = latest_state(s.deployment)
    app = escape(s.live.application_status or "no app") if s.live else "-"
    owner = mention(s.owner) if s.owner else "-"
    flag = " · :warning: *DRIFT*" if s.drift else ""
    return f"*{escape(s.name)}* · {state} · app {app} · {escape(s.url)} · {owner}{flag}"


def _running(s: StackStatus, now: datetime | None) -> str:
    running = s.life(now)
    return f" · {escape(running)}" if running else ""


def history_message(name: str, events: list[Event]) -> Message:
    lines = [_history_line(e) for e in events if not e.kind.started]
    if not lines:
        empty = f"No history for {escape(name)} yet."
        return message(empty, [section(empty)])
    packed, left = pack(lines, keep_last=True)
    note = [context(f"{left} older events not shown; newest last")] if left else []
    blocks = [header(f"aistack: history of {name}"), *note, *packed]
    return message(f"History of {escape(name)}: {len(lines)} events", blocks)


def _history_line(e: Event) -> str:
    took = f" · {duration(e.duration)}" if e.duration is not None else ""
    extra = e.data.get("error") or e.data.get("outcome") or ""
    if e.data.get("leftovers"):
        extra = "left: " + "; ".join(str(x) for x in e.data["leftovers"])
    what = f" {escape(e.phase)}" if e.phase else ""
    tail = f" · {escape(str(extra))}" if extra else ""
    at = f"`{utc(e.at):%Y-%m-%d %H:%M:%S}` `{escape(e.deployment_id[:8])}`"
    return f"{at} {escape(e.kind)}{what} by {mention(e.actor)}{took}{tail}"


def preflight_message(report: PreflightReport) -> Message:
    zone, ok = report.zone, report.wildcard is None or report.ingress_ip in report.wildcard
    lines = [
        f":white_check_mark: Dokploy {escape(report.dokploy_url)}: reachable and authorized, "
        f"{report.projects} projects",
        f":white_check_mark: DNS zone {escape(zone.name)} (id {zone.zone_id}): "
        f"{zone.rrset_count} rrsets",
        f":information_source: Ingress {escape(report.ingress_ip)} "
        f"(DNS mode {escape(report.dns_mode)})",
    ]
    if report.wildcard is not None:
        icon, covers = (":white_check_mark:", "covers") if ok else (":warning:", "does NOT cover")
        found = escape(", ".join(report.wildcard)) or "no record"
        lines.append(f"{icon} Wildcard {covers} the ingress ({found})")
    text = "Preflight: all good" if ok else "Preflight: the wildcard misses the ingress"
    return message(text, [header("aistack: preflight"), section("\n".join(lines))])
