"""Request headers that would let a backend read another path or method are not forwarded
(issue 14, item 10), and why a backend call failed can be shown to the caller when asked (13)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.gateway.conftest import IAMGATE, Backend, free_port, simple_config, start_gateway, write_config

OVERRIDES = [
    "X-Original-URL",
    "X-Original-URI",
    "X-Rewrite-URL",
    "X-Rewrite-Path",
    "X-Forwarded-Uri",
    "X-Forwarded-Path",
    "X-Forwarded-Prefix",
    "X-Envoy-Original-Path",
    "X-Original-Path",
    "X-Forwarded-Method",
    "X-Original-Method",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
]


def test_path_and_method_override_headers_are_dropped_by_default(backend: Backend, tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, simple_config(backend.url))
    try:
        headers = dict.fromkeys(OVERRIDES, "/admin") | {"X-Kept": "yes"}
        status, _, _ = gw.request("GET", "/prod/ok", headers=headers)
        assert status == 200
        seen = backend.requests[-1]
        assert [name for name in OVERRIDES if seen.header(name) is not None] == []
        assert seen.header("X-Kept") == "yes"
    finally:
        gw.stop()


def test_the_dropped_list_is_configurable(backend: Backend, tmp_path: Path) -> None:
    config = simple_config(backend.url, gateway={"drop_request_headers": ["X-Internal-Token"]})
    gw = start_gateway(tmp_path, config)
    try:
        headers = {"X-Internal-Token": "secret", "X-Original-URI": "/kept-now"}
        assert gw.request("GET", "/prod/ok", headers=headers)[0] == 200
        seen = backend.requests[-1]
        assert seen.header("X-Internal-Token") is None
        assert seen.header("X-Original-URI") == "/kept-now"  # the list replaces the default one
        assert seen.header("Connection") is None  # hop-by-hop headers are dropped whatever the list
    finally:
        gw.stop()


def test_listing_a_header_the_gateway_replaces_is_a_located_warning(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "g.yaml",
        simple_config("http://127.0.0.1:9", gateway={"drop_request_headers": ["Host", "a b"]}),
    )
    out = subprocess.run(
        [IAMGATE, "config", "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0  # "a b" is not a header name
    assert "/gateway/drop_request_headers/1" in out.stdout + out.stderr
    assert "Host is always replaced by the gateway" in out.stdout + out.stderr


@pytest.mark.parametrize("expose", [False, True])
def test_a_failed_backend_call_says_why_only_when_asked(tmp_path: Path, expose: bool) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gw = start_gateway(tmp_path, simple_config(dead, gateway={"expose_integration_errors": expose}))
    try:
        status, headers, body = gw.request("GET", "/prod/ok")
        assert status == 502
        assert body == b'{"message":"Internal server error"}'  # the body never changes
        reason = headers.get("x-iamgate-integration-error")
        if expose:
            assert reason is not None
            assert reason.startswith("connect: ")
        else:
            assert reason is None
    finally:
        gw.stop()
