"""docs/cors.md's "management API way", run as written: the page's AWS CLI commands (the real
``aws``) against a real gateway with a store, on an API with /pets (GET answered by MOCK, POST
proxied); then what a browser would see: the preflight's headers, the MOCK answer's origin, and
the origin on the gateway's own errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs.walkthrough import blocks
from tests.gateway.conftest import Gateway, start_gateway, wait_for
from tests.gateway.test_managed import client, gateway_yaml
from tests.gateway.test_managed_validation import mock_api
from tests.management.conftest import ADMIN, AWS_CLI, REGION

ORIGIN = "https://app.example.com"


def recipe() -> str:
    (text,) = [t for kind, _, t in blocks("cors.md", "## The management API way") if kind == "bash"]
    return text


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, gateway_yaml("sqlite:///store.db"))
    yield gw
    gw.stop()


def pets_api(c: Any) -> tuple[str, str]:
    """The page's starting point: /pets with GET (MOCK) and POST (HTTP_PROXY to a closed port,
    so that the gateway's own 5XX can be seen)."""
    api, pets = mock_api(c)
    c.put_method(restApiId=api, resourceId=pets, httpMethod="POST", authorizationType="NONE")
    c.put_integration(
        restApiId=api,
        resourceId=pets,
        httpMethod="POST",
        type="HTTP_PROXY",
        integrationHttpMethod="POST",
        uri="http://127.0.0.1:9/pets",
    )
    return api, pets


def test_the_recipe_makes_what_a_browser_needs(gateway: Gateway) -> None:
    api, pets = pets_api(client(gateway))
    bin_dir = str(Path(AWS_CLI).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "API": api,
        "PETS": pets,
        "AWS_ACCESS_KEY_ID": ADMIN.access_key,
        "AWS_SECRET_ACCESS_KEY": ADMIN.secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    script = "set -e\n" + recipe().replace("127.0.0.1:9901", f"127.0.0.1:{gateway.admin_port}")
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    headers = {"x-apigw-api-id": api, "Origin": ORIGIN}
    # the gateway follows the store: the recipe's deployment is served once it has seen it
    wait_for(
        lambda: gateway.request("OPTIONS", "/prod/pets", headers=headers)[0] == 200, "the recipe's deployment"
    )
    # the preflight
    status, got, body = gateway.request(
        "OPTIONS", "/prod/pets", headers={**headers, "Access-Control-Request-Method": "POST"}
    )
    assert status == 200
    assert got["access-control-allow-origin"] == ORIGIN
    assert got["access-control-allow-methods"] == "GET,OPTIONS,POST"
    assert (
        got["access-control-allow-headers"]
        == "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token"
    )
    # the MOCK method's answer
    status, got, body = gateway.request("GET", "/prod/pets", headers=headers)
    assert (status, got["access-control-allow-origin"]) == (200, ORIGIN)
    # the gateway's own errors: a resource that does not exist (4XX), a backend that is down (5XX)
    status, got, body = gateway.request("GET", "/prod/cats", headers=headers)
    assert (status, got["access-control-allow-origin"]) == (403, ORIGIN)
    assert body == b'{"message":"Missing Authentication Token"}'
    status, got, body = gateway.request("POST", "/prod/pets", body=b"{}", headers=headers)
    assert status >= 500
    assert got["access-control-allow-origin"] == ORIGIN
