"""A worker decodes only the deployments its reload needs (issue 19): the store's state travels
from the supervisor with each deployment as its own text, and an API entry whose deployment text
and stages are those of the last load is taken from the reload memo without being decoded. What
changed (a new deployment, a stage's settings) is decoded and read; what a worker serves is the
same as what the supervisor validated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iamgate.config.load import load_config
from iamgate.config.read_api import ApiMemo
from iamgate.config.snapshot import build_snapshot
from iamgate.policy import Request
from iamgate.process import reload
from iamgate.store import Store, compose, open_store
from iamgate.store.link import StoreLink, extend_from_files
from tests.policies import document, statement

ACCOUNT = "111122223333"
APIS = [f"api{i}" for i in range(5)]


def _definition(deny: bool = False) -> dict[str, Any]:
    return {
        "policy": document(statement("Allow"), *([statement("Deny")] if deny else [])),
        "routes": [{"path": "/items", "method": "GET", "integration": {"type": "MOCK", "status": 200}}],
    }


def _deploy(store: Store, api_id: str, deployment: str, *, deny: bool = False, stage: Any = None) -> None:
    with store.transaction() as tx:
        tx.put("deployment", api_id, deployment, {"id": deployment, "definition": _definition(deny)})
        tx.put("stage", api_id, "prod", {"stageName": "prod", "deploymentId": deployment, **(stage or {})})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    for api_id in APIS:
        _deploy(store, api_id, "d1")
    path = tmp_path / "gateway.yaml"
    path.write_text(f"gateway: {{region: us-east-1, account_id: '{ACCOUNT}'}}\nstore: {url}\n")
    yield path, store
    store.close()


class Worker:
    """A worker's loads: the files as its supervisor read them, its own memo, the entries it
    had to decode (the seam: ``compose._entry``, which makes an entry from a decoded text)."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path, self.memo, self.decoded = path, ApiMemo(), []
        made = compose._entry

        def entry(api_id: str, deployment: str, found: Any, configs: Any) -> dict[str, Any]:
            self.decoded.append(api_id)
            return made(api_id, deployment, found, configs)

        monkeypatch.setattr(compose, "_entry", entry)

    def load(self) -> dict[str, str]:
        link = StoreLink()
        try:
            config, diags, sources = reload.load(self.path, link=link)  # the supervisor's read
        finally:
            link.close()
        assert config is not None, [d.render() for d in diags]
        self.decoded.clear()  # the supervisor's own (it reads documents from the store)
        files = dict(sources.data)
        mine, diags = load_config(
            self.path, reader=reload.Sources(files), extend=extend_from_files(files), memo=self.memo
        )
        assert mine is not None, [d.render() for d in diags]
        assert [a.id for a in mine.apis] == [a.id for a in config.apis]
        snapshot = build_snapshot(mine)
        decisions = {}
        for api_id in APIS:
            policy = snapshot.apis[api_id].policy
            assert policy is not None
            arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/prod/GET/items"
            decisions[api_id] = str(policy.evaluate(Request(None, "execute-api:Invoke", arn)).effect.value)
        return decisions


def test_a_reload_decodes_only_the_deployment_that_changed(
    world: tuple[Path, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = world
    worker = Worker(path, monkeypatch)
    assert set(worker.load().values()) == {"Allow"}
    assert sorted(worker.decoded) == APIS  # the first load decodes every deployment
    _deploy(store, "api3", "d2", deny=True)
    decisions = worker.load()
    assert worker.decoded == ["api3"]
    assert worker.memo.hits == 4
    assert decisions["api3"] == "ExplicitDeny"
    assert {decisions[a] for a in APIS if a != "api3"} == {"Allow"}
    assert worker.load()["api3"] == "ExplicitDeny"
    assert worker.decoded == []  # nothing changed: nothing decoded


def test_a_stage_change_without_a_deployment_is_read_again(
    world: tuple[Path, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = world
    worker = Worker(path, monkeypatch)
    worker.load()
    _deploy(store, "api1", "d1", stage={"config": {"variables": {"v": "2"}}})  # same deployment
    worker.load()
    assert worker.decoded == ["api1"]


def test_a_changed_text_under_the_same_deployment_id_is_read_again(
    world: tuple[Path, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployments are not changed in place by the management API; a store written by other
    means is still served as it says, never from what the worker kept."""
    path, store = world
    worker = Worker(path, monkeypatch)
    worker.load()
    _deploy(store, "api2", "d1", deny=True)
    assert worker.load()["api2"] == "ExplicitDeny"
    assert worker.decoded == ["api2"]
