"""Live decisions in a real browser (docs/console.md, "Live decisions"): headless Chromium signs
in, opens the live decisions, a real ``curl`` to the gateway that the resource policy denies
appears in the stream within 2 s (waited for, not slept), a click opens its explanation, which
names the denying statement; a path holding ``<script>`` is shown as text; the overview's
requests-per-second chart (uPlot) renders and fills once requests arrive. Skips (or fails under
CI) as test_cors.py does when the browser pieces are missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_cors import _chromium_path
from tests.gateway.conftest import start_gateway
from tests.waiting import wait_for

KEY, SECRET = "AKIALIVEBROWSER00001", "browser/Live+Secret00000000000000000000"
ACCOUNT = "111122223333"
ARN = f"arn:aws:iam::{ACCOUNT}:user/watcher"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyAdminPaths",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:liveapi/prod/*/admin/*",
        },
        {
            "Sid": "AllowEveryone",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:liveapi/*",
        },
    ],
}


def _config() -> dict[str, Any]:
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "identities": {
            "users": [
                {
                    "arn": ARN,
                    "policies": [
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "apigateway:GET", "Resource": "*"}],
                        }
                    ],
                }
            ],
            "access_keys": [{"id": KEY, "secret": SECRET, "owner": ARN}],
        },
        "apis": [
            {
                "id": "liveapi",
                "stages": {"prod": {}},
                "policy": json.dumps(POLICY),
                "routes": [
                    {"path": "/{proxy+}", "method": "ANY", "integration": {"type": "MOCK", "body": "ok"}}
                ],
            }
        ],
    }


def _curl(url: str) -> int:
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return int(done.stdout)


def test_a_curl_denial_streams_and_explains_itself(tmp_path: Path) -> None:
    chromium = _chromium_path()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    from playwright.sync_api import expect, sync_playwright

    gateway = start_gateway(tmp_path, _config())
    try:
        console = f"http://127.0.0.1:{gateway.admin_port}/console/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(console)
                page.fill("#login", KEY)
                page.fill("#secret", SECRET)
                with page.expect_navigation():
                    page.click("button[type=submit]")
                page.click("text=Live decisions")
                page.wait_for_url("**/console/decisions")
                expect(page.locator("#live-state")).to_have_text("Live", timeout=5000)

                assert _curl(f"{gateway.url}/prod/admin/users") == 403
                row = page.locator("#decisions tbody tr", has_text="/prod/admin/users")
                expect(row).to_have_count(1, timeout=2000)  # in the stream within 2 s
                assert "Explicit deny" in row.inner_text()
                assert "403" in row.inner_text()

                hostile = "/prod/%3Cscript%3Ewindow.pwned=1%3C/script%3E"
                assert _curl(f"{gateway.url}{hostile}") == 200
                shown = page.locator("#decisions tbody tr", has_text="script")
                expect(shown).to_have_count(1, timeout=2000)
                assert page.evaluate("window.pwned") is None  # text, never markup
                assert page.locator("#decisions tbody script").count() == 0

                with page.expect_navigation():
                    row.locator("a").click()
                assert "/console/decisions/" in page.url
                deciding = page.locator(".statement.deciding")
                expect(deciding).to_have_count(1)
                assert "DenyAdminPaths" in deciding.locator(".sid").inner_text()
                assert (
                    "Decision: ExplicitDeny: denied by #0 (DenyAdminPaths)"
                    in page.locator("pre.trace").inner_text()
                )

                page.goto(console)
                chart = page.locator("#rates canvas")
                expect(chart.first).to_be_visible(timeout=5000)
                filled = (
                    "() => { const p = document.getElementById('rates').iamgatePlot;"
                    " return !!p && p.data[0].length >= 1 && p.data[1].some(v => v > 0); }"
                )

                def chart_filled() -> bool:  # requests keep coming until a second shows them
                    assert _curl(f"{gateway.url}/prod/open") == 200
                    return bool(page.evaluate(filled))

                wait_for(chart_filled, "the chart to show the requests per second", timeout=15)
                assert page.locator("#workers tbody tr").count() == 1
                assert not [e for e in errors if "Content Security Policy" in e], errors
            finally:
                browser.close()
    finally:
        gateway.stop()
