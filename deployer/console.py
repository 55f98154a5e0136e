"""What the operator CLI shows: live phase progress and stack views, on a terminal or a pipe."""

from __future__ import annotations

import time
from datetime import datetime
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from deployer.core.events import EventKind
from deployer.core.lifetime import when
from deployer.core.models import Deployment, Event, StackStatus
from deployer.core.releases import Release
from deployer.inventory import PreflightReport
from deployer.stack_logs import MASK, StackLogs

K = EventKind
ENDINGS = {
    K.DEPLOYMENT_SUCCEEDED,
    K.DEPLOYMENT_ROLLED_BACK,
    K.DEPLOYMENT_ROLLBACK_FAILED,
    K.DEPLOYMENT_DESTROYED,
}


def describe(
    event: Event, total_seconds: float | None = None, operation: str | None = None
) -> str | None:
    """One line for an event, or None for events only a progress bar shows. Pure.
    `operation` is what the deployment does (its request said), when known."""
    if operation in CONTAINER_VERBS:
        line = _container_line(event, operation, total_seconds)
        if line is not None:
            return line
    step = f"[{event.index}/{event.total}] " if event.index else ""
    title = event.data.get("title", event.phase)
    took = f" ({event.duration:.2f} s)" if event.duration is not None else ""
    total = f" (total {total_seconds:.1f} s)" if total_seconds is not None else ""
    error = event.data.get("error", "")
    lines = {
        K.PHASE_DONE: f"  ok   {step}{title}{took}",
        K.PHASE_FAILED: f"  FAIL {step}{title}{took}: {error}",
        K.PHASE_INTERRUPTED: f"  stop {step}{title}{took}: interrupted",
        K.UNDO_DONE: f"  undo {event.phase}: {event.data.get('outcome', '')}{took}",
        K.UNDO_FAILED: f"  UNDO FAILED {event.phase}: {error}",
        K.DEPLOYMENT_RUNNING: f"{event.stack}: deploying",
        K.DEPLOYMENT_DESTROYING: f"{event.stack}: destroying",
        K.DEPLOYMENT_ROLLING_BACK: f"{event.stack}: failed ({error}); rolling back"
        if error
        else f"{event.stack}: retrying the rollback",
        K.DEPLOYMENT_SUCCEEDED: f"{event.stack}: live at {event.data.get('url', '')}{total}",
        K.DEPLOYMENT_ROLLED_BACK: _reverted(event, total)
        or f"{event.stack}: rolled back, nothing left behind{total}",
        K.DEPLOYMENT_DESTROYED: f"{event.stack}: destroyed{total}",
        K.DEPLOYMENT_ROLLBACK_FAILED: f"{event.stack}: ROLLBACK FAILED{total}; left behind: "
        + "; ".join(event.data.get("leftovers", [])),
    }
    return lines.get(event.kind)


# stop, start and restart: how their endings read
CONTAINER_VERBS = {"stop": "stopping", "start": "starting", "restart": "restarting"}


def _container_line(event: Event, operation: str, total_seconds: float | None) -> str | None:
    name, url = event.stack, event.data.get("url", "")
    total = f" (total {total_seconds:.1f} s)" if total_seconds is not None else ""
    done = {
        "stop": f"{name}: stopped; its data is kept; `aistack start {name}` starts it",
        "start": f"{name}: running again, answers at {url}",
        "restart": f"{name}: restarted, answers at {url}",
    }
    lines = {
        K.DEPLOYMENT_RUNNING: f"{name}: {CONTAINER_VERBS[operation]}",
        K.DEPLOYMENT_ROLLING_BACK: f"{name}: {operation} failed: {event.data.get('error', '?')}",
        K.DEPLOYMENT_SUCCEEDED: done[operation] + total,
        K.DEPLOYMENT_ROLLED_BACK: f"{name}: {operation} failed; nothing changed{total}",
    }
    return lines.get(event.kind)


def _reverted(event: Event, total: str) -> str | None:
    """A failed upgrade or roll back of a live stack: which release it runs again."""
    number = event.data.get("reverted_to")
    if number is None:
        return None
    what = "roll back" if event.data.get("restores") is not None else "upgrade"
    how = "redeployed, and it answers" if event.data.get("redeployed") else (
        "the new image never reached the container")  # fmt: skip
    return f"{event.stack}: {what} failed, reverted to release {number} ({how}){total}"


class TerminalNotifier:
    """The CLI's Notifier: a progress bar on a terminal, plain lines otherwise."""

    def __init__(self, stream: IO[str] | None = None, *, live: bool | None = None) -> None:
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self._live = self.console.is_terminal if live is None else live
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started: dict[str, float] = {}
        self._operations: dict[str, str] = {}  # deployment id -> what its request asked

    async def notify(self, event: Event) -> None:
        if event.kind is K.DEPLOYMENT_REQUESTED and "operation" in event.data:
            self._operations[event.deployment_id] = str(event.data["operation"])
        if event.kind in (K.DEPLOYMENT_RUNNING, K.DEPLOYMENT_DESTROYING):
            self._started[event.deployment_id] = time.monotonic()
        total = None
        if event.kind in ENDINGS and event.deployment_id in self._started:
            total = time.monotonic() - self._started.pop(event.deployment_id)
        if self._live:
            self._advance(event)
        line = describe(event, total, self._operations.get(event.deployment_id))
        if line is not None:
            self.console.print(line, markup=False)
        if event.kind in ENDINGS:
            self._operations.pop(event.deployment_id, None)
            self._stop()

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None:
        """The CLI's Courier: the login goes to the operator's terminal (stdout), who passes
        it on to the owner. Never to the log, which is stderr."""
        url = deployment.spec.url
        self.console.print(
            f"{deployment.stack}: login for {url} (owner {owner}): user {username}, "
            f"password {password}  (shown once; `aistack credentials {deployment.stack}` "
            "makes a new one)",
            markup=False,
        )

    def _advance(self, event: Event) -> None:
        if event.kind == K.PHASE_RUNNING and self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(event.stack, total=event.total or 1)
        if self._progress is None or self._task is None:
            return
        if event.kind == K.PHASE_RUNNING:
            self._progress.update(self._task, description=f"{event.stack}: {event.data['title']}")
        elif event.kind == K.PHASE_DONE:
            self._progress.advance(self._task)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._task = None, None


