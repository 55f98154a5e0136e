"""open_store: AISTACK_DATABASE_URL -> an open Store (memory, SQLite or PostgreSQL).

memory://                      in-process, gone at exit (tests, `aistack --sandbox`)
sqlite:///./aistack.db         a file relative to the working directory
sqlite:////var/lib/aistack.db  an absolute path (four slashes)
postgresql://user@host/db      PostgreSQL (also postgres://); shared by replicas
"""

from __future__ import annotations

from pathlib import Path

from deployer.errors import ConfigError
from deployer.ports import Store

from .memory import MemoryStore
from .postgres import PostgresStore
from .sqlite import SqliteStore

VARIABLE = "AISTACK_DATABASE_URL"
_SQLITE = "sqlite:///"
_EXAMPLES = "sqlite:///./aistack.db, sqlite:////abs/path.db, postgresql://... or memory://"


async def open_store(url: str) -> Store:
    """Open (and migrate) the store the URL names. The URL never appears in an error text."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return await SqliteStore.open(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        return await PostgresStore.open(url)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise ConfigError(f"{VARIABLE} has {shown}; use one of {_EXAMPLES}")


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL, checked to live in an existing directory."""
    if not url.startswith(_SQLITE) or not url.removeprefix(_SQLITE):
        raise ConfigError(f"{VARIABLE} must look like sqlite:///./aistack.db or sqlite:////abs.db")
    path = Path(url.removeprefix(_SQLITE))
    if not path.parent.is_dir():
        raise ConfigError(f"{VARIABLE} points into {path.parent}, which is not a directory")
    return path
