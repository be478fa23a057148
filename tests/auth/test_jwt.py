"""JWT / Cognito-style authorizer validation (docs/authentication.md; AWS's responses).

Everything is real: RSA 2048 / EC P-256 / Ed25519 keys generated here, tokens signed by PyJWT (or,
for the attacks PyJWT refuses to produce, signed by hand with the same primitives), and a JWKS
served over loopback by ``http.server`` in a thread that counts its fetches. The JWKS cache and
the validator take injectable clocks, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from iamgate.auth import jwt as J
from iamgate.auth.jwks import JwksCache, key_problem

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool1"
CLIENT_ID = "5q1tclientexample0000000000"
NOW = 1_700_000_000  # Tue Nov 14 22:13:20 UTC 2023


# -- keys and tokens ------------------------------------------------------------------------------


@functools.cache
def rsa_key(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def ed_key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of private ``key``; ``private=True`` publishes the private key instead (the
    misconfiguration case)."""
    private = extra.pop("private", False)
    material = key if private else key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        data = RSAAlgorithm.to_jwk(material, as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        data = ECAlgorithm.to_jwk(material, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(material, as_dict=True)
    return {**data, "kid": kid, "use": "sig", **extra}


def rsa_jwk(name: str = "a", kid: str | None = None, **extra: Any) -> dict[str, Any]:
    return jwk(rsa_key(name), kid or f"rsa-{name}", **{"alg": "RS256", **extra})


def sign(
    claims: dict[str, Any],
    key: Any = None,
    kid: str | None = "rsa-a",
    alg: str = "RS256",
    headers: dict[str, Any] | None = None,
) -> str:
    key = rsa_key("a") if key is None else key
    all_headers = {**({"kid": kid} if kid is not None else {}), **(headers or {})}
    return pyjwt.encode(claims, key, algorithm=alg, headers=all_headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(value: Any) -> str:
    return b64(json.dumps(value).encode())


def sign_raw(header: dict[str, Any], payload: bytes, key: Any = None) -> str:
    """RS256 over arbitrary payload bytes: a correctly signed token whose content is garbage."""
    signing_input = f"{part(header)}.{b64(payload)}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), key or rsa_key("a"))
    return f"{signing_input}.{b64(signature)}"


def id_claims(**changes: Any) -> dict[str, Any]:
    """A Cognito ID token's claims (shape of a real pool's token); ``name=None`` removes a claim."""
    claims: dict[str, Any] = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["admin", "users"],
        "email_verified": True,
        "iss": ISSUER,
        "cognito:username": "alice",
        "origin_jti": "11111111-2222-3333-4444-555555555555",
        "aud": CLIENT_ID,
        "event_id": "66666666-7777-8888-9999-000000000000",
        "token_use": "id",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "abcdefab-1234-5678-9abc-def012345678",
        "email": "alice@example.com",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def access_claims(**changes: Any) -> dict[str, Any]:
    """A Cognito access token's claims: ``client_id`` instead of ``aud``, a ``scope`` string."""
    claims: dict[str, Any] = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["admin"],
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "origin_jti": "11111111-2222-3333-4444-555555555555",
        "event_id": "66666666-7777-8888-9999-000000000000",
        "token_use": "access",
        "scope": "openid pets/read pets/write",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "abcdefab-1234-5678-9abc-def012345678",
        "username": "alice",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


# -- the JWKS server on loopback ------------------------------------------------------------------


class JwksServer:
    """Serves ``/jwks.json``; counts GETs; can answer an error status or hang until released."""

    def __init__(self) -> None:
        self.body = b'{"keys": []}'
        self.status = 200
        self.slow = False
        self.fetches = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.fetches += 1
                if outer.slow:
                    outer._release.wait(10)
                body = outer.body if self.path == "/jwks.json" else b"not found"
                status = outer.status if self.path == "/jwks.json" else 404
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def set_keys(self, *keys: dict[str, Any]) -> None:
        self.body = json.dumps({"keys": list(keys)}).encode()

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[JwksServer]:
    srv = JwksServer()
    srv.set_keys(rsa_jwk("a"), jwk(ec_key("e"), "ec-e", alg="ES256"))
    yield srv
    srv.close()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, t: float = 5_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_settings(url: str | None = None, **changes: Any) -> J.JwtAuthorizerSettings:
    values: dict[str, Any] = {"issuer": ISSUER, "audiences": (CLIENT_ID,), "jwks_url": url, "jwks_file": None}
    values.update(changes)
    return J.JwtAuthorizerSettings(**values)


def make_validator(
    settings_: J.JwtAuthorizerSettings, *, now: float = NOW, clock: Clock | None = None
) -> J.JwtValidator:
    cache = JwksCache(settings_, clock=clock or Clock())
    return J.JwtValidator(settings_, clock=lambda: now, jwks=cache)


def accept(v: J.JwtValidator, token: str, scopes: tuple[str, ...] = ()) -> J.JwtClaims:
    return asyncio.run(v.validate(token, required_scopes=scopes))


def refuse(v: J.JwtValidator, token: str, scopes: tuple[str, ...] = ()) -> J.JwtError:
    with pytest.raises(J.JwtError) as info:
        asyncio.run(v.validate(token, required_scopes=scopes))
    return info.value


@pytest.fixture
def v(server: JwksServer) -> J.JwtValidator:
    return make_validator(make_settings(server.url, algorithms=("RS256", "ES256")))


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_settings_refuse_alg_none(alg: str) -> None:
    with pytest.raises(ValueError, match="'none' is never allowed"):
        make_settings("https://idp.example/jwks.json", algorithms=("RS256", alg))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "hs256"])
def test_settings_refuse_hmac(alg: str) -> None:
    with pytest.raises(ValueError, match="HMAC"):
        make_settings("https://idp.example/jwks.json", algorithms=(alg,))


@pytest.mark.parametrize("alg", ["RS1", "ES256K", "RSA-OAEP", ""])
def test_settings_refuse_unknown_algorithms(alg: str) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        make_settings("https://idp.example/jwks.json", algorithms=(alg,))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"jwks_url": None}, "exactly one"),
        ({"jwks_file": "/tmp/jwks.json"}, "exactly one"),
        ({"jwks_url": "file:///etc/jwks.json"}, "http"),
        ({"jwks_url": "ftp://idp.example/jwks.json"}, "http"),
        ({"jwks_url": "https:///jwks.json"}, "host"),
        ({"issuer": ""}, "issuer"),
        ({"audiences": CLIENT_ID}, "tuple"),
        ({"algorithms": ()}, "at least one"),
        ({"token_use": "refresh"}, "token_use"),
        ({"leeway": -1}, "leeway"),
        ({"leeway": float("nan")}, "leeway"),
        ({"fetch_timeout": 0}, "fetch_timeout"),
        ({"max_keys": 0}, "max_keys"),
        ({"cache_ttl": float("inf")}, "cache_ttl"),
    ],
)
def test_settings_refuse_bad_values(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_settings("https://idp.example/jwks.json", **changes)


def test_settings_take_lists_as_tuples() -> None:
    s = make_settings("https://idp.example/jwks.json", audiences=["a", "b"], algorithms=["RS256", "ES256"])
    assert s.audiences == ("a", "b")
    assert s.algorithms == ("RS256", "ES256")


def test_public_api_is_pinned() -> None:
    assert J.__all__ == sorted(J.__all__, key=lambda n: (not n.isupper(), n))
    assert set(J.__all__) == {
        "EXPIRED",
        "MAX_TOKEN_BYTES",
        "SUPPORTED_ALGORITHMS",
        "UNAUTHORIZED",
        "JwksCache",
        "JwtAuthorizerSettings",
        "JwtClaims",
        "JwtError",
        "JwtValidator",
        "extract_bearer",
    }
    assert J.UNAUTHORIZED == "Unauthorized"
    assert J.EXPIRED == "The incoming token has expired"


# -- valid tokens ---------------------------------------------------------------------------------


def test_valid_id_token(v: J.JwtValidator, server: JwksServer) -> None:
    result = accept(v, sign(id_claims()))
    assert result.claims["cognito:username"] == "alice"
    assert result.claims["token_use"] == "id"
    assert result.scopes == ()
    assert server.fetches == 1


def test_valid_access_token_with_scopes(server: JwksServer) -> None:
    v = make_validator(make_settings(server.url, token_use="access"))
    result = accept(v, sign(access_claims()), scopes=("pets/read",))
    assert result.claims["client_id"] == CLIENT_ID
    assert result.scopes == ("openid", "pets/read", "pets/write")


def test_valid_es256_token(v: J.JwtValidator) -> None:
    result = accept(v, sign(id_claims(), key=ec_key("e"), kid="ec-e", alg="ES256"))
    assert result.claims["sub"] == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def test_valid_ps256_and_eddsa_tokens(server: JwksServer) -> None:
    server.set_keys(jwk(rsa_key("a"), "rsa-pss"), jwk(ed_key("d"), "ed-d"))
    v = make_validator(make_settings(server.url, algorithms=("PS256", "EdDSA")))
    assert accept(v, sign(id_claims(), kid="rsa-pss", alg="PS256")).claims["iss"] == ISSUER
    assert accept(v, sign(id_claims(), key=ed_key("d"), kid="ed-d", alg="EdDSA")).claims["iss"] == ISSUER


def test_validated_tokens_reuse_the_cached_jwks(v: J.JwtValidator, server: JwksServer) -> None:
    for _ in range(5):
        accept(v, sign(id_claims()))
    assert server.fetches == 1


# -- time -----------------------------------------------------------------------------------------


def test_expired_token_says_expired(server: JwksServer) -> None:
    token = sign(id_claims(exp=NOW + 3600))
    v = make_validator(make_settings(server.url), now=NOW + 3600 + 61)
    err = refuse(v, token)
    assert err.message == "The incoming token has expired"
    assert err.expired
    assert "expired" in err.reason
    assert 'error_description="the token has expired"' in err.www_authenticate()


def test_expiry_has_leeway(server: JwksServer) -> None:
    token = sign(id_claims(exp=NOW + 3600))
    assert accept(make_validator(make_settings(server.url), now=NOW + 3600 + 59), token)
    err = refuse(make_validator(make_settings(server.url, leeway=0), now=NOW + 3600), token)
    assert err.expired


def test_expired_token_with_a_bad_signature_is_just_unauthorized(server: JwksServer) -> None:
    forged = sign(id_claims(exp=NOW - 7200), key=rsa_key("attacker"))
    err = refuse(make_validator(make_settings(server.url)), forged)
    assert err.message == "Unauthorized"
    assert "signature" in err.reason


@pytest.mark.parametrize("exp", [None, "soon", True, [NOW + 60], float("inf")])
def test_exp_must_be_a_number(v: J.JwtValidator, exp: Any) -> None:
    claims = id_claims(exp=None)
    if exp is not None:
        claims["exp"] = exp
    token = sign_raw({"alg": "RS256", "kid": "rsa-a"}, json.dumps(claims).encode())
    err = refuse(v, token)
    assert err.message == "Unauthorized"
    assert "exp" in err.reason


def test_not_yet_valid(server: JwksServer) -> None:
    token = sign(id_claims(nbf=NOW + 120))
    err = refuse(make_validator(make_settings(server.url)), token)
    assert err.message == "Unauthorized"
    assert "nbf" in err.reason
    assert accept(make_validator(make_settings(server.url), now=NOW + 61), token)


def test_issued_in_the_future(server: JwksServer) -> None:
    token = sign(id_claims(iat=NOW + 300))
    err = refuse(make_validator(make_settings(server.url)), token)
    assert "iat" in err.reason
    assert accept(make_validator(make_settings(server.url, leeway=300)), token)


# -- issuer, audience, token_use ------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [ISSUER + "/", ISSUER.upper(), "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other", None, 42],
)
def test_wrong_issuer(v: J.JwtValidator, iss: Any) -> None:
    claims = id_claims(iss=None)
    if iss is not None:
        claims["iss"] = iss
    err = refuse(v, sign_raw({"alg": "RS256", "kid": "rsa-a"}, json.dumps(claims).encode()))
    assert err.message == "Unauthorized"
    assert "issuer" in err.reason


