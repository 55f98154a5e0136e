"""The SQL of the PostgresStore (postgres.py): its statements, and the helpers that run
them on a connection inside the caller's transaction (look-ups, the live stack that follows a
transition, the refusal after a conflict, appending an event). Nothing here opens a
connection or a transaction, or reads the clock: the store does, and passes in the times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deployer.core.models import Deployment, Event
from deployer.core.states import DeploymentState
from deployer.errors import NotFound, StackBusy
from deployer.storage import utc

from .common import (
    DEPLOYMENT_COLUMNS,
    busy_message,
    busy_unknown,
    deployment_from_row,
    live_change,
)

# -- statements ------------------------------------------------------------------------------


def insert_statement(columns: tuple[str, ...]) -> str:
    places = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO deployments ({', '.join(columns)}) VALUES ({places}) RETURNING *"


INSERT_COLUMNS = DEPLOYMENT_COLUMNS
INSERT = insert_statement(INSERT_COLUMNS)

TRANSITION = """UPDATE deployments
   SET state = $4, version = version + 1, updated_at = $5, active_stack = $6, retry_at = $10,
       rollback_attempts = rollback_attempts + $11,
       error = coalesce($7, error), leftovers = coalesce($8, leftovers),
       approver = coalesce($9, approver)
 WHERE id = $1 AND version = $2 AND state = $3
RETURNING *"""

# A deploy that succeeded: the stack is live, running and made of it; an owner it had is
# kept, and so is its expiry unless the deploy brings a new one (then it is reminded again).
MAKE_LIVE = """INSERT INTO live_stacks (stack, owner, owner_since, deployment_id, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stack) DO UPDATE SET deployment_id = excluded.deployment_id, stopped_at = NULL,
    expires_at = coalesce(excluded.expires_at, live_stacks.expires_at),
    noticed_for = CASE WHEN excluded.expires_at IS NULL THEN live_stacks.noticed_for END"""

RUN_LIVE = """UPDATE live_stacks SET stopped_at = NULL,
    expires_at = coalesce($2::timestamptz, expires_at),
    noticed_for = CASE WHEN $2::timestamptz IS NULL THEN noticed_for END
 WHERE stack = $1"""

# Releases are numbered per stack; one deployment holds a stack at a time, so two never race.
NUMBER_RELEASE = """UPDATE deployments
   SET release = (SELECT coalesce(max(release), 0) + 1 FROM deployments WHERE stack = $1)
 WHERE id = $2
RETURNING *"""

EXTEND = """UPDATE live_stacks SET expires_at = $2, noticed_for = NULL WHERE stack = $1
RETURNING *"""

MARK_NOTICED = """UPDATE live_stacks SET noticed_for = expires_at
 WHERE stack = $1 AND expires_at = $2 AND noticed_for IS DISTINCT FROM expires_at
RETURNING stack"""

TRANSFER = """UPDATE live_stacks SET owner = $3, owner_since = $4
 WHERE stack = $1 AND owner = $2
RETURNING *"""

LATEST = """SELECT DISTINCT ON (stack) * FROM deployments
 ORDER BY stack, created_at DESC, id DESC"""

SAVE_PHASE = """INSERT INTO phases (deployment_id, name, state, attempt, outputs,
    started_at, finished_at, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (deployment_id, name) DO UPDATE SET
    state = excluded.state, attempt = excluded.attempt, outputs = excluded.outputs,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    error = excluded.error"""

APPEND_EVENT = """INSERT INTO events (deployment_id, stack, kind, at, actor, phase, state,
    duration, idx, total, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""

EVENT_COLUMNS = (
    "id AS seq, deployment_id, stack, kind, at, actor, phase, state, duration, idx, total, data"
)

# Needs work and nobody holds a live lease (the states mirror common.LEASED_STATES).
CLAIMABLE = """SELECT d.* FROM deployments AS d
  LEFT JOIN leases AS l ON l.deployment_id = d.id
 WHERE (l.expires_at IS NULL OR l.expires_at <= $1)
   AND (d.state IN ('queued', 'running', 'rolling_back', 'destroying')
        OR (d.state = 'rollback_failed' AND d.retry_at <= $1))
 ORDER BY d.created_at, d.id
 LIMIT 1
 FOR UPDATE OF d SKIP LOCKED"""

# Takes the lease unless someone holds a live one: the arbiter when two claimers saw the
# same row in their snapshots (ON CONFLICT reads the latest committed lease).
TAKE_LEASE = """INSERT INTO leases (deployment_id, owner, expires_at, heartbeat_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (deployment_id) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at,
    heartbeat_at = excluded.heartbeat_at
 WHERE leases.expires_at <= excluded.heartbeat_at
RETURNING deployment_id"""


# -- helpers (each runs inside the caller's transaction) -------------------------------------


async def by_key(conn: Any, key: str) -> Deployment | None:
    row = await conn.fetchrow(
        """SELECT d.* FROM dedup_keys AS k JOIN deployments AS d ON d.id = k.deployment_id
            WHERE k.key = $1""",
        key,
    )
    return None if row is None else deployment_from_row(row)


async def by_id(conn: Any, deployment_id: str) -> Deployment | None:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment_id)
    return None if row is None else deployment_from_row(row)


async def holder(conn: Any, stack: str) -> Deployment | None:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE active_stack = $1", stack)
    return None if row is None else deployment_from_row(row)


async def keep_live(
    conn: Any, moved: Deployment, target: DeploymentState, now: datetime
) -> Any | None:
    """The live stack follows the deployment, in the transition's own transaction (`now`:
    when a stack nobody owned yet becomes its requester's). Returns the deployment's row
    when it became a release."""
    change = live_change(moved, target, now)
    if change is None:
        return None
    if change.kind == "end":
        await conn.execute("DELETE FROM live_stacks WHERE stack = $1", moved.stack)
    elif change.kind == "stop":
        await conn.execute("UPDATE live_stacks SET stopped_at = $2 WHERE stack = $1",
                           moved.stack, now)  # fmt: skip
    elif change.kind == "run":
        await conn.execute(RUN_LIVE, moved.stack, change.expires_at)
    else:
        await conn.execute(MAKE_LIVE, moved.stack, moved.requester, now, moved.id,
                           change.expires_at)  # fmt: skip
        return await conn.fetchrow(NUMBER_RELEASE, moved.stack, moved.id)
    return None


async def current(conn: Any, deployment_id: str) -> Deployment:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment_id)
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    return deployment_from_row(row)


async def busy_text(conn: Any, stack: str) -> str:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE active_stack = $1", stack)
    return busy_unknown(stack) if row is None else busy_message(deployment_from_row(row))


async def after_conflict(conn: Any, deployment: Deployment, dedup_key: str | None) -> Deployment:
    """The insert collided: a replayed request, a retried create, or the stack is held."""
    if dedup_key is not None and (known := await by_key(conn, dedup_key)):
        return known
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment.id)
    if row is not None:
        return deployment_from_row(row)
    raise StackBusy(await busy_text(conn, deployment.stack))


async def append(conn: Any, event: Event) -> None:
    data = event.model_dump(mode="json")["data"]
    await conn.execute(
        APPEND_EVENT,
        event.deployment_id,
        event.stack,
        event.kind,
        utc(event.at),
        event.actor,
        event.phase,
        event.state,
        event.duration,
        event.index,
        event.total,
        data,
    )
