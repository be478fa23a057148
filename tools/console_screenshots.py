"""Refresh the console's screenshots in docs/images/ (docs/console.md shows them).

    python tools/console_screenshots.py [--chromium /usr/bin/chromium] [--out docs/images]

Starts the real gateway (``iamgate serve``) on free loopback ports with a SQLite store in a
temporary directory, builds a small demo API through the management API (boto3), sends it a few
requests (one of them denied by its resource policy), signs in to the console in headless
Chromium (Playwright, the browser by path as the tests do) and saves one PNG per screen. Nothing
outside the temporary directory and the output directory is touched; the gateway is stopped
at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import yaml
from botocore.config import Config
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
REGION, ACCOUNT = "us-east-1", "123456789012"
KEY, SECRET = "AKIASCREENSHOTS00001", "screenshots/Secret+Key0000000000000000000"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"
API_KEY = "screenshotsapikeyvalue0123456789abc"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Everyone",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
        },
        {
            "Sid": "OfficeOnlyForAdmin",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*/*/admin",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    ],
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _wait(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _get(port, "/healthz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the gateway's admin port {port} did not become ready")


def _seed(admin: int, port: int) -> str:
    c = boto3.client(
        "apigateway",
        endpoint_url=f"http://127.0.0.1:{admin}",
        region_name=REGION,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}),
    )
    api = c.create_rest_api(
        name="petstore", description="the demo API", endpointConfiguration={"types": ["REGIONAL"]}
    )["id"]
    root = next(r["id"] for r in c.get_resources(restApiId=api)["items"] if r["path"] == "/")
    mock = {"application/json": '{"statusCode": 200}'}
    for part, verb, key_required in (("pets", "GET", True), ("admin", "GET", False)):
        res = c.create_resource(restApiId=api, parentId=root, pathPart=part)["id"]
        c.put_method(
            restApiId=api,
            resourceId=res,
            httpMethod=verb,
            authorizationType="NONE",
            apiKeyRequired=key_required,
        )
        c.put_integration(restApiId=api, resourceId=res, httpMethod=verb, type="MOCK", requestTemplates=mock)
        c.put_method_response(restApiId=api, resourceId=res, httpMethod=verb, statusCode="200")
        c.put_integration_response(
            restApiId=api,
            resourceId=res,
            httpMethod=verb,
            statusCode="200",
            responseTemplates={"application/json": "{}"},
        )
    c.update_rest_api(
        restApiId=api, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(POLICY)}]
    )
    c.create_deployment(restApiId=api, stageName="prod", description="first")
    key = c.create_api_key(name="mobile app", value=API_KEY, enabled=True)
    plan = c.create_usage_plan(
        name="gold",
        apiStages=[{"apiId": api, "stage": "prod"}],
        throttle={"rateLimit": 50, "burstLimit": 100},
        quota={"limit": 10000, "period": "DAY"},
    )
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    time.sleep(1.0)  # the gateway follows the store (SQLite: polled every 200 ms)
    for path, source in (
        ("/prod/pets", "203.0.113.5"),
        ("/prod/pets", "203.0.113.5"),
        ("/prod/admin", "203.0.113.7"),
    ):
        _get(port, path, {"x-apigw-api-id": api, "x-api-key": API_KEY, "x-forwarded-for": source})
    # a change in the draft, so that the diff has something to show
    res = c.create_resource(restApiId=api, parentId=root, pathPart="toys")["id"]
    c.put_method(restApiId=api, resourceId=res, httpMethod="GET", authorizationType="NONE")
    c.put_integration(restApiId=api, resourceId=res, httpMethod="GET", type="MOCK", requestTemplates=mock)
    return str(api)


def _shoot(chromium: str, admin: int, api: str, out: Path) -> list[Path]:
    base = f"http://127.0.0.1:{admin}/console"
    screens: list[tuple[str, str]] = [
        ("console-overview.png", "/"),
        ("console-api.png", f"/apis/{api}"),
        ("console-diff.png", f"/apis/{api}/diff?stage=prod"),
        ("console-policy-editor.png", f"/apis/{api}/policy"),
        (
            "console-playground.png",
            f"/playground?api={api}&target=prod&method=GET&path=/admin&source_ip=203.0.113.7",
        ),
        ("console-usage.png", "/usage"),
        ("console-decisions.png", "/decisions?decision=explicit-deny"),
    ]
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/signin")
            page.fill("#login", KEY)
            page.fill("#secret", SECRET)
            with page.expect_navigation():
                page.click("button[type=submit]")
            for name, path in screens:
                answer = page.goto(base + path)
                if answer is None or answer.status >= 400:
                    print(f"skipped {name}: {path} answered {answer.status if answer else 'nothing'}")
                    continue
                if path.startswith("/decisions"):  # a stream: wait for its rows, never idle
                    page.wait_for_selector("#decisions tbody tr", timeout=5000)
                else:
                    page.wait_for_load_state("networkidle")
                page.wait_for_timeout(600)  # htmx's check and the charts draw after the load
                target = out / name
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
                if name == "console-decisions.png":  # and the denied request's explanation
                    with page.expect_navigation():
                        page.click("#decisions tbody tr a[href*='/decisions/'] >> nth=0")
                    page.wait_for_load_state("networkidle")
                    target = out / "console-explanation.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
        finally:
            browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    iamgate = str(Path(sys.executable).parent / "iamgate")
    port, admin = _port(), _port()
    with tempfile.TemporaryDirectory() as tmp:
        allow_all = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "apigateway:*", "Resource": "*"}],
        }
        config = {
            "gateway": {"region": REGION, "account_id": ACCOUNT, "trusted_proxies": ["127.0.0.0/8"]},
            "store": f"sqlite:///{tmp}/store.db",
            "identities": {
                "users": [{"arn": ADMIN_ARN, "policies": [allow_all]}],
                "access_keys": [{"id": KEY, "secret": SECRET, "owner": ADMIN_ARN}],
            },
        }
        path = Path(tmp) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.Popen(
            [
                iamgate,
                "serve",
                "--config",
                str(path),
                "--port",
                str(port),
                "--admin-port",
                str(admin),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "gateway.err", "w"),  # noqa: SIM115 (closed with the process)
        )
        try:
            try:
                _wait(admin)
            except SystemExit:
                print((Path(tmp) / "gateway.err").read_text()[-2000:])
                raise
            api = _seed(admin, port)
            for written in _shoot(args.chromium, admin, api, args.out):
                print(f"wrote {written.relative_to(ROOT) if written.is_relative_to(ROOT) else written}")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
