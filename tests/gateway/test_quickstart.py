"""The README's first command: examples/quickstart.yaml answers as the README says."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gateway.conftest import ROOT_DIR, loaded_cryptography, start_gateway


def test_quickstart_answers_as_the_readme_says(tmp_path: Path) -> None:
    text = (ROOT_DIR / "examples" / "quickstart.yaml").read_text()
    gw = start_gateway(tmp_path, text)
    try:
        status, _, body = gw.request("GET", "/prod/pets")
        assert status == 200
        assert json.loads(body)[0]["name"] == "Rex"
        status, headers, body = gw.request("GET", "/prod/admin")
        assert status == 403
        assert headers["x-amzn-errortype"] == "AccessDeniedException"
        assert json.loads(body)["Message"].endswith("a1b2c3d4e5/prod/GET/admin with an explicit deny")
        status, _, body = gw.request("GET", "/prod/nothing")
        assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
        status, metrics = gw.admin("/metrics")
        assert status == 200
        assert (
            b'iamgate_requests_total{api="a1b2c3d4e5",stage="prod",status="403",decision="ExplicitDeny"} 1'
            in metrics
        )
        # no TLS and no JWT authorizer: PyJWT and cryptography are never loaded
        assert not loaded_cryptography(gw.proc.pid)
        readme = (ROOT_DIR / "README.md").read_text()
        assert "iamgate serve --config examples/quickstart.yaml" in readme.splitlines()[7]
    finally:
        gw.stop()
