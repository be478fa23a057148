"""CORS in a real browser (issue 17, docs/cors.md): headless Chromium loads a page from one origin
(a small HTTP server on 127.0.0.1) whose script ``fetch()``es the real gateway (``iamgate serve``)
on another port, that is another origin. What the page's JavaScript saw is asserted:

* a preflighted POST (``Content-Type: application/json``): the gateway's generated OPTIONS route
  answers the preflight, the POST reaches the backend and the page reads its answer;
* simple GETs: an HTTP_PROXY backend that sends ``Access-Control-Allow-Origin`` (as AWS requires
  of proxy backends) and a MOCK route (which the ``cors`` block gives the header) are readable;
  a backend that does not send it is not;
* a GET the resource policy denies: its 403 body is readable because the generated DEFAULT_4XX
  gateway response carries the header; the same denial on an API with ``gateway_responses:
  false`` is not (``fetch`` rejects with ``TypeError``);
* a policy that also denies OPTIONS breaks the preflight: the POST never leaves the browser.

Needs Debian's ``chromium`` and the ``playwright`` package (the ``test`` extra); ``.ci/run``
installs both. Without them the tests skip naming what is missing, and fail when ``CI`` is set.
Playwright's own browser download is never used: Chromium is launched by path.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.gateway.conftest import Backend, Gateway, Recorded, free_port, reply, start_gateway

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>cors probe</title></head>
<body>
<script>
// What a page's script can learn from a cross-origin fetch: the answer, or the error.
window.probe = async function (url, init) {
  try {
    const response = await fetch(url, init || {});
    const body = await response.text();
    return {status: response.status, body: body};
  } catch (error) {
    return {error: error.name, message: String(error.message)};
  }
};
</script>
</body></html>
"""

POLICY_ALLOW = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "execute-api:Invoke",
    "Resource": "execute-api:/*",
}


def _deny(sid: str, resource: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": resource,
    }


def _unavailable(reason: str) -> None:
    """Missing browser pieces fail under CI and skip elsewhere (as Redis and PostgreSQL do)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests are required)")
    pytest.skip(reason)


def _chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        _unavailable(f"playwright is not importable ({exc}): pip install -e '.[test]'")
    path = shutil.which("chromium")
    if path is None:
        _unavailable("chromium is not installed: apt-get install chromium (as .ci/run does)")
    assert path is not None
    return path


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class World:
    gateway: Gateway
    backend: Backend
    browser: Any  # playwright.sync_api.Browser
    page: Any  # playwright.sync_api.Page, loaded from page_origin
    page_port: int

    @property
    def page_origin(self) -> str:
        return f"http://127.0.0.1:{self.page_port}"

    def url(self, api: str, path: str) -> str:
        return f"{self.gateway.url}/_aws/execute-api/{api}/prod{path}"

    def probe(self, api: str, path: str, init: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the page's script saw when it fetched ``path`` of ``api``."""
        seen: dict[str, Any] = self.page.evaluate(
            "([url, init]) => window.probe(url, init)", [self.url(api, path), init or {}]
        )
        return seen

    def logged(self, method: str, path: str) -> list[dict[str, Any]]:
        """The gateway's access-log lines of ``method path`` (a resource path of either API)."""
        return [
            e
            for e in self.gateway.access_log()
            if e.get("httpMethod") == method and e.get("path", "").endswith(path)
        ]


def _backend_answer(origin: str) -> Any:
    def handler(req: Recorded, sock: Any) -> None:
        path = req.target.split("?", 1)[0]
        json_type = ("Content-Type", "application/json")
        if path == "/noheader":  # a proxy backend that leaves CORS to nobody
            reply(sock, 200, b'{"secret":"unread"}', [json_type])
        else:  # AWS: with HTTP_PROXY, the backend sends Access-Control-Allow-Origin itself
            answer = json.dumps({"method": req.method, "path": path, "received": req.body.decode()}).encode()
            status, reason = (201, "Created") if req.method == "POST" else (200, "OK")
            reply(sock, status, answer, [json_type, ("Access-Control-Allow-Origin", origin)], reason)

    return handler


