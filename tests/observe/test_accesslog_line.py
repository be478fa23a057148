"""The access log's fast JSON line is byte for byte the general one (orjson over the values)."""

from __future__ import annotations

import dataclasses
import random

import orjson

from iamgate.config.load import parse_config
from iamgate.config.snapshot import RouteRuntime, Snapshot, build_snapshot
from iamgate.observe import accesslog
from iamgate.observe.accesslog import context_variables, json_line
from iamgate.pipeline.exchange import Exchange
from iamgate.policy import Decision, DecisionEffect, MatchKind, StatementRef

AWKWARD = [
    "",
    "a",
    'q"uote',
    "back\\slash",
    "tab\tnew\nline",
    "\x00\x1f\x7f",
    "é日本",
    "/x/y",
    "<>&'",
    ",",
    " sp ",
]


def text(rng: random.Random) -> str:
    return rng.choice(AWKWARD) + rng.choice(["", "pets", "prod", str(rng.randint(0, 10**6))])


def raw(rng: random.Random) -> bytes:
    return rng.choice(
        [b"127.0.0.1:18101", b"a1b2.execute-api.us-east-1.amazonaws.com", b'"x",', b"\xff\xfe", b"wrk", b"\\"]
    ) + bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 3)))


def decision(rng: random.Random) -> Decision:
    refs = tuple(StatementRef(i, rng.choice([None, text(rng)])) for i in range(rng.randint(0, 3)))
    errors = ((StatementRef(-1, None), "engine fault: x"),) if rng.random() < 0.1 else ()
    effect = rng.choice(list(DecisionEffect))
    return Decision(effect, refs, rng.choice(list(MatchKind)), errors)


def _snapshot() -> Snapshot:
    config, diagnostics = parse_config(
        "gateway: {region: us-east-1, account_id: '123456789012'}\n"
        "apis: [{id: petapi, stages: {prod: {}}, routes: [{path: '/pets/{id}', method: GET,"
        " integration: {type: MOCK, status: 200}}]}]\n"
    )
    assert config is not None, diagnostics
    return build_snapshot(config)


# Real gateway objects (the compiled request path checks their types); the awkward text goes
# into copies of them.
SNAPSHOT = _snapshot()
API = SNAPSHOT.apis["petapi"]
STAGE = API.stages["prod"]
ROUTE = next(methods["GET"] for path, methods in API.tree.resources() if path == "/pets/{id}")


def _route(resource_path: str) -> RouteRuntime:
    return dataclasses.replace(ROUTE, resource_path=resource_path)


def exchange(rng: random.Random, decisions: list[Decision]) -> Exchange:
    hmap: dict[bytes, bytes] = {}
    if rng.random() < 0.9:
        hmap[b"host"] = raw(rng)
    if rng.random() < 0.8:
        hmap[b"user-agent"] = raw(rng)
    settings = dataclasses.replace(SNAPSHOT.settings, account_id=rng.choice(["123456789012", text(rng)]))
    ex = Exchange(
        dataclasses.replace(SNAPSHOT, settings=settings),
        rng.choice(["GET", "POST", "M-SEARCH", "-"]),
        b"/prod/pets/1",
        b"",
        [],
        hmap,
        rng.choice(["HTTP/1.1", "HTTP/1.0"]),
        True,
        rng.choice(["127.0.0.1", "::1", "fe80::1%eth0", 'fe80::1%"x,', text(rng)]),
        False,
    )
    if rng.random() < 0.5:
        ex.request_id = "0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f"  # a client's own (a validated UUID)
    ex.wall = rng.choice([ex.wall, 0.0, 1795860046.3225, 1e9 + rng.random()])
    ex.start = 100.0
    ex.end = rng.choice([100.0, 100.0000004, 100.0000005, 100.0123456, 100.5, 101.9999999, 250.0])
    ex.status = rng.choice([200, 403, 502, 0, 499])
    ex.response_length = rng.randint(0, 10**7)
    if rng.random() < 0.9:
        ex.api = dataclasses.replace(API, id=rng.choice(["petapi", text(rng)]))
    if rng.random() < 0.9:
        ex.stage = dataclasses.replace(STAGE, name=rng.choice(["prod", text(rng)]))
        if rng.random() < 0.9:
            ex.path = "/" + text(rng)
    if rng.random() < 0.9:
        ex.route = _route(rng.choice(["/pets/{id}", text(rng)]))
    if rng.random() < 0.9:
        ex.integration_latency = rng.choice([0.0, 0.0000004, 0.0000005, 0.0123456, 1.5, 29.0, rng.random()])
    if rng.random() < 0.9:
        ex.integration_status = rng.choice([200, 404, 500])
    if rng.random() < 0.7:
        ex.decision = rng.choice(decisions)  # a few decision objects come back, as from the engine
        ex.policy_mode = rng.choice(["enforce", "report", None])
    # the rarer values send the line the general way
    for name, value in (
        ("error_message", "Forbidden"),
        ("response_type", "ACCESS_DENIED"),
        ("vpce_id", "vpce-1"),
        ("throttled_by", "stage"),
        ("authorizer_error", "no token"),
        ("extra", {"integrationErrorMessage": 'a"b'}),
        ("would_deny", True),
    ):
        if rng.random() < 0.03:
            setattr(ex, name, value)
    return ex


def test_fast_line_is_the_general_line() -> None:
    rng = random.Random(11)
    decisions = [decision(rng) for _ in range(20)]
    accesslog._pieces_memo.clear()
    for _ in range(20000):
        ex = exchange(rng, decisions)
        general = orjson.dumps(context_variables(ex), option=orjson.OPT_APPEND_NEWLINE)
        # first sight (the general way), second (the memo is built), third (from the memo)
        assert [json_line(ex) for _ in range(3)] == [general] * 3
    assert accesslog._pieces_memo.found  # the memoised way was taken
