"""Task stores: a protocol and one module per database backend."""

from __future__ import annotations

from urllib.parse import urlsplit

from tasks.errors import ConfigurationError
from tasks.store.base import Inserted, Page, Reclaimed, Store

__all__ = ["Inserted", "Page", "Reclaimed", "Store", "create_store"]


def create_store(url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 10) -> Store:
    """The backend for a database URL: ``sqlite:///file`` or ``postgresql://...``."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from tasks.store.sqlite import SQLiteStore

        return SQLiteStore(url, synchronous=sqlite_synchronous)
    if scheme in {"postgres", "postgresql"}:
        try:
            from tasks.store.postgres import PostgresStore
        except ImportError as exc:  # asyncpg missing
            raise ConfigurationError(
                "TASKS_DATABASE_URL names PostgreSQL but asyncpg is not installed:"
                " pip install 'quart-taskqueue[postgres]'"
            ) from exc
        return PostgresStore(url, pool_size=pool_size)
    raise ConfigurationError(
        f"unsupported TASKS_DATABASE_URL scheme {scheme!r}: use sqlite:/// or postgresql://"
    )
