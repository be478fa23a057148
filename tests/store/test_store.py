"""What every store does, on SQLite and on PostgreSQL alike (the ``backend`` fixture)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgate.store import ConflictError, Store, StoreError, open_store
from iamgate.store.base import Doc
from iamgate.store.schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from tests.store.conftest import Backend, Seen, finish, start_together, start_worker, watch_threads, write

DOC: Doc = {
    "name": "pets",
    "nested": {"list": [1, 2.5, -0.25, True, False, None, "x"], "empty": {}, "none": []},
    "unicode": 'héllo ✓ 🐍 "quoted" back\\slash \n\t',
    "big": 12345678901234567890123,
    "large float": 1e20,
    "tiny float": 5e-324,
    "float": 1234567.125,
    "zero": 0.0,
    "": "empty key",
}


# --- objects --------------------------------------------------------------------------------------


def test_put_and_get_round_trip_documents(store: Store) -> None:
    write(store, "restapi", "", "a1", DOC)
    with store.transaction() as tx:
        got = tx.get("restapi", "", "a1")
        assert got == DOC
        assert got is not None
        assert isinstance(got["large float"], float)
        assert isinstance(got["big"], int)
        assert tx.get("restapi", "", "missing") is None
        assert tx.get("deployment", "", "a1") is None  # the kind is part of the key
        assert tx.get("restapi", "a1", "a1") is None  # and the api id


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types all the way down (``1e16 == 10**16`` is not enough)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def test_any_json_document_round_trips(store: Store) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(doc=st.dictionaries(TEXT, JSON, max_size=5))
    def check(doc: Doc) -> None:
        write(store, "usageplan", "", "p", doc)
        with store.transaction() as tx:
            got = tx.get("usageplan", "", "p")
            listed = tx.list("usageplan")
        assert same(got, doc), (got, doc)
        assert same(listed[0][2], doc)

    check()


def test_put_replaces(store: Store) -> None:
    write(store, "apikey", "", "k1", {"value": "v1"})
    write(store, "apikey", "", "k1", {"value": "v2", "enabled": False})
    with store.transaction() as tx:
        assert tx.get("apikey", "", "k1") == {"value": "v2", "enabled": False}
        assert len(tx.list("apikey")) == 1


def test_insert_refuses_an_existing_object_and_the_transaction_goes_on(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert("stage", "a1", "prod", {"stageName": "prod", "v": 1})
        with pytest.raises(ConflictError, match=r"stage a1/prod already exists"):
            tx.insert("stage", "a1", "prod", {"stageName": "prod", "v": 2})
        tx.insert("stage", "a1", "beta", {"stageName": "beta"})  # still usable after the conflict
    with store.transaction() as tx:
        assert tx.get("stage", "a1", "prod") == {"stageName": "prod", "v": 1}
        assert tx.get("stage", "a1", "beta") == {"stageName": "beta"}

    def twice() -> None:
        with store.transaction() as tx:
            tx.insert("apikey", "", "k", {})
            tx.insert("apikey", "", "k", {})

    with pytest.raises(ConflictError, match="apikey k already exists"):
        twice()
    with store.transaction() as tx:
        assert tx.get("apikey", "", "k") is None  # the first insert went with the transaction


def test_list_orders_by_api_then_id_in_code_point_order(store: Store) -> None:
    keys = [("b", "2"), ("a", "Z"), ("a", "_"), ("a", "a"), ("B", "1"), ("a", "A"), ("a", "é"), ("b", "10")]
    with store.transaction() as tx:
        for api_id, id in keys:
            tx.put("deployment", api_id, id, {"id": id, "api": api_id})
        tx.put("stage", "a", "prod", {})
    with store.transaction() as tx:
        listed = tx.list("deployment")
        assert [(a, i) for a, i, _ in listed] == sorted(keys)
        assert all(d == {"id": i, "api": a} for a, i, d in listed)
        assert [i for _, i, _ in tx.list("deployment", "a")] == ["A", "Z", "_", "a", "é"]
        assert tx.list("deployment", "nope") == []
        assert tx.list("usageplan") == []


def test_delete(store: Store) -> None:
    write(store, "usageplan", "", "p1", {"name": "gold"})
    with store.transaction() as tx:
        assert tx.delete("usageplan", "", "p1") is True
        assert tx.delete("usageplan", "", "p1") is False
        assert tx.get("usageplan", "", "p1") is None
    with store.transaction() as tx:
        assert tx.get("usageplan", "", "p1") is None


def test_delete_api_removes_the_draft_and_everything_of_that_api_only(store: Store) -> None:
    with store.transaction() as tx:
        for api in ("a1", "a2"):
            tx.put("restapi", "", api, {"name": api})
            tx.put("deployment", api, "d1", {"id": "d1"})
            tx.put("deployment", api, "d2", {"id": "d2"})
            tx.put("stage", api, "prod", {"stageName": "prod"})
        tx.put("apikey", "", "a1", {"value": "same id as the API"})
        tx.put("usageplan", "", "plan", {"apiStages": [{"apiId": "a1", "stage": "prod"}]})
    with store.transaction() as tx:
        assert tx.delete_api("a1") == 4
        assert tx.delete_api("a1") == 0
        with pytest.raises(ValueError, match="API id"):
            tx.delete_api("")
    with store.transaction() as tx:
        assert tx.get("restapi", "", "a1") is None
        assert tx.list("deployment", "a1") == []
        assert tx.list("stage", "a1") == []
        assert [i for _, i, _ in tx.list("restapi")] == ["a2"]
        assert [(a, i) for a, i, _ in tx.list("deployment")] == [("a2", "d1"), ("a2", "d2")]
        assert [(a, i) for a, i, _ in tx.list("stage")] == [("a2", "prod")]
        assert tx.get("apikey", "", "a1") == {"value": "same id as the API"}
        assert tx.get("usageplan", "", "plan") is not None


# --- transactions and the generation --------------------------------------------------------------


class Boom(Exception):
    pass


def test_an_exception_in_a_transaction_writes_nothing(store: Store) -> None:
    write(store, "apikey", "", "k1", {"value": "old"})
    before = store.generation()

    def fail_midway() -> None:
        with store.transaction() as tx:
            tx.put("apikey", "", "k1", {"value": "new"})
            tx.put("apikey", "", "k2", {"value": "another"})
            assert tx.delete_api("a1") == 0
            tx.insert("restapi", "", "a1", {})
            raise Boom

    with pytest.raises(Boom):
        fail_midway()
    assert store.generation() == before
    with store.transaction() as tx:
        assert tx.get("apikey", "", "k1") == {"value": "old"}
        assert tx.get("apikey", "", "k2") is None
        assert tx.get("restapi", "", "a1") is None
    # the store is still usable afterwards
    write(store, "apikey", "", "k2", {"value": "v"})
    assert store.generation() == before + 1


def test_the_generation_counts_transactions_that_wrote(store: Store) -> None:
    assert store.generation() == 0
    with store.transaction() as tx:  # reads only
        tx.get("restapi", "", "a1")
        tx.list("stage")
    with store.transaction() as tx:  # deletes nothing
        assert tx.delete("restapi", "", "a1") is False
        assert tx.delete_api("a1") == 0
    assert store.generation() == 0
    with store.transaction() as tx:  # many writes, one transaction
        for n in range(5):
            tx.put("apikey", "", f"k{n}", {"n": n})
        tx.delete("apikey", "", "k0")
    assert store.generation() == 1
    with store.transaction() as tx:
        tx.delete("apikey", "", "k1")
    assert store.generation() == 2
    assert store.served().generation == 2


def test_served_reads_what_was_written(store: Store) -> None:
    deployment = {"id": "d1", "description": "", "createdDate": 1, "definition": {"routes": []}}
    with store.transaction() as tx:
        tx.put("restapi", "", "a1", {"name": "draft: never served"})
        tx.put("deployment", "a1", "d1", deployment)
        tx.put("deployment", "a2", "d1", {**deployment, "description": "other API"})
        tx.put("stage", "a2", "prod", {"stageName": "prod", "deploymentId": "d1"})
        tx.put("stage", "a1", "prod", {"stageName": "prod", "deploymentId": "d1"})
        tx.put("stage", "a1", "beta", {"stageName": "beta", "deploymentId": "d1"})
        tx.put("apikey", "", "k2", {"id": "k2"})
        tx.put("apikey", "", "k1", {"id": "k1"})
        tx.put("usageplan", "", "p1", {"id": "p1", "throttle": {"rateLimit": 10.5}})
    served = store.served()
    assert served.generation == 1
    assert served.stages == [
        ("a1", "beta", {"stageName": "beta", "deploymentId": "d1"}),
        ("a1", "prod", {"stageName": "prod", "deploymentId": "d1"}),
        ("a2", "prod", {"stageName": "prod", "deploymentId": "d1"}),
    ]
    assert served.deployments == {
        ("a1", "d1"): deployment,
        ("a2", "d1"): {**deployment, "description": "other API"},
    }
    assert served.api_keys == [{"id": "k1"}, {"id": "k2"}]
    assert served.usage_plans == [{"id": "p1", "throttle": {"rateLimit": 10.5}}]


def test_served_holds_only_the_deployments_a_stage_serves(store: Store) -> None:
    """An API's earlier deployments stay in the store (get-deployments lists them, a stage can go
    back to one), but what is served, and sent to every worker on every reload, is only what the
    stages name: it does not grow with each deployment ever made."""
    with store.transaction() as tx:
        for n in range(1, 6):
            tx.put("deployment", "a1", f"d{n}", {"id": f"d{n}", "definition": {"n": n}})
        tx.put("deployment", "a2", "d9", {"id": "d9", "definition": {}})  # no stage names it
        tx.put("stage", "a1", "prod", {"stageName": "prod", "deploymentId": "d5"})
        tx.put("stage", "a1", "beta", {"stageName": "beta", "deploymentId": "d2"})
        tx.put("stage", "a1", "old", {"stageName": "old", "deploymentId": "d2"})
        tx.put("stage", "a1", "gone", {"stageName": "gone", "deploymentId": "d7"})  # missing
        tx.put("stage", "a2", "none", {"stageName": "none"})  # no deployment yet
        tx.put("stage", "a3", "prod", {"stageName": "prod", "deploymentId": "d5"})  # not a1's d5
    served = store.served()
    assert served.deployments == {
        ("a1", "d2"): {"id": "d2", "definition": {"n": 2}},
        ("a1", "d5"): {"id": "d5", "definition": {"n": 5}},
    }
    assert len(served.stages) == 6
    with store.transaction() as tx:
        assert len(tx.list("deployment", "a1")) == 5  # still there, for the management API


def test_served_of_an_empty_store(store: Store) -> None:
    served = store.served()
    assert (served.generation, served.stages, served.deployments) == (0, [], {})
    assert (served.api_keys, served.usage_plans) == ([], [])


def test_writers_in_threads_do_not_lose_updates(store: Store) -> None:
    def work() -> None:
        for _ in range(20):
            with store.transaction() as tx:
                doc = tx.get("usageplan", "", "counter") or {"n": 0}
                tx.put("usageplan", "", "counter", {"n": doc["n"] + 1})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.transaction() as tx:
        assert tx.get("usageplan", "", "counter") == {"n": 80}
    assert store.generation() == 80


def test_writers_in_processes_do_not_lose_updates(backend: Backend) -> None:
    processes, times = 4, 25
    open_store(backend.url).close()  # created and migrated
    workers = [start_worker("increment", backend.url, str(times)) for _ in range(processes)]
    start_together(workers)
    for worker in workers:
        finish(worker)
    store = open_store(backend.url)
    try:
        with store.transaction() as tx:
            assert tx.get("usageplan", "", "counter") == {"n": processes * times}
        assert store.generation() == processes * times
    finally:
        store.close()


# --- watching ---------------------------------------------------------------------------------------


def test_watch_reports_a_commit_of_another_process(store: Store, backend: Backend) -> None:
    write(store, "apikey", "", "k1", {})
    before = watch_threads()
    seen = Seen()
    watch = store.watch(seen)
    try:
        generation = int(finish(start_worker("commit", backend.url)))
        assert generation == 2
        assert seen.event.wait(1.0), "no change reported within 1 s of the commit"
        assert seen.generations == [2]
    finally:
        watch.stop()
    assert watch_threads() - before == set()


def test_watch_coalesces_and_ignores_transactions_that_did_not_write(store: Store) -> None:
    before = watch_threads()
    seen = Seen()
    watch = store.watch(seen)
    try:
        for n in range(5):
            write(store, "apikey", "", f"k{n}", {})
        with store.transaction() as tx:
            tx.get("apikey", "", "k1")
        assert seen.event.wait(1.0)
        while seen.generations[-1] != 5:
            seen.event.clear()
            assert seen.event.wait(1.0), f"reported {seen.generations}, not generation 5"
        assert seen.generations == sorted(set(seen.generations))  # increasing, each at most once
    finally:
        watch.stop()
    assert watch_threads() - before == set()


def test_watch_survives_a_failing_callback(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    seen = Seen()

    def callback(generation: int) -> None:
        seen(generation)
        if generation == 1:
            raise RuntimeError("callback failed")

    watch = store.watch(callback)
    try:
        write(store, "apikey", "", "k1", {})
        assert seen.event.wait(1.0)
        seen.event.clear()
        write(store, "apikey", "", "k2", {})
        assert seen.event.wait(1.0), "the watcher stopped after its callback failed"
        assert seen.generations == [1, 2]
    finally:
        watch.stop()
    assert "callback failed" in caplog.text


def test_stop_ends_the_watcher(store: Store) -> None:
    before = watch_threads()
    watches = [store.watch(lambda g: None) for _ in range(3)]
    assert len(watch_threads() - before) == 3
    for watch in watches:
        watch.stop()
    assert watch_threads() - before == set()


# --- migrations -------------------------------------------------------------------------------------


def migrations(backend: Backend) -> int:
    return len(SQLITE_MIGRATIONS if backend.name == "sqlite" else POSTGRES_MIGRATIONS)


def test_reopening_is_idempotent(backend: Backend) -> None:
    first = open_store(backend.url)
    write(first, "restapi", "", "a1", {"name": "kept"})
    first.close()
    for _ in range(2):
        again = open_store(backend.url)
        with again.transaction() as tx:
            assert tx.get("restapi", "", "a1") == {"name": "kept"}
        assert again.generation() == 1
        again.close()
    versions = backend.sql("SELECT version FROM iamgate_schema ORDER BY version")
    assert versions == [(n,) for n in range(1, migrations(backend) + 1)]


def test_a_newer_schema_is_refused(backend: Backend) -> None:
    open_store(backend.url).close()
    newer = migrations(backend) + 1
    backend.sql(f"INSERT INTO iamgate_schema (version, applied_at) VALUES ({newer}, '2030-01-01T00:00:00Z')")
    with pytest.raises(
        StoreError, match=rf"schema.* is version {newer}, newer than this iamgate knows"
    ) as info:
        open_store(backend.url)
    assert "upgrade iamgate" in str(info.value)


def test_processes_opening_a_fresh_store_at_once_all_succeed(backend: Backend) -> None:
    """Gateway workers starting together on a new store: one migrates, none fails (SQLite's switch
    to WAL mode could answer "database is locked" at once to all but one of them)."""
    workers = [start_worker("open", backend.url) for _ in range(6)]
    start_together(workers)
    assert [finish(w).strip() for w in workers] == ["0"] * 6
    versions = backend.sql("SELECT version FROM iamgate_schema ORDER BY version")
    assert versions == [(n,) for n in range(1, migrations(backend) + 1)]
