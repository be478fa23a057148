"""The live decisions (docs/console.md, "Live decisions") on the real ``iamgate serve``: the
stream (server-sent events read off a real socket) shows the requests the gateway answers, each
explained on demand with the trace ``iamgate policy simulate`` prints; filters; who may
watch which API; escaping; a viewer that never reads never slows the gateway (its events are
dropped and counted); with ``--workers 2`` the events of both workers arrive; the overview's
workers and rates."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.console.conftest import Client
from tests.gateway.conftest import Gateway, child_pids, start_gateway
from tests.management.conftest import ACCOUNT, ADMIN, NOBODY, REGION, Credentials, config_text
from tests.waiting import wait_for

ONE_API = Credentials(
    "AKIALIVEONEAPI000001", "live/OneApi+Secret000000000000000000000", f"arn:aws:iam::{ACCOUNT}:user/oneapi"
)

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenySecrets",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:livedapi/prod/GET/secret*",
        },
        {
            "Sid": "AllowLocal",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:livedapi/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}},
        },
    ],
}


ROUTE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OnlyFromTen",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    ],
}


def live_config(extra_management: str = "") -> str:
    users = f"""    - arn: {ONE_API.arn}
      policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: "apigateway:GET"
              Resource: "arn:aws:apigateway:{REGION}::/restapis/livedapi"
"""
    keys = f'    - {{id: {ONE_API.access_key}, secret: "{ONE_API.secret}", owner: {ONE_API.arn}}}\n'
    apis = f"""apis:
  - id: livedapi
    stages: {{prod: {{}}}}
    policy: {json.dumps(json.dumps(POLICY))}
    routes:
      - {{path: "/{{proxy+}}", method: GET, integration: {{type: MOCK, body: ok}}}}
      - path: /guarded
        method: GET
        integration: {{type: MOCK, body: guarded}}
        policy: {json.dumps(json.dumps(ROUTE_POLICY))}
  - id: otherapi
    stages: {{prod: {{}}}}
    routes:
      - {{path: "/{{proxy+}}", method: GET, integration: {{type: MOCK, body: other}}}}
