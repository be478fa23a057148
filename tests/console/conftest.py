"""The console over a real admin server (tests/management/conftest.py's ``serve_admin``) and a
small cookie-keeping HTTP client that behaves as a browser does for these pages: it keeps the
cookies the console sets (for ``/console``), sends them back, and reads the CSRF tokens from the
forms it was given."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.management.conftest import ADMIN, AdminHandle, Credentials, gateway_config, serve_admin
from tests.store.conftest import pg_admin  # noqa: F401 - a fixture

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]  # the raw Set-Cookie values
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


@dataclass
class Client:
    """One browser: its cookies and the last CSRF token it saw in a page."""

    host: str
    port: int
    jar: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        sent = dict(headers or {})
        if self.jar and "Cookie" not in sent:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
            cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
            answer = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, cookies, raw.decode())
        finally:
            conn.close()
        for cookie in cookies:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        found = _CSRF.search(answer.body)
        if found is not None:
            self.csrf = found.group(1)
        return answer

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        body = urlencode(form).encode()
        sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, body, sent)

    def sign_in(self, credentials: Credentials = ADMIN) -> Answer:
        self.get("/console/signin")
        return self.post(
            "/console/signin",
            {
                "csrf": self.csrf,
                "login": credentials.access_key,
                "secret": credentials.secret,
            },
        )


def client_of(handle: AdminHandle) -> Client:
    return Client(handle.host, handle.port)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[AdminHandle]:
    """The admin port with the management API over SQLite and the console."""
    with serve_admin(tmp_path, gateway_config(), console=True) as handle:
        yield handle
