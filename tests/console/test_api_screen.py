"""The API screen (``/console/apis/{api}``): the resource tree, stages, deployments and usage
plans; the draft's diff against a deployed stage; the deploy button; who may see and do what;
escaping; a gateway without a store."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from iamgate.config.load import parse_config
from tests.console.conftest import client_of
from tests.console.test_pages import XSS, deployed_api
from tests.management.conftest import NOBODY, READER, AdminHandle, config_text, gateway_config, serve_admin
from tests.policies import document, statement
from tests.store.conftest import pg_backend


def _add_route(c: Any, api_id: str, part: str) -> None:
    root = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    res = c.create_resource(restApiId=api_id, parentId=root, pathPart=part)["id"]
    c.put_method(
        restApiId=api_id, resourceId=res, httpMethod="POST", authorizationType="AWS_IAM", apiKeyRequired=True
    )
    c.put_integration(
        restApiId=api_id,
        resourceId=res,
        httpMethod="POST",
        type="HTTP_PROXY",
        integrationHttpMethod="POST",
        uri="http://127.0.0.1:9/x",
    )


def test_the_tree_stages_deployments_and_plans(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c)
    _add_route(c, api_id, "orders")
    plan = c.create_usage_plan(
        name="gold",
        apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 5, "burstLimit": 10},
    )
    browser = client_of(console)
    browser.sign_in()
    page = browser.get(f"/console/apis/{api_id}")
    assert page.status == 200, page.body
    assert 'data-method="GET /pets"' in page.body
    assert 'data-method="POST /orders"' in page.body
    orders = page.body.split('data-method="POST /orders"', 1)[1].split("</tr>", 1)[0]
    assert "AWS_IAM" in orders
    assert "required" in orders
    assert "HTTP_PROXY" in orders
    assert "http://127.0.0.1:9/x" in orders
    assert "prod" in page.body
    assert plan["id"] in page.body
    assert "5.0/s, burst 10" in page.body or "5/s, burst 10" in page.body
    assert f'href="/console/apis/{api_id}/diff?stage=prod"' in page.body
    assert 'action="/console/apis/' in page.body  # the deploy form
    assert (
        browser.get("/console/").body.count(f'href="/console/apis/{api_id}"') == 1
    )  # linked from the overview


def test_the_diff_shows_what_a_deployment_would_change_and_deploy_applies_it(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c)
    browser = client_of(console)
    browser.sign_in()
    same = browser.get(f"/console/apis/{api_id}/diff?stage=prod")
    assert same.status == 200
    assert 'id="no-change"' in same.body
    _add_route(c, api_id, "orders")
    changed = browser.get(f"/console/apis/{api_id}/diff?stage=prod")
    added = re.findall(r'<span class="add">([^<]*)</span>', changed.body)
    assert any("/orders" in line for line in added), changed.body
    assert not re.findall(r'<span class="del">', changed.body)
    before = {d["id"] for d in c.get_deployments(restApiId=api_id)["items"]}
    browser.get(f"/console/apis/{api_id}")  # the page whose form token is posted
    done = browser.post(
        f"/console/apis/{api_id}/deploy",
        {"csrf": browser.csrf, "stage": "prod", "description": "from the console"},
    )
    assert done.status == 303
    after = {d["id"]: d for d in c.get_deployments(restApiId=api_id)["items"]}
    (new,) = set(after) - before
    assert after[new]["description"] == "from the console"
    assert c.get_stage(restApiId=api_id, stageName="prod")["deploymentId"] == new
    assert done.location is not None
    assert new in done.location
    shown = browser.get(done.location)
    assert f"Deployed: deployment <code>{new}</code>" in shown.body
    assert 'id="no-change"' in browser.get(f"/console/apis/{api_id}/diff?stage=prod").body


def test_deploy_without_the_csrf_token_or_from_another_site_changes_nothing(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c)
    browser = client_of(console)
    browser.sign_in()
    count = len(c.get_deployments(restApiId=api_id)["items"])
    assert browser.post(f"/console/apis/{api_id}/deploy", {"stage": "prod"}).status == 403
    browser.get(f"/console/apis/{api_id}")
    forged = browser.post(
        f"/console/apis/{api_id}/deploy",
        {"csrf": browser.csrf, "stage": "prod"},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status == 403
    assert len(c.get_deployments(restApiId=api_id)["items"]) == count


def test_a_reader_sees_the_api_but_cannot_deploy(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c)
    reader = client_of(console)
    reader.sign_in(READER)
    page = reader.get(f"/console/apis/{api_id}")
    assert page.status == 200
    assert 'data-method="GET /pets"' in page.body
    assert "Deploy the draft" not in page.body  # no form for what the policy does not allow
    assert "not authorized to read the usage plans" in page.body  # READER may GET /restapis* only
    count = len(c.get_deployments(restApiId=api_id)["items"])
    refused = reader.post(f"/console/apis/{api_id}/deploy", {"csrf": reader.csrf, "stage": "prod"})
    assert refused.status == 403
    assert "apigateway:POST" in html.unescape(refused.body)
    assert len(c.get_deployments(restApiId=api_id)["items"]) == count
    nobody = client_of(console)
    nobody.sign_in(NOBODY)
    assert nobody.get(f"/console/apis/{api_id}").status == 403


@pytest.mark.parametrize(
    "path",
    ["/console/apis/{api}", "/console/apis/{api}/diff?stage=prod"],
)
def test_the_screens_need_a_session(console: AdminHandle, path: str) -> None:
    api_id = deployed_api(console.boto3())
    stranger = client_of(console)
    answer = stranger.get(path.format(api=api_id))
    assert answer.status == 303
    assert answer.location == "/console/signin"
    assert stranger.post(f"/console/apis/{api_id}/deploy", {"stage": "prod"}).status == 403


def test_names_and_paths_with_html_are_shown_as_text(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c, name=XSS, description=XSS)
    c.create_usage_plan(name=XSS, apiStages=[{"apiId": api_id, "stage": "prod"}])
    c.update_stage(
        restApiId=api_id,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/description", "value": XSS}],
    )
    browser = client_of(console)
    browser.sign_in()
    for path in (f"/console/apis/{api_id}", f"/console/apis/{api_id}/diff?stage=prod"):
        page = browser.get(path)
        assert page.status == 200
        assert XSS not in page.body
    assert html.escape(XSS, quote=False) in browser.get(f"/console/apis/{api_id}").body


@pytest.mark.parametrize("stage", ["", "../x", "a%20b", "%3Cscript%3E", "x" * 129])
def test_a_bad_stage_name_is_a_clear_page(console: AdminHandle, stage: str) -> None:
    api_id = deployed_api(console.boto3())
    browser = client_of(console)
    browser.sign_in()
    answer = browser.get(f"/console/apis/{api_id}/diff?stage={stage}")
    assert answer.status == 400
    assert "Which stage?" in answer.body


def test_an_unknown_api_and_stage_are_not_found(console: AdminHandle) -> None:
    api_id = deployed_api(console.boto3())
    browser = client_of(console)
    browser.sign_in()
    assert browser.get("/console/apis/nosuchapi1").status == 404
    assert browser.get(f"/console/apis/{api_id}/diff?stage=beta").status == 404


def test_without_a_store_the_screen_shows_the_file_read_only(tmp_path: Path) -> None:
    text = config_text().replace(
        "apis: []\n",
        """apis:
  - id: fileapi01
    stages: {prod: {}}
    routes:
      - path: /pets
        method: GET
        integration: {type: MOCK}
        policy:
          Version: "2012-10-17"
          Statement: [{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "*"}]
