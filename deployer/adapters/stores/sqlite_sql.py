"""The SQL of the SqliteStore (sqlite.py): its statements, and the helpers that run them on
the connection inside the caller's transaction (look-ups, the live stack that follows a
transition, the refusal after a conflict, appending an event, a deployment as named
parameters). Nothing here takes the store's lock, begins a transaction or reads the clock:
the store does, and passes in the times.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiosqlite

from deployer.core.models import Deployment, Event
from deployer.core.states import DeploymentState
from deployer.errors import NotFound, StackBusy
from deployer.storage import iso

from .common import (
    DEPLOYMENT_COLUMNS,
    busy_message,
    busy_unknown,
    deployment_from_row,
    deployment_values,
    live_change,
)

# -- statements ------------------------------------------------------------------------------


def insert_statement(columns: tuple[str, ...]) -> str:
    places = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO deployments ({', '.join(columns)}) VALUES ({places}) RETURNING *"


INSERT = insert_statement(DEPLOYMENT_COLUMNS)

TRANSITION = """UPDATE deployments
   SET state = :target, version = version + 1, updated_at = :now,
       active_stack = :active_stack, retry_at = :retry_at,
       rollback_attempts = rollback_attempts + :failed,
       error = coalesce(:error, error), leftovers = coalesce(:leftovers, leftovers),
       approver = coalesce(:approver, approver)
 WHERE id = :id AND version = :version AND state = :state
RETURNING *"""

# A deploy that succeeded: the stack is live, running and made of it; an owner it had is
# kept, and so is its expiry unless the deploy brings a new one (then it is reminded again).
MAKE_LIVE = """INSERT INTO live_stacks (stack, owner, owner_since, deployment_id, expires_at)
VALUES (:stack, :owner, :now, :deployment_id, :expires_at)
ON CONFLICT (stack) DO UPDATE SET deployment_id = excluded.deployment_id, stopped_at = NULL,
    expires_at = coalesce(excluded.expires_at, live_stacks.expires_at),
    noticed_for = CASE WHEN excluded.expires_at IS NULL THEN live_stacks.noticed_for END"""

RUN_LIVE = """UPDATE live_stacks SET stopped_at = NULL,
    expires_at = coalesce(:expires_at, expires_at),
    noticed_for = CASE WHEN :expires_at IS NULL THEN noticed_for END
 WHERE stack = :stack"""

# Releases are numbered per stack; one deployment holds a stack at a time, so two never race.
NUMBER_RELEASE = """UPDATE deployments
   SET release = (SELECT coalesce(max(release), 0) + 1 FROM deployments WHERE stack = :stack)
 WHERE id = :id
RETURNING *"""

EXTEND = """UPDATE live_stacks SET expires_at = ?, noticed_for = NULL WHERE stack = ?
RETURNING *"""

MARK_NOTICED = """UPDATE live_stacks SET noticed_for = expires_at
 WHERE stack = ? AND expires_at = ? AND (noticed_for IS NULL OR noticed_for <> expires_at)
RETURNING stack"""

TRANSFER = """UPDATE live_stacks SET owner = ?, owner_since = ?
 WHERE stack = ? AND owner = ?
RETURNING *"""

LATEST = """SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY stack ORDER BY created_at DESC, id DESC) AS n
      FROM deployments
) AS ranked WHERE n = 1 ORDER BY stack"""

SAVE_PHASE = """INSERT INTO phases (deployment_id, name, state, attempt, outputs,
    started_at, finished_at, error)
VALUES (:deployment_id, :name, :state, :attempt, :outputs, :started_at, :finished_at, :error)
ON CONFLICT (deployment_id, name) DO UPDATE SET
    state = excluded.state, attempt = excluded.attempt, outputs = excluded.outputs,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    error = excluded.error"""

APPEND_EVENT = """INSERT INTO events (deployment_id, stack, kind, at, actor, phase, state,
    duration, idx, total, data)
