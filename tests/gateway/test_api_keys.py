"""API keys end to end (issue 4, "API keys"; docs/authentication.md).

``api_key_required: true`` routes take the key from the ``x-api-key`` header (any case); a
missing, unknown or disabled key is 403 ``{"message":"Forbidden"}`` (ForbiddenException) and
never reaches the backend; a valid one is allowed and shows in the access log as
``identity.apiKey`` / ``identity.apiKeyId`` (and to the integration as ``context.identity.apiKey``).
With ``api_key_source: AUTHORIZER`` the key is the Lambda authorizer's ``usageIdentifierKey``
and the header is ignored. The key is checked after the authorizer. Key values come from the
configuration, the environment (``value_env``) or a file (``value_file``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.auth_support import Response, send
from tests.gateway.conftest import ROOT_DIR, Backend, Gateway, start_gateway, wait_for_log

HEADER_API = "a1b2c3d4e5"
AUTHORIZER_API = "authkeys01"
GOOD = "good-key-0123456789abcdefXYZ"  # from the environment
FILED = "filed_key_9876543210zyxwvuts"  # from a file
OFF = "disabled-key-00000000000000"
UNKNOWN = "unknown-key-0000000000000000"
SEEN = {"integration.request.header.X-Api-Key-Seen": "context.identity.apiKey"}


def _route(path: str, backend_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "method": "GET",
        "integration": {"type": "HTTP_PROXY", "uri": f"{backend_url}/x", "request_parameters": SEEN},
        **extra,
    }


def config(backend_url: str) -> dict[str, Any]:
    authorizer = {"name": "lambda", "type": "TOKEN", "function": "tests.gateway.authorizers:token_handler"}
    custom = {"authorization": "CUSTOM", "authorizer": "lambda"}
    return {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
        "api_keys": [
            {"id": "k-good", "name": "good", "value_env": "TEST_GOOD_API_KEY"},
            {"id": "k-filed", "value_file": "filed.key"},
            {"id": "k-off", "value": OFF, "enabled": False},
        ],
        "apis": [
            {
                "id": HEADER_API,
                "stages": {"prod": {}},
                "authorizers": [authorizer],
                "routes": [
                    _route("/keyed", backend_url, api_key_required=True),
                    _route("/open", backend_url),
                    _route("/keyed-custom", backend_url, api_key_required=True, **custom),
                ],
            },
            {
                "id": AUTHORIZER_API,
                "api_key_source": "AUTHORIZER",
                "stages": {"prod": {}},
                "authorizers": [authorizer],
                "routes": [_route("/keyed", backend_url, api_key_required=True, **custom)],
            },
        ],
    }


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Backend]]:
    tmp: Path = tmp_path_factory.mktemp("apikeys")
    (tmp / "filed.key").write_text(FILED + "\n")
    backend = Backend().start()
    env = {"PYTHONPATH": str(ROOT_DIR), "TEST_GOOD_API_KEY": GOOD}
    try:
        gw = start_gateway(tmp, config(backend.url), env=env)
    except Exception:
        backend.stop()
        raise
    yield gw, backend
    gw.stop()
    backend.stop()


def call(gw: Gateway, api: str, path: str, headers: dict[str, str] | None = None) -> Response:
    return send(gw.port, "GET", path, headers={"x-apigw-api-id": api, **(headers or {})})


def forbidden(response: Response) -> None:
    assert response.status == 403, response.body
    assert response.error_type == "ForbiddenException"
    assert response.json() == {"message": "Forbidden"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": ""}, {"x-api-key": UNKNOWN}, {"x-api-key": OFF}, {"x-api-key": GOOD.upper()}],
    ids=["missing", "empty", "unknown", "disabled", "wrong-case-value"],
)
def test_key_required_refuses_missing_unknown_or_disabled_keys(
    parts: tuple[Gateway, Backend], headers: dict[str, str]
) -> None:
    gw, backend = parts
    before = len(backend.requests)
    response = call(gw, HEADER_API, "/prod/keyed", headers)
    forbidden(response)
    assert len(backend.requests) == before
    entry = wait_for_log(gw, response.request_id)
    assert entry["error.responseType"] == "INVALID_API_KEY"
    assert "identity.apiKey" not in entry


@pytest.mark.parametrize(
    ("name", "value", "key_id"),
    [("x-api-key", GOOD, "k-good"), ("X-API-Key", GOOD, "k-good"), ("X-Api-Key", FILED, "k-filed")],
    ids=["env", "header-case", "file"],
)
def test_valid_key_is_allowed_and_logged(
    parts: tuple[Gateway, Backend], name: str, value: str, key_id: str
) -> None:
    gw, backend = parts
    before = len(backend.requests)
    response = call(gw, HEADER_API, "/prod/keyed", {name: value})
    assert response.status == 200, response.body
    assert len(backend.requests) == before + 1
    assert backend.requests[-1].header("X-Api-Key-Seen") == value
    entry = wait_for_log(gw, response.request_id)
    assert entry["identity.apiKey"] == value
    assert entry["identity.apiKeyId"] == key_id


def test_route_without_key_requirement_ignores_keys(parts: tuple[Gateway, Backend]) -> None:
    gw, backend = parts
    for headers in ({}, {"x-api-key": UNKNOWN}):
        response = call(gw, HEADER_API, "/prod/open", headers)
        assert response.status == 200
        assert backend.requests[-1].header("X-Api-Key-Seen") is None
        assert "identity.apiKey" not in wait_for_log(gw, response.request_id)


def test_key_is_checked_after_the_authorizer(parts: tuple[Gateway, Backend]) -> None:
    gw, _ = parts
    response = call(gw, HEADER_API, "/prod/keyed-custom", {"Authorization": "unauthorized:x"})
    assert response.status == 401  # the authorizer answers first, even without a key
    forbidden(call(gw, HEADER_API, "/prod/keyed-custom", {"Authorization": "allow:x"}))
    response = call(gw, HEADER_API, "/prod/keyed-custom", {"Authorization": "allow:x", "x-api-key": GOOD})
    assert response.status == 200


@pytest.mark.parametrize(
    ("token", "header", "allowed"),
    [
        (f"key:{GOOD}", None, True),
        (f"key:{FILED}", UNKNOWN, True),  # the header is not where the key comes from
        (f"key:{UNKNOWN}", None, False),
        (f"key:{OFF}", None, False),
        ("allow:no-usage-key", GOOD, False),  # no usageIdentifierKey: a valid header does not help
    ],
    ids=["valid", "header-ignored", "unknown", "disabled", "none-from-authorizer"],
)
def test_key_from_the_authorizer(
    parts: tuple[Gateway, Backend], token: str, header: str | None, allowed: bool
) -> None:
    gw, backend = parts
    headers = {"Authorization": token, **({"x-api-key": header} if header else {})}
    before = len(backend.requests)
    response = call(gw, AUTHORIZER_API, "/prod/keyed", headers)
    if not allowed:
        forbidden(response)
        assert len(backend.requests) == before
        return
    assert response.status == 200, response.body
    value = token.split(":", 1)[1]
    assert backend.requests[-1].header("X-Api-Key-Seen") == value
    entry = wait_for_log(gw, response.request_id)
    assert entry["identity.apiKey"] == value
    assert entry["identity.apiKeyId"] == ("k-good" if value == GOOD else "k-filed")
    assert entry["authorizer.principalId"] == f"user-{value}"