def test_wrong_audience(v: J.JwtValidator) -> None:
    err = refuse(v, sign(id_claims(aud="someone-else")))
    assert "audience not allowed" in err.reason
    assert err.www_authenticate() == (
        'Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience"'
    )


def test_audience_as_a_list(v: J.JwtValidator) -> None:
    assert accept(v, sign(id_claims(aud=["other", CLIENT_ID])))
    err = refuse(v, sign(id_claims(aud=["other", "another"])))
    assert "audience" in err.reason


def test_access_token_audience_is_client_id(v: J.JwtValidator) -> None:
    assert accept(v, sign(access_claims()))
    err = refuse(v, sign(access_claims(client_id="another-client")))
    assert "audience" in err.reason


def test_audience_not_checked_without_audiences(server: JwksServer) -> None:
    v = make_validator(make_settings(server.url, audiences=()))
    assert accept(v, sign(id_claims(aud="anyone")))


@pytest.mark.parametrize(("wanted", "claims"), [("access", id_claims()), ("id", access_claims())])
def test_token_use_mismatch(server: JwksServer, wanted: str, claims: dict[str, Any]) -> None:
    v = make_validator(make_settings(server.url, token_use=wanted))
    err = refuse(v, sign(claims))
    assert "token_use" in err.reason


def test_token_use_missing_when_required(server: JwksServer) -> None:
    v = make_validator(make_settings(server.url, token_use="id"))
    assert "token_use" in refuse(v, sign(id_claims(token_use=None))).reason
    assert accept(v, sign(id_claims()))


