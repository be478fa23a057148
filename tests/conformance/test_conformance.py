"""Every decision case of tests/conformance (the corpus in cases/ and our own vectors/) through
both evaluators. See tests/conformance/README.md for where the cases come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iamgate.cases import build_request, read_cases, run_case, with_extension_keys
from iamgate.policy import ApiRef, prepare, reference
from iamgate.policy.decision import combine_policies
from tests.conftest import CONFORMANCE, CORPUS_FILES, VECTOR_FILES
from tests.policy.agreement import assert_decide_agrees

FILES = CORPUS_FILES + VECTOR_FILES


def _cases():
    for path in FILES:
        for case in read_cases(path.read_text(encoding="utf-8"), source=path.name, base=path.parent):
            yield pytest.param(path, case, id=f"{path.stem}:{case.name or case.line}")


def test_corpus_is_present():
    assert [p.name for p in CORPUS_FILES] == ["resource-policy-cases.jsonl"], CONFORMANCE / "cases"
    assert VECTOR_FILES, CONFORMANCE / "vectors"
    corpus = [c for p in CORPUS_FILES for c in read_cases(p.read_text(encoding="utf-8"), source=p.name)]
    assert len(corpus) >= 134
    assert {c.expect for c in corpus} == {"Allow", "ExplicitDeny", "ImplicitDeny", "Invalid"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_case_is_named_and_states_its_source(path: Path) -> None:
    """A case without its source note cannot be checked against AWS again: every line has a
    unique ``name`` and a non-empty ``why``."""
    names = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        case = json.loads(line)
        why = case.get("why")
        assert isinstance(why, str), f"{path.name}:{number}"
        assert why.strip(), f"{path.name}:{number}"
        names.append(case.get("name"))
    assert all(isinstance(n, str) and n for n in names)
    assert len(names) == len(set(names)), f"{path.name}: duplicate case names"


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
    request = with_extension_keys(request, case.request, prepared.policy.extension_keys)
    ref = reference.evaluate(prepared.ast, request, (api.region, api.account, api.api_id) if api else None)
    if case.scoped:  # stage/route policies: each through the reference evaluator, then combined
        layers = [("api", ref)]
        for label, raw in case.scoped:
            layer = prepare(raw if isinstance(raw, str) else json.dumps(raw), api=api)
            assert layer.ast is not None
            asked = with_extension_keys(request, case.request, layer.policy.extension_keys)
            where = (api.region, api.account, api.api_id)
            layers.append((label, reference.evaluate(layer.ast, asked, where)))
        effect, decided_by = combine_policies(layers)
        assert effect.value == case.expect
        assert decided_by == fast.policy
        return
    assert ref.effect.value == case.expect
    explained = prepared.policy.evaluate(request, explain=True)
    assert explained.effect.value == case.expect
    assert_decide_agrees(prepared.policy, request, prepared.policy.evaluate(request))
    assert explained.determining == fast.result.determining == ref.determining
