"""What the three stores share: UTC timestamps, row -> model mapping, the refusal texts, and
`runs_to_end`, which keeps a write whole when its caller is cancelled.

The SQL stores hand their rows (sqlite3.Row, asyncpg.Record: both mapping-like) to the
`*_from_row` functions; JSON columns arrive as text (SQLite) or already decoded (PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar

from deployer.core.models import Deployment, Event, PhaseRecord
from deployer.core.states import HOLDING, DeploymentState, Operation
from deployer.errors import IllegalTransition, NotFound
from deployer.ports import LiveStack
from deployer.storage import utc

S = DeploymentState
P = ParamSpec("P")
T = TypeVar("T")
# Claimable when nobody holds a live lease on them (the worker resumes them after a crash).
LEASED_STATES: tuple[str, ...] = (S.QUEUED, S.RUNNING, S.ROLLING_BACK, S.DESTROYING)

_DOING: dict[DeploymentState, str] = {
    S.REQUESTED: "waiting for approval",
    S.APPROVED: "approved",
    S.QUEUED: "queued",
    S.RUNNING: "running",
    S.ROLLING_BACK: "rolling back",
    S.DESTROYING: "being destroyed",
    S.ROLLBACK_FAILED: "in rollback_failed (resources left behind)",
}


def active_stack(stack: str, state: DeploymentState) -> str | None:
    """The value of the `active_stack` column: the stack while it is held, else NULL."""
    return stack if state in HOLDING else None


def failed_rollbacks(target: DeploymentState) -> int:
    """What a transition adds to `rollback_attempts`: one when it enters rollback_failed."""
    return 1 if target is S.ROLLBACK_FAILED else 0


@dataclass(frozen=True)
class LiveChange:
    """What a transition does to its stack's live row, in the transition's own write:
    `make` (a deploy succeeded: the stack is live, made of it, running, and its release is
    numbered), `stop`, `run` (a start or restart succeeded), `end` (destroyed: nobody owns
    the name any more). `expires_at` is a new expiry; None keeps the one it has."""

    kind: Literal["make", "stop", "run", "end"]
    expires_at: datetime | None = None


_ON_SUCCESS: dict[Operation, Literal["make", "stop", "run"]] = {
    Operation.DEPLOY: "make",
    Operation.STOP: "stop",
    Operation.START: "run",
    Operation.RESTART: "run",
}


def live_change(moved: Deployment, target: DeploymentState, now: datetime) -> LiveChange | None:
    if target is S.DESTROYED:
        return LiveChange("end")
    kind = _ON_SUCCESS.get(moved.operation) if target is S.SUCCEEDED else None
    if kind is None:
        return None
    lifetime = moved.lifetime
    return LiveChange(kind, None if lifetime is None else now + timedelta(seconds=lifetime))


def _stamp(value: Any) -> datetime | None:
    if value is None:
        return None
    return utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def live_from_row(row: Mapping[str, Any]) -> LiveStack:
    since = row["owner_since"]
    since = datetime.fromisoformat(since) if isinstance(since, str) else since
    return LiveStack(
        row["stack"], row["owner"], utc(since), row["deployment_id"],
        expires_at=_stamp(row["expires_at"]), stopped_at=_stamp(row["stopped_at"]),
        noticed_for=_stamp(row["noticed_for"]),
    )  # fmt: skip


def not_transferred(stack: str, owner: str, current: LiveStack | None) -> Exception:
    """Why a transfer from `owner` found nothing to change: not live, or owned by another."""
    if current is None:
        return NotFound(f"{stack} is not live: nobody owns it, so there is nothing to transfer")
    return IllegalTransition(
        f"{stack} belongs to {current.owner} now, not {owner}; look again and decide"
    )


def busy_message(holder: Deployment) -> str:
    """Who holds the stack, what it is doing and since when."""
    doing = _DOING.get(holder.state, str(holder.state))
    since = utc(holder.updated_at).strftime("%Y-%m-%d %H:%M")
    who = holder.requester or "someone"
    return (
        f"{holder.stack} is busy: {holder.operation} requested by {who} "
        f"is {doing} since {since} UTC"
    )


def busy_unknown(stack: str) -> str:
    return f"{stack} is busy: another deployment holds it; try again in a moment"


def stale_message(mine: Deployment, target: DeploymentState, current: Deployment) -> str:
    return (
        f"stale transition of deployment {mine.id} to {target} refused: it is now "
        f"{current.state} (version {current.version}), not {mine.state} "
        f"(version {mine.version}); reload it and decide again"
    )


DEPLOYMENT_COLUMNS: tuple[str, ...] = (
    "id",
    "stack",
    "operation",
    "state",
    "version",
    "requester",
    "approver",
    "channel",
    "spec",
    "created_at",
    "updated_at",
    "error",
    "leftovers",
    "active_stack",
    "lifetime",
    "restores",
)


def deployment_values(d: Deployment) -> dict[str, Any]:
    """The column values of a deployment: JSON-safe, timestamps as UTC datetimes."""
    data = d.model_dump(mode="json")
    data["created_at"], data["updated_at"] = utc(d.created_at), utc(d.updated_at)
    data["active_stack"] = active_stack(d.stack, d.state)
    return data


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# Columns of `deployments` nothing reads or writes any more: the card's ts and the version it
# showed moved to the bot's card ledger (bot/ledger/migrations.py copied them once). They stay
# in released migrations 1 and 2; a later migration may drop them.
UNUSED_COLUMNS = ("message_ts", "card_version")


def deployment_from_row(row: Mapping[str, Any]) -> Deployment:
    data = dict(row)
    for column in UNUSED_COLUMNS:
        data.pop(column, None)
    data["spec"], data["leftovers"] = _decoded(data["spec"]), _decoded(data["leftovers"])
    return Deployment.model_validate(data)


def phase_from_row(row: Mapping[str, Any]) -> PhaseRecord:
    data = dict(row)
    data["outputs"] = _decoded(data["outputs"])
    return PhaseRecord.model_validate(data)


def event_from_row(row: Mapping[str, Any]) -> Event:
    data = dict(row)
    data["data"], data["index"] = _decoded(data["data"]), data.pop("idx")
    return Event.model_validate(data)
