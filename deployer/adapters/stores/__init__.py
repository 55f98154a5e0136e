"""open_store: AISTACK_DATABASE_URL -> an open Store (memory, SQLite or PostgreSQL).

memory://                      in-process, gone at exit (tests, `aistack --sandbox`)
sqlite:///./aistack.db         a file relative to the working directory
sqlite:////var/lib/aistack.db  an absolute path (four slashes)
postgresql://user@host/db      PostgreSQL (also postgres://); shared by replicas
"""

from __future__ import annotations

from deployer.errors import ConfigError
from deployer.ports import Clock, Store
from deployer.storage import VARIABLE, sqlite_path

from .memory import MemoryStore
from .postgres import PostgresStore
from .sqlite import SqliteStore

_EXAMPLES = "sqlite:///./aistack.db, sqlite:////abs/path.db, postgresql://... or memory://"


async def open_store(url: str, *, clock: Clock | None = None) -> Store:
    """Open (and migrate) the store the URL names; it stamps its writes with `clock` (the
    system's by default). The URL never appears in an error text."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "memory":
        return MemoryStore(clock=clock)
    if scheme == "sqlite":
        return await SqliteStore.open(sqlite_path(url), clock=clock)
    if scheme in ("postgresql", "postgres"):
        return await PostgresStore.open(url, clock=clock)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise ConfigError(f"{VARIABLE} has {shown}; use one of {_EXAMPLES}")
