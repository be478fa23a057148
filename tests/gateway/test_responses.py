"""What the caller, the access log and the metrics see for each outcome.

Acceptance points (issue 3, "The request path" and "Observability"): a denial is 403 with AWS's
exact body (``Message``, masked account, `` with an explicit deny`` only for explicit denies, or
the ``policy-type`` wording), ``x-amzn-ErrorType``, a UUID-shaped ``x-amzn-RequestId`` that
differs per request and ``x-amz-apigw-id``; a policy that is silent denies, no policy means a
public API, and a denied request never reaches the backend; ``policy_mode: report`` lets a
would-be-denied request through, logs ``decision.wouldDeny`` and counts it; one JSON access-log
line per request (allowed, denied, unmatched, failed, timed out, MOCK) with the ``$context``
names and the decision with its determining statements; a per-stage ``access_log_format``
template with ``-`` for missing values; Prometheus metrics on the admin port by api, stage,
status and decision.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.conftest import (
    Backend,
    Gateway,
    Recorded,
    free_port,
    log_lines,
    metric_value,
    parse_metrics,
    reply,
    start_gateway,
    wait_for_line,
    wait_for_log,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
APIGW_ID = re.compile(r"^[A-Za-z0-9+/]{15}=$")
ACCOUNT = "111122223333"
DENIED = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
STALL = threading.Event()


def statement(effect: str, resource: str, sid: str, condition: dict[str, Any] | None = None) -> dict:
    st: dict[str, Any] = {
        "Sid": sid,
        "Effect": effect,
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": resource,
    }
    if condition:
        st["Condition"] = condition
    return st


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        statement("Allow", "execute-api:/*/*/pets*", "PetsForAll"),
        statement("Allow", "execute-api:/*/*/ops/*", "Ops"),
        statement("Deny", "execute-api:/prod/GET/pets", "NoListing"),
        statement("Deny", "execute-api:/*/*/pets/admin/*", "NoAdmin"),
    ],
}


def handler(req: Recorded, sock: socket.socket) -> None:
    if req.target.startswith("/ops/stall"):
        STALL.wait(20)
        return
    reply(sock, 200, b"backend:" + req.target.encode(), [("Content-Type", "text/plain")])


@pytest.fixture(scope="module")
def backend_m() -> Iterator[Backend]:
    b = Backend(handler).start()
    yield b
    STALL.set()
    b.stop()


def proxy_route(path: str, uri: str, **extra: Any) -> dict:
    return {"path": path, "method": "ANY", "integration": {"type": "HTTP_PROXY", "uri": uri, **extra}}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, backend_m: Backend) -> Iterator[Gateway]:
    b = backend_m.url
    clf = (
        '$context.requestId $context.identity.sourceIp "$context.httpMethod $context.resourcePath '
        '$context.protocol" $context.status $context.responseLength $context.error.responseType '
        "$context.identity.userAgent $context.identity.vpceId"
    )
    config = {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}, "clf": {"access_log_format": clf}},
                "policy": POLICY,
                "routes": [
                    proxy_route("/{proxy+}", f"{b}/{{proxy}}"),
                    proxy_route("/ops/down", f"http://127.0.0.1:{free_port()}/"),
                    proxy_route("/ops/stall", f"{b}/ops/stall", timeout=0.5),
                    {
                        "path": "/pets-mock",
                        "method": "GET",
                        "integration": {"type": "MOCK", "status": 202, "body": "mocked"},
                    },
                ],
            },
            {  # no policy: public
                "id": "b0b0b0b0b0",
                "stages": {"prod": {}},
                "routes": [proxy_route("/{proxy+}", f"{b}/public/{{proxy}}")],
            },
            {  # a policy that says nothing about this API
                "id": "c0c0c0c0c0",
                "stages": {"prod": {}},
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        statement("Allow", f"arn:aws:execute-api:us-east-1:{ACCOUNT}:zzzzzzzzzz/*", "Other")
                    ],
                },
                "routes": [proxy_route("/{proxy+}", f"{b}/silent/{{proxy}}")],
            },
            {  # report-only
                "id": "d0d0d0d0d0",
                "stages": {"prod": {}},
                "policy_mode": "report",
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        statement("Allow", "execute-api:/*", "AllowAll"),
                        statement("Deny", "execute-api:/*/*/secret/*", "WouldStopSecrets"),
                    ],
                },
                "routes": [proxy_route("/{proxy+}", f"{b}/report/{{proxy}}")],
            },
        ],
    }
    g = start_gateway(tmp_path_factory.mktemp("responses"), config)
    yield g
    g.stop()


def on(api: str) -> dict[str, str]:
    return {"x-apigw-api-id": api}


def call(
    gw: Gateway, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    """A request to API a1b2c3d4e5 unless the headers choose another (four APIs: no default)."""
    return gw.request(method, path, headers={**on("a1b2c3d4e5"), **(headers or {})}, **kw)


# --- denials on the wire ----------------------------------------------------------------------------


def test_explicit_deny_is_exactly_what_aws_sends(gw: Gateway, backend_m: Backend) -> None:
    before = len(backend_m.requests)
    status, headers, body = call(gw, "GET", "/prod/pets")
    assert status == 403
    assert body == (
        b'{"Message":"User: anonymous is not authorized to perform: execute-api:Invoke on resource: '
        b'arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/GET/pets with an explicit deny"}'
    )
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert UUID.match(headers["x-amzn-requestid"])
    assert APIGW_ID.match(headers["x-amz-apigw-id"])
    assert len(backend_m.requests) == before


def test_implicit_deny_has_no_suffix(gw: Gateway, backend_m: Backend) -> None:
    before = len(backend_m.requests)
    status, headers, body = call(gw, "DELETE", "/prod/other/thing")
    assert status == 403
    assert body == (
        b'{"Message":"User: anonymous is not authorized to perform: execute-api:Invoke on resource: '
        b'arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/DELETE/other/thing"}'
    )
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert len(backend_m.requests) == before


def test_allowed_request_next_to_the_denied_one_reaches_the_backend(gw: Gateway, backend_m: Backend) -> None:
    before = len(backend_m.requests)
    status, headers, body = call(gw, "POST", "/prod/pets", body=b"{}")
    assert (status, body) == (200, b"backend:/pets")
    assert "x-amzn-errortype" not in headers
    assert UUID.match(headers["x-amzn-requestid"])
    assert len(backend_m.requests) == before + 1


def test_request_ids_differ_per_request(gw: Gateway) -> None:
    seen_ids, seen_ext = set(), set()
    for path in ["/prod/pets"] * 3 + ["/prod/pets/1"] * 3 + ["/prod/nowhere-at-all"] * 3:
        _, headers, _ = call(gw, "GET", path)
        assert UUID.match(headers["x-amzn-requestid"])
        assert APIGW_ID.match(headers["x-amz-apigw-id"])
        seen_ids.add(headers["x-amzn-requestid"])
        seen_ext.add(headers["x-amz-apigw-id"])
    assert len(seen_ids) == 9
    assert len(seen_ext) == 9


def test_non_uuid_client_request_id_is_not_echoed(gw: Gateway) -> None:
    _, headers, _ = call(gw, "GET", "/prod/pets/1", headers={"x-amzn-RequestId": "not-a-uuid\u00e9"})
    assert UUID.match(headers["x-amzn-requestid"])


def test_client_supplied_uuid_request_id_is_used(gw: Gateway) -> None:
    """AWS documents that clients may override the request id with a UUID."""
    mine = "11111111-2222-4333-8444-555555555555"
    _, headers, _ = call(gw, "GET", "/prod/pets/1", headers={"x-amzn-RequestId": mine})
    assert headers["x-amzn-requestid"] == mine
    assert APIGW_ID.match(headers["x-amz-apigw-id"])  # the extended id stays the gateway's own
    assert wait_for_log(gw, mine)["extendedRequestId"] == headers["x-amz-apigw-id"]


def test_silent_policy_denies_and_no_policy_is_public(gw: Gateway, backend_m: Backend) -> None:
    before = len(backend_m.requests)
    status, _, body = call(gw, "GET", "/prod/a/b", headers=on("c0c0c0c0c0"))
    assert status == 403
    assert json.loads(body)["Message"] == (
        DENIED + "arn:aws:execute-api:us-east-1:********3333:c0c0c0c0c0/prod/GET/a/b"
    )
    assert len(backend_m.requests) == before
    status, _, body = call(gw, "GET", "/prod/a/b", headers=on("b0b0b0b0b0"))
    assert (status, body) == (200, b"backend:/public/a/b")
    assert len(backend_m.requests) == before + 1


def test_policy_type_denial_wording(gateway_factory) -> None:
    config = {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT, "denial_messages": "policy-type"},
        "apis": [
            {
                "id": "a1b2c3d4e5",
                "stages": {"prod": {}},
                "policy": POLICY,
                "routes": [
                    {"path": "/{proxy+}", "method": "ANY", "integration": {"type": "MOCK", "body": "m"}}
                ],
            }
        ],
    }
    g = gateway_factory(config)
    status, headers, body = g.request("GET", "/prod/pets")
    assert (status, headers["x-amzn-errortype"]) == (403, "AccessDeniedException")
    assert json.loads(body) == {
        "Message": DENIED + "arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/GET/pets"
        " with an explicit deny in a resource-based policy"
    }
    status, _, body = g.request("GET", "/prod/other")
    assert status == 403
    assert json.loads(body) == {
        "Message": DENIED + "arn:aws:execute-api:us-east-1:********3333:a1b2c3d4e5/prod/GET/other"
        " because no resource-based policy allows the execute-api:Invoke action"
    }
    assert g.request("GET", "/prod/pets/1")[::2] == (200, b"m")


# --- policy_mode: report -----------------------------------------------------------------------


def test_report_mode_lets_a_would_be_denied_request_through_and_says_so(
    gw: Gateway, backend_m: Backend
) -> None:
    labels = {"api": "d0d0d0d0d0", "stage": "prod"}
    would_deny = metric_value(gw, "iamgate_policy_would_deny_total", **labels)
    status, headers, body = call(gw, "GET", "/prod/secret/plans", headers=on("d0d0d0d0d0"))
    assert (status, body) == (200, b"backend:/report/secret/plans")
    assert "x-amzn-errortype" not in headers
    entry = wait_for_log(gw, headers["x-amzn-requestid"])
    assert entry["decision.wouldDeny"] is True
    assert entry["decision"] == "ExplicitDeny"
    assert entry["decision.mode"] == "report"
    assert any("WouldStopSecrets" in s for s in entry["decision.statements"])
    assert metric_value(gw, "iamgate_policy_would_deny_total", **labels) == would_deny + 1
    # an allowed request in report mode is not a would-deny
    status, headers, _ = call(gw, "GET", "/prod/public/plans", headers=on("d0d0d0d0d0"))
    assert status == 200
    entry = wait_for_log(gw, headers["x-amzn-requestid"])
    assert entry["decision"] == "Allow"
    assert "decision.wouldDeny" not in entry
    assert metric_value(gw, "iamgate_policy_would_deny_total", **labels) == would_deny + 1


# --- the access log -----------------------------------------------------------------------------


def _logged(gw: Gateway, method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes, dict]:
    status, headers, body = call(gw, method, path, **kw)
    entry = wait_for_log(gw, headers["x-amzn-requestid"])
    assert entry["requestId"] == headers["x-amzn-requestid"]
    assert entry["extendedRequestId"] == headers["x-amz-apigw-id"]
    assert entry["identity.sourceIp"] == "127.0.0.1"
    assert entry["httpMethod"] == method
    assert entry["status"] == status
    assert isinstance(entry["responseLatency"], int | float)
    assert entry["responseLatency"] >= 0
    assert sum(headers["x-amzn-requestid"] in line for line in log_lines(gw)) == 1
    return status, headers, body, entry


def test_access_log_allowed_proxied_request(gw: Gateway) -> None:
    status, _, body, entry = _logged(
        gw, "PUT", "/prod/pets/7?x=1", body=b"abc", headers={"User-Agent": "t/1"}
    )
    assert status == 200
    assert entry["resourcePath"] == "/{proxy+}"
    assert entry["path"] == "/prod/pets/7"
    assert entry["stage"] == "prod"
    assert entry["apiId"] == "a1b2c3d4e5"
    assert entry["accountId"] == ACCOUNT
    assert entry["protocol"] == "HTTP/1.1"
    assert entry["identity.userAgent"] == "t/1"
    assert entry["responseLength"] == len(body)
    assert entry["integrationStatus"] == 200
    assert isinstance(entry["integrationLatency"], int | float)
    assert entry["integrationLatency"] >= 0
    assert entry["decision"] == "Allow"
    assert len(entry["decision.statements"]) == 1
    assert "PetsForAll" in entry["decision.statements"][0]
    assert "error.message" not in entry
    assert "error.responseType" not in entry


def test_access_log_explicit_deny_names_the_determining_statement(gw: Gateway) -> None:
    status, _, body, entry = _logged(gw, "GET", "/prod/pets/admin/users")
    assert status == 403
    assert entry["decision"] == "ExplicitDeny"
    assert len(entry["decision.statements"]) == 1
    assert "NoAdmin" in entry["decision.statements"][0]
    assert entry["error.responseType"] == "ACCESS_DENIED"
    assert entry["error.message"] == json.loads(body)["Message"]
    assert entry["responseLength"] == len(body)
    assert entry["resourcePath"] == "/{proxy+}"
    assert "integrationLatency" not in entry


def test_access_log_implicit_deny(gw: Gateway) -> None:
    status, _, _, entry = _logged(gw, "GET", "/prod/other/x")
    assert status == 403
    assert entry["decision"] == "ImplicitDeny"
    assert entry["decision.statements"] == []
    assert entry["error.responseType"] == "ACCESS_DENIED"


def test_access_log_unmatched_request(gw: Gateway) -> None:
    status, _, body, entry = _logged(gw, "GET", "/nostage/pets")
    assert status == 403
    assert entry["error.responseType"] == "MISSING_AUTHENTICATION_TOKEN"
    assert entry["error.message"] == "Missing Authentication Token"
    assert entry["responseLength"] == len(body)
    assert "decision" not in entry
    assert "resourcePath" not in entry


def test_access_log_backend_down(gw: Gateway) -> None:
    status, _, _, entry = _logged(gw, "GET", "/prod/ops/down")
    assert status == 502
    assert entry["error.responseType"] == "INTEGRATION_FAILURE"
    assert entry["error.message"] == "Internal server error"
    assert entry["resourcePath"] == "/ops/down"
    assert "integrationLatency" in entry


def test_access_log_timeout(gw: Gateway) -> None:
    status, _, _, entry = _logged(gw, "POST", "/prod/ops/stall", body=b"x", timeout=10)
    assert status == 504
    assert entry["error.responseType"] == "INTEGRATION_TIMEOUT"
    assert entry["error.message"] == "Endpoint request timed out"


def test_access_log_mock(gw: Gateway) -> None:
    status, _, body, entry = _logged(gw, "GET", "/prod/pets-mock")
    assert (status, body) == (202, b"mocked")
    assert entry["resourcePath"] == "/pets-mock"
    assert entry["responseLength"] == len(b"mocked")
    assert entry["decision"] == "Allow"


def test_stage_access_log_template(gw: Gateway) -> None:
    status, headers, body = call(gw, "POST", "/clf/pets/9", body=b"{}")
    assert status == 200
    rid = headers["x-amzn-requestid"]
    line = wait_for_line(gw, rid)
    assert line == f'{rid} 127.0.0.1 "POST /{{proxy+}} HTTP/1.1" 200 {len(body)} - - -'
    status, headers, body = call(gw, "GET", "/clf/pets/admin/x", headers={"User-Agent": "agent/2"})
    assert status == 403
    rid = headers["x-amzn-requestid"]
    line = wait_for_line(gw, rid)
    assert line == f'{rid} 127.0.0.1 "GET /{{proxy+}} HTTP/1.1" 403 {len(body)} ACCESS_DENIED agent/2 -'
    # the other stage keeps the JSON line
    _, headers, _ = call(gw, "GET", "/prod/pets/9")
    assert wait_for_log(gw, headers["x-amzn-requestid"])["stage"] == "prod"


API_A = "x-apigw-api-id: a1b2c3d4e5\r\n"


def _raw(gw: Gateway, request: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes; return the response head and whatever followed it until the gateway
    closed or went quiet."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(request)
        data = b""
        try:
            while b"\r\n\r\n" not in data or not data.endswith((b"\r\n\r\n", b"backend:/pets/v", b"}")):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize(
    ("version", "connection", "protocol", "kept"),
    [
        ("1.1", None, "HTTP/1.1", True),
        ("1.1", "close", "HTTP/1.1", False),
        ("1.1", "keep-alive", "HTTP/1.1", True),
        ("1.0", None, "HTTP/1.0", False),
        ("1.0", "keep-alive", "HTTP/1.0", True),
        ("1.0", "close", "HTTP/1.0", False),
        ("0.9", None, "HTTP/0.9", False),
        ("2.0", None, "HTTP/2.0", False),
        ("2.0", "keep-alive", "HTTP/2.0", True),
    ],
)
def test_request_protocol_and_persistence_by_version_and_connection_header(
    gw: Gateway, version: str, connection: str | None, protocol: str, kept: bool
) -> None:
    """The request's HTTP version reaches the log (``$context.protocol``) and decides, with the
    Connection header, whether the connection stays open, for every version llhttp accepts."""
    conn = f"Connection: {connection}\r\n" if connection else ""
    head, body = _raw(gw, f"GET /prod/pets/v HTTP/{version}\r\nHost: gw\r\n{API_A}{conn}\r\n".encode())
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"backend:/pets/v"
    lines = head.decode("latin-1").split("\r\n")
    rid = next(line.split(": ", 1)[1] for line in lines if line.lower().startswith("x-amzn-requestid:"))
    assert wait_for_log(gw, rid)["protocol"] == protocol
    assert ("Connection: close" in lines) is not kept


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /prod/pets/up HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET /prod/pets/up HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
    ],
    ids=["websocket", "h2c", "connect"],
)
def test_protocol_upgrades_and_connect_are_refused_before_the_backend(
    gw: Gateway, backend_m: Backend, request_bytes: bytes
) -> None:
    before = len(backend_m.requests)
    head, body = _raw(gw, request_bytes.replace(b"Host: gw\r\n", b"Host: gw\r\n" + API_A.encode()))
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"Connection: close" in head
    assert json.loads(body) == {"message": "Bad Request: protocol upgrades are not supported"}
    assert len(backend_m.requests) == before


def test_an_upgrade_header_without_connection_upgrade_is_an_ordinary_request(gw: Gateway) -> None:
    head, body = _raw(
        gw, b"GET /prod/pets/v HTTP/1.1\r\nHost: gw\r\n" + API_A.encode() + b"Upgrade: websocket\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"backend:/pets/v"


# --- metrics ----------------------------------------------------------------------------------------


def test_metrics_count_requests_by_api_stage_status_and_decision(gw: Gateway) -> None:
    def count(**labels: str) -> float:
        return metric_value(gw, "iamgate_requests_total", **labels)

    api = {"api": "a1b2c3d4e5", "stage": "prod"}
    cases = [
        ({**api, "status": "200", "decision": "Allow"}, lambda: call(gw, "GET", "/prod/pets/1"), 3),
        ({**api, "status": "403", "decision": "ExplicitDeny"}, lambda: call(gw, "GET", "/prod/pets"), 2),
        ({**api, "status": "403", "decision": "ImplicitDeny"}, lambda: call(gw, "GET", "/prod/zzz"), 1),
        ({**api, "status": "502", "decision": "Allow"}, lambda: call(gw, "GET", "/prod/ops/down"), 1),
        (
            {"api": "b0b0b0b0b0", "stage": "prod", "status": "200", "decision": "none"},
            lambda: call(gw, "GET", "/prod/x", headers=on("b0b0b0b0b0")),
            2,
        ),
    ]
    before = [count(**labels) for labels, _, _ in cases]
    unmatched_before = count(status="403", decision="none")
    duration_before = metric_value(gw, "iamgate_request_duration_seconds_count", **api)
    errors_before = metric_value(gw, "iamgate_upstream_errors_total", api="a1b2c3d4e5")
    for _, send, times in cases:
        for _ in range(times):
            send()
    call(gw, "GET", "/nostage")
    for (labels, _, times), was in zip(cases, before, strict=True):
        assert count(**labels) == was + times, labels
    assert count(status="403", decision="none") == unmatched_before + 1
    assert metric_value(gw, "iamgate_request_duration_seconds_count", **api) >= duration_before + 7
    assert metric_value(gw, "iamgate_upstream_errors_total", api="a1b2c3d4e5") == errors_before + 1


def test_metrics_exposition_format(gw: Gateway) -> None:
    call(gw, "GET", "/prod/pets/1")
    status, body = gw.admin("/metrics")
    assert status == 200
    text = body.decode()
    assert "# TYPE iamgate_requests_total counter" in text
    assert "# TYPE iamgate_request_duration_seconds histogram" in text
    samples = parse_metrics(text)
    buckets = sorted(
        (float(dict(labels)["le"].replace("+Inf", "inf")), value)
        for (name, labels), value in samples.items()
        if name == "iamgate_request_duration_seconds_bucket"
        and ("api", "a1b2c3d4e5") in labels
        and ("stage", "prod") in labels
    )
    assert buckets[-1][0] == float("inf")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    total = next(
        v
        for (name, labels), v in samples.items()
        if name == "iamgate_request_duration_seconds_count"
        and labels == {("api", "a1b2c3d4e5"), ("stage", "prod")}
    )
    assert buckets[-1][1] == total
