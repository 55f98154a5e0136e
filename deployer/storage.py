"""The database plumbing every store stands on: the deployer's stores and the bot's card
ledger (bot/ledger/) alike. Where the database is (AISTACK_DATABASE_URL), UTC timestamps,
writes that run to their end when their caller is cancelled, SQLite's WAL switch and its
busy answer, PostgreSQL's failures in the aistack error tree, and the migration runner.

Migrations are forward-only and numbered; applied versions are recorded in a table of the
schema's own. Applying is idempotent and safe with several processes starting at once:
SQLite holds the write lock (`BEGIN IMMEDIATE`), PostgreSQL a transaction-scoped advisory
lock keyed on the schema, while they check and apply. Never edit a released migration.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import aiosqlite
import asyncpg

from deployer.errors import AuthError, ConfigError, TransientError

P = ParamSpec("P")
T = TypeVar("T")
VARIABLE = "AISTACK_DATABASE_URL"
_SQLITE = "sqlite:///"


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL, checked to live in an existing directory."""
    if not url.startswith(_SQLITE) or not url.removeprefix(_SQLITE):
        raise ConfigError(f"{VARIABLE} must look like sqlite:///./aistack.db or sqlite:////abs.db")
    path = Path(url.removeprefix(_SQLITE))
    if not path.parent.is_dir():
        raise ConfigError(f"{VARIABLE} points into {path.parent}, which is not a directory")
    return path


def describe_dsn(dsn: str) -> str:
    """host:port/database of a DSN, for error texts: never the user or the password."""
    parts = urlsplit(dsn)
    return f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is a bug, not a guess."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """SQLite's timestamp text: UTC, fixed width, so text order is time order."""
    return None if moment is None else utc(moment).isoformat(timespec="microseconds")


def runs_to_end(write: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Let a store write finish even when its caller is cancelled, then pass the cancellation on.

    That happens whenever one saga phase fails fast while another is writing. Cut off
    half-way, a write is left in flight: aiosqlite's thread still runs the BEGIN the caller
    stopped waiting for, so the connection stays inside a transaction and the next write fails
    with "cannot start a transaction within a transaction"; asyncpg returns at once while the
    COMMIT it sent may still land after the caller has moved on, and its own rollback can be
    interrupted by a second cancellation. Run to its end, the write commits (or rolls back on
    its own error) and the cancellation lands just after it, as if it had come a moment later:
    never half a write, never one landing late, and the connection is clean for the next.
    A write whose caller is cancelled while it waits for the connection is still made. The
    cost: a cancelled caller waits for its write (milliseconds; at worst the busy timeout).
    """

    @functools.wraps(write)
    async def to_the_end(*args: P.args, **kwargs: P.kwargs) -> T:
        return await finish(write(*args, **kwargs))

    return to_the_end


async def finish(work: Coroutine[Any, Any, T]) -> T:
    """Await `work` in its own task until it ends, however often the caller is cancelled
    meanwhile; then raise the caller's cancellation, if any, else return the result."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is None:
        return task.result()
    failure = None if task.cancelled() else task.exception()  # retrieved: no "never retrieved"
    raise cancelled from failure


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included (the low byte is the primary)."""
    code = getattr(exc, "sqlite_errorcode", None)  # set by errors of the SQLite library
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def enable_wal(conn: aiosqlite.Connection, attempts: int = 50) -> None:
    """Switch to WAL. The switch needs a moment alone with the file and SQLite does not
    always wait for it (busy_timeout is skipped), so two processes opening a new database at
    once would see "database is locked": try again briefly instead."""
    for attempt in range(attempts):
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == attempts - 1:
                raise
            # Real time on purpose, not the Clock: a lock retry while the store opens, before
            # (and beneath) any clock the composition root hands out.
            await asyncio.sleep(0.02)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Driver and network failures, in the aistack error tree."""
    try:
        yield
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise AuthError(f"{what} refused our credentials: {type(exc).__name__}") from None
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError) as exc:
        raise TransientError(f"{what} unreachable: {type(exc).__name__}") from None
    except (asyncpg.TransactionRollbackError, asyncpg.CannotConnectNowError) as exc:
        raise TransientError(f"{what} asked us to retry: {type(exc).__name__}") from None


