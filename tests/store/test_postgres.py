"""What only the PostgreSQL store does: schemas, lost connections, LISTEN/NOTIFY, JSONB limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from iamgate.store import Store, StoreError, open_store
from tests.store.conftest import PG_URL, Backend, Seen, pg_backend, watch_threads, write
from tests.waiting import wait_for

psycopg = pytest.importorskip("psycopg")
sql = psycopg.sql


def terminate(admin: Any, column: str, value: str) -> int:
    rows = admin.execute(
        sql.SQL(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {} = %s AND pid <> pg_backend_pid()"
        ).format(sql.Identifier(column)),
        (value,),
    ).fetchall()
    return len(rows)


def backends(admin: Any, column: str, value: str) -> int:
    row = admin.execute(
        sql.SQL("SELECT count(*) FROM pg_stat_activity WHERE {} = %s").format(sql.Identifier(column)),
        (value,),
    ).fetchone()
    return int(row[0])


@pytest.fixture
def pg_store(pg: Backend) -> Iterator[Store]:
    store = open_store(pg.url)
    yield store
    store.close()


# --- schemas ----------------------------------------------------------------------------------------


def test_the_store_creates_its_schema_and_keeps_its_tables_there(pg: Backend, pg_admin: Any) -> None:
    store = open_store(pg.url)
    try:
        write(store, "restapi", "", "a1", {"name": "x"})
    finally:
        store.close()
    tables = pg_admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (pg.schema,)
    ).fetchall()
    assert tables == [("iamgate_objects",), ("iamgate_schema",), ("iamgate_state",)]
    rows = pg_admin.execute(
        sql.SQL("SELECT kind, api_id, id, body FROM {}.iamgate_objects").format(sql.Identifier(pg.schema))
    ).fetchall()
    assert rows == [("restapi", "", "a1", {"name": "x"})]  # JSONB, readable by SQL


def test_quoted_and_unquoted_schema_names(pg: Backend, pg_admin: Any) -> None:
    mixed = pg.schema.replace("iamgate_test_", "Iamgate_Test_")
    quoted = pg.url.replace(f"search_path%3D{pg.schema}", f"search_path%3D%22{mixed}%22")
    unquoted = pg.url.replace(f"search_path%3D{pg.schema}", f"search_path%3D{mixed}")
    try:
        for url in (quoted, unquoted):
            store = open_store(url)
            write(store, "apikey", "", "k", {"url": url})
            store.close()
        names = pg_admin.execute(
            "SELECT nspname FROM pg_namespace WHERE lower(nspname) = %s ORDER BY nspname", (pg.schema,)
        ).fetchall()
        assert names == [(mixed,), (pg.schema,)]  # "Iamgate_Test_..." kept its case; the other folded
    finally:
        pg_admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(mixed)))


@pytest.fixture
def other_pg(pg_admin: Any) -> Iterator[Backend]:
    yield from pg_backend(pg_admin)


def test_stores_in_two_schemas_are_independent(pg: Backend, other_pg: Backend) -> None:
    mine, other = open_store(pg.url), open_store(other_pg.url)
    seen = Seen()
    watch = mine.watch(seen)
    try:
        for n in range(3):  # NOTIFYs on the shared channel, for the other store's generations 1..3
            write(other, "apikey", "", f"k{n}", {})
        write(mine, "apikey", "", "mine", {"n": 1})
        assert seen.event.wait(1.0)
        assert seen.generations == [1]
        assert (mine.generation(), other.generation()) == (1, 3)
        assert mine.served().api_keys == [{"n": 1}]
        assert len(other.served().api_keys) == 3
    finally:
        watch.stop()
        mine.close()
        other.close()


def test_no_existing_schema_in_the_search_path_is_refused(pg_admin: Any) -> None:
    with pytest.raises(StoreError, match="no schema to keep the store in") as info:
        open_store(f"{PG_URL}?options=-csearch_path%3D%24user&application_name=iamgate_test")
    assert "search_path" in str(info.value)


# --- lost connections -------------------------------------------------------------------------------


def test_the_store_reconnects_when_its_connection_was_lost(
    pg_store: Store, pg: Backend, pg_admin: Any
) -> None:
    write(pg_store, "apikey", "", "k1", {"n": 1})
    assert terminate(pg_admin, "application_name", pg.schema) == 1
    wait_for(lambda: backends(pg_admin, "application_name", pg.schema) == 0, "the backend to end")
    assert pg_store.generation() == 1
    terminate(pg_admin, "application_name", pg.schema)
    wait_for(lambda: backends(pg_admin, "application_name", pg.schema) == 0, "the backend to end")
    assert pg_store.served().api_keys == [{"n": 1}]
    terminate(pg_admin, "application_name", pg.schema)
    wait_for(lambda: backends(pg_admin, "application_name", pg.schema) == 0, "the backend to end")
    write(pg_store, "apikey", "", "k2", {"n": 2})
    assert pg_store.generation() == 2


def test_a_connection_lost_inside_a_transaction_writes_nothing(
    pg_store: Store, pg: Backend, pg_admin: Any
) -> None:
    def lose_the_connection_midway() -> None:
        with pg_store.transaction() as tx:
            tx.put("apikey", "", "k1", {"n": 1})
            terminate(pg_admin, "application_name", pg.schema)
            wait_for(lambda: backends(pg_admin, "application_name", pg.schema) == 0, "the backend to end")
            tx.put("apikey", "", "k2", {"n": 2})

    with pytest.raises(StoreError, match="terminating connection") as info:
        lose_the_connection_midway()
    assert "the transaction failed" in str(info.value)
    with pg_store.transaction() as tx:
        assert tx.list("apikey") == []
    assert pg_store.generation() == 0


@pytest.fixture
def limited_role(pg: Backend, pg_admin: Any) -> Iterator[tuple[str, str]]:
    """A role of its own (so that it can be kept from logging in) that may read ``pg``'s store:
    (role, store URL as that role). The store is created first, by the superuser."""
    role = pg.schema
    open_store(pg.url).close()
    pg_admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        schema, who = sql.Identifier(pg.schema), sql.Identifier(role)
        pg_admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who))
        pg_admin.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, who))
        yield role, f"{pg.url}&user={role}"
    finally:
        terminate(pg_admin, "usename", role)
        wait_for(lambda: backends(pg_admin, "usename", role) == 0, "the role's backends to end")
        pg_admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        pg_admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_the_watcher_recovers_and_reports_what_changed_while_it_was_away(
    pg: Backend, pg_admin: Any, limited_role: tuple[str, str]
) -> None:
    """The watcher's role is kept from logging in while a commit happens, so that commit is made
    while the watcher is certainly disconnected (its NOTIFY is lost): it must still be reported."""
    role, url = limited_role
    writer, watched = open_store(pg.url), open_store(url)
    seen = Seen()
    watch = watched.watch(seen)
    try:
        wait_for(lambda: backends(pg_admin, "usename", role) == 2, "the watcher to connect")
        pg_admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        assert terminate(pg_admin, "usename", role) == 2  # the store's and the watcher's connections
        write(writer, "apikey", "", "k1", {})
        assert seen.generations == []  # it cannot have seen it: it cannot connect
        pg_admin.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
        assert seen.event.wait(10), "the watcher did not come back"
        assert seen.generations == [1]
        seen.event.clear()
        write(writer, "apikey", "", "k2", {})
        assert seen.event.wait(1.0), "no change reported within 1 s after reconnecting"
        assert seen.generations == [1, 2]
        assert watched.generation() == 2  # the store's own connection came back too
    finally:
        watch.stop()
        watched.close()
        writer.close()


def test_stop_ends_a_watcher_that_cannot_reconnect(pg_admin: Any, limited_role: tuple[str, str]) -> None:
    role, url = limited_role
    before = watch_threads()
    watched = open_store(url)
    watch = watched.watch(lambda g: None)
    try:
        wait_for(lambda: backends(pg_admin, "usename", role) == 2, "the watcher to connect")
        pg_admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        terminate(pg_admin, "usename", role)
        wait_for(lambda: backends(pg_admin, "usename", role) == 0, "the connections to end")
        time.sleep(0.3)  # let it fail to reconnect a few times: it is backing off now
    finally:
        watch.stop()
        watched.close()
    assert watch_threads() - before == set()


# --- transactions -----------------------------------------------------------------------------------


def test_a_statement_error_swallowed_inside_a_transaction_is_not_committed(pg_store: Store) -> None:
    def swallow_an_error() -> None:
        with pg_store.transaction() as tx:
            tx.put("apikey", "", "k1", {})
            conn = tx.conn  # type: ignore[attr-defined]
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")

    with pytest.raises(StoreError, match="failed earlier; nothing was written"):
        swallow_an_error()
    with pg_store.transaction() as tx:
        assert tx.list("apikey") == []
    assert pg_store.generation() == 0


def test_writers_wait_for_each_other(pg_store: Store, pg: Backend) -> None:
    """A second writer blocks at the start of its transaction until the first commits, so it
    reads the first one's write."""
    other = open_store(pg.url)
    inside, read = threading.Event(), []
    try:
        with pg_store.transaction() as tx:
            tx.put("usageplan", "", "counter", {"n": 1})

            def second() -> None:
                inside.set()
                with other.transaction() as tx2:
                    read.append(tx2.get("usageplan", "", "counter"))

            thread = threading.Thread(target=second)
            thread.start()
            assert inside.wait(5)
            time.sleep(0.05)  # give it the chance to read too early, if it could
            assert read == []
        thread.join(10)
        assert read == [{"n": 1}]
    finally:
        other.close()


# --- documents --------------------------------------------------------------------------------------


def test_floats_and_ints_keep_their_types(pg_store: Store) -> None:
    values = [1e16, 1.5e300, -2e22, 1.7976931348623157e308, 5e-324, 1e-7, 0.1, 3.0, 10**40, -(10**20), 0]
    write(pg_store, "usageplan", "", "p", {"values": values})
    with pg_store.transaction() as tx:
        got = tx.get("usageplan", "", "p")
    assert got is not None
    assert got["values"] == values
    assert [type(v) for v in got["values"]] == [type(v) for v in values]
