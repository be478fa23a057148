"""A SigV4 signature binds the path that is routed, authorized and proxied (issue 14, finding 4).

The canonical URI a signature covers is the *wire* path with its dot segments removed (signers and
AWS do that on the still-encoded text), while the gateway decodes escapes before it resolves dot
segments. ``%2e%2e`` is therefore a literal segment to the signature but ``..`` to the router:
without a check, a signature for ``/prod/iam/a/b/c`` was accepted on ``/prod/iam/a/b/%2e%2e/../c``
and the request served as ``/prod/iam/c``, a path nobody signed. Now a signed path may hold no
segment that decodes to ``.`` or ``..``, and one with dot segments is routed a second time as its
signature covers it; when the two differ it is refused (400) before the signature is checked,
and the backend never sees it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.auth_support import Keys, presign, send, send_signed, sign
from tests.gateway.conftest import Backend, Gateway, start_gateway

ACCOUNT = "111122223333"
API = "a1b2c3d4e5"
ALICE = Keys("AKIAALICE00000000001", "alice-secret-0000000000000000000000000")


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    b = Backend().start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def gw(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "identities": {
            "accounts": [{"id": ACCOUNT}],
            "users": [
                {
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                    "policies": [
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}
                            ],
                        }
                    ],
                }
            ],
            "access_keys": [
                {
                    "id": ALICE.access_key,
                    "secret": ALICE.secret,
                    "owner": f"arn:aws:iam::{ACCOUNT}:user/alice",
                }
            ],
        },
        "apis": [
            {
                "id": API,
                "stages": {"prod": {}},
                "routes": [
                    {
                        "path": "/{proxy+}",
                        "method": "ANY",
                        "authorization": "AWS_IAM",
                        "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/{{proxy}}"},
                    }
                ],
            }
        ],
    }
    g = start_gateway(tmp_path_factory.mktemp("sigv4-binding"), config)
    yield g
    g.stop()


def _url(gw: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gw.port}{path}"


SIGNED_PATH = "/prod/iam/a/b/c"
# each is the signed path to the signature (dot segments removed from the wire text), and routed
# elsewhere by the gateway (escapes decoded first)
REPLAYED = [
    "/prod/iam/a/b/%2e%2e/../c",
    "/prod/iam/a/b/%2E%2E/../c",
    "/prod/iam/a/b/%2e/../c",
    "/prod/iam/a/b/.%2e/../c",
    "/prod/iam/a/b/%2e./../c",
    "/prod/iam/a/b/x/%2e%2e/../../c",
]


@pytest.mark.parametrize("path", REPLAYED)
def test_a_header_signature_is_refused_on_a_path_routed_elsewhere(
    gw: Gateway, backend: Backend, path: str
) -> None:
    signed = sign(ALICE, "GET", _url(gw, SIGNED_PATH))
    assert send_signed(gw.port, signed).status == 200  # the signature is good for what it signs
    before = len(backend.requests)
    response = send_signed(gw.port, signed, url=_url(gw, path))
    assert response.status == 400, response.body
    assert b"signed path" in response.body
    assert len(backend.requests) == before


@pytest.mark.parametrize("path", REPLAYED[:3])
def test_a_presigned_url_is_refused_on_a_path_routed_elsewhere(
    gw: Gateway, backend: Backend, path: str
) -> None:
    signed = presign(ALICE, "GET", _url(gw, SIGNED_PATH))
    assert send_signed(gw.port, signed).status == 200
    query = signed.url.split("?", 1)[1]
    before = len(backend.requests)
    response = send(gw.port, "GET", f"{path}?{query}", headers=signed.headers)
    assert response.status == 400, response.body
    assert len(backend.requests) == before


def test_an_encoded_dot_segment_is_refused_even_where_it_was_signed(gw: Gateway, backend: Backend) -> None:
    # the signature covers a segment "%2e%2e" that the gateway would serve as "..": what was
    # signed is not what would be served, whoever sent it
    signed = sign(ALICE, "GET", _url(gw, "/prod/iam/a/%2e%2e/c"))
    before = len(backend.requests)
    assert send_signed(gw.port, signed).status == 400
    assert len(backend.requests) == before


def test_plain_dot_segments_that_resolve_alike_are_still_accepted(gw: Gateway, backend: Backend) -> None:
    # botocore signs /prod/iam/a/b/c for this URL and sends the dots as written; both the
    # signature and the router resolve them the same way
    signed = sign(ALICE, "GET", _url(gw, "/prod/iam/x/../a/./b//c"))
    assert "/x/../" in signed.url
    response = send_signed(gw.port, signed)
    assert response.status == 200, response.body
    assert backend.requests[-1].target == "/iam/a/b/c"


def test_encoded_dot_segments_without_a_signature_change_nothing(gw: Gateway) -> None:
    # unsigned: no signature to bind; the AWS_IAM route answers as for any unsigned request
    response = send(gw.port, "GET", "/prod/iam/a/b/%2e%2e/../c")
    assert response.status == 403
    assert b"Missing Authentication Token" in response.body
