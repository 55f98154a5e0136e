"""Store backends for the contract suites: memory, SQLite (a temp file) and PostgreSQL.

Every PostgreSQL test gets its own schema (search_path set per connection) dropped after.
PostgreSQL unreachable: the tests skip, or fail when CI is set (CI must run them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from deployer.adapters.stores import common as store_common
from deployer.adapters.stores import migrations, postgres_sql, sqlite_sql
from deployer.adapters.stores.memory import MemoryStore
from deployer.adapters.stores.postgres import PostgresStore
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.ports import Clock, Store
from deployer.storage import describe_dsn

PG_URL = os.environ.get("AISTACK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_pg_problem: list[str | None] = []  # computed once per session


@dataclass
class Backend:
    """Opens stores on one backing: the same file, the same schema, the same memory."""

    kind: str
    opener: Callable[[Clock | None], Awaitable[Store]]
    opened: list[Store] = field(default_factory=list)

    async def open(self, clock: Clock | None = None) -> Store:
        store = await self.opener(clock)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


async def _pg_unreachable() -> str | None:
    if not _pg_problem:
        try:
            conn = await asyncpg.connect(PG_URL, timeout=3)
            await conn.close()
            _pg_problem.append(None)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            _pg_problem.append(
                f"{describe_dsn(PG_URL).replace(' at ', ' not reachable at ')} "
                f"({type(exc).__name__}; set AISTACK_TEST_POSTGRES_URL)"
            )
    return _pg_problem[0]


async def _require_postgres() -> None:
    problem = await _pg_unreachable()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI is set, so PostgreSQL is required: {problem}")
    pytest.skip(problem)


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    await _require_postgres()
    schema = f"aistack_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def _memory_backend() -> Backend:
    shared: list[MemoryStore] = []

    async def opener(clock: Clock | None) -> Store:
        if not shared:
            shared.append(MemoryStore(clock=clock))
        return shared[0]

    return Backend("memory", opener)


def _sqlite_backend(path: Path) -> Backend:
    async def opener(clock: Clock | None) -> Store:
        return await SqliteStore.open(path, clock=clock)

    return Backend("sqlite", opener)


def _postgres_backend(schema: str) -> Backend:
    async def opener(clock: Clock | None) -> Store:
        return await PostgresStore.open(PG_URL, server_settings={"search_path": schema},
                                        clock=clock)  # fmt: skip

    return Backend("postgres", opener)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with AsyncExitStack() as stack:
        if request.param == "postgres":
            made = _postgres_backend(await stack.enter_async_context(fresh_schema()))
        elif request.param == "sqlite":
            made = _sqlite_backend(tmp_path / "aistack.db")
        else:
            made = _memory_backend()
        stack.push_async_callback(made.close_all)
        yield made


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


def released_before(monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """The database and the code of a release before migration `version`: its migrations,
    and its insert, which knew no column a later migration added."""
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[: version - 1])
    columns = tuple(c for c in store_common.DEPLOYMENT_COLUMNS if c not in ("lifetime", "restores"))
    monkeypatch.setattr(sqlite_sql, "INSERT", sqlite_sql.insert_statement(columns))
    monkeypatch.setattr(postgres_sql, "INSERT", postgres_sql.insert_statement(columns))
    monkeypatch.setattr(postgres_sql, "INSERT_COLUMNS", columns)
