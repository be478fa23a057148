"""Durable storage for the management API: SQLite (embedded default) or PostgreSQL (a fleet)."""

from __future__ import annotations

from pathlib import Path

from iamgate.store.base import (
    ConflictError,
    Doc,
    Served,
    Store,
    StoreError,
    Transaction,
    UnstorableError,
    Watch,
    mask,
)

__all__ = [
    "ConflictError",
    "Doc",
    "Served",
    "Store",
    "StoreError",
    "Transaction",
    "UnstorableError",
    "Watch",
    "mask",
    "open_store",
    "url_problem",
]

SCHEMES = "sqlite:///FILE or postgresql://USER@HOST:PORT/DATABASE"


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a store URL, before anything is opened (None: nothing)."""
    if url.startswith("sqlite:///"):
        if url == "sqlite:///":
            return "no file name (sqlite:///iamgate.db, or sqlite:////abs/path.db)"
        return None
    if url.startswith(("postgresql://", "postgres://")):
        return None
    return f"not a store URL; use {SCHEMES}"


def open_store(url: str, base_dir: Path | None = None) -> Store:
    """Open (creating and migrating as needed) the store at ``url``:

    * ``sqlite:///relative/path.db`` (relative to ``base_dir``, or the working directory) or
      ``sqlite:////absolute/path.db``;
    * ``postgresql://user:password@host:5432/database`` (needs the ``postgres`` extra: psycopg).

    Raises :class:`StoreError` with a message fit for an operator.
    """
    problem = url_problem(url)
    if problem is not None:
        raise StoreError(f"{mask(url) or repr(url)}: {problem}")
    if url.startswith("sqlite:///"):
        from iamgate.store.sqlite import SqliteStore  # noqa: PLC0415 - by scheme

        path = Path(url[len("sqlite:///") :])
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        sqlite: Store = SqliteStore(path, url)
        return sqlite
    try:
        from iamgate.store.postgres import PostgresStore  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise StoreError(
            f"{mask(url)}: PostgreSQL stores need psycopg: pip install 'iamgate[postgres]' ({exc})"
        ) from None
    store: Store = PostgresStore(url)
    return store