# -- scopes ---------------------------------------------------------------------------------------


def test_scope_string(v: J.JwtValidator) -> None:
    token = sign(access_claims(scope="openid pets/read"))
    assert accept(v, token, ("pets/read",)).scopes == ("openid", "pets/read")
    assert accept(v, token, ("admin", "pets/read"))  # any one of the route's scopes suffices


def test_missing_scope(v: J.JwtValidator) -> None:
    err = refuse(v, sign(access_claims(scope="openid pets/read")), ("pets/write", "admin"))
    assert err.message == "Unauthorized"
    assert err.reason.startswith("missing scope")
    assert 'error="insufficient_scope"' in err.www_authenticate()


def test_scp_list_and_string(v: J.JwtValidator) -> None:
    as_list = sign(access_claims(scope=None, scp=["read:pets", "write:pets"]))
    assert accept(v, as_list, ("write:pets",)).scopes == ("read:pets", "write:pets")
    as_string = sign(access_claims(scope=None, scp="read:pets write:pets"))
    assert accept(v, as_string, ("read:pets",)).scopes == ("read:pets", "write:pets")
    assert refuse(v, as_list, ("admin",)).reason.startswith("missing scope")


def test_scope_and_scp_are_merged(v: J.JwtValidator) -> None:
    token = sign(access_claims(scope="a b", scp=["b", "c", 7]))
    assert accept(v, token).scopes == ("a", "b", "c")


