"""The console's screens in a real browser (headless Debian chromium, Playwright by path) against
the real ``iamgate serve`` with a SQLite store (docs/console.md): the API screen (tree, the draft's
diff, Deploy), the policy editor (a typo's located diagnostic appearing as it is typed, the fix,
save and deploy, then a real request decided by the new policy), the playground (a decision and
its case line), the usage chart (drawn from real requests made with an API key), and an
accessibility check (axe-core) of every screen with no serious or critical violation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_cors import _chromium_path
from tests.gateway.conftest import Backend, Gateway, start_gateway, wait_for
from tests.gateway.test_managed import build_api, client
from tests.management.conftest import ADMIN

REGION = "us-east-1"
ACCOUNT = "123456789012"
KEY_VALUE = "browserkeyvalue0123456789abcdefghij"


def _yaml() -> dict[str, Any]:
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "apigateway:*", "Resource": "*"}],
    }
    return {
        "gateway": {"region": REGION, "account_id": ACCOUNT, "trusted_proxies": ["127.0.0.0/8"]},
        "store": "sqlite:///store.db",
        "identities": {
            "users": [{"arn": ADMIN.arn, "policies": [allow_all]}],
            "access_keys": [{"id": ADMIN.access_key, "secret": ADMIN.secret, "owner": ADMIN.arn}],
        },
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    chromium = _chromium_path()
    backend = Backend().start()
    gw = start_gateway(tmp_path_factory.mktemp("console-screens"), _yaml())
    c = client(gw)
    api_id = build_api(gw, backend)  # GET /pets -> the backend
    pets = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/pets")
    key_required = [{"op": "replace", "path": "/apiKeyRequired", "value": "true"}]
    c.update_method(restApiId=api_id, resourceId=pets, httpMethod="GET", patchOperations=key_required)
    c.create_deployment(restApiId=api_id, stageName="prod")
    key = c.create_api_key(name="mobile", value=KEY_VALUE, enabled=True)
    plan = c.create_usage_plan(
        name="gold",
        apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 100, "burstLimit": 200},
        quota={"limit": 10000, "period": "DAY"},
    )
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    try:
        wait_for(
            lambda: _invoke(gw, api_id, "/prod/pets", "192.0.2.1")[0] == 200, "the deployment and the key"
        )
        yield {"gw": gw, "c": c, "api": api_id, "pets": pets, "chromium": chromium, "plan": plan["id"]}
    finally:
        gw.stop()
        backend.stop()


def _invoke(gw: Gateway, api_id: str, path: str, source: str) -> tuple[int, bytes]:
    status, _, body = gw.request(
        "GET", path, headers={"x-apigw-api-id": api_id, "x-api-key": KEY_VALUE, "x-forwarded-for": source}
    )
    return status, body


@pytest.fixture
def page(world: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=world["chromium"], args=["--no-sandbox"], headless=True)
        try:
            tab = browser.new_page()
            base = f"http://127.0.0.1:{world['gw'].admin_port}/console"
            tab.goto(base + "/signin")
            tab.fill("#login", ADMIN.access_key)
            tab.fill("#secret", ADMIN.secret)
            with tab.expect_navigation():
                tab.click("button[type=submit]")
            tab.base = base  # type: ignore[attr-defined]
            yield tab
        finally:
            browser.close()


def test_the_api_screen_diff_and_deploy(world: dict[str, Any], page: Any) -> None:
    c, api_id = world["c"], world["api"]
    page.click(f"a[href='/console/apis/{api_id}']")
    assert page.locator("tr[data-method='GET /pets']").count() == 1
    assert "required" in page.locator("tr[data-method='GET /pets']").inner_text()
    # change the draft: a new resource
    root = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    res = c.create_resource(restApiId=api_id, parentId=root, pathPart="toys")["id"]
    c.put_method(restApiId=api_id, resourceId=res, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api_id,
        resourceId=res,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    page.click("a[href$='/diff?stage=prod']")
    added = page.locator("#diff .add").all_inner_texts()
    assert any("/toys" in line for line in added), added
    page.go_back()
    before = {d["id"] for d in c.get_deployments(restApiId=api_id)["items"]}
    with page.expect_navigation():
        page.click("form.deploy button[type=submit]")
    assert "Deployed: deployment" in page.locator(".notice").first.inner_text()
    assert len({d["id"] for d in c.get_deployments(restApiId=api_id)["items"]} - before) == 1


def test_the_policy_editor_shows_a_typo_then_saves_and_deploys(world: dict[str, Any], page: Any) -> None:
    gw, api_id = world["gw"], world["api"]
    page.goto(f"{page.base}/apis/{api_id}/policy")
    policy = {
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
                "Sid": "OfficeOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            },
        ],
    }
    typo = json.dumps(policy, indent=2).replace('"Effect": "Deny"', '"Efect": "Deny"')
    page.fill("#policy", "")
    page.type("#policy", typo[:40])  # typed, as a person would: the check runs on input
    page.fill("#policy", typo)
    page.dispatch_event("#policy", "input")
    page.wait_for_selector("#findings li.error", timeout=5000)
    located = page.locator("#findings li.error").all_inner_texts()
    line = next(i for i, x in enumerate(typo.splitlines(), start=1) if '"Efect"' in x)
    assert any(f"line {line}, column" in text and "Efect" in text for text in located), located
    assert page.locator(".highlighted .hll").count() >= 1
    page.fill("#policy", json.dumps(policy, indent=2))
    page.dispatch_event("#policy", "input")
    page.wait_for_function(
        "() => document.querySelector('#summary') && !document.querySelector('#findings li.error')"
    )
    page.fill("#deploy-stage", "prod")
    with page.expect_navigation():
        page.click("button[value=deploy]")
    assert page.locator("#saved").count() == 1
    wait_for(lambda: _invoke(gw, api_id, "/prod/pets", "192.0.2.1")[0] == 403, "the new policy to be served")
    assert _invoke(gw, api_id, "/prod/pets", "10.2.3.4")[0] == 200


def test_the_playground_gives_a_decision_and_a_case(world: dict[str, Any], page: Any) -> None:
    api_id = world["api"]
    page.goto(f"{page.base}/playground?api={api_id}")
    page.fill("#pg-path", "/pets")
    page.fill("#pg-ip", "192.0.2.1")
    with page.expect_navigation():
        page.click("#playground button[type=submit]")
    assert page.locator("#decision").inner_text() in ("ExplicitDeny", "Allow")
    line = json.loads(page.locator("#case-line").input_value())
    assert line["expect"] == page.locator("#decision").inner_text()
    assert line["request"]["context"]["aws:sourceip"] == "192.0.2.1"  # condition keys are case-insensitive


def test_the_usage_chart_is_drawn_from_real_requests(world: dict[str, Any], page: Any) -> None:
    gw, api_id, plan = world["gw"], world["api"], world["plan"]
    for _ in range(3):
        _invoke(gw, api_id, "/prod/pets", "10.9.9.9")
    page.goto(f"{page.base}/usage")
    chart = page.locator(f".chart[data-plan='{plan}']")
    chart.wait_for()
    page.wait_for_function(
        f"() => document.querySelector(\".chart[data-plan='{plan}']\").dataset.drawn === '1'"
    )
    assert chart.locator("canvas").count() >= 1
    data = json.loads(page.locator("#usage-data").text_content() or "{}")
    assert sum(data[plan]["series"][0][1]) >= 3
    assert KEY_VALUE not in page.content()
    page.click("#keys a")
    assert page.locator("#key-value").inner_text() == KEY_VALUE


def test_no_serious_accessibility_violation_on_any_screen(world: dict[str, Any], page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    api_id = world["api"]
    axe = Axe()
    screens = [
        "/",
        f"/apis/{api_id}",
        f"/apis/{api_id}/diff?stage=prod",
        f"/apis/{api_id}/policy",
        f"/playground?api={api_id}&path=/pets&source_ip=192.0.2.1",
        "/usage",
        "/decisions",  # its stream stays open: waited for by its first rows, not by network idle
    ]
    found = {}
    for screen in screens:
        page.goto(page.base + screen)
        if screen == "/decisions":
            page.wait_for_selector("#decisions tbody tr", timeout=5000)
        else:
            page.wait_for_load_state("networkidle")
        results = axe.run(page)
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if serious:
            found[screen] = serious
    # a request's explanation: from the live decisions, as a person reaches it
    _invoke(world["gw"], api_id, "/prod/pets", "192.0.2.99")
    page.goto(page.base + "/decisions")
    page.wait_for_selector("#decisions tbody tr a[href*='/decisions/']", timeout=5000)
    with page.expect_navigation():
        page.click("#decisions tbody tr a[href*='/decisions/'] >> nth=0")
    results = axe.run(page)
    serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    if serious:
        found["explanation"] = serious
    assert found == {}
