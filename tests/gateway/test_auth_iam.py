"""``AWS_IAM`` end to end: requests signed by the real signers, through the real gateway.

Issue 4, "SigV4 (AWS_IAM)" and "Identities":

* botocore ``SigV4Auth`` (header) and ``SigV4QueryAuth`` (presigned), boto3-style credentials with
  session tokens for role sessions, and requests-aws4auth, over paths and queries with spaces,
  unicode, reserved characters, repeated keys and empty values, POST bodies (the body hash),
  ``UNSIGNED-PAYLOAD`` and a non-default port in the signed ``Host``: each allowed request
  reaches the backend, which never sees ``Authorization`` or ``X-Amz-Security-Token``;
* forged, tampered (path, query, body, header, method), replayed-after-expiry and wrong-scope
  requests are refused with AWS's status, ``x-amzn-ErrorType`` and message and never reach the
  backend; unsigned requests, non-SigV4 ``Authorization`` headers, unknown and disabled keys,
  wrong session tokens and expired session credentials likewise;
* the principal condition keys reach the resource policy as AWS fills them
  (``aws:PrincipalArn`` is the role's ARN for a session, ``aws:PrincipalAccount``,
  ``aws:PrincipalTag/x``, ``aws:username`` for users only, ``aws:PrincipalOrgID``, multivalued
  ``aws:PrincipalOrgPaths``, ``aws:userid``, ``aws:PrincipalType``) and denials name the caller;
* secrets come from the environment (``secret_env``) and from files (``secret_file``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from requests_aws4auth import AWS4Auth

from tests.gateway.auth_support import Keys, Response, presign, send, send_signed, sign
from tests.gateway.conftest import Backend, Gateway, start_gateway, wait_for_log

ACCOUNT = "111122223333"
OTHER = "444455556666"  # another account of an organization
STRANGER = "777788889999"  # an account outside any organization
API = "a1b2c3d4e5"
ARN = f"arn:aws:execute-api:us-east-1:********3333:{API}/prod"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
MAX_BUFFERED = 64 * 1024

ALICE = Keys("AKIAALICE00000000001", "alice/secret+FROM+env")
BOB = Keys("AKIABOB0000000000001", "bob-secret-from-a-file")
CAROL = Keys("AKIACAROL00000000001", "carol-secret")
MALLORY = Keys("AKIAMALLORY000000001", "mallory-secret")
DISABLED = Keys("AKIADISABLED00000001", "disabled-secret")
DAVE = Keys("AKIADAVE000000000001", "dave-secret")
READER = Keys("ASIAREADER0000000001", "reader-session-secret", "IQoJb3JpZ2luX2VjEXAMPLE+token/s1==")
READER_ALICE = Keys("ASIAREADER0000000002", "reader-alice-secret", "token-of-the-session-named-alice")
READER_OLD = Keys("ASIAREADER0000000003", "reader-old-secret", "token-of-an-expired-session")

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
}


# Dave's own policy reads the request: his tool's User-Agent (not signed by botocore, so a client
# changes it freely). The API's policy allows him (his account is in the organization), so his
# explicit denies are what refuses him.
DAVE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "execute-api:Invoke",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:UserAgent": "blocked/1"}},
        },
        {
            "Effect": "Deny",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:*:*:*/prod/GET/dave/locked",
            "Condition": {"StringEquals": {"aws:UserAgent": "dave-tool/1"}},
        },
    ],
}


def _deny_when(path: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "Sid": path.replace("/", "").title(),
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": f"execute-api:/*/GET/keys/{path}",
        "Condition": condition,
    }


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OurOrganizations",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ["o-abcdefghij", "o-zzzzzzzzzz"]}},
        },
        _deny_when("arn", {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/reader"}}),
        _deny_when("account", {"StringEquals": {"aws:PrincipalAccount": OTHER}}),
        _deny_when("tag", {"StringEquals": {"aws:PrincipalTag/team": "red"}}),
        _deny_when("username", {"StringEquals": {"aws:username": "alice"}}),
        _deny_when("org", {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}),
        _deny_when(
            "orgpaths",
            {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abcdefghij/r-ab12/ou-ab12-22222222/*"}},
        ),
        _deny_when("userid", {"StringEquals": {"aws:userid": "AROAREADER0000000001:s1"}}),
        _deny_when("type", {"StringEquals": {"aws:PrincipalType": "AssumedRole"}}),
        # with anonymous_principal_keys: iam, a signed caller's own keys replace the anonymous ones
        _deny_when(
            "anonymous",
            {"StringEquals": {"aws:PrincipalType": "Anonymous"}, "Null": {"aws:userid": "false"}},
        ),
        _deny_when("anonymous-id", {"StringEquals": {"aws:userid": "anonymous"}}),
    ],
}


def config(backend_url: str) -> dict[str, Any]:
    return {
        "gateway": {
            "region": "us-east-1",
            "account_id": ACCOUNT,
            "max_buffered_body": MAX_BUFFERED,
            "anonymous_principal_keys": "iam",
        },
        "identities": {
            "accounts": [
                {
                    "id": ACCOUNT,
                    "organization_id": "o-abcdefghij",
                    "organization_paths": [
                        "o-abcdefghij/r-ab12/ou-ab12-11111111/",
                        "o-abcdefghij/r-ab12/ou-ab12-22222222/",
                    ],
                },
                {
                    "id": OTHER,
                    "organization_id": "o-zzzzzzzzzz",
                    "organization_paths": ["o-zzzzzzzzzz/r-zz99/"],
                },
                {"id": STRANGER},
            ],
            "users": [
                {
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                    "tags": {"team": "red"},
                    "policies": [ALLOW_ALL],
                },
                {
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/bob",
                    "tags": {"team": "blue"},
                    "policies": [ALLOW_ALL],
                },
                {"arn": f"arn:aws:iam::{OTHER}:user/carol", "policies": [ALLOW_ALL]},
                {"arn": f"arn:aws:iam::{ACCOUNT}:user/dave", "policies": [DAVE_POLICY]},
                {"arn": f"arn:aws:iam::{STRANGER}:user/mallory", "policies": [ALLOW_ALL]},
            ],
            "roles": [
                {
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/reader",
                    "id": "AROAREADER0000000001",
                    "tags": {"team": "red"},
                    "policies": [ALLOW_ALL],
                }
            ],
            "access_keys": [
                {
                    "id": ALICE.access_key,
                    "secret_env": "TEST_ALICE_SECRET",
                    "owner": f"arn:aws:iam::{ACCOUNT}:user/alice",
                },
                {
                    "id": BOB.access_key,
                    "secret_file": "bob.secret",
                    "owner": f"arn:aws:iam::{ACCOUNT}:user/bob",
                },
                {"id": CAROL.access_key, "secret": CAROL.secret, "owner": f"arn:aws:iam::{OTHER}:user/carol"},
                {
                    "id": MALLORY.access_key,
                    "secret": MALLORY.secret,
                    "owner": f"arn:aws:iam::{STRANGER}:user/mallory",
                },
                {"id": DAVE.access_key, "secret": DAVE.secret, "owner": f"arn:aws:iam::{ACCOUNT}:user/dave"},
                {
                    "id": DISABLED.access_key,
                    "secret": DISABLED.secret,
                    "owner": f"arn:aws:iam::{ACCOUNT}:user/alice",
                    "enabled": False,
                },
            ],
            "sessions": [
                {
                    "access_key_id": s.access_key,
                    "secret": s.secret,
                    "session_token_env": env,
                    "role": f"arn:aws:iam::{ACCOUNT}:role/reader",
                    "session_name": name,
                    **extra,
                }
                for s, env, name, extra in (
                    (READER, "TEST_READER_TOKEN", "s1", {"expires": "2099-01-01T00:00:00Z"}),
                    (READER_ALICE, "TEST_READER_ALICE_TOKEN", "alice", {}),
                    (READER_OLD, "TEST_READER_OLD_TOKEN", "old", {"expires": "2020-01-01T00:00:00Z"}),
                )
            ],
        },
        "apis": [
            {
                "id": API,
                "policy": POLICY,
                "stages": {"prod": {}},
                "routes": [
                    {
                        "path": "/{proxy+}",
                        "method": "ANY",
                        "authorization": "AWS_IAM",
                        "integration": {"type": "HTTP_PROXY", "uri": f"{backend_url}/{{proxy}}"},
                    }
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    b = Backend().start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("iam")
    (tmp / "bob.secret").write_text(BOB.secret + "\n")
    env = {
        "TEST_ALICE_SECRET": ALICE.secret,
        "TEST_READER_TOKEN": str(READER.token),
        "TEST_READER_ALICE_TOKEN": str(READER_ALICE.token),
        "TEST_READER_OLD_TOKEN": str(READER_OLD.token),
    }
    gateway = start_gateway(tmp, config(backend.url), env=env)
    yield gateway
    gateway.stop()


def url(gw: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gw.port}{path}"


def reached(backend: Backend, before: int, response: Response) -> Any:
    """The request reached the backend exactly once and carried no signature headers."""
    assert response.status == 200, response.body
    assert len(backend.requests) == before + 1
    got = backend.requests[-1]
    assert got.header("Authorization") is None
    assert got.header("X-Amz-Security-Token") is None
    return got


def refused(
    backend: Backend, before: int, response: Response, error_type: str, message: str, *, prefix: bool = False
) -> None:
    """AWS's answer, and the backend never saw the request."""
    assert response.status == 403, response.body
    assert response.error_type == error_type
    assert response.headers["content-type"] == "application/json"
    text = response.json()["message"]
    if prefix:
        assert text.startswith(message), text
    else:
        assert text == message
    assert len(backend.requests) == before


