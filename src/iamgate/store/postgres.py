"""The PostgreSQL store: one database shared by a fleet of gateways (psycopg 3, synchronous).

URL: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAM=VALUE&...]``, any libpq URI
parameter allowed (``sslmode``, ``connect_timeout``, ``application_name``, ...). Connecting
gives up after ``connect_timeout`` seconds (5 unless the URL says otherwise).

**Schema.** The store's tables live in the first schema of the connection's ``search_path``,
so several stores can share one database, each in its own schema, chosen with libpq's
``options`` parameter (``%3D`` is ``=``)::

    postgresql://iamgate@db.internal/gateways?options=-csearch_path%3Dstaging

A schema named there that does not exist yet is **created** (``CREATE SCHEMA``, which needs the
``CREATE`` privilege on the database; create it beforehand otherwise), just as a SQLite store
creates its file. Without ``options`` the role's default ``search_path`` applies (usually the
``public`` schema).

**Migrations** (:data:`iamgate.store.schema.POSTGRES_MIGRATIONS`) run when the store is opened,
in one transaction holding ``pg_advisory_xact_lock``: processes starting together against a
fresh database take turns, the first one migrates and the others find the work done. A database
whose schema is newer than this iamgate knows is refused.

**Writes** are serialised: every :meth:`PostgresStore.transaction` starts by locking the single
row of ``iamgate_state`` (``SELECT ... FOR UPDATE``), so a read-modify-write never loses a
concurrent update; a transaction that wrote increments the generation and sends
``NOTIFY iamgate_store`` (payload: the generation) as part of its commit. A writer waits for
another at most ``lock_timeout`` (10 s), then fails with :class:`StoreError`. :meth:`served` reads
everything in one ``REPEATABLE READ READ ONLY`` transaction.

**Connections.** The store keeps one connection, used by one thread at a time, and reconnects
when it finds the connection lost between transactions. A watcher has its own connection:
it ``LISTEN``s, reads the generation when notified and at least every second, and after losing
its connection reconnects with backoff and compares the generation, so changes committed while
it was disconnected are reported too. The channel is shared by every store of the database
(one per schema): a notification is only a cue to read this store's generation.

**Documents** are kept as ``JSONB``; what ``get`` returns equals what was written. JSONB
cannot hold NUL characters, unpaired surrogates or non-finite numbers: ``put``/``insert`` of a
document with one raises :class:`StoreError` before sending anything (the transaction can go on).
``list`` orders ids by code point (``COLLATE "C"``), as SQLite does, whatever the database's
collation.
"""

from __future__ import annotations

import contextlib
import decimal
import json
import logging
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from iamgate.store.base import (
    ConflictError,
    Doc,
    Served,
    StoreError,
    UnstorableError,
    Watcher,
    check_storable,
    mask,
)
from iamgate.store.schema import POSTGRES_MIGRATIONS

__all__ = ["PostgresStore"]

log = logging.getLogger("iamgate.store.postgres")

CHANNEL = "iamgate_store"
CONNECT_TIMEOUT = 5  # seconds, unless the URL sets connect_timeout
POLL_INTERVAL = 1.0  # a watcher reads the generation at least this often
WAIT_SLICE = 0.1  # a watcher checks for stop() this often
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0  # a watcher's reconnect delays
# pg_advisory_xact_lock key for migrations: any constant, the same in every iamgate
MIGRATION_LOCK = 0x1A36A7E5
GENERATION: LiteralString = "SELECT generation FROM iamgate_state WHERE id = 1"


# --- documents ---------------------------------------------------------------------------------


class _Unstorable(Exception):
    pass


def _encode(doc: Doc) -> str:
    """``doc`` as JSON text that a JSONB column gives back unchanged: floats keep a decimal
    point (JSONB writes ``1e20`` as ``100000000000000000000``, which would read back as an int);
    what JSONB cannot hold raises :class:`_Unstorable`."""
    out: list[str] = []
    _encode_value(doc, out, "")
    return "".join(out)


