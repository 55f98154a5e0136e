"""Databases for the card ledger's tests: a deployer store and ledgers on it, opened as the
bot's processes open them; requests and transitions written as the deployer writes them."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import asyncpg
import pytest

from bot.ledger import Card, CardLedger, MemoryLedger, PostgresLedger, SqliteLedger
from deployer.adapters.stores.memory import MemoryStore
from deployer.adapters.stores.postgres import PostgresStore
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.core.models import Deployment, Event, StackSpec
from deployer.core.states import DeploymentState
from deployer.ports import Store
from tests.deployer.conftest import PG_URL

T0 = datetime(2026, 11, 26, 22, 10, tzinfo=UTC)


@dataclass
class Database:
    """One database, opened as each process of the bot opens it: the deployer's store, then
    a ledger on it. Memory: one store and one ledger, shared (as one database would be)."""

    kind: str
    where: str  # the SQLite file, or the PostgreSQL schema
    opened: AsyncExitStack = field(default_factory=AsyncExitStack)
    _memory: tuple[Store, CardLedger] | None = None

    async def store(self) -> Store:
        if self.kind == "memory":
            return (await self.replica())[0]
        if self.kind == "sqlite":
            store: Store = await SqliteStore.open(self.where)
        else:
            store = await PostgresStore.open(PG_URL, server_settings=self.search_path)
        self.opened.push_async_callback(store.close)
        return store

    async def ledger(self, store: Store, **follow: Any) -> CardLedger:
        """A ledger on `store` (memory: the shared one; `follow`, its clock or grace, makes
        it anew)."""
        if self.kind == "memory":
            if follow:
                self._memory = (store, MemoryLedger(store, **follow))
            return (await self.replica())[1]
        if self.kind == "sqlite":
            ledger: CardLedger = await SqliteLedger.open(self.where, store, **follow)
        else:
            ledger = await PostgresLedger.open(PG_URL, store, server_settings=self.search_path,
                                               **follow)  # fmt: skip
        self.opened.push_async_callback(ledger.close)
        return ledger

    async def replica(self) -> tuple[Store, CardLedger]:
        if self.kind == "memory":
            if self._memory is None:
                store = MemoryStore()
                self._memory = (store, MemoryLedger(store))
            return self._memory
        store = await self.store()
        return store, await self.ledger(store)

    @property
    def search_path(self) -> dict[str, str]:
        return {"search_path": self.where}

    async def execute(self, sql: str) -> None:
        """A statement on the database itself, as a previous release would have written."""
        if self.kind == "sqlite":
            async with aiosqlite.connect(self.where) as conn:
                await conn.execute(sql)
                await conn.commit()
        else:
            conn = await asyncpg.connect(PG_URL, server_settings=self.search_path)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()


with_schema = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


def make(stack: str = "alice", *, at: datetime = T0, **fields: object) -> Deployment:
    spec = StackSpec(name=stack, project_name=f"ai-stack-{stack}", app_name=f"app-{stack}",
                     host=f"{stack}.example.com", image="nginx:1", container_port=80)  # fmt: skip
    values: dict[str, object] = {"stack": stack, "spec": spec, "requester": "U1",
                                 "created_at": at, "updated_at": at}  # fmt: skip
    return Deployment.model_validate(values | fields)


def said(d: Deployment, kind: str) -> Event:
    return Event(deployment_id=d.id, stack=d.stack, kind=kind, state=kind, at=T0)


async def request(store: Store, stack: str = "alice", **fields: object) -> Deployment:
    """A request as the deployer stores it: with its first event, in one write."""
    draft = make(stack, **fields)
    return await store.create(draft, events=[said(draft, "deployment.requested")])


async def moved(store: Store, d: Deployment, target: DeploymentState) -> Deployment:
    """A transition as the journal makes it: with its event, in one write."""
    return await store.transition(d, target, event=said(d, f"deployment.{target}"))


def ids(cards: list[Card]) -> list[str]:
    return [card.deployment_id for card in cards]