def _config(backend: str, origin: str) -> dict[str, Any]:
    def proxy(path: str, method: str) -> dict[str, Any]:
        return {"path": path, "method": method, "integration": {"type": "HTTP_PROXY", "uri": backend + path}}

    mock_status = {
        "path": "/status",
        "method": "GET",
        "integration": {
            "type": "MOCK",
            "headers": {"Content-Type": "application/json"},
            "body": '{"up":true}',
        },
    }
    return {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
        "apis": [
            {
                "id": "corsapi",
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        POLICY_ALLOW,
                        _deny("NoDeniedGet", "execute-api:/*/GET/denied"),
                        _deny("LockedForEveryMethod", "execute-api:/*/*/locked"),
                    ],
                },
                "cors": {"allow_origin": origin},
                "stages": {"prod": {}},
                "routes": [
                    proxy("/items", "GET"),
                    proxy("/items", "POST"),
                    mock_status,
                    proxy("/noheader", "GET"),
                    proxy("/denied", "GET"),
                    proxy("/locked", "POST"),
                ],
            },
            {
                "id": "plainapi",
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [POLICY_ALLOW, _deny("NoDeniedGet", "execute-api:/*/GET/denied")],
                },
                "cors": {"allow_origin": origin, "gateway_responses": False},
                "stages": {"prod": {}},
                "routes": [proxy("/denied", "GET")],
            },
        ],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    chromium = _chromium_path()
    from playwright.sync_api import sync_playwright

    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    server = ThreadingHTTPServer(("127.0.0.1", page_port), _PageHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    backend = Backend().start()
    backend.handler = _backend_answer(origin)
    gateway = None
    try:
        gateway = start_gateway(tmp_path_factory.mktemp("cors"), _config(backend.url, origin))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
            try:
                page = browser.new_page()
                page.goto(origin + "/")
                yield World(gateway, backend, browser, page, page_port)
            finally:
                browser.close()
    finally:
        if gateway is not None:
            gateway.stop()
        backend.stop()
        server.shutdown()
        server.server_close()


def test_the_page_and_the_gateway_are_two_origins(world: World) -> None:
    assert world.page.evaluate("location.origin") == world.page_origin
    assert world.gateway.url != world.page_origin


def test_a_preflighted_post_is_allowed_and_its_answer_read(world: World) -> None:
    before = len(world.backend.requests)
    seen = world.probe(
        "corsapi",
        "/items",
        {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": '{"name":"rex"}'},
    )
    assert seen == {
        "status": 201,
        "body": json.dumps({"method": "POST", "path": "/items", "received": '{"name":"rex"}'}),
    }
    # the gateway answered the preflight itself (the generated MOCK OPTIONS route): the backend
    # received the POST only
    assert [r.method for r in world.backend.requests[before:]] == ["POST"]
    preflights = world.logged("OPTIONS", "/items")
    assert preflights
    assert preflights[-1]["status"] == 200
    assert preflights[-1]["resourcePath"] == "/items"


def test_simple_gets_are_readable_when_the_answer_carries_the_origin(world: World) -> None:
    proxied = world.probe("corsapi", "/items")
    assert proxied["status"] == 200
    assert json.loads(proxied["body"]) == {"method": "GET", "path": "/items", "received": ""}
    mocked = world.probe("corsapi", "/status")
    assert mocked == {"status": 200, "body": '{"up":true}'}


def test_a_proxy_backend_that_does_not_send_the_header_cannot_be_read(world: World) -> None:
    seen = world.probe("corsapi", "/noheader")
    assert seen["error"] == "TypeError"
    assert "body" not in seen
    assert world.logged("GET", "/noheader")[-1]["status"] == 200  # answered, but not to the page


def test_a_denial_is_readable_through_the_default_4xx_gateway_response(world: World) -> None:
    status, headers, body = world.gateway.request("GET", "/_aws/execute-api/corsapi/prod/denied")
    assert status == 403
    assert headers["access-control-allow-origin"] == world.page_origin
    seen = world.probe("corsapi", "/denied")
    assert seen == {"status": 403, "body": body.decode()}
    assert "explicit deny" in json.loads(seen["body"])["Message"]


def test_a_denial_without_the_cors_gateway_responses_cannot_be_read(world: World) -> None:
    status, headers, _ = world.gateway.request("GET", "/_aws/execute-api/plainapi/prod/denied")
    assert status == 403
    assert "access-control-allow-origin" not in headers
    seen = world.probe("plainapi", "/denied")
    assert seen["error"] == "TypeError"
    assert "status" not in seen


def test_a_policy_that_denies_options_breaks_the_preflight(world: World) -> None:
    before = len(world.backend.requests)
    seen = world.probe(
        "corsapi",
        "/locked",
        {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": "{}"},
    )
    assert seen["error"] == "TypeError"
    assert world.backend.requests[before:] == []  # the POST never left the browser
    assert world.logged("OPTIONS", "/locked")[-1]["status"] == 403
    assert world.logged("POST", "/locked") == []


def test_another_origin_cannot_read_the_answers(world: World) -> None:
    context = world.browser.new_context()
    try:
        other = context.new_page()
        other.goto(f"http://localhost:{world.page_port}/")  # the same page, from another origin
        assert other.evaluate("location.origin") != world.page_origin
        seen = other.evaluate("(url) => window.probe(url)", world.url("corsapi", "/status"))
        assert seen["error"] == "TypeError"
    finally:
        context.close()