def _encode_value(value: Any, out: list[str], at: str) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_str(value, at))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Unstorable(f"{at or '/'}: {value!r} is not a JSON number")
        text = float.__repr__(value)
        if "e+" in text:  # a positional form, which JSONB keeps as written
            text = format(decimal.Decimal(text), "f") + ".0"
        out.append(text)
    elif isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            if isinstance(key, str):
                name = key
            elif key is None or isinstance(key, int | float):  # as json.dumps does
                name = json.dumps(key)
            else:
                raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
            if n:
                out.append(",")
            out.append(_encode_str(name, at + "/" + name))
            out.append(":")
            _encode_value(item, out, at + "/" + name)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode_value(item, out, f"{at}/{n}")
        out.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode_str(text: str, at: str) -> str:
    if "\x00" in text:
        raise _Unstorable(f"{at or '/'}: a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unstorable(f"{at or '/'}: an unpaired surrogate") from None
    return json.dumps(text, ensure_ascii=False)


def _decode(text: str) -> Doc:
    return dict(json.loads(text))


# --- URLs and messages ------------------------------------------------------------------------


def _secrets(url: str) -> list[str]:
    """The password of ``url`` as it may appear in messages (raw and percent-decoded)."""
    found: list[str] = []
    rest = url.partition("://")[2]
    if "@" in rest:
        creds = rest.rpartition("@")[0]
        if ":" in creds:
            found.append(creds.split(":", 1)[1])
    found += re.findall(r"[?&]password=([^&]*)", rest)
    found += [urllib.parse.unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _first_schema(search_path: str) -> str | None:
    """The first name in a ``search_path`` setting (unquoted names fold to lower case)."""
    text = search_path.strip()
    if text.startswith('"'):
        name, i = [], 1
        while i < len(text):
            if text[i] == '"':
                if text[i + 1 : i + 2] != '"':
                    break
                i += 1
            name.append(text[i])
            i += 1
        return "".join(name) or None
    return text.split(",", 1)[0].strip().lower() or None


class _Tx:
    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        self.store = store
        self.conn = conn
        self.wrote = False

    def _run(self, query: LiteralString, params: tuple[Any, ...]) -> psycopg.Cursor[Any]:
        try:
            return self.conn.execute(query, params)
        except psycopg.Error as exc:
            raise self.store._error("the transaction failed", exc) from None

    def _body(self, kind: str, api_id: str, id: str, doc: Doc) -> str:
        check_storable(kind, api_id, id, doc)  # what every store refuses, in the same words
        try:
            return _encode(doc)
        except _Unstorable as exc:
            name = f"{kind} {api_id + '/' if api_id else ''}{id}"
            raise UnstorableError(f"{name}: PostgreSQL cannot store this document ({exc})") from None

    def get(self, kind: str, api_id: str, id: str) -> Doc | None:
        row = self._run(
            "SELECT body::text FROM iamgate_objects WHERE kind = %s AND api_id = %s AND id = %s",
            (kind, api_id, id),
        ).fetchone()
        return None if row is None else _decode(row[0])

    def staged(self) -> dict[tuple[str, str], Doc]:
        """The deployments a stage serves, and no others: an API's deployments stay in the store
        until deleted (as on API Gateway), and reading them all made every reload, and each
        worker's copy of the store's state, grow with every deployment ever made."""
        cur = self._run(
            "SELECT d.api_id, d.id, d.body::text FROM iamgate_objects s JOIN iamgate_objects d"
            " ON d.kind = 'deployment' AND d.api_id = s.api_id AND d.id = s.body->>'deploymentId'"
            " WHERE s.kind = 'stage'",
            (),
        )
        return {(a, i): _decode(b) for a, i, b in cur.fetchall()}

    def page(self, kind: str, api_id: str, start: str, limit: int) -> list[tuple[str, Doc]]:
        cur = self._run(
            "SELECT id, body::text FROM iamgate_objects WHERE kind = %s AND api_id = %s"
            ' AND id COLLATE "C" >= %s ORDER BY id COLLATE "C" LIMIT %s',
            (kind, api_id, start, limit),
        )
        return [(i, _decode(b)) for i, b in cur.fetchall()]

    def list(self, kind: str, api_id: str | None = None) -> list[tuple[str, str, Doc]]:
        if api_id is None:
            cur = self._run(
                "SELECT api_id, id, body::text FROM iamgate_objects WHERE kind = %s"
                ' ORDER BY api_id COLLATE "C", id COLLATE "C"',
                (kind,),
            )
        else:
            cur = self._run(
                "SELECT api_id, id, body::text FROM iamgate_objects WHERE kind = %s AND api_id = %s"
                ' ORDER BY id COLLATE "C"',
                (kind, api_id),
            )
        return [(a, i, _decode(b)) for a, i, b in cur.fetchall()]

    def insert(self, kind: str, api_id: str, id: str, doc: Doc) -> None:
        body = self._body(kind, api_id, id, doc)
        cur = self._run(
            "INSERT INTO iamgate_objects (kind, api_id, id, body) VALUES (%s, %s, %s, %s::jsonb)"
            " ON CONFLICT (kind, api_id, id) DO NOTHING",
            (kind, api_id, id, body),
        )
        if cur.rowcount == 0:
            raise ConflictError(f"{kind} {api_id + '/' if api_id else ''}{id} already exists")
        self.wrote = True

    def put(self, kind: str, api_id: str, id: str, doc: Doc) -> None:
        body = self._body(kind, api_id, id, doc)
        self._run(
            "INSERT INTO iamgate_objects (kind, api_id, id, body) VALUES (%s, %s, %s, %s::jsonb)"
            " ON CONFLICT (kind, api_id, id) DO UPDATE SET body = excluded.body, updated_at = now()",
            (kind, api_id, id, body),
        )
        self.wrote = True

    def delete(self, kind: str, api_id: str, id: str) -> bool:
        cur = self._run(
            "DELETE FROM iamgate_objects WHERE kind = %s AND api_id = %s AND id = %s", (kind, api_id, id)
        )
        self.wrote = self.wrote or cur.rowcount > 0
        return cur.rowcount > 0

    def delete_api(self, api_id: str) -> int:
        if not api_id:
            raise ValueError("delete_api needs an API id")
        cur = self._run(
            "DELETE FROM iamgate_objects WHERE api_id = %s OR (kind = 'restapi' AND id = %s)",
            (api_id, api_id),
        )
        self.wrote = self.wrote or cur.rowcount > 0
        return cur.rowcount


class _Listen(Watcher):
    """A watcher: its own connection, ``LISTEN``, a fallback poll, reconnection with backoff."""

    def __init__(self, store: PostgresStore, on_change: Callable[[int], None]) -> None:
        self.store = store
        super().__init__(store.generation(), on_change)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self.store._connect()
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(GENERATION).fetchone()
        self._seen(int(row[0]) if row else 0)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        delay = BACKOFF_FIRST
        next_poll = 0.0
        lost = False
        try:
            while not self.stopped.is_set():
                try:
                    if conn is None:
                        conn = self._connect()
                        if lost:
                            log.info("the store watcher is connected to %s again", self.store.url)
                        lost, delay = False, BACKOFF_FIRST
                        next_poll = 0.0  # compare at once: changes while disconnected count
                    notified = False
                    for _ in conn.notifies(timeout=0 if next_poll == 0.0 else WAIT_SLICE):
                        notified = True  # drain everything that arrived: one read for a burst
                    if notified or time.monotonic() >= next_poll:
                        self._check(conn)
                        next_poll = time.monotonic() + POLL_INTERVAL
                except (psycopg.Error, StoreError) as exc:
                    if conn is not None:
                        conn.close()
                        conn = None
                    if not lost:
                        lost = True
                        text = " ".join(str(exc).split())
                        log.warning("the store watcher is disconnected (%s); reconnecting", text)
                    if self.stopped.wait(delay):
                        break
                    delay = min(delay * 2, BACKOFF_MAX)
        finally:
            if conn is not None:
                conn.close()


class PostgresStore:
    def __init__(
        self, url: str, *, connect_timeout: float = CONNECT_TIMEOUT, lock_timeout: float = 10.0
    ) -> None:
        self._raw_url = url
        self.url = mask(url)
        self._secrets = _secrets(url)
        self.lock_timeout = lock_timeout
        try:
            given = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise self._error("not a valid PostgreSQL URL", exc) from None
        self._extra: dict[str, Any] = {}
        if "connect_timeout" not in given:
            self._extra["connect_timeout"] = max(1, math.ceil(connect_timeout))
        if "application_name" not in given:
            self._extra["application_name"] = "iamgate"
        self._lock = threading.Lock()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = self._connect()
        try:
            self._migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    # --- connections and errors

    def _error(self, what: str, exc: BaseException) -> StoreError:
        """A :class:`StoreError` for an operator: one line, the URL masked, no password."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return StoreError(f"{self.url}: {what}: {text}")

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._raw_url, autocommit=True, **self._extra)
        except psycopg.Error as exc:
            raise self._error("cannot connect to PostgreSQL", exc) from None
        try:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{round(self.lock_timeout * 1000)}ms"))
            )
        except psycopg.Error as exc:
            conn.close()
            raise self._error("cannot connect to PostgreSQL", exc) from None
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreError(f"{self.url}: the store is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            self._conn = self._connect()
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _start(self, statement: LiteralString) -> tuple[psycopg.Connection[Any], psycopg.Cursor[Any]]:
        """Run the first statement of a transaction (or a lone one), reconnecting once if the
        connection was lost since it was last used: nothing was done on it yet, so retrying is
        safe."""
        conn = self._connection()
        try:
            return conn, conn.execute(statement)
        except psycopg.OperationalError as exc:
            if not (conn.closed or conn.broken):
                raise self._error("cannot use the store", exc) from None
            log.info("reconnecting to the store %s (%s)", self.url, " ".join(str(exc).split()))
            self._drop()
            conn = self._connection()
            try:
                return conn, conn.execute(statement)
            except psycopg.Error as again:
                raise self._error("cannot use the store", again) from None
        except psycopg.Error as exc:
            raise self._error("cannot use the store", exc) from None

    def _rollback(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken:
            self._drop()
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop()

    # --- migrations

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            schema = self._schema(conn)
            qualified = sql.Identifier(schema, "iamgate_schema")
            if not _exists(conn, schema, "iamgate_schema"):
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (version INTEGER PRIMARY KEY,"
                        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    ).format(qualified)
                )
            row = conn.execute(sql.SQL("SELECT MAX(version) FROM {}").format(qualified)).fetchone()
            current = int(row[0] or 0) if row else 0
            newest = len(POSTGRES_MIGRATIONS)
            if current > newest:
                raise StoreError(
                    f"{self.url}: the store's schema ({schema}) is version {current}, newer than this "
                    f"iamgate knows ({newest}); upgrade iamgate"
                )
            for version in range(current + 1, newest + 1):
                for statement in POSTGRES_MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute(sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(qualified), (version,))
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            self._rollback(conn)
            raise self._error("cannot prepare the database", exc) from None
        except BaseException:
            self._rollback(conn)
            raise

    def _schema(self, conn: psycopg.Connection[Any]) -> str:
        """The schema of the store's tables: the first of ``search_path``, created if missing."""
        row = conn.execute("SHOW search_path").fetchone()
        search_path = str(row[0]) if row else ""
        first = _first_schema(search_path)
        if first and first != "$user":
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (first,)).fetchone()
            if found is None:
                log.info("creating the schema %s for the store %s", first, self.url)
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(first)))
        row = conn.execute("SELECT current_schema()").fetchone()
        if row is None or row[0] is None:
            raise StoreError(
                f"{self.url}: no schema to keep the store in: none of the search_path "
                f"({search_path}) exists; name one with ?options=-csearch_path%3DSCHEMA"
            )
        return str(row[0])

    # --- the Store protocol

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._lock:
            conn, _ = self._start("BEGIN")
            try:
                try:
                    conn.execute("SELECT generation FROM iamgate_state WHERE id = 1 FOR UPDATE")
                except psycopg.Error as exc:
                    raise self._error("cannot lock the store for writing", exc) from None
                tx = _Tx(self, conn)
                yield tx
                if conn.info.transaction_status == TransactionStatus.INERROR:
                    # a statement failed and its error was caught: COMMIT would roll back quietly
                    raise StoreError(f"{self.url}: the transaction failed earlier; nothing was written")
                try:
                    if tx.wrote:
                        conn.execute(
                            "WITH g AS (UPDATE iamgate_state SET generation = generation + 1 WHERE id = 1"
                            " RETURNING generation) SELECT pg_notify(%s, generation::text) FROM g",
                            (CHANNEL,),
                        )
                    conn.execute("COMMIT")
                except psycopg.Error as exc:
                    raise self._error("cannot commit", exc) from None
            except BaseException:
                self._rollback(conn)
                raise

    def served(self) -> Served:
        with self._lock:
            conn, _ = self._start("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                tx = _Tx(self, conn)
                generation = _generation(self, conn)
                stages = tx.list("stage")
                deployments = tx.staged()
                keys = [d for _, _, d in tx.list("apikey")]
                plans = [d for _, _, d in tx.list("usageplan")]
                domains = [d for _, _, d in tx.list("domainname")]
                try:
                    conn.execute("COMMIT")
                except psycopg.Error as exc:
                    raise self._error("cannot read the store", exc) from None
            except BaseException:
                self._rollback(conn)
                raise
        return Served(generation, stages, deployments, keys, plans, domains)

    def generation(self) -> int:
        with self._lock:
            _, cur = self._start(GENERATION)
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def watch(self, on_change: Callable[[int], None]) -> _Listen:
        return _Listen(self, on_change)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()


def _exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s", (schema, table)
    ).fetchone()
    return row is not None


def _generation(store: PostgresStore, conn: psycopg.Connection[Any]) -> int:
    try:
        row = conn.execute(GENERATION).fetchone()
    except psycopg.Error as exc:
        raise store._error("cannot read the generation", exc) from None
    return int(row[0]) if row else 0
