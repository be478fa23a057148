"""What the policy sees: the method ARN and the request context, judged through real policies.

Acceptance points (issue 3, "The request path"): the method ARN exactly as AWS builds it (the
real verb for ANY routes, the actual path values, the root's trailing slash, stage, account,
region, api id), asserted both through policies that allow or deny exact ARNs and through the
masked ARN of denial messages; the request context: client IP from the socket, X-Forwarded-For /
Forwarded believed only from ``trusted_proxies`` (right-most untrusted hop wins),
``aws:SecureTransport``, ``aws:CurrentTime``/``aws:EpochTime``, ``aws:UserAgent`` and
``aws:Referer`` only when sent; the network map giving ``aws:SourceVpce``, ``aws:SourceVpc``
and ``aws:VpcSourceIp`` (and no ``aws:SourceIp``) for PRIVATE APIs, and ``403 Forbidden`` for a
PRIVATE API reached from outside any VPC endpoint (and a public API reached through one).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import Gateway, start_gateway, wait_for_log

ACCOUNT = "111122223333"
PREFIX = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "


def allow(resource: str | list[str], condition: dict[str, Any] | None = None, sid: str | None = None) -> dict:
    st: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": resource,
    }
    if condition is not None:
        st["Condition"] = condition
    if sid is not None:
        st["Sid"] = sid
    return st


def deny(resource: str | list[str], condition: dict[str, Any] | None = None, sid: str | None = None) -> dict:
    return {**allow(resource, condition, sid), "Effect": "Deny"}


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def mock_route(path: str, method: str = "GET", body: str = "ok") -> dict:
    return {"path": path, "method": method, "integration": {"type": "MOCK", "status": 200, "body": body}}


def denial(response: tuple[int, dict[str, str], bytes]) -> str:
    """The masked ARN and suffix of a policy denial (asserting its shape on the way)."""
    status, headers, body = response
    assert status == 403, body
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    message = json.loads(body)["Message"]
    assert message.startswith(PREFIX), message
    return message[len(PREFIX) :]


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("context")


def _start(module_tmp: Path, name: str, config: dict) -> Gateway:
    (module_tmp / name).mkdir()
    return start_gateway(module_tmp / name, config)


# --- the method ARN ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arn_gateway(module_tmp: Path) -> Iterator[Gateway]:
    arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:a1b2c3d4e5"
    config = {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}, "beta": {}},
                "policy": policy(
                    allow(f"{arn}/prod/DELETE/items/42"),  # exact: the real verb of an ANY route
                    allow(f"{arn}/prod/GET/"),  # the root, with its trailing slash
                    allow("execute-api:/beta/PUT/items/*"),  # shorthand, expanded with region/account/id
                    allow(f"{arn}/prod/GET/items/*/photos/*"),
                    allow(f"{arn}/prod/GET/items/abc"),
                    deny(f"{arn}/*/*/items/666", sid="NeverTheBeast"),
                ),
                "routes": [
                    mock_route("/", "ANY", "root"),
                    mock_route("/items/{id}", "ANY", "item"),
                    mock_route("/items/{id}/photos/{photo}", "GET", "photo"),
                ],
            }
        ],
    }
    gw = _start(module_tmp, "arn", config)
    yield gw
    gw.stop()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("DELETE", "/prod/items/42", b"item", id="any-route-real-verb"),
        pytest.param("GET", "/prod/", b"root", id="root-trailing-slash"),
        pytest.param("GET", "/prod", b"root", id="root-without-slash"),
        pytest.param("PUT", "/beta/items/7", b"item", id="shorthand-stage-verb"),
        pytest.param("GET", "/prod/items/9/photos/1", b"photo", id="actual-param-values"),
        pytest.param("GET", "/prod/items/abc", b"item", id="exact-value"),
        pytest.param("DELETE", "/prod/items/42/", b"item", id="trailing-slash-dropped"),
        pytest.param("DELETE", "/restapis/a1b2c3d4e5/prod/_user_request_/items/42", b"item", id="localstack"),
    ],
)
def test_exact_arn_allows(arn_gateway: Gateway, method: str, path: str, body: bytes) -> None:
    status, _, got = arn_gateway.request(method, path, body=b"" if method == "PUT" else None)
    assert (status, got) == (200, body)


@pytest.mark.parametrize(
    ("method", "path", "arn_tail"),
    [
        pytest.param("GET", "/prod/items/42", "prod/GET/items/42", id="other-verb-on-any-route"),
        pytest.param("DELETE", "/prod/items/43", "prod/DELETE/items/43", id="other-path-value"),
        pytest.param("POST", "/prod/", "prod/POST/", id="root-other-verb"),
        pytest.param("POST", "/prod", "prod/POST/", id="root-without-slash-other-verb"),
        pytest.param("PUT", "/prod/items/7", "prod/PUT/items/7", id="other-stage"),
        pytest.param("DELETE", "/beta/items/42", "beta/DELETE/items/42", id="exact-arn-names-its-stage"),
        pytest.param("GET", "/prod/items/ABC", "prod/GET/items/ABC", id="path-case-sensitive"),
    ],
)
def test_implicit_deny_names_the_arn_aws_builds(
    arn_gateway: Gateway, method: str, path: str, arn_tail: str
) -> None:
    got = denial(arn_gateway.request(method, path, body=b"" if method in ("POST", "PUT") else None))
    assert got == f"arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/{arn_tail}"


def test_explicit_deny_names_the_arn_with_suffix(arn_gateway: Gateway) -> None:
    got = denial(arn_gateway.request("PUT", "/beta/items/666", body=b""))
    assert (
        got
        == "arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/beta/PUT/items/666 with an explicit deny"
    )
    got = denial(arn_gateway.request("DELETE", "/prod/items/666"))
    assert (
        got
        == "arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/DELETE/items/666 with an explicit deny"
    )


def test_arn_uses_configured_region_account_and_api_id(gateway_factory) -> None:
    arn = "arn:aws:execute-api:eu-west-2:444455556666:zx9y8w7v6u"
    config = {
        "gateway": {"region": "eu-west-2", "account_id": "444455556666"},
        "apis": [
            {
                "id": "zx9y8w7v6u",
                "stages": {"live": {}},
                "policy": policy(
                    allow(f"{arn}/live/GET/ok"),
                    allow("arn:aws:execute-api:us-east-1:444455556666:zx9y8w7v6u/live/GET/wrong-region"),
                    allow("arn:aws:execute-api:eu-west-2:111122223333:zx9y8w7v6u/live/GET/wrong-account"),
                    allow("arn:aws:execute-api:eu-west-2:444455556666:a1b2c3d4e5/live/GET/wrong-api"),
                ),
                "routes": [mock_route("/{name}")],
            }
        ],
    }
    gw = gateway_factory(config)
    assert gw.request("GET", "/live/ok")[::2] == (200, b"ok")
    for name in ("wrong-region", "wrong-account", "wrong-api"):
        got = denial(gw.request("GET", f"/live/{name}"))
        assert got == f"arn:aws:execute-api:eu-west-2:********6666:zx9y8w7v6u/live/GET/{name}"


# --- client address, transport, headers, time ------------------------------------------------------

CONTEXT_POLICY = policy(
    allow("execute-api:/*/GET/loopback", {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}),
    allow("execute-api:/*/GET/client", {"IpAddress": {"aws:SourceIp": "203.0.113.9/32"}}),
    allow("execute-api:/*/GET/tls"),
    deny("execute-api:/*/GET/tls", {"Bool": {"aws:SecureTransport": "false"}}, sid="TlsOnly"),
    allow("execute-api:/*/GET/ua", {"StringLike": {"aws:UserAgent": "curl/*"}}),
    allow("execute-api:/*/GET/no-ua", {"Null": {"aws:UserAgent": "true"}}),
    allow("execute-api:/*/GET/referer", {"StringEquals": {"aws:Referer": "https://shop.example/cart"}}),
    allow("execute-api:/*/GET/no-referer", {"Null": {"aws:Referer": "true"}}),
    allow(
        "execute-api:/*/GET/time",
        {
            "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
            "NumericGreaterThan": {"aws:EpochTime": "1577836800"},
        },
    ),
    allow("execute-api:/*/GET/future", {"DateGreaterThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}),
    allow("execute-api:/*/GET/ip-known", {"Null": {"aws:SourceIp": "false"}}),
    allow("execute-api:/*/GET/anonymous-type", {"StringEquals": {"aws:PrincipalType": "Anonymous"}}),
    allow("execute-api:/*/GET/anonymous-userid", {"StringEquals": {"aws:userid": "anonymous"}}),
    allow("execute-api:/*/GET/anonymous-account", {"StringEquals": {"aws:PrincipalAccount": "anonymous"}}),
    allow(
        "execute-api:/*/GET/no-principal-keys",
        {"Null": {"aws:PrincipalType": "true", "aws:userid": "true", "aws:PrincipalAccount": "true"}},
    ),
)


def _context_config(**gateway: Any) -> dict:
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT, **gateway},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "policy": CONTEXT_POLICY,
                "routes": [mock_route("/{name}")],
            }
        ],
    }


@pytest.fixture(scope="module")
def direct(module_tmp: Path) -> Iterator[Gateway]:
    """No trusted proxies: the socket peer (127.0.0.1) is the client, whatever headers say."""
    gw = _start(module_tmp, "direct", _context_config())
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def behind_proxy(module_tmp: Path) -> Iterator[Gateway]:
    """127.0.0.1 and 10.0.0.0/8 are trusted proxies."""
    gw = _start(module_tmp, "proxied", _context_config(trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"]))
    yield gw
    gw.stop()


def status_of(gw: Gateway, path: str, headers: dict[str, str] | None = None) -> int:
    return gw.request("GET", path, headers=headers)[0]


def test_client_ip_comes_from_the_socket(direct: Gateway) -> None:
    status, headers, _ = direct.request("GET", "/prod/loopback")
    assert status == 200
    assert wait_for_log(direct, headers["x-amzn-requestid"])["identity.sourceIp"] == "127.0.0.1"
    assert status_of(direct, "/prod/client") == 403
    assert status_of(direct, "/prod/ip-known") == 200  # aws:SourceIp is set for a public API


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Forwarded-For": "203.0.113.9"}, id="xff"),
        pytest.param({"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}, id="xff-chain"),
        pytest.param({"X-Real-IP": "203.0.113.9"}, id="x-real-ip"),
        pytest.param({"Forwarded": "for=203.0.113.9"}, id="forwarded"),
        pytest.param({"True-Client-IP": "203.0.113.9", "CF-Connecting-IP": "203.0.113.9"}, id="cdn-headers"),
    ],
)
def test_spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored(
    direct: Gateway, headers: dict[str, str]
) -> None:
    """The policy allows only 203.0.113.9 on /client; the attacker claims to be it."""
    status, got, body = direct.request("GET", "/prod/client", headers=headers)
    assert denial((status, got, body)).endswith("/prod/GET/client")
    assert wait_for_log(direct, got["x-amzn-requestid"])["identity.sourceIp"] == "127.0.0.1"
    assert status_of(direct, "/prod/loopback", headers) == 200


@pytest.mark.parametrize(
    ("xff", "client", "allowed"),
    [
        pytest.param("203.0.113.9", "203.0.113.9", True, id="one-hop"),
        pytest.param("203.0.113.9, 10.1.2.3", "203.0.113.9", True, id="trusted-hops-skipped"),
        pytest.param("198.51.100.7, 203.0.113.9, 10.1.2.3", "203.0.113.9", True, id="leftmost-ignored"),
        pytest.param("203.0.113.9, 198.51.100.7", "198.51.100.7", False, id="forged-leftmost-loses"),
        pytest.param("203.0.113.9:4711", "203.0.113.9", True, id="port-stripped"),
    ],
)
def test_x_forwarded_for_from_a_trusted_proxy_rightmost_untrusted_wins(
    behind_proxy: Gateway, xff: str, client: str, allowed: bool
) -> None:
    status, headers, _ = behind_proxy.request("GET", "/prod/client", headers={"X-Forwarded-For": xff})
    assert status == (200 if allowed else 403)
    assert wait_for_log(behind_proxy, headers["x-amzn-requestid"])["identity.sourceIp"] == client
    # the client is no longer the proxy itself
    assert status_of(behind_proxy, "/prod/loopback", {"X-Forwarded-For": xff}) == 403


def test_trusted_proxy_without_forwarding_header_is_the_client(behind_proxy: Gateway) -> None:
    assert status_of(behind_proxy, "/prod/loopback") == 200
    assert status_of(behind_proxy, "/prod/client") == 403


def test_repeated_x_forwarded_for_headers_are_one_list(behind_proxy: Gateway) -> None:
    """A client's own XFF line and the proxy's appended line: the proxy's (last) entry counts."""
    request = (
        b"GET /prod/client HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 203.0.113.9\r\n"
        b"X-Forwarded-For: 198.51.100.7\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", behind_proxy.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 403 "), data[:200]
    assert b"AccessDeniedException" in data


@pytest.fixture(scope="module")
def behind_rfc7239_proxy(module_tmp: Path) -> Iterator[Gateway]:
    """127.0.0.1 is a trusted proxy that writes RFC 7239 Forwarded headers."""
    gw = _start(
        module_tmp, "rfc7239", _context_config(trusted_proxies=["127.0.0.1/32"], forwarded_header="forwarded")
    )
    yield gw
    gw.stop()


def test_forwarded_header_from_a_trusted_proxy_is_believed(behind_rfc7239_proxy: Gateway) -> None:
    gw = behind_rfc7239_proxy
    headers = {"Forwarded": 'for=198.51.100.7, for="203.0.113.9:4711";proto=https'}
    status, got, _ = gw.request("GET", "/prod/client", headers=headers)
    assert wait_for_log(gw, got["x-amzn-requestid"])["identity.sourceIp"] == "203.0.113.9"
    assert status == 200
    # such a proxy does not write X-Forwarded-For: one a client sent is not believed
    status, got, _ = gw.request("GET", "/prod/client", headers={"X-Forwarded-For": "203.0.113.9"})
    assert wait_for_log(gw, got["x-amzn-requestid"])["identity.sourceIp"] == "127.0.0.1"
    assert status == 403


def test_forwarded_header_is_ignored_when_proxies_write_x_forwarded_for(behind_proxy: Gateway) -> None:
    headers = {"Forwarded": 'for="203.0.113.9"'}
    status, got, _ = behind_proxy.request("GET", "/prod/client", headers=headers)
    assert wait_for_log(behind_proxy, got["x-amzn-requestid"])["identity.sourceIp"] == "127.0.0.1"
    assert status == 403


def test_secure_transport_is_false_on_plain_http(direct: Gateway, behind_proxy: Gateway) -> None:
    got = denial(direct.request("GET", "/prod/tls"))
    assert got.endswith("/prod/GET/tls with an explicit deny")
    # a client cannot claim TLS; a trusted proxy that terminated it can
    assert status_of(direct, "/prod/tls", {"X-Forwarded-Proto": "https"}) == 403
    assert status_of(behind_proxy, "/prod/tls", {"X-Forwarded-Proto": "https"}) == 200
    assert status_of(behind_proxy, "/prod/tls", {"X-Forwarded-Proto": "http"}) == 403


@pytest.mark.parametrize(
    ("path", "headers", "allowed"),
    [
        pytest.param("/prod/ua", {"User-Agent": "curl/8.5.0"}, True, id="ua-matches"),
        pytest.param("/prod/ua", {"User-Agent": "Mozilla/5.0"}, False, id="ua-differs"),
        pytest.param("/prod/ua", {}, False, id="ua-absent-no-match"),
        pytest.param("/prod/no-ua", {}, True, id="ua-absent-key-missing"),
        pytest.param("/prod/no-ua", {"User-Agent": "curl/8.5.0"}, False, id="ua-present"),
        pytest.param("/prod/referer", {"Referer": "https://shop.example/cart"}, True, id="referer-matches"),
        pytest.param("/prod/referer", {"Referer": "https://evil.example/"}, False, id="referer-differs"),
        pytest.param("/prod/referer", {}, False, id="referer-absent-no-match"),
        pytest.param("/prod/no-referer", {}, True, id="referer-absent-key-missing"),
        pytest.param("/prod/no-referer", {"Referer": "https://a.example/"}, False, id="referer-present"),
    ],
)
def test_user_agent_and_referer_only_when_sent(
    direct: Gateway, path: str, headers: dict[str, str], allowed: bool
) -> None:
    # http.client sends no User-Agent of its own
    assert status_of(direct, path, headers) == (200 if allowed else 403)


def test_current_and_epoch_time_are_set(direct: Gateway) -> None:
    assert status_of(direct, "/prod/time") == 200
    assert status_of(direct, "/prod/future") == 403


@pytest.fixture(scope="module")
def iam_anonymous_keys(module_tmp: Path) -> Iterator[Gateway]:
    gw = _start(module_tmp, "iam-anonymous", _context_config(anonymous_principal_keys="iam"))
    yield gw
    gw.stop()


ANONYMOUS_KEY_PATHS = ["/prod/anonymous-type", "/prod/anonymous-userid", "/prod/anonymous-account"]


def test_anonymous_callers_have_no_principal_keys_by_default(direct: Gateway) -> None:
    """API Gateway lists the principal keys as IAM-only (IAM documents anonymous values)."""
    assert [status_of(direct, p) for p in ANONYMOUS_KEY_PATHS] == [403, 403, 403]
    assert status_of(direct, "/prod/no-principal-keys") == 200


def test_anonymous_principal_keys_iam_gives_iams_values(iam_anonymous_keys: Gateway) -> None:
    """``anonymous_principal_keys: iam``: aws:PrincipalType Anonymous, aws:userid and
    aws:PrincipalAccount ``anonymous``, as IAM documents them."""
    assert [status_of(iam_anonymous_keys, p) for p in ANONYMOUS_KEY_PATHS] == [200, 200, 200]
    assert status_of(iam_anonymous_keys, "/prod/no-principal-keys") == 403


# --- private APIs and the network map --------------------------------------------------------------

VPCE = "vpce-0123456789abcdef0"
OTHER_VPCE = "vpce-0fedcba987654321f"


@pytest.fixture(scope="module")
def vpc_gateway(module_tmp: Path) -> Iterator[Gateway]:
    config = {
        "gateway": {
            "region": "us-east-1",
            "account_id": ACCOUNT,
            "trusted_proxies": ["127.0.0.1/32"],
            "networks": [
                {"cidr": "10.20.0.0/16", "vpc_id": "vpc-0a1b2c3d", "vpce_id": VPCE},
                {"cidr": "10.30.0.0/16", "vpc_id": "vpc-0f0f0f0f", "vpce_id": OTHER_VPCE},
            ],
        },
        "apis": [
            {
                "id": "p1p1p1p1p1",
                "endpoint_type": "PRIVATE",
                "stages": {"prod": {}},
                "policy": policy(
                    allow("execute-api:/*/GET/vpce", {"StringEquals": {"aws:SourceVpce": VPCE}}),
                    allow("execute-api:/*/GET/vpc", {"StringEquals": {"aws:SourceVpc": "vpc-0a1b2c3d"}}),
                    allow("execute-api:/*/GET/sourceip", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                    allow(
                        "execute-api:/*/GET/vpcsourceip", {"IpAddress": {"aws:VpcSourceIp": "10.20.1.5/32"}}
                    ),
                    allow("execute-api:/*/GET/no-sourceip", {"Null": {"aws:SourceIp": "true"}}),
                ),
                "routes": [mock_route("/{name}", body="private")],
            },
            {
                "id": "r1r1r1r1r1",
                "stages": {"prod": {}},
                "routes": [mock_route("/{name}", body="public")],
            },
        ],
    }
    gw = _start(module_tmp, "vpc", config)
    yield gw
    gw.stop()


def _private(gw: Gateway, name: str, client: str | None, **extra: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Host": f"p1p1p1p1p1-{VPCE}.execute-api.us-east-1.amazonaws.com", **extra}
    if client is not None:
        headers["X-Forwarded-For"] = client
    return gw.request("GET", f"/prod/{name}", headers=headers)


@pytest.mark.parametrize(
    ("name", "client", "allowed"),
    [
        pytest.param("vpce", "10.20.1.5", True, id="source-vpce"),
        pytest.param("vpce", "10.30.1.5", False, id="other-vpce"),
        pytest.param("vpc", "10.20.9.9", True, id="source-vpc"),
        pytest.param("vpc", "10.30.9.9", False, id="other-vpc"),
        pytest.param("sourceip", "10.20.1.5", False, id="no-source-ip-on-private-api"),
        pytest.param("no-sourceip", "10.20.1.5", True, id="source-ip-key-absent"),
        pytest.param("vpcsourceip", "10.20.1.5", True, id="vpc-source-ip"),
        pytest.param("vpcsourceip", "10.20.1.6", False, id="other-vpc-source-ip"),
    ],
)
def test_private_api_sees_vpc_keys_and_no_source_ip(
    vpc_gateway: Gateway, name: str, client: str, allowed: bool
) -> None:
    status, headers, body = _private(vpc_gateway, name, client)
    if allowed:
        assert (status, body) == (200, b"private")
    else:
        denial((status, headers, body))


def test_private_api_log_names_the_endpoint_and_vpc(vpc_gateway: Gateway) -> None:
    status, headers, _ = _private(vpc_gateway, "vpce", "10.20.1.5")
    assert status == 200
    entry = wait_for_log(vpc_gateway, headers["x-amzn-requestid"])
    assert entry["identity.vpceId"] == VPCE
    assert entry["identity.vpcId"] == "vpc-0a1b2c3d"
    assert entry["identity.sourceIp"] == "10.20.1.5"


@pytest.mark.parametrize(
    ("client", "extra"),
    [
        pytest.param(None, {}, id="loopback"),
        pytest.param("203.0.113.9", {}, id="internet-client"),
        pytest.param(
            "203.0.113.9", {"x-amzn-vpce-id": VPCE, "x-amzn-vpc-id": "vpc-0a1b2c3d"}, id="spoof-vpce"
        ),
    ],
)
def test_private_api_from_outside_any_endpoint_is_forbidden(
    vpc_gateway: Gateway, client: str | None, extra: dict[str, str]
) -> None:
    status, headers, body = _private(vpc_gateway, "vpce", client, **extra)
    assert status == 403
    assert body == b'{"message":"Forbidden"}'
    assert headers["x-amzn-errortype"] == "ForbiddenException"
    assert headers["content-type"] == "application/json"


def test_public_api_is_not_reachable_through_a_vpc_endpoint(vpc_gateway: Gateway) -> None:
    host = {"Host": "r1r1r1r1r1.execute-api.us-east-1.amazonaws.com"}
    assert vpc_gateway.request("GET", "/prod/x", headers=host)[::2] == (200, b"public")
    status, headers, body = vpc_gateway.request(
        "GET", "/prod/x", headers={**host, "X-Forwarded-For": "10.20.1.5"}
    )
    assert (status, body) == (403, b'{"message":"Forbidden"}')
    assert headers["x-amzn-errortype"] == "ForbiddenException"
