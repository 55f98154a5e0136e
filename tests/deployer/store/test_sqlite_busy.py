"""SQLite's write lock held by another connection: a TransientError, told by SQLite's code."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployer.adapters.stores.sqlite import SqliteStore
from deployer.errors import TransientError


async def test_a_write_lock_held_elsewhere_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = await SqliteStore.open(path, busy_timeout_ms=0)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        with pytest.raises(TransientError, match="SQLite database is busy"):
            await store.schedule_retry("d1", datetime.now(UTC))  # any write
    finally:
        other.close()
        await store.close()
