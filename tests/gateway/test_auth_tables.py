"""The authorization tables of docs/authentication.md (API Gateway's), row by row, through the real gateway.

Issue 4: "the authorization tables as table-driven tests (auth type x same/cross
account x resource-policy outcome x identity outcome)". Two gateways serve the same APIs, one
with the default settings and one with every choice flipped (``cross_account_without_policy:
identity``, ``cognito_mode: table``, ``unknown_access_key_error: UnrecognizedClientException``).

Every cell is one request. The path chooses the outcomes: ``/{auth}/{rp}/{side}`` where

* ``auth``: ``none``, ``iam`` (AWS_IAM), ``custom`` (a Lambda TOKEN authorizer) or ``cognito``;
* ``rp``: the resource policy's answer: ``rpallow`` (``Principal: "*"`` allows), ``rpsilent``
  (no statement applies), ``rpdeny`` (explicit deny), ``rpacct`` (an allow naming only the
  caller's *account*), ``rprole`` (an allow naming the caller's *role*); the API ``nopolicy01``
  has no resource policy at all;
* ``side``: the caller's side: for AWS_IAM the identity policy (``idallow``, ``idnone``,
  ``iddeny``; same-account and cross-account role sessions carry the same identity policy); for
  CUSTOM the authorizer's policy (token ``allow``, ``silent``, ``deny``); for COGNITO a valid token.

Expected results are written out as API Gateway's tables, with the account-principal rule (an
allow naming only the caller's account needs an identity allow: the tables do not say, IAM's
rule) and the two settings that pick between readings of the documentation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.gateway.auth_support import Keys, Response, send, send_signed, sign
from tests.gateway.conftest import ROOT_DIR, Gateway, start_gateway

ACCOUNT = "111122223333"
OTHER = "444455556666"
WITH_POLICY = "a1b2c3d4e5"
NO_POLICY = "nopolicy01"
REPORT = "reportpol1"  # the same policy, policy_mode: report
SAME = Keys("ASIASAMEACCOUNT00001", "same-account-secret", "same-account-session-token")
CROSS = Keys("ASIACROSSACCOUNT0001", "cross-account-secret", "cross-account-session-token")
CALLERS = {
    "same": (SAME, f"arn:aws:sts::{ACCOUNT}:assumed-role/caller/tables"),
    "cross": (CROSS, f"arn:aws:sts::{OTHER}:assumed-role/caller/tables"),
}
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_tables"
CLIENT = "tables-client-id"

# outcomes
A = "allow"
I = "implicit deny"  # noqa: E741 - reads like the documentation's tables
E = "explicit deny"
AI = "authorizer implicit deny"
AE = "authorizer explicit deny"
U = "unauthorized"


def _statement(effect: str, principal: Any, resource: str) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": "execute-api:Invoke", "Resource": resource}


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        _statement("Allow", "*", "execute-api:/*/*/*/rpallow/*"),
        _statement("Deny", "*", "execute-api:/*/*/*/rpdeny/*"),
        _statement("Allow", {"AWS": [ACCOUNT, f"arn:aws:iam::{OTHER}:root"]}, "execute-api:/*/*/*/rpacct/*"),
        _statement(
            "Allow",
            {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/caller", f"arn:aws:iam::{OTHER}:role/caller"]},
            "execute-api:/*/*/*/rprole/*",
        ),
    ],
}
IDENTITY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:*/idallow",
        },
        {
            "Effect": "Deny",
            "Action": "execute-api:Invoke",
            "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:*/iddeny",
        },
    ],
}


def _api(api_id: str, policy: dict[str, Any] | None) -> dict[str, Any]:
    mock = {"type": "MOCK", "status": 200, "body": "ok"}
    spec: dict[str, Any] = {
        "id": api_id,
        "stages": {"prod": {}},
        "authorizers": [
            {"name": "lambda", "type": "TOKEN", "function": "tests.gateway.authorizers:token_handler"},
            {
                "name": "pool",
                "type": "COGNITO_USER_POOLS",
                "issuer": ISSUER,
                "audiences": [CLIENT],
                "jwks_file": "jwks.json",
            },
        ],
        "routes": [
            {"path": "/none/{proxy+}", "method": "ANY", "integration": mock},
            {"path": "/iam/{proxy+}", "method": "ANY", "authorization": "AWS_IAM", "integration": mock},
            {
                "path": "/custom/{proxy+}",
                "method": "ANY",
                "authorization": "CUSTOM",
                "authorizer": "lambda",
                "integration": mock,
            },
            {
                "path": "/cognito/{proxy+}",
                "method": "ANY",
                "authorization": "COGNITO_USER_POOLS",
                "authorizer": "pool",
                "integration": mock,
            },
        ],
    }
    if policy is not None:
        spec["policy"] = policy
    return spec


def config(gateway: dict[str, Any]) -> dict[str, Any]:
    role = {"policies": [IDENTITY_POLICY]}
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT, **gateway},
        "identities": {
            "accounts": [{"id": ACCOUNT}, {"id": OTHER}],
            "roles": [
                {"arn": f"arn:aws:iam::{ACCOUNT}:role/caller", **role},
                {"arn": f"arn:aws:iam::{OTHER}:role/caller", **role},
            ],
            "sessions": [
                {
                    "access_key_id": keys.access_key,
                    "secret": keys.secret,
                    "session_token": keys.token,
                    "role": f"arn:aws:iam::{account}:role/caller",
                    "session_name": "tables",
                }
                for keys, account in ((SAME, ACCOUNT), (CROSS, OTHER))
            ],
        },
        "apis": [
            _api(WITH_POLICY, POLICY),
            _api(NO_POLICY, None),
            {**_api(REPORT, POLICY), "policy_mode": "report"},
        ],
    }


DEFAULT = {}  # cross_account_without_policy: deny, cognito_mode: prose, AccessDeniedException
FLIPPED = {
    "cross_account_without_policy": "identity",
    "cognito_mode": "table",
    "unknown_access_key_error": "UnrecognizedClientException",
}


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "RS256", "use": "sig"}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "u1", "token_use": "id", "iat": now, "exp": now + 3600}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    started: dict[str, Any] = {"token": good}
    try:
        for name, settings in (("default", DEFAULT), ("flipped", FLIPPED)):
            tmp: Path = tmp_path_factory.mktemp(f"tables-{name}")
            (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
            started[name] = start_gateway(tmp, config(settings), env={"PYTHONPATH": str(ROOT_DIR)})
        yield started
    finally:
        for name in ("default", "flipped"):
            if name in started:
                started[name].stop()


def _url(gw: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gw.port}{path}"


def call(gw: Gateway, api: str, auth: str, rp: str, side: str, *, token: str = "") -> Response:
    path = f"/prod/{auth}/{rp}/{side}"
    headers = {"x-apigw-api-id": api}
    if auth == "iam":
        account, _, identity = side.partition("-")
        keys, _ = CALLERS[account]
        path = f"/prod/iam/{rp}/{identity}"
        return send_signed(gw.port, sign(keys, "GET", _url(gw, path), headers=headers))
    if auth == "custom":
        headers["Authorization"] = f"{side}:tables"
    if auth == "cognito":
        headers["Authorization"] = token
    return send(gw.port, "GET", path, headers=headers)


def check(response: Response, expected: str, caller: str, arn: str) -> None:
    if expected == A:
        assert (response.status, response.body) == (200, b"ok"), response.body
        return
    if expected == U:
        assert response.status == 401
        assert response.error_type == "UnauthorizedException"
        assert response.json() == {"message": "Unauthorized"}
        return
    assert response.status == 403, response.body
    assert response.error_type == "AccessDeniedException"
    if expected in (AI, AE):
        text = "User is not authorized to access this resource"
        assert response.json() == {"Message": text + (" with an explicit deny" if expected == AE else "")}
        return
    suffix = " with an explicit deny" if expected == E else ""
    message = f"User: {caller} is not authorized to perform: execute-api:Invoke on resource: {arn}{suffix}"
    assert response.json() == {"Message": message}


def _arn(api: str, path: str) -> str:
    return f"arn:aws:execute-api:us-east-1:********3333:{api}/prod/GET/{path}"


def _rp_api(rp: str) -> tuple[str, str]:
    """(API id, the rp path segment) for a resource-policy outcome."""
    return (NO_POLICY, "nopolicy") if rp == "nopolicy" else (WITH_POLICY, rp)


# --- AWS_IAM: Table A (same account) and Table B (cross account) ---------------------------------
#         resource policy:  identity allow / none / deny
IAM_SAME = {
    "rpallow": (A, A, E),
    "rpsilent": (A, I, E),
    "rpdeny": (E, E, E),
    "rpacct": (A, I, E),  # the account is named, not the caller: the identity must allow
    "rprole": (A, A, E),  # the caller's role is named: enough within the account
    "nopolicy": (A, I, E),
}
IAM_CROSS = {
    "rpallow": (A, I, E),
    "rpsilent": (I, I, E),
    "rpdeny": (E, E, E),
    "rpacct": (A, I, E),
    "rprole": (A, I, E),
    "nopolicy": ({"default": I, "flipped": A}, I, E),  # cross_account_without_policy: deny | identity
}
IAM_CASES = [
    (gw, account, rp, side, expected)
    for gw in ("default", "flipped")
    for account, table in (("same", IAM_SAME), ("cross", IAM_CROSS))
    for rp, row in table.items()
    for side, cell in zip(("idallow", "idnone", "iddeny"), row, strict=True)
    for expected in [cell[gw] if isinstance(cell, dict) else cell]
]


@pytest.mark.parametrize(
    ("gw_name", "account", "rp", "side", "expected"),
    IAM_CASES,
    ids=[f"{g}-{a}-{rp}-{s}" for g, a, rp, s, _ in IAM_CASES],
)
def test_aws_iam_tables(
    gateways: dict[str, Any], gw_name: str, account: str, rp: str, side: str, expected: str
) -> None:
    api, segment = _rp_api(rp)
    response = call(gateways[gw_name], api, "iam", segment, f"{account}-{side}")
    check(response, expected, CALLERS[account][1], _arn(api, f"iam/{segment}/{side}"))


# --- CUSTOM: Table A with the authorizer's policy; the explicit-deny pre-check --------------------
#         resource policy:  authorizer allow / silent / deny
CUSTOM = {
    "rpallow": (A, A, AE),
    "rpsilent": (A, AI, AE),
    "rpdeny": (E, E, E),  # phase 1: User: anonymous ..., the authorizer is never called
    "rprole": (A, AI, AE),  # an AWS principal never matches a Lambda-authorized caller
    "nopolicy": (A, AI, AE),
}
CUSTOM_CASES = [
    (gw, rp, side, cell)
    for gw in ("default", "flipped")
    for rp, row in CUSTOM.items()
    for side, cell in zip(("allow", "silent", "deny"), row, strict=True)
]


@pytest.mark.parametrize(
    ("gw_name", "rp", "side", "expected"), CUSTOM_CASES, ids=[f"{g}-{rp}-{s}" for g, rp, s, _ in CUSTOM_CASES]
)
def test_custom_authorizer_table(
    gateways: dict[str, Any], gw_name: str, rp: str, side: str, expected: str
) -> None:
    api, segment = _rp_api(rp)
    response = call(gateways[gw_name], api, "custom", segment, side)
    check(response, expected, "anonymous", _arn(api, f"custom/{segment}/{side}"))


# --- COGNITO_USER_POOLS: cognito_mode prose (explicit allow needed) or table (Table A) -------------
COGNITO = {
    #            prose  table
    "rpallow": (A, A),
    "rpsilent": (I, A),
    "rpdeny": (E, E),
    "rprole": (I, A),
    "nopolicy": (A, A),
}
COGNITO_CASES = [
    (gw, rp, row[0 if gw == "default" else 1]) for gw in ("default", "flipped") for rp, row in COGNITO.items()
]


@pytest.mark.parametrize(
    ("gw_name", "rp", "expected"), COGNITO_CASES, ids=[f"{g}-{rp}" for g, rp, _ in COGNITO_CASES]
)
def test_cognito_table(gateways: dict[str, Any], gw_name: str, rp: str, expected: str) -> None:
    api, segment = _rp_api(rp)
    response = call(gateways[gw_name], api, "cognito", segment, "valid", token=gateways["token"])
    check(response, expected, "anonymous", _arn(api, f"cognito/{segment}/valid"))
    # an invalid token is refused before any of it
    refused = call(gateways[gw_name], api, "cognito", segment, "invalid", token="not-a-token")
    check(refused, U, "anonymous", "")


# --- NONE: the resource policy alone (an explicit allow is needed) --------------------------------
NONE = {"rpallow": A, "rpsilent": I, "rpdeny": E, "rprole": I, "nopolicy": A}


@pytest.mark.parametrize("gw_name", ["default", "flipped"])
@pytest.mark.parametrize(("rp", "expected"), list(NONE.items()), ids=list(NONE))
def test_none_table(gateways: dict[str, Any], gw_name: str, rp: str, expected: str) -> None:
    api, segment = _rp_api(rp)
    response = call(gateways[gw_name], api, "none", segment, "anyone")
    check(response, expected, "anonymous", _arn(api, f"none/{segment}/anyone"))


# --- unknown_access_key_error --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gw_name", "error_type"),
    [("default", "AccessDeniedException"), ("flipped", "UnrecognizedClientException")],
)
def test_unknown_access_key_error_type(gateways: dict[str, Any], gw_name: str, error_type: str) -> None:
    gw = gateways[gw_name]
    unknown = Keys("AKIANOBODY0000000001", "secret")
    signed = sign(
        unknown, "GET", _url(gw, "/prod/iam/rpallow/idallow"), headers={"x-apigw-api-id": WITH_POLICY}
    )
    response = send_signed(gw.port, signed)
    assert response.status == 403
    assert response.error_type == error_type
    assert response.json() == {"message": "The security token included in the request is invalid."}


# --- policy_mode: report: judged as without a policy; the policy's denials only reported ---------
RP_ROWS = ("rpallow", "rpsilent", "rpdeny", "rpacct", "rprole")


def _report_cases(gw_name: str, auth: str) -> list[tuple[str, str, str, str]]:
    """(rp, side, the outcome with the policy enforced, the outcome in report mode)."""

    def pick(cell: Any) -> str:
        return str(cell[gw_name] if isinstance(cell, dict) else cell)

    if auth == "iam":
        return [
            (rp, f"{account}-{side}", pick(table[rp][i]), pick(table["nopolicy"][i]))
            for account, table in (("same", IAM_SAME), ("cross", IAM_CROSS))
            for rp in RP_ROWS
            for i, side in enumerate(("idallow", "idnone", "iddeny"))
        ]
    if auth == "custom":
        return [
            (rp, side, CUSTOM[rp][i], CUSTOM["nopolicy"][i])
            for rp in RP_ROWS
            if rp in CUSTOM
            for i, side in enumerate(("allow", "silent", "deny"))
        ]
    if auth == "cognito":
        column = 0 if gw_name == "default" else 1
        return [
            (rp, "valid", COGNITO[rp][column], COGNITO["nopolicy"][column]) for rp in RP_ROWS if rp in COGNITO
        ]
    return [(rp, "anyone", NONE[rp], NONE["nopolicy"]) for rp in RP_ROWS if rp in NONE]


@pytest.mark.parametrize("auth", ["none", "iam", "custom", "cognito"])
@pytest.mark.parametrize("gw_name", ["default", "flipped"])
def test_report_mode_judges_as_without_a_policy(gateways: dict[str, Any], gw_name: str, auth: str) -> None:
    """Never more than without the policy (a report-only allow grants nothing, the caller's own
    denials stand), never less (the policy's denials are only reported: decision.wouldDeny)."""
    gw = gateways[gw_name]
    passed: dict[str, bool] = {}
    for rp, side, with_policy, expected in _report_cases(gw_name, auth):
        response = call(gw, REPORT, auth, rp, side, token=gateways["token"])
        caller = CALLERS[side.partition("-")[0]][1] if auth == "iam" else "anonymous"
        path = f"{auth}/{rp}/{side.partition('-')[2] if auth == 'iam' else side}"
        check(response, expected, caller, _arn(REPORT, path))
        if expected == A:
            passed[response.request_id] = with_policy != A
    logged = {e["requestId"]: e for e in gw.access_log() if e.get("apiId") == REPORT}
    for request_id, would_deny in passed.items():
        assert logged[request_id]["decision.mode"] == "report"
        assert logged[request_id].get("decision.wouldDeny", False) is would_deny, logged[request_id]