# --- what the signers sign is accepted ------------------------------------------------------------

PATHS = [
    pytest.param("/prod/items/1", id="plain"),
    pytest.param("/prod/a%20b/caf%C3%A9/%E2%9C%93", id="space-unicode"),
    pytest.param("/prod/r/a:b@c!$'()*,=+~-_.x", id="reserved"),
    pytest.param("/prod/items?b=2&a=x+y&a=1&z", id="query-raw-repeated-empty"),
    pytest.param("/prod/items?e=&e=&f&k=%2F%3F%23%5B%5D%40&u=%C3%A9", id="query-empty-encoded"),
    pytest.param("/prod/items?X-Custom=1&x-custom=2&%E2%9C%93=%E2%9C%93", id="query-case-unicode-names"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("keys", [ALICE, READER], ids=["user", "role-session"])
def test_botocore_header_signature_is_accepted(gw: Gateway, backend: Backend, path: str, keys: Keys) -> None:
    before = len(backend.requests)
    signed = sign(keys, "GET", url(gw, path))
    got = reached(backend, before, send_signed(gw.port, signed))
    assert got.header("X-Amz-Date") == signed.headers["X-Amz-Date"]  # the rest is passed on
    if "?" in path:
        assert got.target.endswith("?" + path.split("?", 1)[1])  # the query as the client sent it


def test_boto3_session_credentials_are_accepted(gw: Gateway, backend: Backend) -> None:
    """Credentials as boto3 holds them after sts:AssumeRole: a Session with a session token."""
    session = boto3.Session(
        aws_access_key_id=READER.access_key,
        aws_secret_access_key=READER.secret,
        aws_session_token=READER.token,
        region_name="us-east-1",
    )
    frozen = session.get_credentials().get_frozen_credentials()
    keys = Keys(frozen.access_key, frozen.secret_key, frozen.token)
    before = len(backend.requests)
    signed = sign(keys, "GET", url(gw, "/prod/items?session=boto3"))
    assert signed.headers["X-Amz-Security-Token"] == READER.token
    reached(backend, before, send_signed(gw.port, signed))


def test_botocore_params_are_signed_in_the_specification_form(gw: Gateway, backend: Backend) -> None:
    """AWSRequest(params=...) puts ``+`` for spaces on the wire and signs ``%20``."""
    before = len(backend.requests)
    params = {"q": "a b", "p": "1+2", "u": "é", "r": ":/?#[]@!$&'()*,;=", "empty": ""}
    signed = sign(READER, "GET", url(gw, "/prod/search"), params=params)
    assert "q=a+b" in signed.url
    reached(backend, before, send_signed(gw.port, signed))


@pytest.mark.parametrize("keys", [BOB, READER], ids=["user", "role-session"])
def test_post_body_is_hashed_and_reaches_the_backend(gw: Gateway, backend: Backend, keys: Keys) -> None:
    before = len(backend.requests)
    body = '{"name": "Rex", "tags": ["🐕", "a b"]}'.encode()
    signed = sign(
        keys, "POST", url(gw, "/prod/pets"), body=body, headers={"Content-Type": "application/json"}
    )
    got = reached(backend, before, send_signed(gw.port, signed))
    assert got.method == "POST"
    assert got.body == body


def test_unsigned_payload_needs_no_body_hash(gw: Gateway, backend: Backend) -> None:
    """``X-Amz-Content-SHA256: UNSIGNED-PAYLOAD`` (signed) leaves the body out of the signature:
    a body different from the one at signing time is accepted and forwarded as sent."""
    before = len(backend.requests)
    signed = sign(ALICE, "PUT", url(gw, "/prod/upload"), body=b"at signing time", unsigned_payload=True)
    assert signed.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    headers = {k: v for k, v in signed.headers.items() if k.lower() != "content-length"}
    got = reached(backend, before, send_signed(gw.port, signed, headers=headers, body=b"sent instead!!"))
    assert got.body == b"sent instead!!"


def test_body_to_hash_is_buffered_up_to_max_buffered_body(gw: Gateway, backend: Backend) -> None:
    """A body the signature covers must be read whole before the request goes on: beyond
    ``max_buffered_body`` it is refused (413); with UNSIGNED-PAYLOAD nothing is buffered."""
    body = b"b" * (MAX_BUFFERED + 1)
    before = len(backend.requests)
    response = send_signed(gw.port, sign(ALICE, "POST", url(gw, "/prod/upload"), body=body))
    assert response.status == 413
    assert response.json() == {"message": "Request Too Long"}
    assert len(backend.requests) == before
    signed = sign(ALICE, "POST", url(gw, "/prod/upload"), body=body, unsigned_payload=True)
    got = reached(backend, before, send_signed(gw.port, signed))
    assert got.body == body


def test_expect_100_continue_is_answered_while_the_signed_body_is_awaited(gw: Gateway) -> None:
    """The gateway buffers a signed body to hash it: a client that waits for 100 Continue before
    sending it (curl does for bodies over 1 KiB) must get one, at once."""
    body = b'{"pet": "Rex"}'
    signed = sign(ALICE, "POST", url(gw, "/prod/pets"), body=body)
    head = ["POST /prod/pets HTTP/1.1", f"Host: 127.0.0.1:{gw.port}", "Expect: 100-continue"]
    head += [f"{k}: {v}" for k, v in signed.headers.items()]
    with socket.create_connection(("127.0.0.1", gw.port), timeout=2) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            interim = sock.recv(65536)  # a hang guard: a server that answers does so at once
        except TimeoutError:
            interim = b""
        sock.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            final += sock.recv(65536)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    assert final.startswith(b"HTTP/1.1 200 "), final


@pytest.mark.parametrize("keys", [ALICE, READER], ids=["user", "role-session"])
def test_presigned_url_is_accepted(gw: Gateway, backend: Backend, keys: Keys) -> None:
    before = len(backend.requests)
    signed = presign(keys, "GET", url(gw, "/prod/items?x=1&x=0&e="))
    assert "X-Amz-Signature=" in signed.url
    assert ("X-Amz-Security-Token=" in signed.url) is (keys.token is not None)
    assert "Authorization" not in signed.headers
    reached(backend, before, send_signed(gw.port, signed))


@pytest.mark.parametrize("keys", [CAROL, READER], ids=["user", "role-session"])
def test_requests_aws4auth_is_accepted(gw: Gateway, backend: Backend, keys: Keys) -> None:
    before = len(backend.requests)
    auth = AWS4Auth(keys.access_key, keys.secret, "us-east-1", "execute-api", session_token=keys.token)
    r = requests.get(url(gw, "/prod/a%20b/caf%C3%A9?q=a+b&q=c&e="), auth=auth, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.post(url(gw, "/prod/pets"), data=b'{"id": 7}', auth=auth, timeout=10)
    assert r.status_code == 200, r.text
    assert len(backend.requests) == before + 2
    assert backend.requests[-1].body == b'{"id": 7}'
    for got in backend.requests[-2:]:
        assert got.header("Authorization") is None
        assert got.header("X-Amz-Security-Token") is None


def test_non_default_port_is_part_of_the_signed_host(gw: Gateway, backend: Backend) -> None:
    """Signed for ``Host: {api}.execute-api.localhost:PORT`` (the API is found from the host);
    the same signature with the port left out or changed does not verify."""
    host = f"{API}.execute-api.localhost:{gw.port}"
    signed = sign(ALICE, "GET", f"http://{host}/prod/items")
    before = len(backend.requests)
    reached(backend, before, send(gw.port, "GET", "/prod/items", headers={**signed.headers, "Host": host}))
    for wrong in (f"{API}.execute-api.localhost", f"{API}.execute-api.localhost:{gw.port + 1}"):
        before = len(backend.requests)
        response = send(gw.port, "GET", "/prod/items", headers={**signed.headers, "Host": wrong})
        refused(backend, before, response, "InvalidSignatureException", MISMATCH, prefix=True)


# --- what was not signed, or not signed like that, is refused -------------------------------------


def _tampered(gw: Gateway, how: str) -> Response:
    signed = sign(
        ALICE,
        "POST",
        url(gw, "/prod/pets/1?limit=10"),
        body=b'{"amount": 10}',
        headers={"Content-Type": "application/json", "X-Tenant": "blue"},
    )
    if how == "path":
        return send_signed(gw.port, signed, url=url(gw, "/prod/pets/2?limit=10"))
    if how == "path-encoding":
        return send_signed(gw.port, signed, url=url(gw, "/prod/pets/%31?limit=10"))
    if how == "query":
        return send_signed(gw.port, signed, url=url(gw, "/prod/pets/1?limit=99"))
    if how == "query-added":
        return send_signed(gw.port, signed, url=url(gw, "/prod/pets/1?limit=10&admin=true"))
    if how == "body":
        return send_signed(gw.port, signed, body=b'{"amount": 99}')
    if how == "header":
        return send_signed(gw.port, signed, headers={**signed.headers, "X-Tenant": "red"})
    if how == "method":
        changed = sign(ALICE, "GET", url(gw, "/prod/pets/1?limit=10"))
        return send(gw.port, "DELETE", changed.url, headers=changed.headers)
    assert how == "forged"  # signed with a secret that is not the key's
    forged = sign(Keys(ALICE.access_key, "not-the-secret"), "GET", url(gw, "/prod/pets/1"))
    return send_signed(gw.port, forged)


@pytest.mark.parametrize(
    "how", ["path", "path-encoding", "query", "query-added", "body", "header", "method", "forged"]
)
def test_tampered_or_forged_requests_are_refused(gw: Gateway, backend: Backend, how: str) -> None:
    before = len(backend.requests)
    response = _tampered(gw, how)
    refused(backend, before, response, "InvalidSignatureException", MISMATCH, prefix=True)
    # AWS echoes what it expected to be signed
    assert "The Canonical String for this request should have been" in response.json()["message"]


def test_presigned_url_is_refused_after_it_expires(gw: Gateway, backend: Backend) -> None:
    signed = presign(READER, "GET", url(gw, "/prod/items"), expires=1)
    before = len(backend.requests)
    reached(backend, before, send_signed(gw.port, signed))
    time.sleep(2.2)  # the point of the test: the 1 s the URL is valid for must pass
    before = len(backend.requests)
    response = send_signed(gw.port, signed)
    refused(backend, before, response, "InvalidSignatureException", "Signature expired: ", prefix=True)
    assert response.json()["message"].endswith(" - 1 sec.)")


@pytest.mark.parametrize(
    ("region", "service", "message"),
    [
        ("us-west-2", "execute-api", "Credential should be scoped to a valid region, not 'us-west-2'. "),
        ("us-east-1", "lambda", "Credential should be scoped to correct service: 'execute-api'. "),
    ],
    ids=["region", "service"],
)
def test_wrong_credential_scope_is_refused(
    gw: Gateway, backend: Backend, region: str, service: str, message: str
) -> None:
    before = len(backend.requests)
    signed = sign(ALICE, "GET", url(gw, "/prod/items"), region=region, service=service)
    refused(backend, before, send_signed(gw.port, signed), "InvalidSignatureException", message)
    before = len(backend.requests)
    presigned = presign(ALICE, "GET", url(gw, "/prod/items"), region=region, service=service)
    refused(backend, before, send_signed(gw.port, presigned), "InvalidSignatureException", message)


def test_unsigned_request_is_missing_authentication_token(gw: Gateway, backend: Backend) -> None:
    before = len(backend.requests)
    response = send(gw.port, "GET", "/prod/items")
    refused(backend, before, response, "MissingAuthenticationTokenException", "Missing Authentication Token")


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (
            "Bearer abc",
            "'abc' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer abc'.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAALICE00000000001/20240101/us-east-1/execute-api/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires "
            "'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' "
            "or a 'Date' header. Authorization=AWS4-HMAC-SHA256 "
            "Credential=AKIAALICE00000000001/20240101/us-east-1/execute-api/aws4_request",
        ),
    ],
    ids=["bearer", "incomplete"],
)
def test_authorization_header_that_is_not_a_signature_is_refused(
    gw: Gateway, backend: Backend, authorization: str, message: str
) -> None:
    """AWS parses any ``Authorization`` header of an AWS_IAM method as SigV4 (observed)."""
    before = len(backend.requests)
    response = send(gw.port, "GET", "/prod/items", headers={"Authorization": authorization})
    refused(backend, before, response, "IncompleteSignatureException", message)


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(Keys("AKIAUNKNOWN000000001", "whatever"), id="unknown-key"),
        pytest.param(DISABLED, id="disabled-key"),
        pytest.param(Keys(READER.access_key, READER.secret, "not-the-session-token"), id="wrong-token"),
        pytest.param(Keys(READER.access_key, READER.secret), id="session-key-without-token"),
        pytest.param(
            Keys(ALICE.access_key, ALICE.secret, "a-token-for-a-long-term-key"), id="token-on-user-key"
        ),
    ],
)
def test_credentials_that_are_not_valid_are_refused(gw: Gateway, backend: Backend, keys: Keys) -> None:
    before = len(backend.requests)
    response = send_signed(gw.port, sign(keys, "GET", url(gw, "/prod/items")))
    refused(backend, before, response, "AccessDeniedException", INVALID_TOKEN)


