"""The bot's card ledger: where each card is, what it last showed, the leases that let one
replica at a time write it, the thread's outbox cursor and each channel's pace.

It lives on the database the deployer uses (AISTACK_DATABASE_URL), in tables of its own
(`slack_*`, migrated by bot/ledger/migrations.py), and learns of deployments through the
deployer's DeploymentReads only: open the deployer's store first, then the ledger on it.
"""

from __future__ import annotations

from bot.ledger.memory import MemoryLedger
from bot.ledger.port import Card, CardLedger
from bot.ledger.postgres import PostgresLedger
from bot.ledger.sqlite import SqliteLedger
from deployer import Clock, ConfigError, DeploymentReads
from deployer.storage import VARIABLE, sqlite_path

__all__ = ["Card", "CardLedger", "MemoryLedger", "PostgresLedger", "SqliteLedger", "open_ledger"]


async def open_ledger(url: str, reads: DeploymentReads, clock: Clock | None = None) -> CardLedger:
    """Open (and migrate) the ledger on the database the URL names, reading deployments
    through `reads` (the deployer's store, opened on the same URL)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "memory":
        return MemoryLedger(reads, clock=clock)
    if scheme == "sqlite":
        return await SqliteLedger.open(sqlite_path(url), reads, clock=clock)
    if scheme in ("postgresql", "postgres"):
        return await PostgresLedger.open(url, reads, clock=clock)
    raise ConfigError(f"{VARIABLE} names no database the card ledger can use")