Migrate = Callable[[aiosqlite.Connection], Awaitable[list[int]]]


class SqliteDatabase:
    """One SQLite file on one autocommit connection, used by one task at a time: reads, and
    write transactions that hold the database write lock from their start. The store and the
    card ledger each open their own on the same file."""

    def __init__(self, conn: aiosqlite.Connection, applied: list[int]) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.applied = applied  # the migrations this open applied (tests, logs)

    @classmethod
    async def open(cls, path: str | Path, busy_timeout_ms: int, migrate: Migrate) -> SqliteDatabase:
        """Rows by name, a busy timeout, WAL (readers never wait for the writer), foreign
        keys on, and `migrate` applied; the connection is closed again if any of it fails."""
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await enable_wal(conn)
            await conn.execute("PRAGMA foreign_keys = ON")
            return cls(conn, await migrate(conn))
        except BaseException:
            await conn.close()
            raise

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; SQLite's busy answer (another process holds the lock past
        the timeout) is a TransientError."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    await self._conn.rollback()
                if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                    raise TransientError(f"SQLite database is busy: {exc}") from exc
                raise

    async def rows(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        """A read's rows, as dicts; it runs to its end even if its caller is cancelled."""
        return await finish(self._select(query, params))

    async def _select(self, query: str, params: Any) -> list[dict[str, Any]]:
        async with self._lock, self._conn.execute(query, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]


@dataclass(frozen=True)
class Step:
    """A statement that may depend on another schema's columns (`needs`): it runs only when
    they exist, else its `otherwise` does (taking over what an older schema held)."""

    sql: str
    needs: tuple[tuple[str, str], ...] = ()  # (table, column) pairs that must exist
    otherwise: str | None = None


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str | Step, ...]
    postgres: tuple[str | Step, ...]


@dataclass(frozen=True)
class Schema:
    """A set of migrations, the table that records which are applied, and the name of the
    PostgreSQL lock that serialises processes applying them."""

    record: str
    lock: str
    migrations: Sequence[Migration]

    def pending(self, applied: set[int]) -> list[Migration]:
        return [m for m in self.migrations if m.version not in applied]


async def migrate_sqlite(conn: aiosqlite.Connection, schema: Schema) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn` is in autocommit mode."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(f"""CREATE TABLE IF NOT EXISTS {schema.record} (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )""")
        async with conn.execute(f"SELECT version FROM {schema.record}") as cursor:
            applied = {int(row[0]) for row in await cursor.fetchall()}
        done = []
        for migration in schema.pending(applied):
            for step in migration.sqlite:
                if sql := await _chosen(step, lambda t, c: _sqlite_has(conn, t, c)):
                    await conn.execute(sql)
            await conn.execute(
                f"INSERT INTO {schema.record} (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )
            done.append(migration.version)
    except BaseException:
        if conn.in_transaction:
            await conn.rollback()
        raise
    await conn.execute("COMMIT")
    return done


async def migrate_postgres(conn: Any, schema: Schema) -> list[int]:
    """Apply what is missing; return the versions applied now. `conn`: an asyncpg connection."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1 || current_schema()))", f"{schema.lock}:"
        )
        await conn.execute(f"""CREATE TABLE IF NOT EXISTS {schema.record} (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )""")
        rows = await conn.fetch(f"SELECT version FROM {schema.record}")
        done = []
        for migration in schema.pending({int(row["version"]) for row in rows}):
            for step in migration.postgres:
                if sql := await _chosen(step, lambda t, c: _postgres_has(conn, t, c)):
                    await conn.execute(sql)
            await conn.execute(
                f"INSERT INTO {schema.record} (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
    return done


async def _chosen(step: str | Step, has: Callable[[str, str], Awaitable[bool]]) -> str | None:
    """The step's statement, or its `otherwise` when a column it needs is missing."""
    if isinstance(step, str):
        return step
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