""",
    )
    config, diags = parse_config(text, source="<t>")
    assert config is not None, [d.render() for d in diags]
    with serve_admin(tmp_path, config, console=True, management=False) as handle:
        browser = client_of(handle)
        browser.sign_in()
        page = browser.get("/console/apis/fileapi01")
        assert page.status == 200, page.body
        assert 'data-method="GET /pets"' in page.body
        assert "enforce" in page.body.split('data-method="GET /pets"', 1)[1].split("</tr>", 1)[0]
        assert "Deploy the draft" not in page.body
        assert "Read-only" in page.body
        assert browser.get("/console/apis/fileapi01/diff?stage=prod").status == 404


def test_the_screens_on_postgresql(tmp_path: Path, pg_admin: Any) -> None:
    """The API screen, its diff and deploy, and the policy editor's save over a PostgreSQL store."""
    for backend in pg_backend(pg_admin):
        with serve_admin(tmp_path, gateway_config(), store_url=backend.url, console=True) as handle:
            c = handle.boto3()
            api_id = deployed_api(c, name="on-postgres")
            _add_route(c, api_id, "orders")
            browser = client_of(handle)
            browser.sign_in()
            page = browser.get(f"/console/apis/{api_id}")
            assert 'data-method="POST /orders"' in page.body
            diff = browser.get(f"/console/apis/{api_id}/diff?stage=prod")
            assert "/orders" in diff.body
            done = browser.post(f"/console/apis/{api_id}/deploy", {"csrf": browser.csrf, "stage": "prod"})
            assert done.status == 303
            assert 'id="no-change"' in browser.get(f"/console/apis/{api_id}/diff?stage=prod").body
            editor = browser.get(f"/console/apis/{api_id}/policy")
            version = re.search(r'name="version" value="([^"]+)"', editor.body)
            assert version is not None
            policy = json.dumps(document(statement("Allow")))
            saved = browser.post(
                f"/console/apis/{api_id}/policy",
                {
                    "csrf": browser.csrf,
                    "version": version.group(1),
                    "policy": policy,
                    "mode": "enforce",
                    "action": "save",
                },
            )
            assert saved.status == 303
            assert "policy" in c.get_rest_api(restApiId=api_id)