def test_expired_session_credentials_are_refused(gw: Gateway, backend: Backend) -> None:
    before = len(backend.requests)
    response = send_signed(gw.port, sign(READER_OLD, "GET", url(gw, "/prod/items")))
    refused(
        backend,
        before,
        response,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )


# --- who the caller is: principal keys in the resource policy, names in denials -------------------

USERS = {
    "alice": ALICE,
    "bob": BOB,
    "carol": CAROL,
    "mallory": MALLORY,
    "s1": READER,
    "session-alice": READER_ALICE,
}
CALLER = {
    "alice": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "bob": f"arn:aws:iam::{ACCOUNT}:user/bob",
    "carol": f"arn:aws:iam::{OTHER}:user/carol",
    "mallory": f"arn:aws:iam::{STRANGER}:user/mallory",
    "s1": f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s1",
    "session-alice": f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/alice",
}

# (key in the policy, caller, denied?)  every key is denied for some callers and not for others
KEY_CASES = [
    # aws:PrincipalArn of a role session is the role's ARN, not the session's
    ("arn", "s1", True),
    ("arn", "session-alice", True),
    ("arn", "alice", False),
    # aws:PrincipalAccount
    ("account", "carol", True),
    ("account", "alice", False),
    # aws:PrincipalTag/team: the user's tag, or the role's for its sessions
    ("tag", "alice", True),
    ("tag", "s1", True),
    ("tag", "bob", False),
    # aws:username exists for IAM users only: a session named "alice" has none
    ("username", "alice", True),
    ("username", "session-alice", False),
    ("username", "bob", False),
    # aws:PrincipalOrgID
    ("org", "alice", True),
    ("org", "s1", True),
    ("org", "carol", False),
    # aws:PrincipalOrgPaths is multivalued: the account's second OU path matches
    ("orgpaths", "bob", True),
    ("orgpaths", "carol", False),
    # aws:userid of a session is ROLEID:session-name
    ("userid", "s1", True),
    ("userid", "session-alice", False),
    ("userid", "alice", False),
    # aws:PrincipalType
    ("type", "s1", True),
    ("type", "bob", False),
    # anonymous_principal_keys: iam applies to anonymous callers only
    ("anonymous", "s1", False),
    ("anonymous", "bob", False),
    ("anonymous-id", "s1", False),
    ("anonymous-id", "alice", False),
]