def test_no_scope_claim_with_required_scopes(v: J.JwtValidator) -> None:
    token = sign(id_claims())
    assert accept(v, token).scopes == ()
    assert refuse(v, token, ("openid",)).reason.startswith("missing scope")


# -- algorithm attacks and key fitness ------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_refused(v: J.JwtValidator, server: JwksServer, alg: str, signature: str) -> None:
    token = f"{part({'alg': alg, 'kid': 'rsa-a', 'typ': 'JWT'})}.{part(id_claims())}.{signature}"
    err = refuse(v, token)
    assert err.message == "Unauthorized"
    assert "alg none" in err.reason
    assert server.fetches == 0  # refused before any key is looked up


def test_hs256_signed_with_the_rsa_public_key_is_refused(v: J.JwtValidator, server: JwksServer) -> None:
    """The classic confusion: the attacker HMACs with the public key a naive verifier would use as
    the HMAC secret once the token says HS256."""
    pem = (
        rsa_key("a")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for secret in (pem, json.dumps(rsa_jwk("a")).encode()):
        signing_input = f"{part({'alg': 'HS256', 'kid': 'rsa-a', 'typ': 'JWT'})}.{part(id_claims())}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        err = refuse(v, f"{signing_input}.{b64(signature)}")
        assert "not allowed" in err.reason
    assert server.fetches == 0
    assert key_problem(rsa_jwk("a"), "HS256") is not None


def test_asymmetric_algorithm_outside_the_allow_list(v: J.JwtValidator) -> None:
    err = refuse(v, sign(id_claims(), alg="RS512"))
    assert "not allowed" in err.reason


def test_key_of_the_wrong_type(v: J.JwtValidator) -> None:
    rsa_token_pointing_at_ec_key = sign(id_claims(), kid="ec-e", alg="RS256")
    assert "key type 'EC' does not fit RS256" in refuse(v, rsa_token_pointing_at_ec_key).reason
    ec_token_pointing_at_rsa_key = sign(id_claims(), key=ec_key("e"), kid="rsa-a", alg="ES256")
    assert "key type 'RSA' does not fit ES256" in refuse(v, ec_token_pointing_at_rsa_key).reason


@pytest.mark.parametrize(
    ("published", "problem"),
    [
        (rsa_jwk("a", alg="RS512"), "key is for 'RS512'"),
        (rsa_jwk("a", use="enc"), "key use is 'enc'"),
        (rsa_jwk("a", key_ops=["encrypt"]), "key_ops"),
        (rsa_jwk("a", private=True), "private key material"),
        (jwk(rsa_key("short", 1024), "rsa-a", alg="RS256"), "2048"),
        ({"kty": "RSA", "kid": "rsa-a", "n": "AQAB"}, "unusable JWK"),
        ({"kty": "oct", "kid": "rsa-a", "k": b64(b"secret" * 8)}, "key type 'oct'"),
    ],
    ids=["jwk-alg", "use-enc", "key-ops", "private", "rsa-1024", "broken", "oct"],
)
def test_unfit_keys_are_refused(server: JwksServer, published: dict[str, Any], problem: str) -> None:
    server.set_keys(published)
    key = rsa_key("short", 1024) if "2048" in problem else rsa_key("a")
    # signed by hand: PyJWT's encoder would warn about the 1024-bit key (warnings are errors here)
    token = sign_raw({"alg": "RS256", "kid": "rsa-a"}, json.dumps(id_claims()).encode(), key)
    err = refuse(make_validator(make_settings(server.url)), token)
    assert problem in err.reason


def test_same_kid_may_carry_keys_for_several_algorithms(server: JwksServer) -> None:
    server.set_keys(jwk(ec_key("e"), "shared", alg="ES256"), jwk(rsa_key("a"), "shared", alg="RS256"))
    v = make_validator(make_settings(server.url, algorithms=("RS256", "ES256")))
    assert accept(v, sign(id_claims(), kid="shared"))
    assert accept(v, sign(id_claims(), key=ec_key("e"), kid="shared", alg="ES256"))


# -- tampering and malformed tokens ---------------------------------------------------------------


def test_tampered_payload(v: J.JwtValidator) -> None:
    header, _, signature = sign(id_claims()).split(".")
    forged = f"{header}.{part(id_claims(**{'cognito:groups': ['admin', 'root']}))}.{signature}"
    assert refuse(v, forged).reason == "signature verification failed"


def test_tampered_signature(v: J.JwtValidator) -> None:
    header, payload, signature = sign(id_claims()).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    assert refuse(v, f"{header}.{payload}.{b64(bytes(raw))}").reason == "signature verification failed"


def test_signed_by_another_key_under_a_known_kid(v: J.JwtValidator) -> None:
    forged = sign(id_claims(), key=rsa_key("attacker"), kid="rsa-a")
    assert refuse(v, forged).reason == "signature verification failed"


def _malformed() -> list[tuple[str, str]]:
    valid = sign(id_claims())
    kid = {"alg": "RS256", "kid": "rsa-a"}
    return [
        ("empty", ""),
        ("one part", "abc"),
        ("two parts", "abc.def"),
        ("four parts", valid + ".abc"),
        ("not base64url", "!!!.!!!.!!!"),
        ("non ascii", "é.é.é"),
        ("leading space", " " + valid),
        ("bad padding", "a===.b.c"),
        ("header not json", f"{b64(b'not json')}.{part({})}.abc"),
        ("header an array", f"{part([1, 2])}.{part({})}.abc"),
        ("header without alg", f"{part({'kid': 'rsa-a'})}.{part(id_claims())}.abc"),
        ("alg not a string", f"{part({'alg': 7, 'kid': 'rsa-a'})}.{part(id_claims())}.abc"),
        ("kid not a string", f"{part({'alg': 'RS256', 'kid': 7})}.{part(id_claims())}.abc"),
        ("no kid", sign(id_claims(), kid=None)),
        ("payload not json (signed)", sign_raw(kid, b"not json")),
        ("payload an array (signed)", sign_raw(kid, b"[1, 2]")),
        ("payload huge int (signed)", sign_raw(kid, b'{"exp": ' + b"9" * 5000 + b"}")),
        ("deep nesting (signed)", sign_raw(kid, b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}")),
        (
            "unknown crit (signed)",
            sign_raw({**kid, "crit": ["x-mine"], "x-mine": 1}, json.dumps(id_claims()).encode()),
        ),
        ("b64 false", f"{part({**kid, 'b64': False, 'crit': ['b64']})}..abc"),
        ("too large (signed)", sign(id_claims(padding="x" * 16_500))),
        ("empty signature", f"{part(kid)}.{part(id_claims())}."),
    ]


@pytest.mark.parametrize(("case", "token"), _malformed(), ids=[c for c, _ in _malformed()])
def test_malformed_tokens(v: J.JwtValidator, case: str, token: str) -> None:
    err = refuse(v, token)
    assert err.message == "Unauthorized", case
    assert err.reason


def test_too_large_is_refused_before_parsing(v: J.JwtValidator, server: JwksServer) -> None:
    err = refuse(v, sign(id_claims(padding="x" * 16_500)))
    assert "larger than 16384" in err.reason
    assert server.fetches == 0


# -- the JWKS over HTTP ---------------------------------------------------------------------------


def test_unknown_kid_refetches_at_most_once_per_interval(server: JwksServer) -> None:
    clock = Clock()
    v = make_validator(make_settings(server.url), clock=clock)
    assert accept(v, sign(id_claims()))
    assert server.fetches == 1
    ghost = sign(id_claims(), key=rsa_key("b"), kid="ghost")
    assert "unknown kid 'ghost'" in refuse(v, ghost).reason
    assert server.fetches == 1  # the document is 0 s old: no refetch yet
    clock.t += 10
    assert "unknown kid" in refuse(v, ghost).reason
    assert server.fetches == 2  # one refetch ...
    for i in range(20):
        refuse(v, sign(id_claims(), key=rsa_key("b"), kid=f"ghost-{i}"))
    assert server.fetches == 2  # ... and no more within the interval
    clock.t += 10
    refuse(v, ghost)
    assert server.fetches == 3


def test_key_rotation(server: JwksServer) -> None:
    clock = Clock()
    v = make_validator(make_settings(server.url), clock=clock)
    old = sign(id_claims())
    new = sign(id_claims(), key=rsa_key("b"), kid="rsa-b")
    assert accept(v, old)
    server.set_keys(rsa_jwk("a"), rsa_jwk("b"))  # the pool publishes its next key
    clock.t += 30
    assert accept(v, new)  # unknown kid -> refetch -> found
    assert server.fetches == 2
    server.set_keys(rsa_jwk("b"))  # the old key is retired
    clock.t += 100
    assert accept(v, old)  # still cached: the document is younger than cache_ttl
    assert server.fetches == 2
    clock.t += 300
    assert "unknown kid 'rsa-a'" in refuse(v, old).reason  # the TTL refresh dropped it
    assert accept(v, new)
    assert server.fetches == 3


def test_concurrent_validations_share_one_fetch(server: JwksServer) -> None:
    clock = Clock()
    v = make_validator(make_settings(server.url), clock=clock)

    async def burst(tokens: list[str]) -> list[Any]:
        return await asyncio.gather(*(v.validate(t) for t in tokens), return_exceptions=True)

    results = asyncio.run(burst([sign(id_claims(jti=str(i))) for i in range(25)]))
    assert all(isinstance(r, J.JwtClaims) for r in results)
    assert server.fetches == 1
    clock.t += 60
    results = asyncio.run(burst([sign(id_claims(), key=rsa_key("b"), kid=f"new-{i}") for i in range(25)]))
    assert all(isinstance(r, J.JwtError) and "unknown kid" in r.reason for r in results)
    assert server.fetches == 2


def test_concurrent_callers_share_a_failed_fetch(server: JwksServer) -> None:
    server.status = 503
    v = make_validator(make_settings(server.url))

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(v.validate(sign(id_claims())) for _ in range(10)), return_exceptions=True
        )

    results = asyncio.run(burst())
    assert all(isinstance(r, J.JwtError) and "HTTP 503" in r.reason for r in results)
    assert server.fetches == 1


def test_jwks_server_error(server: JwksServer) -> None:
    server.status = 500
    clock = Clock()
    v = make_validator(make_settings(server.url), clock=clock)
    err = refuse(v, sign(id_claims()))
    assert err.message == "Unauthorized"
    assert "HTTP 500" in err.reason
    refuse(v, sign(id_claims()))
    assert server.fetches == 1  # failures are not retried before min_refresh_interval
    server.status = 200
    clock.t += 10
    assert accept(v, sign(id_claims()))
    assert server.fetches == 2


def test_jwks_server_down() -> None:
    gone = JwksServer()
    url = gone.url
    gone.close()
    err = refuse(make_validator(make_settings(url)), sign(id_claims()))
    assert "JWKS fetch" in err.reason
    assert "failed" in err.reason


def test_jwks_server_too_slow(server: JwksServer) -> None:
    server.slow = True
    v = make_validator(make_settings(server.url, fetch_timeout=0.2))
    err = refuse(v, sign(id_claims()))
    assert "timed out" in err.reason


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"keys": {}}', '"keys" array'),
        (b"[]", '"keys" array'),
        (b'{"keys": [], "pad": "' + b"x" * (1024 * 1024) + b'"}', "larger than 1048576"),
        (json.dumps({"keys": [rsa_jwk("a", kid=f"k{i}") for i in range(101)]}).encode(), "max_keys"),
    ],
    ids=["html", "keys-object", "array", "huge", "too-many-keys"],
)
def test_bad_jwks_documents(server: JwksServer, body: bytes, problem: str) -> None:
    server.body = body
    err = refuse(make_validator(make_settings(server.url)), sign(id_claims()))
    assert problem in err.reason


