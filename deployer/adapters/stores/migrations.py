"""Versioned, forward-only schema migrations for the SQL stores, applied when a store opens.

Each migration has one text per dialect, as a tuple of statements (no script splitting).
Applied versions are recorded in `schema_migrations`. Applying is idempotent and safe with
several processes starting at once: SQLite holds the write lock (`BEGIN IMMEDIATE`),
PostgreSQL a transaction-scoped advisory lock keyed on the schema, while it checks and applies.
Never edit a released migration: add the next version.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from deployer import storage
from deployer.storage import Migration, Schema

# `active_stack` is the stack while the deployment holds it (state in HOLDING) and NULL
# otherwise: the unique index lets the database, not a check-then-insert, refuse a second
# active deployment of a stack (NULLs never collide).
_SQLITE_1 = (
    """CREATE TABLE deployments (
        id           TEXT PRIMARY KEY,
        stack        TEXT NOT NULL,
        operation    TEXT NOT NULL,
        state        TEXT NOT NULL,
        version      INTEGER NOT NULL,
        requester    TEXT NOT NULL,
        approver     TEXT,
        channel      TEXT,
        message_ts   TEXT,
        spec         TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        error        TEXT,
        leftovers    TEXT NOT NULL DEFAULT '[]',
        active_stack TEXT,
        retry_at     TEXT
    )""",
    "CREATE UNIQUE INDEX deployments_one_active ON deployments (active_stack)",
    "CREATE INDEX deployments_stack_created ON deployments (stack, created_at)",
    "CREATE INDEX deployments_state ON deployments (state)",
    # Insertion order of phases is the table's rowid (an upsert keeps it).
    """CREATE TABLE phases (
        deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        state         TEXT NOT NULL,
        attempt       INTEGER NOT NULL,
        outputs       TEXT NOT NULL,
        started_at    TEXT,
        finished_at   TEXT,
        error         TEXT,
        PRIMARY KEY (deployment_id, name)
    )""",
    # The audit trail: no foreign key, so it also records refused or deleted deployments.
    """CREATE TABLE events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id TEXT NOT NULL,
        stack         TEXT NOT NULL,
        kind          TEXT NOT NULL,
        at            TEXT NOT NULL,
        actor         TEXT NOT NULL,
        phase         TEXT,
        state         TEXT,
        duration      REAL,
        idx           INTEGER,
        total         INTEGER,
        data          TEXT NOT NULL
    )""",
    "CREATE INDEX events_stack ON events (stack, id)",
    "CREATE INDEX events_deployment ON events (deployment_id, id)",
    """CREATE TABLE dedup_keys (
        key           TEXT PRIMARY KEY,
        deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        created_at    TEXT NOT NULL
    )""",
    """CREATE TABLE leases (
        deployment_id TEXT PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
        owner         TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        heartbeat_at  TEXT NOT NULL
    )""",
)

_POSTGRES_1 = (
    """CREATE TABLE deployments (
        id           text PRIMARY KEY,
        stack        text NOT NULL,
        operation    text NOT NULL,
        state        text NOT NULL,
        version      integer NOT NULL,
        requester    text NOT NULL,
        approver     text,
        channel      text,
        message_ts   text,
        spec         jsonb NOT NULL,
        created_at   timestamptz NOT NULL,
        updated_at   timestamptz NOT NULL,
        error        text,
        leftovers    jsonb NOT NULL DEFAULT '[]',
        active_stack text,
        retry_at     timestamptz
    )""",
    "CREATE UNIQUE INDEX deployments_one_active ON deployments (active_stack)",
    "CREATE INDEX deployments_stack_created ON deployments (stack, created_at)",
    "CREATE INDEX deployments_state ON deployments (state)",
    """CREATE TABLE phases (
        deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        name          text NOT NULL,
        seq           bigint GENERATED ALWAYS AS IDENTITY,
        state         text NOT NULL,
        attempt       integer NOT NULL,
        outputs       jsonb NOT NULL,
        started_at    timestamptz,
        finished_at   timestamptz,
        error         text,
        PRIMARY KEY (deployment_id, name)
    )""",
    """CREATE TABLE events (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        deployment_id text NOT NULL,
        stack         text NOT NULL,
        kind          text NOT NULL,
        at            timestamptz NOT NULL,
        actor         text NOT NULL,
        phase         text,
        state         text,
        duration      double precision,
        idx           integer,
        total         integer,
        data          jsonb NOT NULL
    )""",
    "CREATE INDEX events_stack ON events (stack, id)",
    "CREATE INDEX events_deployment ON events (deployment_id, id)",
    """CREATE TABLE dedup_keys (
        key           text PRIMARY KEY,
        deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        created_at    timestamptz NOT NULL
    )""",
    """CREATE TABLE leases (
        deployment_id text PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
        owner         text NOT NULL,
        expires_at    timestamptz NOT NULL,
        heartbeat_at  timestamptz NOT NULL
    )""",
)

# The version of the deployment its Slack card last showed: a card behind its deployment
# (the bot died between the two) is found and redrawn, so the final state always arrives.
# Unused since the bot's card ledger took it over with message_ts (stores/common.py).
_CARD_VERSION = ("ALTER TABLE deployments ADD COLUMN card_version INTEGER NOT NULL DEFAULT -1",)

# A request waiting for approval no longer holds its stack (core/states.py HOLDING): free the
# ones that do. It only lets go of holds, so it cannot collide with the unique index, and a
# process of the previous release still running meanwhile finds the stack free, as it would
# after a rejection.
_REQUESTS_HOLD_NOTHING = ("UPDATE deployments SET active_stack = NULL WHERE state = 'requested'",)

# One row per live stack: who owns it (whoever first made it live, until a transfer) and the
# deployment whose ids it is made of. Filled from the audit trail, by the rule the records
# followed until now (the last successful deploy after the last destroy makes it live) and
# the new rule for the owner (the first successful deploy after that destroy), so no live
# stack of an existing database is left without an owner (gc would take it for an orphan).
_LIVE_FROM_HISTORY = """
WITH ends AS (
    SELECT stack, max(CASE WHEN kind = 'deployment.destroyed' THEN id END) AS destroyed
      FROM events
     WHERE kind IN ('deployment.succeeded', 'deployment.destroyed')
     GROUP BY stack
), lives AS (
    SELECT e.stack, min(e.id) AS first_id, max(e.id) AS last_id
      FROM events AS e JOIN ends ON ends.stack = e.stack
     WHERE e.kind = 'deployment.succeeded' AND e.id > coalesce(ends.destroyed, 0)
     GROUP BY e.stack
)
INSERT INTO live_stacks (stack, owner, owner_since, deployment_id)
SELECT lives.stack, d.requester, made.at, newest.deployment_id
  FROM lives
  JOIN events AS made ON made.id = lives.first_id
  JOIN deployments AS d ON d.id = made.deployment_id
  JOIN events AS newest ON newest.id = lives.last_id"""

_SQLITE_LIVE = (
    """CREATE TABLE live_stacks (
        stack         TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,
        owner_since   TEXT NOT NULL,
        deployment_id TEXT NOT NULL
    )""",
    _LIVE_FROM_HISTORY,
)

_POSTGRES_LIVE = (
    """CREATE TABLE live_stacks (
        stack         text PRIMARY KEY,
        owner         text NOT NULL,
        owner_since   timestamptz NOT NULL,
        deployment_id text NOT NULL
    )""",
    _LIVE_FROM_HISTORY,
)

# Slack's side of a deployment, kept apart from the engine's tables so it can move out whole:
# short leases (one replica posts a card, draws it, or posts its replies at a time), the
# thread's outbox cursor (replies posted through event id N), and each channel's next slot
# for a new message (one pace for every replica). Existing deployments count as replied
# through their last event: their threads are as complete as they will ever be.
# They did move out: the bot's card ledger adopts these tables (bot/ledger/migrations.py).
_SLACK_THREADS_FROM_HISTORY = """INSERT INTO slack_threads (deployment_id, posted_through)
SELECT deployment_id, max(id) FROM events GROUP BY deployment_id"""

_SQLITE_SLACK = (
    """CREATE TABLE slack_leases (
        deployment_id TEXT NOT NULL,
        kind          TEXT NOT NULL,
        owner         TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        PRIMARY KEY (deployment_id, kind)
    )""",
    """CREATE TABLE slack_threads (
        deployment_id  TEXT PRIMARY KEY,
        posted_through INTEGER NOT NULL
    )""",
    """CREATE TABLE slack_channels (
        channel      TEXT PRIMARY KEY,
        next_post_at TEXT NOT NULL
    )""",
    _SLACK_THREADS_FROM_HISTORY,
)

_POSTGRES_SLACK = (
    """CREATE TABLE slack_leases (
        deployment_id text NOT NULL,
        kind          text NOT NULL,
        owner         text NOT NULL,
        expires_at    timestamptz NOT NULL,
        PRIMARY KEY (deployment_id, kind)
    )""",
    """CREATE TABLE slack_threads (
        deployment_id  text PRIMARY KEY,
        posted_through bigint NOT NULL
    )""",
    """CREATE TABLE slack_channels (
        channel      text PRIMARY KEY,
        next_post_at timestamptz NOT NULL
    )""",
    _SLACK_THREADS_FROM_HISTORY,
)

# How often each deployment has entered rollback_failed: the store counts it from now on (the
# pause before the next retry grows with it); until now the worker counted the audit trail's
# `deployment.rollback_failed` events, so existing rows start from that count. The kind is
# spelled out: a migration is a record of the past and must not change with the code.
_ROLLBACK_ATTEMPTS = (
    "ALTER TABLE deployments ADD COLUMN rollback_attempts INTEGER NOT NULL DEFAULT 0",
    """UPDATE deployments SET rollback_attempts = (
        SELECT count(*) FROM events
         WHERE events.deployment_id = deployments.id AND events.kind = 'deployment.rollback_failed'
    ) WHERE id IN (SELECT deployment_id FROM events WHERE kind = 'deployment.rollback_failed')""",
)

# A stack's life between deploy and destroy: each successful deploy becomes a numbered
# release (existing ones are numbered in the order they succeeded), a deployment may bring a
# lifetime or put a release back, and a live stack has an expiry, the one its owner was
# reminded of, and since when it is stopped. Existing live stacks get no expiry: nobody was
# told they had one.
_RELEASES = """UPDATE deployments SET release = (
    SELECT count(*) FROM deployments AS o
     WHERE o.stack = deployments.stack AND o.operation = 'deploy' AND o.state = 'succeeded'
       AND (o.updated_at < deployments.updated_at
            OR (o.updated_at = deployments.updated_at AND o.id <= deployments.id))
) WHERE operation = 'deploy' AND state = 'succeeded'"""


def _lifecycle(real: str, stamp: str) -> tuple[str, ...]:
    return (
        f"ALTER TABLE deployments ADD COLUMN lifetime {real}",
        "ALTER TABLE deployments ADD COLUMN restores INTEGER",
        "ALTER TABLE deployments ADD COLUMN release INTEGER",
        _RELEASES,
        f"ALTER TABLE live_stacks ADD COLUMN expires_at {stamp}",
        f"ALTER TABLE live_stacks ADD COLUMN stopped_at {stamp}",
        f"ALTER TABLE live_stacks ADD COLUMN noticed_for {stamp}",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "deployments, phases, events, dedup keys, leases", _SQLITE_1, _POSTGRES_1),
    Migration(2, "card version", _CARD_VERSION, _CARD_VERSION),
    Migration(3, "requests hold nothing", _REQUESTS_HOLD_NOTHING, _REQUESTS_HOLD_NOTHING),
    Migration(4, "live stacks and their owners", _SQLITE_LIVE, _POSTGRES_LIVE),
    Migration(5, "slack leases, thread outbox, channel pace", _SQLITE_SLACK, _POSTGRES_SLACK),
    Migration(6, "rollback attempts", _ROLLBACK_ATTEMPTS, _ROLLBACK_ATTEMPTS),
    Migration(
        7,
        "releases, lifetimes, expiry and stopped stacks",
        _lifecycle("REAL", "TEXT"),
        _lifecycle("double precision", "timestamptz"),
    ),
)


async def migrate_sqlite(conn: aiosqlite.Connection) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn` is in autocommit mode."""
    return await storage.migrate_sqlite(conn, _schema())


async def migrate_postgres(conn: Any) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn`: an asyncpg connection."""
    return await storage.migrate_postgres(conn, _schema())


def _schema() -> Schema:
    # read at each call: tests replay an upgrade from an older list
    return Schema("schema_migrations", "aistack.migrations", MIGRATIONS)
