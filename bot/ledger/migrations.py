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

from typing import Any

import aiosqlite

from deployer import storage
from deployer.storage import Migration, Schema, Step

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

SCHEMA = Schema("slack_schema_migrations", "aistack.slack_migrations", MIGRATIONS)


async def migrate_sqlite(conn: aiosqlite.Connection) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn` is in autocommit mode."""
    return await storage.migrate_sqlite(conn, SCHEMA)


async def migrate_postgres(conn: Any) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn`: an asyncpg connection."""
    return await storage.migrate_postgres(conn, SCHEMA)