def test_stale_keys_survive_a_failed_refresh_for_a_grace_period(server: JwksServer) -> None:
    clock = Clock()
    v = make_validator(make_settings(server.url, cache_ttl=300), clock=clock)
    token = sign(id_claims())
    assert accept(v, token)
    server.status = 500
    clock.t += 300
    assert accept(v, token)  # the refresh failed; last good keys still in use
    assert server.fetches == 2
    assert v.jwks.last_error is not None
    assert "HTTP 500" in v.jwks.last_error.reason
    clock.t += 5
    assert accept(v, token)
    assert server.fetches == 2  # no retry before min_refresh_interval
    clock.t += 295  # 600 s after the last good fetch: ttl + grace is over
    assert "HTTP 500" in refuse(v, token).reason
    server.status = 200
    clock.t += 10
    assert accept(v, token)
    assert v.jwks.last_error is None


# -- a JWKS file ----------------------------------------------------------------------------------


def write_jwks(path: Path, *keys: dict[str, Any], bump: int = 0) -> None:
    path.write_text(json.dumps({"keys": list(keys)}))
    if bump:
        st_ = path.stat()
        os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + bump * 1_000_000_000))


def test_jwks_file_read_once_and_reloaded_on_change(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, rsa_jwk("a"))
    v = make_validator(make_settings(jwks_file=str(path)))
    assert accept(v, sign(id_claims()))
    assert accept(v, sign(id_claims()))
    assert v.jwks.fetches == 1
    new = sign(id_claims(), key=rsa_key("b"), kid="rsa-b")
    assert "unknown kid 'rsa-b'" in refuse(v, new).reason
    assert v.jwks.fetches == 1  # an unknown kid does not re-read an unchanged file
    write_jwks(path, rsa_jwk("b"), bump=1)
    assert accept(v, new)
    assert "unknown kid 'rsa-a'" in refuse(v, sign(id_claims())).reason
    assert v.jwks.fetches == 2


