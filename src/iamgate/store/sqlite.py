"""The SQLite store: one file, no server; the embedded default.

Several processes may share the file (the gateway's workers, ``iamgate apply``, a second
gateway on the same machine): SQLite's own locking serialises writers (``BEGIN IMMEDIATE``,
waiting up to ``busy_timeout``), and WAL mode lets readers read a consistent snapshot while a
writer writes. Watchers poll the generation counter every 200 ms (a single-row read).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from iamgate.store.base import ConflictError, Doc, Served, StoreError, Watcher, check_storable
from iamgate.store.schema import SQLITE_MIGRATIONS

__all__ = ["SqliteStore"]

POLL_INTERVAL = 0.2


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _staged(tx: _Tx, stages: list[tuple[str, str, Doc]]) -> dict[tuple[str, str], Doc]:
    """The deployments a stage serves, and no others: an API's deployments stay in the store until
    deleted (as on API Gateway), and reading them all made every reload, and each worker's copy of
    the store's state, grow with every deployment ever made. One lookup by primary key each."""
    wanted = sorted({(api_id, str(doc.get("deploymentId") or "")) for api_id, _, doc in stages})
    found = ((key, tx.get("deployment", *key)) for key in wanted if key[1])
    return {key: doc for key, doc in found if doc is not None}


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.wrote = False

    def get(self, kind: str, api_id: str, id: str) -> Doc | None:
        row = self.conn.execute(
            "SELECT body FROM iamgate_objects WHERE kind = ? AND api_id = ? AND id = ?", (kind, api_id, id)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def page(self, kind: str, api_id: str, start: str, limit: int) -> list[tuple[str, Doc]]:
        rows = self.conn.execute(
            "SELECT id, body FROM iamgate_objects"
            " WHERE kind = ? AND api_id = ? AND id >= ? ORDER BY id LIMIT ?",
            (kind, api_id, start, limit),
        )
        return [(i, dict(json.loads(b))) for i, b in rows.fetchall()]

    def list(self, kind: str, api_id: str | None = None) -> list[tuple[str, str, Doc]]:
        if api_id is None:
            rows = self.conn.execute(
                "SELECT api_id, id, body FROM iamgate_objects WHERE kind = ? ORDER BY api_id, id", (kind,)
            )
        else:
            rows = self.conn.execute(
                "SELECT api_id, id, body FROM iamgate_objects WHERE kind = ? AND api_id = ? ORDER BY id",
                (kind, api_id),
            )
        return [(a, i, dict(json.loads(b))) for a, i, b in rows.fetchall()]

    def insert(self, kind: str, api_id: str, id: str, doc: Doc) -> None:
        check_storable(kind, api_id, id, doc)
        try:
            self.conn.execute(
                "INSERT INTO iamgate_objects (kind, api_id, id, body, updated_at) VALUES (?, ?, ?, ?, ?)",
                (kind, api_id, id, json.dumps(doc, sort_keys=True), _now()),
            )
        except sqlite3.IntegrityError:
            raise ConflictError(f"{kind} {api_id + '/' if api_id else ''}{id} already exists") from None
        self.wrote = True

    def put(self, kind: str, api_id: str, id: str, doc: Doc) -> None:
        check_storable(kind, api_id, id, doc)
        self.conn.execute(
            "INSERT INTO iamgate_objects (kind, api_id, id, body, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, api_id, id) DO UPDATE"
            " SET body = excluded.body, updated_at = excluded.updated_at",
            (kind, api_id, id, json.dumps(doc, sort_keys=True), _now()),
        )
        self.wrote = True

    def delete(self, kind: str, api_id: str, id: str) -> bool:
        cur = self.conn.execute(
            "DELETE FROM iamgate_objects WHERE kind = ? AND api_id = ? AND id = ?", (kind, api_id, id)
        )
        self.wrote = self.wrote or cur.rowcount > 0
        return cur.rowcount > 0

    def delete_api(self, api_id: str) -> int:
        if not api_id:
            raise ValueError("delete_api needs an API id")
        cur = self.conn.execute(
            "DELETE FROM iamgate_objects WHERE api_id = ? OR (kind = 'restapi' AND id = ?)", (api_id, api_id)
        )
        self.wrote = self.wrote or cur.rowcount > 0
        return cur.rowcount


class _Poll(Watcher):
    def __init__(self, store: SqliteStore, on_change: Callable[[int], None]) -> None:
        self.store = store
        super().__init__(store.generation(), on_change)

    def _run(self) -> None:
        conn = self.store._connect()
        try:
            while not self.stopped.wait(POLL_INTERVAL):
                try:
                    now = _generation(conn)
                except sqlite3.Error:
                    continue  # locked or briefly unavailable: the next poll will see it
                self._seen(now)
        finally:
            conn.close()


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT generation FROM iamgate_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


class SqliteStore:
    def __init__(self, path: Path, url: str, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.url = url
        self.busy_timeout = busy_timeout
        if not path.parent.is_dir():
            raise StoreError(f"{url}: the directory {path.parent} does not exist")
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: cannot open the SQLite database: {exc}") from None
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Put the database in WAL mode (it stays so: the mode is kept in the file).

        Switching the mode can fail at once with "database is locked", busy timeout or not, while
        another process opens the same new file and switches it too (several gateway workers
        starting together): retried here until the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _migrate(self) -> None:
        conn = self._conn
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS iamgate_schema"
                    " (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
                )
                row = conn.execute("SELECT MAX(version) FROM iamgate_schema").fetchone()
                current = int(row[0] or 0)
                newest = len(SQLITE_MIGRATIONS)
                if current > newest:
                    raise StoreError(
                        f"{self.url}: the store's schema is version {current}, newer than this iamgate "
                        f"knows ({newest}); upgrade iamgate"
                    )
                for version in range(current + 1, newest + 1):
                    for statement in SQLITE_MIGRATIONS[version - 1]:
                        conn.execute(statement)
                    conn.execute("INSERT INTO iamgate_schema VALUES (?, ?)", (version, _now()))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.url}: cannot prepare the database: {exc}") from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: {exc}") from None
            tx = _Tx(conn)
            try:
                yield tx
                if tx.wrote:
                    conn.execute("UPDATE iamgate_state SET generation = generation + 1 WHERE id = 1")
                conn.execute("COMMIT")
            except sqlite3.Error as exc:  # the database failed (locked, full, ...): nothing written
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.url}: {exc}") from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def served(self) -> Served:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN")  # one read snapshot for everything below
                try:
                    tx = _Tx(conn)
                    generation = _generation(conn)
                    stages = tx.list("stage")
                    deployments = _staged(tx, stages)
                    keys = [d for _, _, d in tx.list("apikey")]
                    plans = [d for _, _, d in tx.list("usageplan")]
                    domains = [d for _, _, d in tx.list("domainname")]
                finally:
                    if conn.in_transaction:  # end the read (it wrote nothing to keep or lose)
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: cannot read the store: {exc}") from None
        return Served(generation, stages, deployments, keys, plans, domains)

    def generation(self) -> int:
        with self._lock:
            try:
                return _generation(self._conn)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: cannot read the generation: {exc}") from None

    def watch(self, on_change: Callable[[int], None]) -> _Poll:
        return _Poll(self, on_change)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
