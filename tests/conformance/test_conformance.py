"""Every decision case of ../shared/conformance (and our own vectors) through both evaluators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iamgate.cases import build_request, read_cases, run_case
from iamgate.policy import ApiRef, prepare, reference
from tests.conftest import SHARED

HERE = Path(__file__).parent
FILES = sorted((SHARED / "conformance").glob("*.jsonl")) + sorted(HERE.glob("vectors/*.jsonl"))


def _cases():
    for path in FILES:
        for case in read_cases(path.read_text(encoding="utf-8"), source=path.name, base=path.parent):
            yield pytest.param(path, case, id=f"{path.stem}:{case.name or case.line}")


def test_corpus_is_present():
    assert any(p.parent.name == "conformance" and p.parent.parent == SHARED for p in FILES), (
        "../shared/conformance/*.jsonl not found"
    )


@pytest.mark.parametrize(("path", "case"), list(_cases()))
def test_case(path: Path, case) -> None:
    assert case.expect is not None, "every corpus case states its expected decision"
    fast = run_case(case)
    assert fast.decision == case.expect, [d.render() for d in fast.diagnostics]
    if case.expect == "Invalid":
        assert fast.diagnostics, "an invalid policy is reported with diagnostics"
        return
    request, problem = build_request(case.request)
    assert problem is None
    api = ApiRef.from_arn(request.resource)
    policy = case.policy
    source = policy if isinstance(policy, str | bytes) else json.dumps(policy.to_python())
    prepared = prepare(source, api=api)
    assert prepared.ast is not None
    assert prepared.policy is not None
    ref = reference.evaluate(prepared.ast, request, (api.region, api.account, api.api_id) if api else None)
    assert ref.effect.value == case.expect
    explained = prepared.policy.evaluate(request, explain=True)
    assert explained.effect.value == case.expect
    assert explained.determining == fast.result.determining == ref.determining