"""
    text = config_text(users=users, keys=keys, extra=apis).replace("apis: []\n", "", 1)
    if extra_management:
        text = text.replace("management: {authentication: sigv4}", extra_management, 1)
    return text


class Sse:
    """A server-sent-events reader on a raw socket (as EventSource reads them)."""

    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the stream ended")
            self.buffer += chunk
        found, _, self.buffer = self.buffer.partition(mark)
        return found

    def events(self) -> Iterator[tuple[str, Any]]:
        """(event name, data) as they come; a socket timeout (10 s) ends the test."""
        while True:
            block = self._until(b"\n\n").decode()
            name, data = "message", ""
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
            if data:
                yield name, json.loads(data)

    def decisions_until(self, done: Any) -> list[dict[str, Any]]:
        """The decision events read until ``done(seen)`` holds."""
        seen: list[dict[str, Any]] = []
        for name, data in self.events():
            if name == "decision":
                seen.append(data)
                if done(seen):
                    return seen
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.sock.close()


def call(gw: Gateway, path: str, api: str = "livedapi") -> int:
    """A request to the gateway for ``api`` (named by its header: the gateway serves two)."""
    return gw.request("GET", path, headers={"x-apigw-api-id": api})[0]


def cookie_of(browser: Client) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.jar.items())


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, live_config())
    try:
        yield gw
    finally:
        gw.stop()


def signed_in(gw: Gateway, who: Credentials = ADMIN) -> Client:
    browser = Client("127.0.0.1", gw.admin_port)
    assert browser.sign_in(who).status == 303
    return browser


def test_a_denied_request_appears_and_is_explained(gateway: Gateway) -> None:
    browser = signed_in(gateway)
    page = browser.get("/console/decisions")
    assert page.status == 200
    assert 'data-stream="/console/decisions/stream"' in page.body
    stream = Sse(gateway.admin_port, "/console/decisions/stream", cookie_of(browser))
    try:
        assert stream.status == 200
        assert "text/event-stream" in stream.head
        assert call(gateway, "/prod/secret/plans") == 403
        assert call(gateway, "/prod/open") == 200
        seen = stream.decisions_until(
            lambda s: {"/prod/secret/plans", "/prod/open"} <= {e["path"] for e in s}
        )
    finally:
        stream.close()
    denied = next(e for e in seen if e["path"] == "/prod/secret/plans")
    allowed = next(e for e in seen if e["path"] == "/prod/open")
    assert denied["decision"] == "explicit-deny"
    assert denied["status"] == 403
    assert denied["method"] == "GET"
    assert denied["caller"] == "anonymous"
    assert denied["source"] == "127.0.0.1"
    assert denied["api"] == "livedapi"
    assert allowed["decision"] == "allow"
    explained = browser.get(f"/console/decisions/{quote(denied['id'])}")
    assert explained.status == 200
    # the trace policy simulate prints, and the deciding statement highlighted
    assert "Decision: ExplicitDeny: denied by #0 (DenySecrets)" in explained.body
    assert re.search(r'class="statement applies deciding" id="p1-statement-0"', explained.body)
    assert 'class="statement fails" id="p1-statement-1"' not in explained.body  # it applies too
    assert "127.0.0.1/32" in explained.body  # the condition's policy value beside the request's
    allowed_page = browser.get(f"/console/decisions/{quote(allowed['id'])}")
    assert "Decision: Allow: allowed by #1 (AllowLocal)" in allowed_page.body
    assert browser.get("/console/decisions/999999-1").status == 404
    assert browser.get("/console/decisions/not-an-id").status == 404


def test_a_route_policy_denial_is_explained_with_every_policy(gateway: Gateway) -> None:
    browser = signed_in(gateway)
    stream = Sse(gateway.admin_port, "/console/decisions/stream?path=/guarded", cookie_of(browser))
    try:
        assert call(gateway, "/prod/guarded") == 403
        [event] = stream.decisions_until(bool)
    finally:
        stream.close()
    assert event["decision"] == "implicit-deny"
    page = browser.get(f"/console/decisions/{quote(event['id'])}")
    assert page.status == 200
    assert "Refused by the route:GET /guarded policy." in page.body
    assert "API resource policy" in page.body  # which allowed it
    assert "Decision: Allow: allowed by #1 (AllowLocal)" in page.body
    assert "route:GET /guarded policy" in page.body
    assert "Decision: ImplicitDeny: no statement allows the request" in page.body
    assert "OnlyFromTen" in page.body


def test_filters_from_the_query_string(gateway: Gateway) -> None:
    browser = signed_in(gateway)
    stream = Sse(
        gateway.admin_port,
        "/console/decisions/stream?decision=allow&path=/kept&status=2xx",
        cookie_of(browser),
    )
    try:
        call(gateway, "/prod/secret/kept")  # denied: filtered out
        call(gateway, "/prod/other")  # path: filtered out
        call(gateway, "/prod/kept/1")
        seen = stream.decisions_until(lambda s: any(e["path"] == "/prod/kept/1" for e in s))
    finally:
        stream.close()
    assert [e["path"] for e in seen] == ["/prod/kept/1"]
    page = browser.get("/console/decisions?decision=explicit-deny&api=livedapi&path=%3Cx%3E")
    assert (
        'data-stream="/console/decisions/stream?decision=explicit-deny&amp;api=livedapi&amp;path=%3Cx%3E"'
        in page.body
    )
    assert '<option value="explicit-deny" selected>' in page.body
    assert browser.get("/console/decisions?decision=maybe").status == 400
    assert browser.get("/console/decisions/stream?status=abc").status == 400


def test_hostile_values_stay_text(gateway: Gateway) -> None:
    browser = signed_in(gateway)
    stream = Sse(gateway.admin_port, "/console/decisions/stream", cookie_of(browser))
    hostile = "/prod/secret/%3Cscript%3Ealert(1)%3C/script%3E"
    try:
        call(gateway, hostile)
        seen = stream.decisions_until(lambda s: any("script" in e["path"] for e in s))
    finally:
        stream.close()
    event = next(e for e in seen if "script" in e["path"])
    page = browser.get(f"/console/decisions/{quote(event['id'])}")
    assert "<script>alert" not in page.body
    assert "&lt;script&gt;" in page.body or "%3Cscript%3E" in page.body
    script = browser.get("/console/static/live.js").body
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "eval(" not in script
    assert "textContent" in script


def test_signing_out_ends_the_stream(gateway: Gateway) -> None:
    browser = signed_in(gateway)
    stream = Sse(gateway.admin_port, "/console/decisions/stream", cookie_of(browser))
    try:
        browser.get("/console/decisions")  # the session's CSRF token
        assert browser.post("/console/signout", {"csrf": browser.csrf}).status == 303
        for name, data in stream.events():  # the session is checked again within 5 s
            if name == "end":
                assert data == "signed out"
                break
    finally:
        stream.close()


def test_every_live_route_needs_a_session(gateway: Gateway) -> None:
    anonymous = Client("127.0.0.1", gateway.admin_port)
    for path in (
        "/console/decisions",
        "/console/decisions/stream",
        "/console/decisions/1-1",
        "/console/rates",
    ):
        answer = anonymous.get(path)
        assert answer.status == 303, path
        assert answer.location == "/console/signin"
        assert "data:" not in answer.body


def test_a_caller_sees_only_the_apis_it_may_read(gateway: Gateway) -> None:
    admin = signed_in(gateway)
    one = signed_in(gateway, ONE_API)
    watching = Sse(gateway.admin_port, "/console/decisions/stream", cookie_of(one))
    try:
        call(gateway, "/prod/a", "otherapi")
        call(gateway, "/prod/b")
        seen = watching.decisions_until(lambda s: any(e["path"] == "/prod/b" for e in s))
    finally:
        watching.close()
    assert {e["api"] for e in seen} == {"livedapi"}
    # the other API's event: the admin may open it, the one-API caller may not
    stream = Sse(gateway.admin_port, "/console/decisions/stream?api=otherapi", cookie_of(admin))
    try:
        other = stream.decisions_until(bool)[0]
    finally:
        stream.close()
    assert admin.get(f"/console/decisions/{quote(other['id'])}").status == 200
    refused = one.get(f"/console/decisions/{quote(other['id'])}")
    assert refused.status == 403
    assert "apigateway:GET" in refused.body
    assert "/restapis/otherapi" in refused.body
    assert one.get("/console/rates").status == 403  # the rates are the whole gateway's
    nobody = signed_in(gateway, NOBODY)
    empty = Sse(gateway.admin_port, "/console/decisions/stream", cookie_of(nobody))
    try:
        call(gateway, "/prod/c")
        for name, data in empty.events():
            assert name != "decision", data
            if name == "stats":
                break
    finally:
        empty.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _metric(gw: Gateway, name: str, labels: str) -> float:
    _, body = gw.admin("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_viewer_that_never_reads_never_slows_the_gateway(gateway: Gateway) -> None:
    browser = signed_in(gateway)
    # closed however the test ends: a socket left to the collector is reported in a later test
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: it fills fast
        stalled.connect(("127.0.0.1", gateway.admin_port))
        head = f"GET /console/decisions/stream HTTP/1.1\r\nHost: x\r\nCookie: {cookie_of(browser)}\r\n\r\n"
        stalled.sendall(head.encode())
        _never_read(gateway, browser)


def _never_read(gateway: Gateway, browser: Client) -> None:
    # about 1.6 KB per event: 5,000 requests are 8 MB of events never read. One path for all of
    # them, so that the policy memos (bounded, but up to 8,192 keys of this length) do not grow
    # with the requests and only a kept backlog could.
    path = "/prod/" + "x" * 1500 + "/same"
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request("GET", path, headers={"x-apigw-api-id": "livedapi"})
        conn.getresponse().read()
        wait_for(
            lambda: _metric(gateway, "iamgate_console_decisions_dropped_total", "viewer") == 0.0, "metrics"
        )
        statuses = []
        sizes = []
        for _phase in range(2):  # the first fills every ring; the second must not grow anything
            sizes.append(_rss_kib(gateway.proc.pid))
            for _ in range(5000):
                conn.request("GET", path, headers={"x-apigw-api-id": "livedapi"})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
        sizes.append(_rss_kib(gateway.proc.pid))
    finally:
        conn.close()
    assert statuses == [200] * 10000  # every request answered
    wait_for(
        lambda: _metric(gateway, "iamgate_console_decisions_dropped_total", 'reason="viewer"') > 0,
        "the stalled viewer's events to be dropped and counted",
    )
    grown = sizes[2] - sizes[1]
    assert grown < 2 * 1024, f"the gateway grew by {grown} KiB ({sizes})"  # 8 MB more were not kept
    # another viewer still gets the stream, with the drops shown
    watching = Sse(gateway.admin_port, "/console/decisions/stream", cookie_of(browser))
    try:
        for name, data in watching.events():
            if name == "stats":
                assert data["droppedAll"] > 0
                break
    finally:
        watching.close()


def test_the_stream_can_be_turned_off(tmp_path: Path) -> None:
    gw = start_gateway(
        tmp_path, live_config("management: {authentication: sigv4, console: {decisions: false}}")
    )
    try:
        browser = signed_in(gw)
        call(gw, "/prod/secret/x")
        page = browser.get("/console/decisions")
        assert "The decision stream is off" in page.body
        rates = json.loads(wait_for(lambda: _rates_with_requests(browser), "the rates to count"))
        assert rates["totals"]["explicit-deny"] == 1  # counted, not kept
    finally:
        gw.stop()


def _rates_with_requests(browser: Client) -> str | None:
    answer = browser.get("/console/rates")
    body = json.loads(answer.body)
    return answer.body if sum(body["totals"].values()) else None


def test_two_workers_both_in_the_stream_and_the_overview(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, live_config(), workers=2)
    try:
        wait_for(lambda: json.loads(gw.admin("/readyz")[1])["workers_ready"] == 2, "two workers")
        first, second = sorted(child_pids(gw.proc.pid))
        browser = signed_in(gw)
        stream = Sse(gw.admin_port, "/console/decisions/stream?path=/spread/", cookie_of(browser))
        paths: set[str] = set()
        try:
            # each worker in turn is stopped, so the other one accepts every connection
            for stopped, part in ((first, "a"), (second, "b")):
                os.kill(stopped, signal.SIGSTOP)
                try:
                    for i in range(20):
                        path = f"/prod/spread/{part}{i}"
                        assert call(gw, path) == 200
                        paths.add(path)
                finally:
                    os.kill(stopped, signal.SIGCONT)
            seen = stream.decisions_until(lambda s: paths <= {e["path"] for e in s})
        finally:
            stream.close()
        by_pid: dict[str, set[str]] = {}
        for e in seen:
            by_pid.setdefault(e["id"].split("-")[0], set()).add(e["path"][len("/prod/spread/") :][0])
        assert by_pid == {str(second): {"a"}, str(first): {"b"}}
        overview = browser.get("/console/")
        assert f"<td>{first}</td>" in overview.body
        assert f"<td>{second}</td>" in overview.body
        rates = json.loads(browser.get("/console/rates").body)
        assert {w["pid"] for w in rates["workers"]} == {first, second}
        assert rates["totals"]["allow"] >= 40
        assert 'id="rates"' in overview.body
        # an explanation is asked of the worker that kept the request
        one = next(e for e in seen if e["id"].startswith(f"{first}-"))
        assert (
            "Decision: Allow: allowed by #1 (AllowLocal)"
            in browser.get(f"/console/decisions/{one['id']}").body
        )
    finally:
        gw.stop()
