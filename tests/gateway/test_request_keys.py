"""iamgate's own condition keys through the real gateway (docs/policy-semantics.md, "iamgate's own
condition keys"): headers, query and path parameters, the API key id, the route, claims of real
JWTs signed here, a Lambda-style authorizer's context over HTTP, and (test_tls-style) the client
certificate of mutual TLS. Attacker cases: a repeated header or query parameter cannot slip
past a Deny (400, the backend sees nothing), values a client sends cannot stand in for claims,
and a denial never reaches the backend."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from cryptography import x509

from tests.gateway.auth_support import AuthorizerEndpoint, JsonServer, Response, send
from tests.gateway.conftest import Backend, start_gateway
from tests.gateway.test_auth_jwt import Keys
from tests.gateway.tls_support import client_cert, client_context, get, write_ca, write_server_cert

ACCOUNT = "111122223333"
KEYS_API, JWT_API, CUSTOM_API = "keysapi001", "jwtapi0001", "customapi1"
GOLD_KEY, SILVER_KEY = "gold-key-value-0000000001", "silver-key-value-000000001"
AUDIENCE = "https://api.example.com"


def _proxy(path: str, backend: Backend, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "method": method,
        "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/seen"},
        **extra,
    }


def _allow(resource: str, condition: dict[str, Any] | None = None, sid: str = "Allow") -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": resource,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _deny(condition: dict[str, Any], sid: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
        "Condition": condition,
    }


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def config(backend: Backend, idp: JsonServer, authorizer_url: str) -> dict[str, Any]:
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "api_keys": [
            {"id": "k-gold", "value": GOLD_KEY},
            {"id": "k-silver", "value": SILVER_KEY},
        ],
        "apis": [
            {
                "id": KEYS_API,
                "stages": {"prod": {}},
                "policy": _policy(
                    _allow(
                        "execute-api:/prod/GET/tenants/*",
                        {
                            "StringEquals": {
                                "iamgate:RequestHeader/X-Tenant": "${iamgate:PathParameter/tenant}"
                            }
                        },
                        "OwnTenantHeader",
                    ),
                    _allow(
                        "execute-api:/prod/GET/keyed",
                        {"StringEquals": {"iamgate:ApiKeyId": "k-gold"}},
                        "Gold",
                    ),
                    _allow(
                        "execute-api:/prod/*/admin",
                        {"StringEquals": {"iamgate:HttpMethod": "GET", "iamgate:ResourcePath": "/admin"}},
                        "ReadAdmin",
                    ),
                    _deny({"StringEquals": {"iamgate:QueryString/debug": "1"}}, "NoDebug"),
                ),
                "routes": [
                    _proxy("/tenants/{tenant}/orders", backend),
                    _proxy("/keyed", backend),
                    _proxy("/admin", backend, "ANY"),
                ],
            },
            {
                "id": JWT_API,
                "stages": {"prod": {}},
                "authorizers": [
                    {
                        "name": "jwt",
                        "type": "JWT",
                        "issuer": idp.url("/jwt"),
                        "audiences": [AUDIENCE],
                        "jwks_url": idp.url("/jwt/keys.json"),
                        "algorithms": ["RS256"],
                    }
                ],
                "policy": _policy(
                    _allow(
                        "execute-api:/prod/GET/tenants/${iamgate:JwtClaim/tenant}/*",
                        {"ForAnyValue:StringEquals": {"iamgate:JwtClaim/realm_access.roles": "admin"}},
                        "AdminsOfTheirTenant",
                    )
                ),
                "routes": [
                    _proxy(
                        "/tenants/{tenant}/orders",
                        backend,
                        authorization="COGNITO_USER_POOLS",
                        authorizer="jwt",
                    ),
                ],
            },
            {
                "id": CUSTOM_API,
                "stages": {"prod": {}},
                "authorizers": [{"name": "http", "type": "TOKEN", "url": authorizer_url, "result_ttl": 0}],
                "policy": _policy(
                    _allow("execute-api:/*"),
                    _deny({"StringNotEquals": {"iamgate:AuthorizerContext/tier": "gold"}}, "GoldOnly"),
                ),
                "routes": [_proxy("/{proxy+}", backend, "ANY", authorization="CUSTOM", authorizer="http")],
            },
        ],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    keys = Keys()
    idp = JsonServer()
    idp.documents["/jwt/keys.json"] = keys.jwks()
    endpoint = AuthorizerEndpoint()
    backend = Backend().start()
    try:
        gw = start_gateway(tmp_path_factory.mktemp("request-keys"), config(backend, idp, endpoint.url("/")))
    except Exception:
        idp.stop()
        endpoint.stop()
        backend.stop()
        raise
    yield {"gw": gw, "keys": keys, "idp": idp, "endpoint": endpoint, "backend": backend}
    gw.stop()
    idp.stop()
    endpoint.stop()
    backend.stop()


def _call(world: dict[str, Any], api: str, target: str, headers: Any = None, method: str = "GET") -> Response:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    return send(world["gw"].port, method, target, headers=[("x-apigw-api-id", api), *pairs])


def _seen(world: dict[str, Any]) -> int:
    return len(world["backend"].requests)


def test_a_header_must_match_the_path_parameter(world: dict[str, Any]) -> None:
    assert _call(world, KEYS_API, "/prod/tenants/blue/orders", {"X-Tenant": "blue"}).status == 200
    before = _seen(world)
    other = _call(world, KEYS_API, "/prod/tenants/blue/orders", {"X-Tenant": "red"})
    assert other.status == 403, other.body
    missing = _call(world, KEYS_API, "/prod/tenants/blue/orders")
    assert missing.status == 403
    assert _seen(world) == before  # nothing denied reached the backend


def test_a_query_parameter_deny_applies_whatever_the_case_of_its_name(world: dict[str, Any]) -> None:
    assert _call(world, KEYS_API, "/prod/tenants/blue/orders?debug=0", {"X-Tenant": "blue"}).status == 200
    for query in ("debug=1", "DEBUG=1", "a=b&debug=1"):
        denied = _call(world, KEYS_API, f"/prod/tenants/blue/orders?{query}", {"X-Tenant": "blue"})
        assert denied.status == 403, query
        assert denied.json() == {
            "Message": "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
            f"arn:aws:execute-api:us-east-1:********3333:{KEYS_API}/prod/GET/tenants/blue/orders "
            "with an explicit deny"
        }


@pytest.mark.parametrize(
    ("target", "headers", "what"),
    [
        (
            "/prod/tenants/blue/orders?debug=1&debug=1",
            [("X-Tenant", "blue")],
            "query string parameter 'debug'",
        ),
        (
            "/prod/tenants/blue/orders?debug=1&Debug=0",
            [("X-Tenant", "blue")],
            "query string parameter 'debug'",
        ),
        ("/prod/tenants/blue/orders", [("X-Tenant", "blue"), ("X-Tenant", "blue")], "header 'x-tenant'"),
        ("/prod/tenants/blue/orders", [("X-Tenant", "blue"), ("x-tenant", "red")], "header 'x-tenant'"),
    ],
    ids=["query-twice", "query-twice-other-case", "header-twice", "header-twice-two-values"],
)
def test_a_value_sent_twice_is_refused_not_decided(
    world: dict[str, Any], target: str, headers: list[tuple[str, str]], what: str
) -> None:
    """Repeating a key the policy reads as one value would make a plain StringEquals miss (a
    Deny slipped past): the gateway refuses the request instead, and the backend sees nothing."""
    before = _seen(world)
    refused = _call(world, KEYS_API, target, headers)
    assert refused.status == 400, refused.body
    assert what in refused.json()["message"]
    assert "sent more than once" in refused.json()["message"]
    assert _seen(world) == before


def test_the_api_key_id_is_that_of_a_known_key(world: dict[str, Any]) -> None:
    ok = _call(world, KEYS_API, "/prod/keyed", {"x-api-key": GOLD_KEY})
    assert ok.status == 200
    for value in (SILVER_KEY, "k-gold", GOLD_KEY.upper(), ""):
        refused = _call(world, KEYS_API, "/prod/keyed", {"x-api-key": value})
        assert refused.status == 403, value  # the id of another key, an id sent as a value, no key
    assert _call(world, KEYS_API, "/prod/keyed").status == 403


def test_the_route_keys_are_what_was_routed(world: dict[str, Any]) -> None:
    assert _call(world, KEYS_API, "/prod/admin").status == 200
    assert _call(world, KEYS_API, "/prod/admin", method="DELETE").status == 403
    # a header or query parameter named like a key is just a header or a query parameter
    spoof = _call(world, KEYS_API, "/prod/admin?iamgate:HttpMethod=GET", {"X-HttpMethod": "GET"}, "DELETE")
    assert spoof.status == 403


def _token(world: dict[str, Any], **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": world["idp"].url("/jwt"),
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(body, world["keys"].rsa, algorithm="RS256", headers={"kid": "rsa1"})


def test_claims_of_a_verified_token_decide(world: dict[str, Any]) -> None:
    admin = _token(world, tenant="blue", realm_access={"roles": ["reader", "admin"]})
    reader = _token(world, tenant="blue", realm_access={"roles": ["reader"]})
    auth = {"Authorization": f"Bearer {admin}"}
    assert _call(world, JWT_API, "/prod/tenants/blue/orders", auth).status == 200
    assert _call(world, JWT_API, "/prod/tenants/red/orders", auth).status == 403  # another tenant
    before = _seen(world)
    denied = _call(world, JWT_API, "/prod/tenants/blue/orders", {"Authorization": f"Bearer {reader}"})
    assert denied.status == 403
    assert _seen(world) == before


def test_a_client_cannot_stand_in_for_a_claim(world: dict[str, Any]) -> None:
    reader = _token(world, tenant="blue", realm_access={"roles": ["reader"]})
    spoofs = {
        "Authorization": f"Bearer {reader}",
        "X-Realm-Access-Roles": "admin",
        "realm_access.roles": "admin",
        "tenant": "red",
    }
    target = "/prod/tenants/blue/orders?realm_access.roles=admin&roles=admin"
    assert _call(world, JWT_API, target, spoofs).status == 403
    # a token the gateway did not verify is no token at all
    forged = jwt.encode(
        {
            "tenant": "blue",
            "realm_access": {"roles": ["admin"]},
            "aud": AUDIENCE,
            "exp": int(time.time()) + 60,
        },
        world["keys"].stranger,
        algorithm="RS256",
        headers={"kid": "rsa1"},
    )
    assert (
        _call(world, JWT_API, "/prod/tenants/blue/orders", {"Authorization": f"Bearer {forged}"}).status
        == 401
    )


def test_an_authorizer_context_value_decides_after_the_authorizer(world: dict[str, Any]) -> None:
    """The Deny reads what only the authorizer's answer gives, so it is decided after the
    authorizer ran (a pre-check without the context would deny every request)."""
    endpoint: AuthorizerEndpoint = world["endpoint"]
    gold = f"allow:{uuid.uuid4().hex[:8]}"
    assert _call(world, CUSTOM_API, "/prod/anything", {"Authorization": gold}).status == 200
    assert endpoint.calls(gold) == 1
    plain = f"key:{uuid.uuid4().hex[:8]}"  # allowed by its policy, but no tier in its context
    before = _seen(world)
    denied = _call(world, CUSTOM_API, "/prod/anything", {"Authorization": plain})
    assert denied.status == 403, denied.body
    assert endpoint.calls(plain) == 1
    assert _seen(world) == before


# --- mutual TLS ------------------------------------------------------------------------------------
MTLS_API = "mtlsapi001"


def _san_cert(ca: trustme.CA, directory: Path, stem: str, *names: x509.GeneralName) -> tuple[str, str]:
    cert, key, _ = client_cert(ca, directory, stem, cn=stem, sans=names)
    return cert, key


def test_the_client_certificate_decides(tmp_path: Path, backend: Backend) -> None:
    server_ca, clients_ca, other_clients = trustme.CA(), trustme.CA(), trustme.CA()
    ca_file = write_ca(server_ca, tmp_path, "ca")
    truststore = write_ca(clients_ca, tmp_path, "clients")
    # a second CA in the truststore: its clients connect, but the policy names only the first issuer
    (tmp_path / "clients.pem").write_text(
        Path(truststore).read_text() + Path(write_ca(other_clients, tmp_path, "other")).read_text()
    )
    server = write_server_cert(server_ca, tmp_path, "server", "mtls.example.test")
    issuer = x509.load_pem_x509_certificate(clients_ca.cert_pem.bytes()).subject.rfc4514_string()
    spiffe = x509.UniformResourceIdentifier
    payments = _san_cert(clients_ca, tmp_path, "payments", spiffe("spiffe://example.org/ns/payments/sa/api"))
    billing = _san_cert(clients_ca, tmp_path, "billing", spiffe("spiffe://example.org/ns/billing/sa/api"))
    outsider = _san_cert(other_clients, tmp_path, "outsider", spiffe("spiffe://example.org/ns/payments/sa/x"))
    gw = start_gateway(
        tmp_path,
        {
            "gateway": {
                "region": "us-east-1",
                "account_id": ACCOUNT,
                "tls": {"certificate": server[0], "key": server[1]},
            },
            "domains": [
                {
                    "name": "mtls.example.test",
                    "certificate": server[0],
                    "key": server[1],
                    "mutual_tls": {"truststore": str(tmp_path / "clients.pem")},
                    "mappings": [{"api": MTLS_API, "stage": "prod"}],
                }
            ],
            "apis": [
                {
                    "id": MTLS_API,
                    "stages": {"prod": {}},
                    "policy": _policy(
                        _allow(
                            "execute-api:/*",
                            {
                                "StringEquals": {"iamgate:ClientCert/IssuerDN": issuer},
                                "ForAnyValue:StringLike": {
                                    "iamgate:ClientCert/SAN": "spiffe://example.org/ns/payments/*"
                                },
                            },
                            "PaymentsWorkloads",
                        )
                    ),
                    "routes": [_proxy("/pay", backend, "POST")],
                }
            ],
        },
    )
    try:

        def post(cert: tuple[str, str]) -> int:
            ctx = client_context(ca_file, cert=cert)
            return get("mtls.example.test", gw.port, ctx, "/pay", method="POST")[0]

        assert post(payments) == 200
        before = len(backend.requests)
        assert post(billing) == 403  # trusted, but another workload
        assert post(outsider) == 403  # a SAN that matches, from an issuer the policy does not name
        assert len(backend.requests) == before
    finally:
        gw.stop()
