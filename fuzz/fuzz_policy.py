"""Coverage-guided fuzzing of the policy engine with atheris (libFuzzer for Python).

Each input is policy bytes. The harness prepares them (read, parse, validate, compile); when a
policy comes out it evaluates requests derived from the same bytes, in the fast and the explained
mode. A crash is any exception escaping ``prepare`` or ``evaluate``, or a broken invariant:

* ``prepare`` returns a policy with no error, or no policy and at least one error;
* every diagnostic has a ``policy.`` code, a 1-based line and column (or none), renders to text
  that encodes as UTF-8 and serialises to JSON;
* evaluation reports no engine fault, and the fast and explained modes agree;
* the reader accepts exactly what ``json.loads`` accepts, less only documents nested deeper
  than 64 levels and strings holding lone surrogates;
* the same document given as text and as already-decoded data (``json.loads``) is accepted or
  refused alike and, when accepted, decides alike.

Not a project dependency; install by hand (a manylinux wheel, no compiler needed)::

    .venv/bin/pip install atheris
    .venv/bin/python fuzz/seed_corpus.py fuzz/corpus
    .venv/bin/python fuzz/fuzz_policy.py -dict=fuzz/policy.dict -max_len=8192 -timeout=10 \\
        -max_total_time=600 -artifact_prefix=fuzz/artifacts/ fuzz/corpus fuzz/seeds

See docs/fuzzing.md. ``python fuzz/fuzz_policy.py FILE...`` replays inputs (a crash reproducer).
"""

from __future__ import annotations

import json
import sys
import zlib
from typing import Any

import atheris

with atheris.instrument_imports(include=["iamgate"]):
    from iamgate.policy import ApiRef, Prepared, Request, prepare
    from iamgate.policy._json import read_json

API = ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")
ARN = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"

PRINCIPALS = [
    None,
    "111122223333",
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:role/ci",
    "arn:aws:sts::111122223333:assumed-role/ci/build-7",
    "arn:aws:sts::444455556666:federated-user/bob",
    "arn:aws:iam::444455556666:root",
]
ACTIONS = [
    "execute-api:Invoke",
    "execute-api:InvalidateCache",
    "execute-api:ManageConnections",
    "s3:GetObject",
]
RESOURCES = [
    f"{ARN}/prod/GET/pets",
    f"{ARN}/prod/GET/pets/7",
    f"{ARN}/prod/POST/pets",
    f"{ARN}/test/DELETE/admin/users/1",
    "arn:aws:execute-api:eu-west-1:444455556666:zzzzzzzzzz/prod/GET/",
]
CONTEXT_KEYS = [
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SecureTransport",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:UserAgent",
    "aws:username",
    "aws:PrincipalTag/team",
    "aws:SourceVpce",
    "aws:TagKeys",
    "execute-api:viaDomainArn",
]
CONTEXT_VALUES = [
    "192.0.2.10",
    "192.0.2.200",
    "2001:db8::1",
    "::ffff:192.0.2.1",
    "2026-01-15T12:00:00Z",
    "1768478400",
    "true",
    "false",
    "10",
    "-2.5",
    "curl/8.5.0",
    "alice",
    "dev",
    "vpce-1a2b3c4d",
    "arn:aws:iam::111122223333:role/ci",
    "aGVsbG8=",
    "",
]


def check_prepared(result: Prepared) -> None:
    errors = [d for d in result.diagnostics if d.is_error]
    if result.ok:
        assert not errors, [d.render() for d in errors]
    else:
        assert errors, "a refused policy names no error"
    for d in result.diagnostics:
        assert d.code.startswith("policy."), d.code
        line, column = d.location.line, d.location.column
        assert (line is None) == (column is None), d
        assert line is None or line >= 1, d
        assert column is None or column >= 1, d
        d.render().encode("utf-8")
        json.dumps(d.to_dict(), ensure_ascii=False).encode("utf-8")


