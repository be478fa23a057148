"""Real parts for management-API tests: the admin server in process, a real store, real clients.

* :func:`serve_admin` runs :class:`iamgate.admin.AdminServer` with a
  :class:`iamgate.management.app.ManagementApp` over a fresh SQLite store, on a free loopback port,
  on an event loop of its own (a background thread), exactly as the gateway wires them (the lead's
  supervisor); the :class:`AdminHandle` it yields knows the URL, the store and the configuration
  being served (``handle.config`` may be replaced to simulate a reload).
* The configuration has three IAM users of account ``123456789012`` with access keys:
  :data:`ADMIN` (identity policy ``apigateway:*`` on ``*``), :data:`READER` (``apigateway:GET``
  on ``arn:aws:apigateway:us-east-1::/restapis*``) and :data:`NOBODY` (no policy at all).
* :meth:`AdminHandle.boto3` is a real ``boto3.client("apigateway", endpoint_url=...)`` (no
  retries, so an error is seen once); :meth:`AdminHandle.aws` runs the real AWS CLI
  (``awscli``) against it; :meth:`AdminHandle.signed` sends one request signed by botocore's
  ``SigV4Auth`` (bodies no client would send); :meth:`AdminHandle.request` sends raw HTTP.

The ``admin_server`` fixture is the common case (SigV4 on, the keys above).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from iamgate.admin import AdminServer
from iamgate.config.load import parse_config
from iamgate.config.model import GatewayConfig
from iamgate.console import ConsoleApp
from iamgate.management.app import ManagementApp
from iamgate.management.core import GatewayContext
from iamgate.store import Store, open_store
from tests.store.conftest import pg_admin, pg_backend  # noqa: F401 - pg_admin is a fixture

REGION = "us-east-1"
ACCOUNT = "123456789012"
AWS_CLI = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret: str
    arn: str


ADMIN = Credentials(
    "AKIAIAMGATEADMIN0001", "admin/Secret+Key0000000000000000000000000", f"arn:aws:iam::{ACCOUNT}:user/admin"
)
READER = Credentials(
    "AKIAIAMGATEREADER001", "reader/Secret+Key000000000000000000000000", f"arn:aws:iam::{ACCOUNT}:user/reader"
)
NOBODY = Credentials(
    "AKIAIAMGATENOBODY001", "nobody/Secret+Key000000000000000000000000", f"arn:aws:iam::{ACCOUNT}:user/nobody"
)


def config_text(*, authentication: str = "sigv4", extra: str = "", users: str = "", keys: str = "") -> str:
    """A gateway configuration with the three users (plus ``users`` and ``keys``: more YAML list
    items for ``identities.users`` / ``identities.access_keys``, indented by four spaces) and
    ``extra`` top-level YAML."""
    return f"""
gateway: {{region: {REGION}, account_id: "{ACCOUNT}"}}
management: {{authentication: {authentication}}}
identities:
  users:
    - arn: {ADMIN.arn}
      policies:
        - {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "apigateway:*", Resource: "*"}}]}}
    - arn: {READER.arn}
      policies:
        - Version: "2012-10-17"
          Statement:
            - {{Effect: Allow, Action: "apigateway:GET", Resource: "arn:aws:apigateway:{REGION}::/restapis*"}}
    - arn: {NOBODY.arn}
{users}
  access_keys:
    - {{id: {ADMIN.access_key}, secret: "{ADMIN.secret}", owner: {ADMIN.arn}}}
    - {{id: {READER.access_key}, secret: "{READER.secret}", owner: {READER.arn}}}
    - {{id: {NOBODY.access_key}, secret: "{NOBODY.secret}", owner: {NOBODY.arn}}}
{keys}
apis: []
{extra}
"""


def gateway_config(**kwargs: str) -> GatewayConfig:
    config, diags = parse_config(config_text(**kwargs), source="<test>")
    assert config is not None, [d.render() for d in diags]
    return config


def aws_cli(endpoint: str, *args: str, credentials: Credentials = ADMIN) -> subprocess.CompletedProcess[str]:
    """The real AWS CLI: ``aws apigateway ARGS --endpoint-url ENDPOINT``, with ``credentials`` and
    nothing else from the environment (no profile, no config files, no retries)."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [AWS_CLI, "apigateway", *args, "--endpoint-url", endpoint, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@dataclass
