"""JWT / ``COGNITO_USER_POOLS`` authorizers end to end, with tokens the tests sign.

Issue 4, "JWT / Cognito-style authorizers": RSA and EC keys generated here (``cryptography``),
tokens signed with PyJWT, the JWKS served on loopback. A valid ID token is allowed and its claims
reach the integration (``context.authorizer.claims.NAME`` mappings) and the access log; an
expired token is 401 ``The incoming token has expired``; a wrong issuer, audience or signature,
``alg: none``, an HS256 token keyed with the public key (the HS/RS confusion), an unknown key
id, a token not yet valid or without ``exp`` are 401 ``Unauthorized``; required scopes per route
(``authorization_scopes``) take access tokens; the HTTP-API style ``JWT`` type says why in a
``www-authenticate`` header; the JWKS is fetched once and cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.gateway.auth_support import JsonServer, Response, send
from tests.gateway.conftest import Backend, Gateway, loaded_cryptography, start_gateway, wait_for_log

CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"
AUDIENCE = "https://api.example.com"
EXPIRED = {"message": "The incoming token has expired"}
UNAUTHORIZED = {"message": "Unauthorized"}


class Keys:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    **RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True),
                    "kid": "rsa1",
                    "alg": "RS256",
                    "use": "sig",
                },
                {
                    **ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True),
                    "kid": "ec1",
                    "alg": "ES256",
                    "use": "sig",
                },
            ]
        }

    def public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    keys = Keys()
    idp = JsonServer()
    for path in ("/pool/.well-known/jwks.json", "/jwt/keys.json", "/cached/jwks.json"):
        idp.documents[path] = keys.jwks()
    backend = Backend().start()
    claims_headers = {
        "integration.request.header.X-Sub": "context.authorizer.claims.sub",
        "integration.request.header.X-Email": "context.authorizer.claims.email",
        "integration.request.header.X-Groups": "context.authorizer.claims.cognito:groups",
    }

    def route(path: str, authorizer: str, scopes: list[str] | None = None) -> dict[str, Any]:
        r: dict[str, Any] = {
            "path": path,
            "method": "ANY",
            "authorization": "COGNITO_USER_POOLS",
            "authorizer": authorizer,
            "integration": {
                "type": "HTTP_PROXY",
                "uri": f"{backend.url}/x",
                "request_parameters": claims_headers,
            },
        }
        if scopes:
            r["authorization_scopes"] = scopes
        return r

    algorithms = ["RS256", "ES256"]
    config = {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "authorizers": [
                    # the JWKS URL defaults to ISSUER/.well-known/jwks.json, as Cognito publishes it
                    {
                        "name": "pool",
                        "type": "COGNITO_USER_POOLS",
                        "issuer": idp.url("/pool"),
                        "audiences": [CLIENT],
                        "algorithms": algorithms,
                    },
                    {
                        "name": "cached",
                        "type": "COGNITO_USER_POOLS",
                        "issuer": idp.url("/pool"),
                        "audiences": [CLIENT],
                        "jwks_url": idp.url("/cached/jwks.json"),
                    },
                    {
                        "name": "jwt",
                        "type": "JWT",
                        "issuer": idp.url("/jwt"),
                        "audiences": [AUDIENCE],
                        "jwks_url": idp.url("/jwt/keys.json"),
                        "algorithms": algorithms,
                    },
                ],
                "routes": [
                    route("/pool/{proxy+}", "pool"),
                    route("/pool-scoped", "pool", ["pets/read", "pets/admin"]),
                    route("/cached", "cached"),
                    route("/jwt/{proxy+}", "jwt"),
                    route("/jwt-scoped", "jwt", ["pets/read"]),
                ],
            }
        ],
    }
    tmp: Path = tmp_path_factory.mktemp("jwt")
    try:
        gw = start_gateway(tmp, config)
    except Exception:
        idp.stop()
        backend.stop()
        raise
    yield {"gw": gw, "keys": keys, "idp": idp, "backend": backend}
    gw.stop()
    idp.stop()
    backend.stop()


class World:
    def __init__(self, parts: dict[str, Any]) -> None:
        self.gw: Gateway = parts["gw"]
        self.keys: Keys = parts["keys"]
        self.idp: JsonServer = parts["idp"]
        self.backend: Backend = parts["backend"]

    def claims(self, kind: str = "id", issuer: str = "/pool", **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.idp.url(issuer),
            "sub": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 600,
            "token_use": kind,
        }
        if kind == "id":
            base.update(aud=CLIENT, email="rex@example.com", **{"cognito:groups": ["admin", "users"]})
        else:
            base.update(client_id=CLIENT, scope="openid pets/read")
        if issuer == "/jwt":
            base["aud"] = AUDIENCE
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, claims: dict[str, Any], key: str = "rsa", kid: str | None = None) -> str:
        if key == "ec":
            return jwt.encode(claims, self.keys.ec, algorithm="ES256", headers={"kid": kid or "ec1"})
        signer = self.keys.stranger if key == "stranger" else self.keys.rsa
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": kid or "rsa1"})

    def call(self, path: str, token: str | None, *, prefix: str = "") -> Response:
        headers = {"Authorization": prefix + token} if token is not None else {}
        return send(self.gw.port, "GET", path, headers=headers)


@pytest.fixture
def world(parts: dict[str, Any]) -> World:
    return World(parts)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(world: World, response: Response, body: dict[str, Any], before: int) -> None:
    assert response.status == 401, response.body
    assert response.error_type == "UnauthorizedException"
    assert response.json() == body
    assert len(world.backend.requests) == before


# --- allowed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["rsa", "ec"])
@pytest.mark.parametrize("prefix", ["", "Bearer "], ids=["bare", "bearer"])
def test_valid_id_token_is_allowed_and_its_claims_reach_backend_and_log(
    world: World, key: str, prefix: str
) -> None:
    claims = world.claims()
    before = len(world.backend.requests)
    response = world.call("/prod/pool/pets", world.token(claims, key), prefix=prefix)
    assert response.status == 200, response.body
    assert len(world.backend.requests) == before + 1
    got = world.backend.requests[-1]
    assert got.header("X-Sub") == claims["sub"]
    assert got.header("X-Email") == "rex@example.com"
    assert got.header("X-Groups") == "admin,users"  # a list claim, comma-joined as AWS does
    entry = wait_for_log(world.gw, response.request_id)
    assert entry["authorizer.claims.sub"] == claims["sub"]
    assert entry["authorizer.claims.email"] == "rex@example.com"
    assert entry["authorizer.claims.token_use"] == "id"
    assert entry["authorizer.claims.exp"].endswith(time.strftime("UTC %Y", time.gmtime(claims["exp"])))
    assert loaded_cryptography(world.gw.proc.pid)  # PyJWT verified the signature, with cryptography


# --- refused -------------------------------------------------------------------------------------


def test_expired_token_says_so(world: World) -> None:
    before = len(world.backend.requests)
    claims = world.claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    response = world.call("/prod/pool/pets", world.token(claims))
    refused(world, response, EXPIRED, before)
    assert "www-authenticate" not in response.headers  # REST Cognito authorizers say nothing more
    assert "expired" in wait_for_log(world.gw, response.request_id)["authorizer.error"]


def _bad_token(world: World, how: str) -> str | None:
    if how == "wrong-issuer":
        return world.token(world.claims(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"))
    if how == "wrong-audience":
        return world.token(world.claims(aud="someone-else"))
    if how == "unknown-signer":  # a key that is not in the JWKS, under a kid that is
        return world.token(world.claims(), "stranger")
    if how == "unknown-kid":
        return world.token(world.claims(), kid="rsa-rotated-away")
    if how == "tampered":
        header, payload, signature = world.token(world.claims()).split(".")
        changed = json.loads(base64.urlsafe_b64decode(payload + "=="))
        changed["sub"] = "admin"
        return f"{header}.{_b64(json.dumps(changed).encode())}.{signature}"
    if how == "alg-none":
        return jwt.encode(world.claims(), None, algorithm="none")
    if how == "hs256-with-public-key":  # the HS/RS confusion: the public key as an HMAC secret
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode())
        body = _b64(json.dumps(world.claims()).encode())
        mac = hmac.new(world.keys.public_pem(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"
    if how == "not-yet-valid":
        return world.token(world.claims(nbf=int(time.time()) + 3600))
    if how == "no-exp":
        return world.token(world.claims(exp=None))
    if how == "access-token-without-scopes-route":  # no scopes on the route: an ID token is expected
        return world.token(world.claims("access"))
    if how == "garbage":
        return "not.a.jwt"
    assert how == "missing"
    return None


BAD = [
    "wrong-issuer",
    "wrong-audience",
    "unknown-signer",
    "unknown-kid",
    "tampered",
    "alg-none",
    "hs256-with-public-key",
    "not-yet-valid",
    "no-exp",
    "access-token-without-scopes-route",
    "garbage",
    "missing",
]


@pytest.mark.parametrize("how", BAD)
def test_invalid_tokens_are_unauthorized(world: World, how: str) -> None:
    before = len(world.backend.requests)
    response = world.call("/prod/pool/pets", _bad_token(world, how))
    refused(world, response, UNAUTHORIZED, before)
    assert "www-authenticate" not in response.headers


# --- scopes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "scope", "allowed"),
    [
        ("access", "openid pets/read", True),
        ("access", "pets/admin", True),
        ("access", "pets/write openid", False),
        ("access", None, False),
        ("id", None, False),  # a route with scopes takes access tokens only
    ],
    ids=["read", "admin", "other-scope", "no-scope", "id-token"],
)
def test_route_scopes_need_an_access_token_with_one_of_them(
    world: World, kind: str, scope: str | None, allowed: bool
) -> None:
    before = len(world.backend.requests)
    claims = world.claims(kind, scope=scope) if kind == "access" else world.claims()
    response = world.call("/prod/pool-scoped", world.token(claims))
    if allowed:
        assert response.status == 200, response.body
        assert world.backend.requests[-1].header("X-Sub") == claims["sub"]
    else:
        refused(world, response, UNAUTHORIZED, before)


# --- the JWT (HTTP API) type says why ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "claims", "error", "description"),
    [
        ("/prod/jwt/x", {"aud": "someone-else"}, "invalid_token", "the token does not have a valid audience"),
        (
            "/prod/jwt/x",
            {"iss": "https://elsewhere"},
            "invalid_token",
            "the token does not have a valid issuer",
        ),
        (
            "/prod/jwt-scoped",
            {"scope": "pets/write"},
            "insufficient_scope",
            "the token does not have the required scope",
        ),
    ],
    ids=["audience", "issuer", "scope"],
)
def test_jwt_type_explains_in_www_authenticate(
    world: World, path: str, claims: dict[str, Any], error: str, description: str
) -> None:
    before = len(world.backend.requests)
    response = world.call(path, world.token(world.claims("access", issuer="/jwt", **claims)))
    refused(world, response, UNAUTHORIZED, before)
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="" error="{error}" error_description="{description}"'
    )


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_jwt_type_accepts_valid_tokens(world: World, key: str) -> None:
    claims = world.claims("access", issuer="/jwt")
    assert world.call("/prod/jwt/x", world.token(claims, key), prefix="Bearer ").status == 200
    assert world.call("/prod/jwt-scoped", world.token(claims, key)).status == 200
    assert world.backend.requests[-1].header("X-Sub") == claims["sub"]


# --- the key set is cached -----------------------------------------------------------------------


def test_jwks_is_fetched_once_and_cached(world: World) -> None:
    for _ in range(5):
        assert world.call("/prod/cached", world.token(world.claims())).status == 200
    assert world.idp.fetches["/cached/jwks.json"] == 1