def requests_from(fdp: atheris.FuzzedDataProvider, result: Prepared) -> list[Request]:
    """A few requests from the vocabulary, plus texts the policy itself holds (so they match)."""
    texts = list(CONTEXT_VALUES)
    resources = list(RESOURCES)
    if result.ast is not None:
        for st in result.ast.statements:
            resources.extend(r.value.replace("*", "x").replace("?", "y") for r in st.resources)
            texts.extend(v.value for clause in st.conditions for v in clause.values)
    out = []
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        context: dict[str, Any] = {}
        for _ in range(fdp.ConsumeIntInRange(0, 5)):
            key = fdp.PickValueInList(CONTEXT_KEYS)
            if fdp.ConsumeBool():
                context[key] = [fdp.PickValueInList(texts) for _ in range(fdp.ConsumeIntInRange(0, 3))]
            else:
                context[key] = fdp.PickValueInList(texts)
        out.append(
            Request(
                fdp.PickValueInList(PRINCIPALS),
                fdp.PickValueInList(ACTIONS),
                fdp.PickValueInList(resources),
                context,
            )
        )
    return out


def evaluate_all(result: Prepared, batch: list[Request]) -> list[str]:
    assert result.policy is not None
    effects = []
    for request in batch:
        fast = result.policy.evaluate(request)
        slow = result.policy.evaluate(request, explain=True)
        assert fast.errors == (), (request, fast.errors)
        assert slow.errors == (), (request, slow.errors)
        assert fast.effect is slow.effect, (request, fast.effect, slow.effect)
        assert fast.determining == slow.determining, (request, fast, slow)
        json.dumps(slow.to_dict())
        effects.append(fast.effect.value)
    return effects


def _stdlib_data(text: str) -> object | None:
    """The document as ``json.loads`` reads it, or None where the two forms legitimately differ:
    it refuses the text, has duplicate keys (it keeps the last), or has a number whose Python
    value prints differently from its source text (``1.50``, ``1e3``, ``-0``)."""

    def refuse(name: str) -> object:
        raise ValueError(name)

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(items)

    def integer(source: str) -> int:
        value = int(source)
        if str(value) != source:
            raise ValueError(source)
        return value

    def real(source: str) -> float:
        value = float(source)
        if repr(value) != source:
            raise ValueError(source)
        return value

    try:
        return json.loads(
            text, object_pairs_hook=pairs, parse_constant=refuse, parse_int=integer, parse_float=real
        )
    except (ValueError, RecursionError):
        return None


def check_reader(text: str) -> None:
    """Our reader against the standard library's (numbers kept as text, duplicates allowed)."""
    ours = read_json(text)
    codes = {d.code for d in ours.diagnostics}

    def refuse(name: str) -> object:
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=refuse, parse_int=str, parse_float=str)
    except RecursionError:
        return
    except ValueError:
        assert ours.root is None, f"the reader accepts what json.loads refuses: {text[:200]!r}"
        return
    if ours.root is None:
        assert codes & {"policy.read.too-deep", "policy.read.invalid-string"}, sorted(codes)


def fuzz_one_input(data: bytes) -> None:
    check = zlib.crc32(data)
    api = API if check & 1 else None
    strict = bool(check & 2)
    result = prepare(data, api=api, strict=strict, max_chars=None)
    check_prepared(result)
    fdp = atheris.FuzzedDataProvider(data)
    batch = requests_from(fdp, result)
    effects = evaluate_all(result, batch) if result.policy is not None else None

    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return
    check_reader(text)
    # the same document as decoded data must be accepted or refused alike, and decide alike
    decoded = _stdlib_data(text)
    if not isinstance(decoded, dict):
        return
    again = prepare(decoded, api=api, strict=strict, max_chars=None)
    check_prepared(again)
    assert again.ok == result.ok, (
        [d.render() for d in result.errors],
        [d.render() for d in again.errors],
    )
    if effects is not None:
        assert evaluate_all(again, batch) == effects


def main() -> None:
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
