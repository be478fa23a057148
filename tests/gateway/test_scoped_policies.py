"""Stage and route policies through the real gateway (iamgate's extension, docs/policy-semantics.md,
"Policies per stage and per route"): every policy that applies must allow and any explicit deny
denies; a route's policy restricts that route only; a report-only one logs and lets through; the
access log names the policy and the statement that decided; nothing refused reaches the backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.auth_support import Keys, Response, send, send_signed, sign
from tests.gateway.conftest import Backend, Gateway, start_gateway, wait_for_log
from tests.policies import document as _policy
from tests.policies import statement as _statement

API = "scopedapi1"
BARE = "bareapi001"  # no API policy: the route's policy alone decides
ACCOUNT = "111122223333"


def _route(path: str, backend: Backend, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "method": method,
        "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/x"},
        **extra,
    }


OFFICE_ONLY = _policy(
    _statement("Allow", "execute-api:/*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, "OfficeNetwork")
)
LOOPBACK_ONLY = _policy(
    _statement("Allow", "execute-api:/*", {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, "Loopback")
)

REFUSE_ALL = _policy(_statement("Deny", "execute-api:/*", sid="RouteRefuses"))
# the gamma stage lets through /open only, and denies /both outright
GAMMA = _policy(
    _statement("Allow", "execute-api:/*/GET/open", sid="OnlyOpen"),
    _statement("Deny", "execute-api:/*/GET/both", sid="StageRefusesBoth"),
)


def config(backend: Backend, tmp: Path) -> dict[str, Any]:
    no_delete = _policy(
        _statement("Deny", "execute-api:/beta/DELETE/*", sid="NoDeleteInBeta"),
        _statement("Allow", "execute-api:/*", sid="Rest"),
    )
    (tmp / "no-delete.json").write_text(json.dumps(no_delete))
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "apis": [
            {
                "id": API,
                "policy": _policy(
                    _statement("Allow", "execute-api:/*", sid="Everyone"),
                    _statement("Deny", "execute-api:/*/GET/blocked", sid="Blocked"),
                ),
                "stages": {
                    "prod": {},
                    "beta": {"policy_file": "no-delete.json"},
                    "gamma": {"policy": GAMMA},
                },
                "routes": [
                    _route("/open", backend),
                    _route("/office", backend, policy=OFFICE_ONLY),
                    _route("/local", backend, policy=LOOPBACK_ONLY),
                    _route("/items/{id}", backend, "DELETE"),
                    _route("/blocked", backend, policy=LOOPBACK_ONLY),
                    _route("/audit", backend, policy=OFFICE_ONLY, policy_mode="report"),
                    _route("/refuse", backend, policy=REFUSE_ALL),
                    _route("/both", backend, policy=REFUSE_ALL),
                ],
            },
            {
                "id": BARE,
                "stages": {"prod": {}},
                "routes": [_route("/office", backend, policy=OFFICE_ONLY), _route("/open", backend)],
            },
        ],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Backend]]:
    backend = Backend().start()
    tmp = tmp_path_factory.mktemp("scoped")
    try:
        gw = start_gateway(tmp, config(backend, tmp))
    except Exception:
        backend.stop()
        raise
    yield gw, backend
    gw.stop()
    backend.stop()


def _call(gw: Gateway, path: str, method: str = "GET", api: str = API) -> Response:
    return send(gw.port, method, path, headers={"x-apigw-api-id": api})


def test_a_route_policy_restricts_its_route_only(world: tuple[Gateway, Backend]) -> None:
    gw, backend = world
    assert _call(gw, "/prod/open").status == 200
    assert _call(gw, "/prod/local").status == 200  # the route's policy allows loopback
    before = len(backend.requests)
    denied = _call(gw, "/prod/office")
    assert denied.status == 403
    assert denied.json()["Message"].startswith("User: anonymous is not authorized")
    assert "explicit deny" not in denied.json()["Message"]  # no Allow applied: an implicit deny
    assert len(backend.requests) == before
    logged = wait_for_log(gw, denied.request_id)
    assert logged["decision"] == "ImplicitDeny"
    assert logged["decision.policy"] == "route:GET /office"
    assert [p["policy"] for p in logged["decision.policies"]] == ["api", "route:GET /office"]
    assert logged["decision.policies"][0]["decision"] == "Allow"


def test_an_explicit_deny_of_the_api_policy_is_not_undone_by_a_route_allow(
    world: tuple[Gateway, Backend],
) -> None:
    gw, _ = world
    denied = _call(gw, "/prod/blocked")
    assert denied.status == 403
    assert denied.json()["Message"].endswith("with an explicit deny")
    logged = wait_for_log(gw, denied.request_id)
    assert logged["decision.policy"] == "api"
    assert logged["decision.statements"] == ["#1 (Blocked)"]


def test_a_stage_policy_applies_to_its_stage(world: tuple[Gateway, Backend]) -> None:
    gw, _ = world
    assert _call(gw, "/prod/items/7", "DELETE").status == 200
    denied = _call(gw, "/beta/items/7", "DELETE")
    assert denied.status == 403
    assert denied.json()["Message"].endswith("with an explicit deny")
    logged = wait_for_log(gw, denied.request_id)
    assert logged["decision"] == "ExplicitDeny"
    assert logged["decision.policy"] == "stage:beta"
    assert logged["decision.statements"] == ["#0 (NoDeleteInBeta)"]
    assert _call(gw, "/beta/open").status == 200


def test_a_report_only_route_policy_logs_and_lets_through(world: tuple[Gateway, Backend]) -> None:
    gw, _ = world
    passed = _call(gw, "/prod/audit")
    assert passed.status == 200
    logged = wait_for_log(gw, passed.request_id)
    assert logged["decision.wouldDeny"] is True
    assert logged["decision.policies"][-1] == {
        "policy": "route:GET /audit",
        "decision": "ImplicitDeny",
        "statements": [],
        "mode": "report",
    }
    assert "decision.policy" not in logged


def test_without_an_api_policy_the_route_policy_decides_alone(world: tuple[Gateway, Backend]) -> None:
    gw, _ = world
    assert _call(gw, "/prod/open", api=BARE).status == 200
    denied = _call(gw, "/prod/office", api=BARE)
    assert denied.status == 403
    logged = wait_for_log(gw, denied.request_id)
    assert logged["decision"] == "ImplicitDeny"
    assert logged["decision.policy"] == "route:GET /office"


@pytest.mark.parametrize(
    ("path", "explicit", "named", "statements"),
    [
        # the API allows, the route denies explicitly
        ("/prod/refuse", True, "route:GET /refuse", ["#0 (RouteRefuses)"]),
        # the stage allows nothing here (implicit), the route loopback: the stage refuses
        ("/gamma/local", False, "stage:gamma", []),
        # the stage's implicit refusal and the route's explicit deny: the explicit deny is named
        ("/gamma/refuse", True, "route:GET /refuse", ["#0 (RouteRefuses)"]),
        # both deny explicitly: the first of them, the stage's, is named
        ("/gamma/both", True, "stage:gamma", ["#1 (StageRefusesBoth)"]),
    ],
)
def test_when_a_stage_or_route_policy_refuses_the_log_names_which(
    world: tuple[Gateway, Backend], path: str, explicit: bool, named: str, statements: list[str]
) -> None:
    gw, backend = world
    assert _call(gw, "/gamma/open").status == 200  # the stage lets this one through
    before = len(backend.requests)
    denied = _call(gw, path)
    assert denied.status == 403
    assert denied.json()["Message"].endswith("with an explicit deny") is explicit
    assert len(backend.requests) == before
    logged = wait_for_log(gw, denied.request_id)
    assert logged["decision"] == ("ExplicitDeny" if explicit else "ImplicitDeny")
    assert logged["decision.policy"] == named
    assert logged["decision.statements"] == statements
    layers = [p["policy"] for p in logged["decision.policies"]]
    assert layers[0] == "api"
    assert logged["decision.policies"][0]["decision"] == "Allow"


def test_a_route_without_its_own_policy_logs_as_before(world: tuple[Gateway, Backend]) -> None:
    gw, _ = world
    ok = _call(gw, "/prod/open")
    logged = wait_for_log(gw, ok.request_id)
    assert "decision.policies" not in logged
    assert "decision.policy" not in logged
    assert logged["decision.statements"] == ["#0 (Everyone)"]


# --- SigV4 callers: the route's policy is a gate of its own, beside Tables A and B -------------------
ALICE = Keys("AKIASCOPEDALICE00001", "alice/Secret+Key000000000000000000000001")
BOB = Keys("AKIASCOPEDBOB0000001", "bob/Secret+Key00000000000000000000000002")
IAM_API = "iamscoped1"


def _user(name: str) -> dict[str, Any]:
    allow_all = _policy({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"})
    return {"arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "policies": [allow_all]}


def _alice_only() -> dict[str, Any]:
    statement = _statement("Allow", "execute-api:/*", sid="AliceOnly")
    statement["Principal"] = {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}
    return _policy(statement)


@pytest.fixture(scope="module")
def iam_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Backend]]:
    backend = Backend().start()
    route = {"authorization": "AWS_IAM"}
    config = {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "identities": {
            "users": [_user("alice"), _user("bob")],
            "access_keys": [
                {"id": k.access_key, "secret": k.secret, "owner": f"arn:aws:iam::{ACCOUNT}:user/{n}"}
                for k, n in ((ALICE, "alice"), (BOB, "bob"))
            ],
        },
        "apis": [
            {
                "id": IAM_API,
                "stages": {"prod": {}},
                "routes": [
                    _route("/shared", backend, **route),
                    _route("/alice", backend, **route, policy=_alice_only()),
                ],
            }
        ],
    }
    try:
        gw = start_gateway(tmp_path_factory.mktemp("scoped-iam"), config)
    except Exception:
        backend.stop()
        raise
    yield gw, backend
    gw.stop()
    backend.stop()


def _signed(gw: Gateway, keys: Keys, path: str) -> Response:
    signed = sign(keys, "GET", f"http://127.0.0.1:{gw.port}{path}", headers={"x-apigw-api-id": IAM_API})
    return send_signed(gw.port, signed)


def test_an_identity_allow_does_not_pass_a_route_policy_that_names_someone_else(
    iam_world: tuple[Gateway, Backend],
) -> None:
    """Without an API policy, an IAM caller is allowed by its identity policy alone (Table A);
    the route's policy is a further gate: it names alice, so bob is refused there only."""
    gw, backend = iam_world
    assert _signed(gw, BOB, "/prod/shared").status == 200
    assert _signed(gw, ALICE, "/prod/alice").status == 200
    before = len(backend.requests)
    refused = _signed(gw, BOB, "/prod/alice")
    assert refused.status == 403
    assert f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized" in refused.json()["Message"]
    assert len(backend.requests) == before
    logged = wait_for_log(gw, refused.request_id)
    assert logged["decision.policy"] == "route:GET /alice"
    assert logged["decision.caller"] == "Allow"  # the identity policy allowed
