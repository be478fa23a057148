"""A serving process's reload reuses the APIs that did not change (issue 19): the same API entry
gives back the very objects of the last load (configuration, compiled policy, runtime), a changed
entry is read and built again, and nothing that can change without the entry changing is ever
taken from the last load (a policy file's content, the gateway settings, warnings to report)."""

from __future__ import annotations

import copy
import json
import platform
from pathlib import Path
from typing import Any

import pytest
import yaml

from iamgate.config.load import load_config, parse_config
from iamgate.config.read_api import ApiMemo
from iamgate.config.snapshot import Reuse, Snapshot, build_snapshot
from iamgate.policy import Request
from iamgate.process import reload
from tests.policies import document, statement

ACCOUNT = "111122223333"


def _api(index: int, *, deny: bool = False) -> dict[str, Any]:
    statements = [statement("Allow")] + ([statement("Deny")] if deny else [])
    return {
        "id": f"api{index:07d}",
        "policy": document(*statements),
        "stages": {"prod": {}},
        "routes": [
            {
                "path": "/items/{id}",
                "method": "GET",
                "integration": {"type": "MOCK", "status": 200, "body": str(index)},
            }
        ],
    }


def _document(apis: list[dict[str, Any]], account: str = ACCOUNT) -> dict[str, Any]:
    return {"gateway": {"region": "us-east-1", "account_id": account}, "apis": apis}


class Process:
    """What a serving process keeps between reloads, and one load-and-build."""

    def __init__(self, tmp_path: Path) -> None:
        self.memo, self.reuse, self.path = ApiMemo(), Reuse(), tmp_path / "gateway.yaml"
        self.diagnostics: list[str] = []

    def load(self, document: dict[str, Any]) -> Snapshot:
        self.path.write_text(yaml.safe_dump(document, sort_keys=False))
        config, diags = load_config(self.path, memo=self.memo)
        self.diagnostics = [d.render() for d in diags]
        assert config is not None, self.diagnostics
        return build_snapshot(config, self.reuse)


def _decision(snapshot: Snapshot, api_id: str) -> str:
    policy = snapshot.apis[api_id].policy
    assert policy is not None
    arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/prod/GET/items/1"
    return str(policy.evaluate(Request(None, "execute-api:Invoke", arn)).effect.value)


def test_unchanged_apis_are_reused_and_a_changed_one_is_rebuilt(tmp_path: Path) -> None:
    process = Process(tmp_path)
    apis = [_api(i) for i in range(20)]
    first = process.load(_document(apis))
    assert (process.memo.hits, process.reuse.reused) == (0, 0)
    changed = copy.deepcopy(apis)
    changed[5] = _api(5, deny=True)
    second = process.load(_document(changed))
    assert (process.memo.hits, process.reuse.reused) == (19, 19)
    for i in range(20):
        api_id = f"api{i:07d}"
        if i == 5:
            assert second.apis[api_id] is not first.apis[api_id]
            assert _decision(first, api_id) == "Allow"
            assert _decision(second, api_id) == "ExplicitDeny"
        else:
            assert second.apis[api_id] is first.apis[api_id]  # routing tree, policy, all of it
            assert _decision(second, api_id) == "Allow"
    # an API removed is gone, and the memo holds one configuration only
    third = process.load(_document(changed[:10]))
    assert len(third.apis) == 10
    assert len(process.memo.entries) == 10
    assert len(process.reuse.runtimes) == 10


def test_a_policy_file_is_read_again_even_when_its_entry_is_unchanged(tmp_path: Path) -> None:
    process = Process(tmp_path)
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(_api(0)["policy"]))
    entry = {**_api(0), "policy_file": str(policy_file)}
    del entry["policy"]
    first = process.load(_document([entry, _api(1)]))
    assert _decision(first, "api0000000") == "Allow"
    policy_file.write_text(json.dumps(_api(0, deny=True)["policy"]))
    second = process.load(_document([entry, _api(1)]))
    assert _decision(second, "api0000000") == "ExplicitDeny"  # never the stale policy
    assert second.apis["api0000001"] is first.apis["api0000001"]


def test_a_change_of_the_gateway_settings_rebuilds_every_api(tmp_path: Path) -> None:
    process = Process(tmp_path)
    apis = [_api(i) for i in range(3)]
    first = process.load(_document(apis))
    second = process.load(_document(apis, account="999988887777"))
    assert process.memo.hits == 0
    for api_id in first.apis:
        assert second.apis[api_id] is not first.apis[api_id]
        assert second.apis[api_id].arn_prefix.split(":")[4] == "999988887777"


def test_an_entry_with_a_warning_is_read_again_so_the_warning_is_reported_every_time(tmp_path: Path) -> None:
    process = Process(tmp_path)
    warned = _api(0)
    typo = statement("Allow")
    typo["Action"] = "execute-api:Invok"  # a warning: matches no request
    warned["policy"]["Statement"].append(typo)
    process.load(_document([warned, _api(1)]))
    first = list(process.diagnostics)
    assert any("execute-api:Invok" in d for d in first), first
    process.load(_document([warned, _api(1)]))
    assert process.diagnostics == first
    assert process.memo.hits == 1  # the clean entry only


def test_reading_without_the_memo_leaves_it_as_it_was(tmp_path: Path) -> None:
    process = Process(tmp_path)
    apis = [_api(i) for i in range(5)]
    process.load(_document(apis))
    kept = dict(process.memo.entries)
    # a deployment's check or `config validate` in the same process: no memo given
    config, diags = parse_config(yaml.safe_dump(_document([_api(9)])))
    assert config is not None, diags
    assert process.memo.entries == kept
    process.load(_document(apis))
    assert process.memo.hits == 5


def test_an_unchanged_policy_file_is_not_compiled_again_and_a_superseded_one_is_let_go(
    tmp_path: Path,
) -> None:
    process = Process(tmp_path)
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(_api(0)["policy"]))
    entry = {**_api(0), "policy_file": str(policy_file)}
    del entry["policy"]
    first = process.load(_document([entry]))
    second = process.load(_document([entry]))
    assert second.apis["api0000000"].policy is first.apis["api0000000"].policy  # not compiled again
    policy_file.write_text(json.dumps(_api(0, deny=True)["policy"]))
    third = process.load(_document([entry]))
    assert third.apis["api0000000"].policy is not first.apis["api0000000"].policy
    # only what the last read compiled is kept: the superseded policy is not held any more
    kept = [p.policy for p in process.memo.policies.values()]
    assert kept == [third.apis["api0000000"].policy]


def test_a_reload_gives_freed_memory_back_where_the_c_library_can() -> None:
    """glibc keeps what a reload's megabyte buffers leave in its heap unless asked to give it
    back (malloc_trim): on glibc the serving processes ask after every reload (the effect on
    RSS is measured by bench/scale_bench.py, not here)."""
    if platform.libc_ver()[0] != "glibc":
        pytest.skip(f"not glibc ({platform.libc_ver()[0] or 'unknown C library'}): nothing to trim")
    assert reload._TRIM is not None
    reload.release_memory()  # callable, and harmless at any time
