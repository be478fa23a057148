"""Real parts for the authentication tests: a Lambda authorizer behind HTTP, a JWKS endpoint,
botocore signing, and a client that sends exactly the bytes it was given.

* :class:`AuthorizerEndpoint` is the "few lines of HTTP" in front of a Lambda handler that the
  docs describe: it receives the event JSON by POST, runs
  :func:`tests.gateway.authorizers.lambda_handler` and answers its output; an exception becomes
  HTTP 500 with the Lambda runtime's error shape (``{"errorMessage": ...}``). It records every
  event, so tests count invocations.
* :class:`JsonServer` serves JSON documents (a JWKS) and counts the fetches of each path.
* :func:`sign` / :func:`presign` sign with botocore's own ``SigV4Auth`` / ``SigV4QueryAuth``;
  :func:`send` writes the signed request with http.client, path and query untouched.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.gateway import authorizers

REGION = "us-east-1"


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _AuthorizerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner: AuthorizerEndpoint = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        event = json.loads(self.rfile.read(length))
        owner.record(event, self.headers.get("Content-Type"))
        token = authorizers.token_of(event)
        if token.startswith("http500:"):
            self._answer(500, b"the function crashed", "text/plain")
            return
        if token.startswith("nonjson:"):
            self._answer(200, b"this is not JSON", "text/plain")
            return
        try:
            output = authorizers.lambda_handler(event, None)
        except Exception as exc:
            body = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
            self._answer(500, body)
            return
        self._answer(200, json.dumps(output).encode())

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class AuthorizerEndpoint(_Server):
    """A Lambda authorizer served over HTTP on loopback; ``events`` holds what it received."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.content_types: list[str | None] = []
        self._lock = threading.Lock()
        super().__init__(_AuthorizerHandler)

    def record(self, event: dict[str, Any], content_type: str | None) -> None:
        with self._lock:
            self.events.append(event)
            self.content_types.append(content_type)

    def calls(self, token: str) -> int:
        with self._lock:
            return sum(1 for e in self.events if authorizers.token_of(e) == token)

    def last(self, token: str) -> dict[str, Any]:
        with self._lock:
            return [e for e in self.events if authorizers.token_of(e) == token][-1]


class _JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner: JsonServer = self.server.owner  # type: ignore[attr-defined]
        doc = owner.documents.get(self.path)
        owner.fetches[self.path] = owner.fetches.get(self.path, 0) + 1
        body = json.dumps(doc).encode() if doc is not None else b"not found"
        self.send_response(200 if doc is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class JsonServer(_Server):
    """Serves ``documents[path]`` as JSON; ``fetches[path]`` counts the GETs."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.fetches: dict[str, int] = {}
        super().__init__(_JsonHandler)


# --- SigV4 with botocore --------------------------------------------------------------------------


@dataclass
class Keys:
    """One set of credentials as boto3 holds them (a session token for role sessions)."""

    access_key: str
    secret: str
    token: str | None = None

    def credentials(self) -> Credentials:
        return Credentials(self.access_key, self.secret, self.token)


@dataclass
class Signed:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def _request(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    params: dict[str, str] | None,
    unsigned_payload: bool,
) -> AWSRequest:
    all_headers = dict(headers or {})
    if unsigned_payload:
        all_headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    return AWSRequest(method, url, data=body, headers=all_headers, params=params)


def sign(
    keys: Keys,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    region: str = REGION,
    service: str = "execute-api",
    unsigned_payload: bool = False,
) -> Signed:
    """Sign with botocore's ``SigV4Auth`` (the ``Authorization`` header form)."""
    request = _request(method, url, body, headers, params, unsigned_payload)
    SigV4Auth(keys.credentials(), service, region).add_auth(request)
    prepared = request.prepare()
    return Signed(method, prepared.url, dict(prepared.headers.items()), body or b"")


def presign(
    keys: Keys,
    method: str,
    url: str,
    *,
    expires: int = 300,
    region: str = REGION,
    service: str = "execute-api",
) -> Signed:
    """Sign with botocore's ``SigV4QueryAuth`` (a presigned URL)."""
    request = AWSRequest(method, url)
    SigV4QueryAuth(keys.credentials(), service, region, expires=expires).add_auth(request)
    prepared = request.prepare()
    return Signed(method, prepared.url, dict(prepared.headers.items()), b"")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")

    @property
    def request_id(self) -> str:
        return self.headers["x-amzn-requestid"]


def send(
    port: int,
    method: str,
    url_or_path: str,
    *,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> Response:
    """Send to the gateway on ``port`` exactly this path and query (no re-encoding) and these
    headers (a list keeps repeated names); a ``Host`` given in the headers is sent as it is."""
    parts = urlsplit(url_or_path)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        has_host = any(k.lower() == "host" for k, _ in pairs)
        conn.putrequest(method, target, skip_host=has_host, skip_accept_encoding=True)
        has_length = any(k.lower() == "content-length" for k, _ in pairs)
        for k, v in pairs:
            conn.putheader(k, v)
        if body is not None and not has_length:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def send_signed(port: int, signed: Signed, **changes: Any) -> Response:
    """Send a signed request, optionally changed on the way (``url``, ``body``, ``headers``)."""
    return send(
        port,
        signed.method,
        changes.get("url", signed.url),
        headers=changes.get("headers", signed.headers),
        body=changes.get("body", signed.body if signed.body or signed.method in ("POST", "PUT") else None),
    )
