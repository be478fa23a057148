"""Property: a signed request is served only as the resource its signature covers.

The oracle is written from the SigV4 rules, not from the gateway's code: a signature covers the
wire path with its dot and empty segments removed *before* decoding (what signers and AWS put in
the canonical URI); decoding each remaining segment gives the resource that was signed. For any
raw path, the authenticate stage either refuses the request before checking its signature, or the
resource the gateway serves (stage and canonical segments) is exactly that signed resource.
"""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.config.load import parse_config
from iamgate.config.snapshot import Snapshot, build_snapshot
from iamgate.pipeline.auth_stages import _signed_elsewhere
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.stages import route


def _snapshot() -> Snapshot:
    config, diagnostics = parse_config(
        "gateway: {region: us-east-1, account_id: '123456789012'}\n"
        "apis: [{id: a1b2c3d4e5, stages: {prod: {}, dev: {}}, routes: [{path: '/{proxy+}', method: ANY,"
        " authorization: AWS_IAM, integration: {type: MOCK, status: 200}}]}]\n"
    )
    assert config is not None, diagnostics
    return build_snapshot(config)


SNAPSHOT = _snapshot()
PIECES = ["prod", "dev", "a", "b", "c", ".", "..", "", "%2e", "%2E", ".%2e", "%2e.", "%2e%2e", "%61", "x%20y"]


def _exchange(raw: bytes) -> Exchange:
    hmap = {b"host": b"127.0.0.1"}
    return Exchange(
        SNAPSHOT,
        "GET",
        raw,
        b"",
        [(b"host", b"Host: 127.0.0.1\r\n")],
        hmap,
        "HTTP/1.1",
        True,
        "1.2.3.4",
        False,
    )


def _signed_resource(raw: str) -> list[str]:
    kept: list[str] = []
    for segment in raw.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    return [unquote(segment) for segment in kept]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8))
def test_a_signed_request_is_refused_or_served_as_signed(pieces: list[str]) -> None:
    raw = "/" + "/".join(pieces)
    ex = _exchange(raw.encode())
    if route(ex) is not None:
        return  # not routed at all: nothing is served
    if _signed_elsewhere(ex):
        return  # refused before its signature is even checked
    assert ex.stage is not None
    served = [ex.stage.name, *ex.segments]
    assert served == _signed_resource(raw), f"{raw} is served as {served}"


def test_the_property_has_teeth() -> None:
    # the finding itself: covered as /prod/a/b/c, routed as /prod/c
    ex = _exchange(b"/prod/a/b/%2e%2e/../c")
    assert route(ex) is None
    assert ex.segments == ("c",)
    assert _signed_resource("/prod/a/b/%2e%2e/../c") == ["prod", "a", "b", "c"]
    assert _signed_elsewhere(ex)