@pytest.mark.parametrize(("key", "caller", "denied"), KEY_CASES, ids=[f"{k}-{c}" for k, c, _ in KEY_CASES])
def test_principal_condition_keys_reach_the_policy(
    gw: Gateway, backend: Backend, key: str, caller: str, denied: bool
) -> None:
    before = len(backend.requests)
    response = send_signed(gw.port, sign(USERS[caller], "GET", url(gw, f"/prod/keys/{key}")))
    if not denied:
        reached(backend, before, response)
        return
    assert response.status == 403
    assert response.error_type == "AccessDeniedException"
    assert response.json() == {
        "Message": f"User: {CALLER[caller]} is not authorized to perform: execute-api:Invoke on resource: "
        f"{ARN}/GET/keys/{key} with an explicit deny"
    }
    assert len(backend.requests) == before


def test_cross_account_caller_needs_the_resource_policy(gw: Gateway, backend: Backend) -> None:
    """Carol (another account, in an allowed organization) is let in by the policy's
    aws:PrincipalOrgID allow; Mallory (no organization) has an identity allow only: implicit deny."""
    before = len(backend.requests)
    reached(backend, before, send_signed(gw.port, sign(CAROL, "GET", url(gw, "/prod/items"))))
    response = send_signed(gw.port, sign(MALLORY, "GET", url(gw, "/prod/items")))
    assert response.status == 403
    assert response.json() == {
        "Message": f"User: arn:aws:iam::{STRANGER}:user/mallory is not authorized to perform: "
        f"execute-api:Invoke on resource: {ARN}/GET/items"
    }
    assert len(backend.requests) == before + 1