VALUES (:deployment_id, :stack, :kind, :at, :actor, :phase, :state,
    :duration, :index, :total, :data)"""

EVENT_COLUMNS = (
    "id AS seq, deployment_id, stack, kind, at, actor, phase, state, duration, idx, total, data"
)


# Needs work and nobody holds a live lease (the states mirror common.LEASED_STATES).
CLAIMABLE = """SELECT d.* FROM deployments AS d
  LEFT JOIN leases AS l ON l.deployment_id = d.id
 WHERE (l.expires_at IS NULL OR l.expires_at <= :now)
   AND (d.state IN ('queued', 'running', 'rolling_back', 'destroying')
        OR (d.state = 'rollback_failed' AND d.retry_at <= :now))
 ORDER BY d.created_at, d.id
 LIMIT 1"""

TAKE_LEASE = """INSERT INTO leases (deployment_id, owner, expires_at, heartbeat_at)
VALUES (:id, :owner, :expires_at, :now)
ON CONFLICT (deployment_id) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at,
    heartbeat_at = excluded.heartbeat_at"""

Params = dict[str, Any] | tuple[Any, ...]
Row = dict[str, Any]


# -- helpers (each runs inside the caller's transaction) -------------------------------------


def deployment_params(deployment: Deployment) -> dict[str, Any]:
    values = deployment_values(deployment)
    values["spec"], values["leftovers"] = (
        json.dumps(values["spec"]),
        json.dumps(values["leftovers"]),
    )
    values["created_at"], values["updated_at"] = (
        iso(deployment.created_at),
        iso(deployment.updated_at),
    )
    return values


async def one(conn: aiosqlite.Connection, sql: str, params: Params) -> Row | None:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else dict(row)


async def by_key(conn: aiosqlite.Connection, key: str) -> Deployment | None:
    row = await one(
        conn,
        """SELECT d.* FROM dedup_keys AS k JOIN deployments AS d ON d.id = k.deployment_id
            WHERE k.key = ?""",
        (key,),
    )
    return None if row is None else deployment_from_row(row)


async def by_id(conn: aiosqlite.Connection, deployment_id: str) -> Deployment | None:
    row = await one(conn, "SELECT * FROM deployments WHERE id = ?", (deployment_id,))
    return None if row is None else deployment_from_row(row)


async def holder(conn: aiosqlite.Connection, stack: str) -> Deployment | None:
    row = await one(conn, "SELECT * FROM deployments WHERE active_stack = ?", (stack,))
    return None if row is None else deployment_from_row(row)


async def keep_live(
    conn: aiosqlite.Connection, moved: Deployment, target: DeploymentState, now: datetime
) -> Row | None:
    """The live stack follows the deployment, in the transition's own write (`now`: when a
    stack nobody owned yet becomes its requester's). Returns the deployment's row when it
    became a release."""
    change = live_change(moved, target, now)
    if change is None:
        return None
    if change.kind == "end":
        await conn.execute("DELETE FROM live_stacks WHERE stack = ?", (moved.stack,))
        return None
    if change.kind == "stop":
        await conn.execute(
            "UPDATE live_stacks SET stopped_at = ? WHERE stack = ?", (iso(now), moved.stack)
        )
        return None
    values = {"stack": moved.stack, "owner": moved.requester, "now": iso(now),
              "deployment_id": moved.id, "id": moved.id,
              "expires_at": iso(change.expires_at)}  # fmt: skip
    if change.kind == "run":
        await conn.execute(RUN_LIVE, values)
        return None
    await conn.execute(MAKE_LIVE, values)
    return await one(conn, NUMBER_RELEASE, values)


async def current(conn: aiosqlite.Connection, deployment_id: str) -> Deployment:
    row = await one(conn, "SELECT * FROM deployments WHERE id = ?", (deployment_id,))
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    return deployment_from_row(row)


async def busy_text(conn: aiosqlite.Connection, stack: str) -> str:
    row = await one(conn, "SELECT * FROM deployments WHERE active_stack = ?", (stack,))
    return busy_unknown(stack) if row is None else busy_message(deployment_from_row(row))


async def after_conflict(
    conn: aiosqlite.Connection, deployment: Deployment, dedup_key: str | None
) -> Deployment:
    """The insert collided: a replayed request, a retried create, or the stack is held."""
    if dedup_key is not None and (known := await by_key(conn, dedup_key)):
        return known
    row = await one(conn, "SELECT * FROM deployments WHERE id = ?", (deployment.id,))
    if row is not None:
        return deployment_from_row(row)
    raise StackBusy(await busy_text(conn, deployment.stack))


async def append(conn: aiosqlite.Connection, event: Event) -> None:
    values = event.model_dump(mode="json")
    values["at"], values["data"] = iso(event.at), json.dumps(values["data"])
    await conn.execute(APPEND_EVENT, values)
