"""The console in a real browser (issue 18's foundation, docs/console.md): headless Chromium
against the real gateway (``iamgate serve``, YAML only, so the console is read-only) signs in
with an access key, sees the overview with the configured API, signs out, and is then sent back
to the sign-in form by the overview's address. Skips (or fails under CI) as test_cors.py does
when the browser pieces are missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.test_cors import _chromium_path
from tests.gateway.conftest import start_gateway

KEY, SECRET = "AKIACONSOLEBROWSER01", "browser/Secret+Key0000000000000000000000"
ARN = "arn:aws:iam::111122223333:user/viewer"


def _config() -> dict[str, Any]:
    return {
        "gateway": {"region": "us-east-1", "account_id": "111122223333"},
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
                "id": "browserapi",
                "name": "Browser <b>pets</b>",
                "stages": {"prod": {}},
                "routes": [
                    {"path": "/ping", "method": "GET", "integration": {"type": "MOCK", "body": "pong"}}
                ],
            }
        ],
    }


def test_sign_in_see_the_overview_sign_out(tmp_path: Path) -> None:
    chromium = _chromium_path()
    from playwright.sync_api import sync_playwright

    gateway = start_gateway(tmp_path, _config())
    try:
        console = f"http://127.0.0.1:{gateway.admin_port}/console/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
            try:
                page = browser.new_page()
                page.goto(console)
                assert page.url.endswith("/console/signin")
                page.fill("#login", KEY)
                page.fill("#secret", SECRET)
                with page.expect_navigation():
                    page.click("button[type=submit]")
                assert page.url == console, page.content()
                assert page.locator("h1").inner_text() == "Overview"
                api = page.locator("#api-browserapi")
                assert api.locator(".name").inner_text() == "Browser <b>pets</b>"  # shown as text
                assert "prod" in api.inner_text()
                assert "Read-only" in page.locator(".notice").inner_text()
                assert ARN in page.locator(".who").inner_text()
                cookies = page.context.cookies()
                session = next(c for c in cookies if c["name"] == "iamgate_console")
                assert session["httpOnly"]
                assert session["sameSite"] == "Strict"
                with page.expect_navigation():
                    page.click("text=Sign out")
                assert page.url.endswith("/console/signin")
                page.goto(console)
                assert page.url.endswith("/console/signin")
                assert page.locator("#api-browserapi").count() == 0
            finally:
                browser.close()
    finally:
        gateway.stop()
