"""Every store refuses the same documents, in the same words (issue 14, item 13d): a NUL or a lone
surrogate in a string, a name or a key, a number that is not finite. PostgreSQL cannot hold them;
SQLite could, and then a store moved from one to the other would fail halfway. The refusal is an
:class:`UnstorableError` (a :class:`StoreError`) raised before anything is written, and the
transaction goes on."""

from __future__ import annotations

from typing import Any

import pytest

from iamgate.store import Store, StoreError, UnstorableError


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"description": "a\x00b"}, "(/description: a NUL character)"),
        ({"list": ["ok", {"k\x00": 1}]}, "(/list/1/k\x00: a NUL character in a name)"),
        ({"s": "\ud800"}, "(/s: an unpaired surrogate)"),
        ({"deep": {"policy": {"Statement": [{"Sid": "\x00"}]}}}, "(/deep/policy/Statement/0/Sid: a NUL"),
        ({"rate": float("nan")}, "(/rate: nan is not a JSON number)"),
        ({"rate": [float("inf")]}, "(/rate/0: inf is not a JSON number)"),
    ],
    ids=["nul", "nul-in-a-name", "surrogate", "deep", "nan", "inf"],
)
def test_documents_no_store_keeps_are_refused(store: Store, doc: dict[str, Any], reason: str) -> None:
    with store.transaction() as tx:
        tx.put("apikey", "", "good", {"n": 1})
        with pytest.raises(UnstorableError, match=r"^apikey bad: no store can keep this document ") as info:
            tx.put("apikey", "", "bad", doc)
        assert reason in str(info.value)
        with pytest.raises(UnstorableError):
            tx.insert("apikey", "", "bad", doc)
    with store.transaction() as tx:  # the transaction went on: the good one was committed
        assert [i for _, i, _ in tx.list("apikey")] == ["good"]


@pytest.mark.parametrize(("api_id", "id"), [("", "a\x00b"), ("api\x00", "prod"), ("", "\udc80")])
def test_keys_no_store_keeps_are_refused(store: Store, api_id: str, id: str) -> None:
    with store.transaction() as tx:
        with pytest.raises(UnstorableError, match="the key holds"):
            tx.put("stage", api_id, id, {"n": 1})
        with pytest.raises(UnstorableError, match="the key holds"):
            tx.insert("stage", api_id, id, {"n": 1})
        assert tx.list("stage") == []


def test_an_unstorable_document_is_a_store_error() -> None:
    """Callers that handle StoreError keep working; the management API answers it 400."""
    assert issubclass(UnstorableError, StoreError)