def test_jwks_file_broken_then_fixed(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text("{not json")
    v = make_validator(make_settings(jwks_file=str(path)))
    assert "not JSON" in refuse(v, sign(id_claims())).reason
    assert "not JSON" in refuse(v, sign(id_claims())).reason
    assert v.jwks.fetches == 1  # the broken file is not re-read until it changes
    write_jwks(path, rsa_jwk("a"), bump=1)
    assert accept(v, sign(id_claims()))


def test_jwks_file_missing(tmp_path: Path) -> None:
    v = make_validator(make_settings(jwks_file=str(tmp_path / "absent.json")))
    err = refuse(v, sign(id_claims()))
    assert err.message == "Unauthorized"
    assert "cannot be read" in err.reason


# -- claims as strings, bearer extraction, the error ----------------------------------------------


def test_claims_flattened_as_rest_api_gateway_does(v: J.JwtValidator) -> None:
    claims = accept(v, sign(id_claims(ratio=0.5, nothing=None, nested={"a": [1, {"b": True}]})))
    claims.claims["nothing"] = None  # id_claims() drops None values; put the JSON null back
    flat = claims.as_strings()
    assert all(isinstance(value, str) for value in flat.values())
    assert flat["cognito:username"] == "alice"
    assert flat["cognito:groups"] == "admin,users"
    assert flat["email_verified"] == "true"
    assert flat["auth_time"] == str(NOW - 60)
    assert flat["exp"] == "Tue Nov 14 23:13:20 UTC 2023"
    assert flat["iat"] == "Tue Nov 14 22:12:20 UTC 2023"
    assert flat["ratio"] == "0.5"
    assert flat["nothing"] == "null"
    assert flat["nested"] == '{"a":[1,{"b":true}]}'


def test_flattening_edge_cases() -> None:
    flat = J.JwtClaims(
        claims={"exp": 10**30, "iat": 0, "mixed": ["a", 1, False, None], "deep": [["x"]], "uni": "é"},
        scopes=(),
    ).as_strings()
    assert flat == {
        "exp": "1000000000000000000000000000000",
        "iat": "Thu Jan 01 00:00:00 UTC 1970",
        "mixed": "a,1,false,null",
        "deep": '[["x"]]',
        "uni": "é",
    }


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER   abc.def.ghi  ", "abc.def.ghi"),
        ("abc.def.ghi", "abc.def.ghi"),
        ("  abc.def.ghi\t", "abc.def.ghi"),
        (None, None),
        ("", None),
        ("   ", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer abc def", None),
    ],
)
def test_extract_bearer(header: str | None, token: str | None) -> None:
    assert J.extract_bearer(header) == token


