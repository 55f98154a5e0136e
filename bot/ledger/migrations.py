"""The card ledger's schema migrations: forward-only, recorded in `slack_schema_migrations`.

Applied when a ledger opens, after the deployer's store has opened (and migrated) the same
database. Idempotent and safe with several processes starting at once, as the deployer's
(deployer/adapters/stores/migrations.py): SQLite holds the write lock (`BEGIN IMMEDIATE`),
PostgreSQL a transaction-scoped advisory lock of its own, while they check and apply.
Never edit a released migration: add the next version.

A step may depend on the deployer's schema (`needs`): it runs only when those columns exist,
else its `otherwise` does. That is the one place the ledger reads the deployer's tables, once,
to take over what they held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True)
class Step:
    sql: str
    needs: tuple[tuple[str, str], ...] = ()  # (table, column) pairs that must exist
    otherwise: str | None = None


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[Step, ...]
    postgres: tuple[Step, ...]


# The deployer's migration 5 made these three; a database it never ran on gets them here.
_SQLITE_ADOPTED = (
    """CREATE TABLE IF NOT EXISTS slack_leases (
        deployment_id TEXT NOT NULL,
        kind          TEXT NOT NULL,
        owner         TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        PRIMARY KEY (deployment_id, kind)
    )""",
    """CREATE TABLE IF NOT EXISTS slack_threads (
        deployment_id  TEXT PRIMARY KEY,
        posted_through INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS slack_channels (
        channel      TEXT PRIMARY KEY,
        next_post_at TEXT NOT NULL
    )""",
)

_POSTGRES_ADOPTED = (
    """CREATE TABLE IF NOT EXISTS slack_leases (
        deployment_id text NOT NULL,
        kind          text NOT NULL,
        owner         text NOT NULL,
        expires_at    timestamptz NOT NULL,
        PRIMARY KEY (deployment_id, kind)
    )""",
    """CREATE TABLE IF NOT EXISTS slack_threads (
        deployment_id  text PRIMARY KEY,
        posted_through bigint NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS slack_channels (
        channel      text PRIMARY KEY,
        next_post_at timestamptz NOT NULL
    )""",
)

# One row per request with a channel: where its card goes, its message once posted, the
# version it last showed; `seen` is the newest event of the deployment the ledger has read,
# `checked` the `seen` at which the card was last found current (bot/ledger/follow.py).
_CARDS = """CREATE TABLE slack_cards (
    deployment_id {text} PRIMARY KEY,
    channel       {text} NOT NULL,
    ts            {text},
    version       integer NOT NULL DEFAULT -1,
    seen          {seq} NOT NULL DEFAULT 0,
    checked       {seq} NOT NULL DEFAULT 0
)"""
_UNPOSTED = "CREATE INDEX slack_cards_unposted ON slack_cards (seen) WHERE ts IS NULL"
_CURSOR = """CREATE TABLE slack_cursor (
    name       {text} PRIMARY KEY,
    through    {seq} NOT NULL,
    pending    {seq},
    pending_at {time}
)"""

# Start reading the log where it ends now, and take over every card the deployments' own
# columns held (message_ts, card_version: unused from now on) with the newest event of each:
# a thread with replies due and a card behind its deployment are found as before. The cursor
# goes first: on PostgreSQL each statement reads what was committed when it began, so an
# event committed between the two is read again by the ledger rather than missed.
_CURSOR_FROM_LOG = """INSERT INTO slack_cursor (name, through)
SELECT 'events', coalesce(max(id), 0) FROM events"""
_CURSOR_AT_START = "INSERT INTO slack_cursor (name, through) VALUES ('events', 0)"
_CARDS_FROM_DEPLOYMENTS = """INSERT INTO slack_cards
    (deployment_id, channel, ts, version, seen, checked)
SELECT d.id, d.channel, d.message_ts, d.card_version, coalesce(e.last, 0),
       CASE WHEN d.message_ts IS NOT NULL AND d.card_version < d.version THEN -1
            ELSE coalesce(e.last, 0) END
  FROM deployments AS d
  LEFT JOIN (SELECT deployment_id, max(id) AS last FROM events GROUP BY deployment_id) AS e
    ON e.deployment_id = d.id
 WHERE d.channel IS NOT NULL"""
_OLD_CARD_COLUMNS = (
    ("deployments", "channel"),
    ("deployments", "message_ts"),
    ("deployments", "card_version"),
    ("deployments", "version"),
    ("events", "id"),
)


def _cards(text: str, seq: str, time: str) -> tuple[Step, ...]:
    return (
        Step(_CARDS.format(text=text, seq=seq)),
        Step(_UNPOSTED),
        Step(_CURSOR.format(text=text, seq=seq, time=time)),
        Step(_CURSOR_FROM_LOG, needs=(("events", "id"),), otherwise=_CURSOR_AT_START),
        Step(_CARDS_FROM_DEPLOYMENTS, needs=_OLD_CARD_COLUMNS),
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "slack leases, threads, channels adopted; cards and the event cursor",
        tuple(Step(sql) for sql in _SQLITE_ADOPTED) + _cards("TEXT", "INTEGER", "TEXT"),
        tuple(Step(sql) for sql in _POSTGRES_ADOPTED) + _cards("text", "bigint", "timestamptz"),
    ),
)

_SQLITE_RECORD = """CREATE TABLE IF NOT EXISTS slack_schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""

_POSTGRES_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('aistack.slack_migrations:' || current_schema()))"
)

_POSTGRES_RECORD = """CREATE TABLE IF NOT EXISTS slack_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def _pending(applied: set[int]) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version not in applied]


async def migrate_sqlite(conn: aiosqlite.Connection) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn` is in autocommit mode."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(_SQLITE_RECORD)
        async with conn.execute("SELECT version FROM slack_schema_migrations") as cursor:
            applied = {int(row[0]) for row in await cursor.fetchall()}
        done = []
        for migration in _pending(applied):
            for step in migration.sqlite:
                if sql := await _chosen(step, lambda t, c: _sqlite_has(conn, t, c)):
                    await conn.execute(sql)
            await conn.execute(
                "INSERT INTO slack_schema_migrations (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )
            done.append(migration.version)
    except BaseException:
        if conn.in_transaction:
            await conn.rollback()
        raise
    await conn.execute("COMMIT")
    return done


async def migrate_postgres(conn: Any) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn`: an asyncpg connection."""
    async with conn.transaction():
        await conn.execute(_POSTGRES_LOCK)
        await conn.execute(_POSTGRES_RECORD)
        rows = await conn.fetch("SELECT version FROM slack_schema_migrations")
        done = []
        for migration in _pending({int(row["version"]) for row in rows}):
            for step in migration.postgres:
                if sql := await _chosen(step, lambda t, c: _postgres_has(conn, t, c)):
                    await conn.execute(sql)
            await conn.execute(
                "INSERT INTO slack_schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
    return done


async def _chosen(step: Step, has: Callable[[str, str], Awaitable[bool]]) -> str | None:
    """The step's statement, or its `otherwise` when a column it needs is missing."""
    for table, column in step.needs:
        if not await has(table, column):
            return step.otherwise
    return step.sql


async def _sqlite_has(conn: aiosqlite.Connection, table: str, column: str) -> bool:
    sql = "SELECT 1 FROM pragma_table_info(?) WHERE name = ?"
    async with conn.execute(sql, (table, column)) as cursor:
        return await cursor.fetchone() is not None


async def _postgres_has(conn: Any, table: str, column: str) -> bool:
    found = await conn.fetchval(
        """SELECT 1 FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2""",
        table,
        column,
    )
    return found is not None