def test_an_identity_policy_decides_each_request_on_its_own_keys(gw: Gateway, backend: Backend) -> None:
    """The caller's identity decisions are memoised (by caller, resource and the keys the policy
    reads): the same signed request sent with another User-Agent, on another path, or again,
    must each get its own answer, never the one a request before it got."""
    asked = [
        ("/prod/dave/open", "dave-tool/1", 200),
        ("/prod/dave/open", "blocked/1", 403),  # the same caller and resource, another key value
        ("/prod/dave/open", "dave-tool/1", 200),
        ("/prod/dave/locked", "dave-tool/1", 403),  # another resource
        ("/prod/dave/locked", "other/2", 200),
        ("/prod/dave/open", "blocked/1", 403),
        ("/prod/dave/locked", "dave-tool/1", 403),
    ]
    answers = []
    for path, agent, _ in asked:
        signed = sign(DAVE, "GET", url(gw, path))
        answers.append(send_signed(gw.port, signed, headers={**signed.headers, "User-Agent": agent}))
    assert [r.status for r in answers] == [status for _, _, status in asked]
    assert all(r.json()["Message"].endswith(" with an explicit deny") for r in answers if r.status == 403)


def test_access_log_names_the_caller(gw: Gateway) -> None:
    response = send_signed(gw.port, sign(READER, "GET", url(gw, "/prod/logged")))
    assert response.status == 200
    entry = wait_for_log(gw, response.request_id)
    # as on AWS: caller and user are the principal id, userArn the session's ARN
    assert entry["identity.caller"] == "AROAREADER0000000001:s1"
    assert entry["identity.user"] == "AROAREADER0000000001:s1"
    assert entry["identity.userArn"] == CALLER["s1"]
    assert entry["identity.accountId"] == ACCOUNT
    assert entry["identity.accessKey"] == READER.access_key
    assert entry["identity.principalOrgId"] == "o-abcdefghij"
    assert entry["decision.caller"] == "Allow"
    assert entry["decision"] == "Allow"  # the organization statement of the resource policy
    denied = send_signed(gw.port, sign(READER, "GET", url(gw, "/prod/keys/type")))
    entry = wait_for_log(gw, denied.request_id)
    assert entry["identity.userArn"] == CALLER["s1"]
    assert entry["status"] == 403
    assert entry["decision"] == "ExplicitDeny"
    assert entry["error.responseType"] == "ACCESS_DENIED"