def test_error_fields() -> None:
    err = J.JwtError("Unauthorized", "unknown kid 'x'")
    assert (err.message, err.reason, err.expired) == ("Unauthorized", "unknown kid 'x'", False)
    assert str(err) == "Unauthorized: unknown kid 'x'"
    assert (
        err.www_authenticate()
        == 'Bearer scope="" error="invalid_token" error_description="the token is not valid"'
    )


# -- properties -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def file_validator(tmp_path_factory: pytest.TempPathFactory) -> J.JwtValidator:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    write_jwks(path, rsa_jwk("a"), jwk(ec_key("e"), "ec-e", alg="ES256"))
    return make_validator(make_settings(jwks_file=str(path), algorithms=("RS256", "ES256")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_strings_only_raise_jwt_error(file_validator: J.JwtValidator, text: str) -> None:
    with pytest.raises(J.JwtError) as info:
        asyncio.run(file_validator.validate(text))
    assert info.value.message == "Unauthorized"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_header = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "ES256", "HS256", "none", "PS256", ""]) | _json,
        "kid": st.sampled_from(["rsa-a", "ec-e", "ghost"]) | _json,
        "typ": _json,
        "crit": _json,
        "b64": _json,
        "jku": st.just("http://127.0.0.1:9/evil.json"),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _header,
    st.dictionaries(st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "scope"]), _json),
    st.binary(),
)
def test_structured_garbage_only_raises_jwt_error(
    file_validator: J.JwtValidator, header: dict[str, Any], payload: dict[str, Any], signature: bytes
) -> None:
    token = f"{part(header)}.{part(payload)}.{b64(signature)}"
    with pytest.raises(J.JwtError):
        asyncio.run(file_validator.validate(token))


_VALID = sign(id_claims())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(_VALID) - 1), st.characters(codec="ascii"))
def test_no_single_character_change_of_a_valid_token_is_accepted(
    file_validator: J.JwtValidator, index: int, char: str
) -> None:
    assert accept(file_validator, _VALID)
    if _VALID[index] == char:
        return
    with pytest.raises(J.JwtError):
        asyncio.run(file_validator.validate(_VALID[:index] + char + _VALID[index + 1 :]))