class AdminHandle:
    port: int
    store: Store
    config: GatewayConfig
    app: ManagementApp
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def boto3(self, credentials: Credentials = ADMIN) -> Any:
        return boto3.client(
            "apigateway",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def aws_run(self, *args: str, credentials: Credentials = ADMIN) -> subprocess.CompletedProcess[str]:
        """``aws apigateway ARGS --endpoint-url URL`` with ``credentials`` in the environment."""
        return aws_cli(self.url, *args, credentials=credentials)

    def aws(self, *args: str, credentials: Credentials = ADMIN, parse: bool = True) -> Any:
        """Like :meth:`aws_run`, but the parsed JSON output; a failure raises RuntimeError."""
        done = self.aws_run(*args, credentials=credentials)
        if done.returncode != 0:
            raise RuntimeError(f"aws {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return json.loads(done.stdout) if parse and done.stdout.strip() else done.stdout

    def signed(
        self, method: str, target: str, body: bytes = b"", credentials: Credentials = ADMIN
    ) -> tuple[int, dict[str, str], bytes]:
        """One request signed by botocore's SigV4Auth (service apigateway), as boto3 signs."""
        request = AWSRequest(method=method, url=self.url + target, data=body)
        SigV4Auth(BotoCredentials(credentials.access_key, credentials.secret), "apigateway", REGION).add_auth(
            request
        )
        return self.request(method, target, body, dict(request.headers.items()))

    def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One raw HTTP request (unsigned unless the headers sign it)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@contextlib.contextmanager
def serve_admin(
    tmp_path: Path,
    config: GatewayConfig,
    host: str = "127.0.0.1",
    store_url: str | None = None,
    *,
    console: bool = False,
    management: bool = True,
) -> Iterator[AdminHandle]:
    """The admin server with the management API over a fresh store (SQLite in ``tmp_path``
    unless ``store_url`` names another); with ``console``, the web console too (over
    ``handle.config``); without ``management``, the port serves no management API (a gateway
    without a store: ``handle.app`` and ``handle.store`` exist but are not served)."""
    store = open_store(store_url or f"sqlite:///{tmp_path / 'store.db'}")
    handle: AdminHandle

    async def metrics() -> str:
        return "# no metrics in these tests\n"

    app = ManagementApp(store, GatewayContext(config=lambda: handle.config))
    server = AdminServer(
        lambda: (True, {}),
        metrics,
        management=app if management else None,
        console=ConsoleApp(lambda: handle.config) if console else None,
    )
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    sock.listen()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="admin-server", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(sock), loop).result(10)
        handle = AdminHandle(sock.getsockname()[1], store, config, app, host)
        yield handle
    finally:

        async def stop() -> None:
            server.close()
            if server.server is not None:
                await server.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        sock.close()
        store.close()


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[AdminHandle]:
    """The management API with SigV4 on: sign with :data:`ADMIN`, :data:`READER` or :data:`NOBODY`."""
    with serve_admin(tmp_path, gateway_config()) as handle:
        yield handle


@pytest.fixture(params=["sqlite", "postgres"])
def admin_on_each_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdminHandle]:
    """The management API over a SQLite store, then over a PostgreSQL one (the real server,
    skipped with a reason when it is not there, required under CI: tests/store/conftest.py)."""
    if request.param == "sqlite":
        with serve_admin(tmp_path, gateway_config()) as handle:
            yield handle
        return
    for backend in pg_backend(request.getfixturevalue("pg_admin")):
        with serve_admin(tmp_path, gateway_config(), store_url=backend.url) as handle:
            yield handle


def draft_of(admin: AdminHandle, api_id: str) -> dict[str, Any]:
    """The API's draft as the store holds it."""
    with admin.store.transaction() as tx:
        draft = tx.get("restapi", "", api_id)
    assert draft is not None
    return draft


def client_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    """(code, message, HTTP status) of a boto3 ClientError."""
    err = exc.value.response["Error"]
    return err["Code"], err["Message"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]