def render_status(status: StackStatus, now: datetime | None = None) -> list[str]:
    dep = status.deployment
    lines = [f"{status.name}  {dep.state if dep else 'no record'}  {status.url}"]
    lines.append(f"  owner: {status.owner}" if status.owner else "  not live")
    if running := status.life(now):
        lines.append(f"  {running}")
    if dep:
        lines.append(
            f"  last {dep.operation} by {dep.requester or '?'} at "
            f"{dep.updated_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        if dep.error:
            lines.append(f"  error: {dep.error}")
        if dep.leftovers:
            lines.append(f"  left behind: {'; '.join(dep.leftovers)}")
    live = status.live
    lines.append(
        f"  dokploy: {live.project_name} application {live.application_status or 'none'}"
        if live
        else "  dokploy: nothing"
    )
    if status.dns_values is not None:
        lines.append(f"  dns: {', '.join(status.dns_values)}")
    for phase in status.phases:
        took = f" {phase.duration:.2f} s" if phase.duration is not None else ""
        lines.append(f"    {phase.name:<20} {phase.state}{took}")
    lines.extend(f"  DRIFT: {d}" for d in status.drift)
    return lines


def render_list(stacks: list[StackStatus], now: datetime | None = None) -> list[str]:
    if not stacks:
        return ["no stacks"]
    rows = [f"{'NAME':<20} {'STATE':<16} {'DOKPLOY':<10} URL"]
    for s in stacks:
        state = str(s.deployment.state) if s.deployment else "no record"
        live = (s.live.application_status or "no app") if s.live else "-"
        flag = "  DRIFT" if s.drift else ""
        running = s.life(now)
        running = f"  {running}" if running else ""
        rows.append(f"{s.name:<20} {state:<16} {live:<10} {s.url}{flag}{running}")
    return rows


# -- day two: how a live stack runs, its URL now, its logs ------------------------------------
def render_check(status: StackStatus, now: datetime | None = None) -> list[str]:
    """`status --check`: what the URL answers now, how long it has run, its release."""
    lines = [f"{status.name}  {status.url}"]
    if status.owner is None:
        return [*lines, "  not live: not probed"]
    if status.stopped_at is not None:
        return [*lines, f"  stopped since {when(status.stopped_at)}: not probed",
                f"  {status.life(now)}"]  # fmt: skip
    probe = status.probe.words if status.probe else "not probed"
    return [*lines, f"  {probe}", f"  {status.life(now)}"]


def render_logs(logs: StackLogs) -> list[str]:
    """The masked lines as they are, or why there are none."""
    if logs.absent is not None:
        return [logs.absent]
    what = "build log of the live release" if logs.build else "container output"
    masked = f"; {logs.masked} secret value(s) shown as {MASK}" if logs.masked else ""
    return [f"# {logs.stack}: last {len(logs.lines)} lines of its {what}{masked}", *logs.lines]


def render_preflight(report: PreflightReport) -> list[str]:
    lines = [
        f"Dokploy   {report.dokploy_url}: reachable and authorized, {report.projects} projects",
        f"DNS zone  {report.zone.name} (id {report.zone.zone_id}): "
        f"{report.zone.rrset_count} rrsets",
        f"Ingress   {report.ingress_ip} (DNS mode {report.dns_mode})",
    ]
    if report.wildcard is not None:
        ok = report.ingress_ip in report.wildcard
        lines.append(
            f"Wildcard  {'covers' if ok else 'does NOT cover'} the ingress "
            f"({', '.join(report.wildcard) or 'no record'})"
        )
    return lines


def render_history(events: list[Event]) -> list[str]:
    """The audit trail: who asked, who approved, each phase and undo with its duration."""
    lines = []
    for e in events:
        if e.kind in (K.PHASE_RUNNING, K.UNDO_RUNNING):
            continue  # the done or failed line that follows carries the duration
        took = f" {e.duration:.2f} s" if e.duration is not None else ""
        what = e.phase or ""
        extra = e.data.get("error") or e.data.get("outcome") or ""
        if e.data.get("leftovers"):
            extra = "left: " + "; ".join(e.data["leftovers"])
        lines.append(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {e.deployment_id[:8]}  {e.kind:<26} {what:<12}"
            f" by {e.actor}{took}{'  ' + extra if extra else ''}"
        )
    return lines


def render_releases(releases: list[Release]) -> list[str]:
    """What a stack has run, one release a line, oldest first: never an env value, only its
    fingerprint."""
    rows = [f"{'#':>3}  {'IMAGE':<36} {'ENV':<12} {'PORT':>5}  {'LIMITS':<22} {'BY':<24} "
            "WHEN (UTC)"]  # fmt: skip
    for r in releases:
        approved = r.approver not in (None, r.requester)
        by = r.requester + (f" (approved by {r.approver})" if approved else "")
        notes = f"  roll back of {r.restores}" if r.restores is not None else ""
        notes += "  <- live" if r.live else ""
        rows.append(f"{r.number:>3}  {r.image:<36} {r.env_fingerprint:<12} {r.container_port:>5}  "
                    f"{r.limits:<22} {by:<24} {r.at:%Y-%m-%d %H:%M}{notes}")  # fmt: skip
    return rows
