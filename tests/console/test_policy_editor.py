"""The policy editor (``/console/apis/{api}/policy``): located diagnostics and lint findings for
what is typed, save to the draft through the management API, deploy, the report-only toggle,
a stale draft refused with nothing lost, authorization, escaping, bad input."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from iamgate.config.load import parse_config
from tests.console.conftest import Client, client_of
from tests.console.test_pages import deployed_api
from tests.management.conftest import READER, AdminHandle, config_text, serve_admin

ALLOW = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Everyone",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
        }
    ],
}
TYPO = json.dumps(ALLOW, indent=2).replace('"Effect"', '"Efect"')


def _signed(console: AdminHandle) -> tuple[Client, str]:
    api_id = deployed_api(console.boto3())
    browser = client_of(console)
    browser.sign_in()
    browser.get("/console/")  # a page with the session's form token
    return browser, api_id


def _check(browser: Client, api_id: str, text: str) -> str:
    answer = browser.post(f"/console/apis/{api_id}/policy/check", {"csrf": browser.csrf, "policy": text})
    assert answer.status == 200, answer.body
    return answer.body


def test_a_typo_is_a_located_diagnostic(console: AdminHandle) -> None:
    browser, api_id = _signed(console)
    page = browser.get(f"/console/apis/{api_id}/policy")
    assert page.status == 200
    assert 'hx-post="/console/apis/' in page.body
    fragment = _check(browser, api_id, TYPO)
    assert "1 error(s)" in fragment or "error(s)" in fragment
    line = TYPO.splitlines().index(next(x for x in TYPO.splitlines() if '"Efect"' in x)) + 1
    assert f"line {line}, column" in fragment
    assert "policy.parse." in fragment
    assert 'class="hll"' in fragment  # the line at fault is marked in the highlighted text
    clean = _check(browser, api_id, json.dumps(ALLOW))
    assert "No error" in clean
    assert "policy.lint.public-allow" in clean  # the lint finding of an unconditional public Allow


def test_save_then_deploy_changes_what_is_served(console: AdminHandle) -> None:
    browser, api_id = _signed(console)
    c = console.boto3()
    page = browser.get(f"/console/apis/{api_id}/policy")
    version = re.search(r'name="version" value="([^"]+)"', page.body)
    assert version is not None
    saved = browser.post(
        f"/console/apis/{api_id}/policy",
        {
            "csrf": browser.csrf,
            "version": version.group(1),
            "policy": json.dumps(ALLOW),
            "mode": "report",
            "action": "deploy",
            "stage": "prod",
        },
    )
    assert saved.status == 303, saved.body
    assert saved.location is not None
    stored = json.loads(c.get_rest_api(restApiId=api_id)["policy"].replace("\\/", "/"))
    assert stored["Statement"][0]["Sid"] == "Everyone"
    assert stored["Statement"][0]["Resource"].endswith(f"{api_id}/*")  # the shorthand expanded
    deployments = c.get_deployments(restApiId=api_id)["items"]
    assert len(deployments) == 2
    after = browser.get(saved.location)
    assert 'id="saved"' in after.body
    assert "deployed to stage <strong>prod</strong>" in after.body
    assert 'value="report" checked' in after.body


def test_a_stale_draft_is_refused_and_nothing_typed_is_lost(console: AdminHandle) -> None:
    browser, api_id = _signed(console)
    first = browser.get(f"/console/apis/{api_id}/policy")
    old_version = re.search(r'name="version" value="([^"]+)"', first.body)
    assert old_version is not None
    # a second tab (another session) saves first
    other = client_of(console)
    other.sign_in()
    page = other.get(f"/console/apis/{api_id}/policy")
    theirs = json.loads(json.dumps(ALLOW))
    theirs["Statement"][0]["Sid"] = "TheirVersion"
    v2 = re.search(r'name="version" value="([^"]+)"', page.body)
    assert v2 is not None
    assert (
        other.post(
            f"/console/apis/{api_id}/policy",
            {
                "csrf": other.csrf,
                "version": v2.group(1),
                "policy": json.dumps(theirs),
                "mode": "enforce",
                "action": "save",
            },
        ).status
        == 303
    )
    mine = json.loads(json.dumps(ALLOW))
    mine["Statement"][0]["Sid"] = "MyVersion"
    refused = browser.post(
        f"/console/apis/{api_id}/policy",
        {
            "csrf": browser.csrf,
            "version": old_version.group(1),
            "policy": json.dumps(mine),
            "mode": "enforce",
            "action": "save",
        },
    )
    assert refused.status == 409
    assert 'id="stale"' in refused.body
    assert "TheirVersion" in refused.body
    kept = re.search(r"<textarea[^>]*>(.*?)</textarea>", refused.body, re.S)
    assert kept is not None
    assert html.unescape(kept.group(1)) == json.dumps(mine)  # still in the editor
    stored = console.boto3().get_rest_api(restApiId=api_id)["policy"]
    assert "TheirVersion" in stored
    assert "MyVersion" not in stored
    # saving again from the refused page (its version is now theirs) goes through
    again = re.search(r'name="version" value="([^"]+)"', refused.body)
    assert again is not None
    assert (
        browser.post(
            f"/console/apis/{api_id}/policy",
            {
                "csrf": browser.csrf,
                "version": again.group(1),
                "policy": json.dumps(mine),
                "mode": "enforce",
                "action": "save",
            },
        ).status
        == 303
    )
    assert "MyVersion" in console.boto3().get_rest_api(restApiId=api_id)["policy"]


def test_an_invalid_policy_is_not_saved_and_the_text_stays(console: AdminHandle) -> None:
    browser, api_id = _signed(console)
    page = browser.get(f"/console/apis/{api_id}/policy")
    version = re.search(r'name="version" value="([^"]+)"', page.body)
    assert version is not None
    refused = browser.post(
        f"/console/apis/{api_id}/policy",
        {
            "csrf": browser.csrf,
            "version": version.group(1),
            "policy": TYPO,
            "mode": "enforce",
            "action": "save",
        },
    )
    assert refused.status == 400
    assert 'id="problem"' in refused.body
    assert "Invalid policy document" in refused.body
    assert (
        "&#34;Efect&#34;" in refused.body
        or "&quot;Efect&quot;" in refused.body
        or '"Efect"' in html.unescape(refused.body)
    )
    assert "policy" not in console.boto3().get_rest_api(restApiId=api_id)


def test_a_reader_may_look_but_not_save(console: AdminHandle) -> None:
    api_id = deployed_api(console.boto3())
    reader = client_of(console)
    reader.sign_in(READER)
    page = reader.get(f"/console/apis/{api_id}/policy")
    assert page.status == 200
    version = re.search(r'name="version" value="([^"]+)"', page.body)
    assert version is not None
    refused = reader.post(
        f"/console/apis/{api_id}/policy",
        {
            "csrf": reader.csrf,
            "version": version.group(1),
            "policy": json.dumps(ALLOW),
            "mode": "enforce",
            "action": "save",
        },
    )
    assert refused.status == 403
    assert "policy" not in console.boto3().get_rest_api(restApiId=api_id)


def test_a_policy_with_html_is_shown_as_text(console: AdminHandle) -> None:
    browser, api_id = _signed(console)
    hostile = '</textarea><script>alert(1)</script>{"Version":'
    fragment = _check(browser, api_id, hostile)
    assert "<script>alert(1)</script>" not in fragment
    assert "</textarea><script>" not in fragment


@pytest.mark.parametrize(
    "text",
    ["", "   ", "[]", '{"Statement": 5}', "{" * 5000, "x" * 70000, "\x00\x01", '{"a": "\\ud800"}'],
    ids=["empty", "blank", "array", "bad-statement", "deep", "huge", "control", "lone-surrogate"],
)
def test_garbage_gets_diagnostics_not_an_error_page(console: AdminHandle, text: str) -> None:
    browser, api_id = _signed(console)
    fragment = _check(browser, api_id, text)
    assert "Something went wrong" not in fragment
    assert 'id="summary"' in fragment


def test_the_editor_needs_a_session_and_the_token(console: AdminHandle) -> None:
    api_id = deployed_api(console.boto3())
    stranger = client_of(console)
    assert stranger.get(f"/console/apis/{api_id}/policy").status == 303
    assert stranger.post(f"/console/apis/{api_id}/policy/check", {"policy": "{}"}).status == 403
    browser = client_of(console)
    browser.sign_in()
    assert browser.post(f"/console/apis/{api_id}/policy/check", {"policy": "{}"}).status == 403  # no token
    assert (
        browser.post(
            f"/console/apis/{api_id}/policy", {"policy": json.dumps(ALLOW), "version": "x", "action": "save"}
        ).status
        == 403
    )


def test_without_a_store_the_editor_checks_but_does_not_save(tmp_path: Path) -> None:
    text = config_text().replace(
        "apis: []\n",
        """apis:
  - id: fileapi01
    stages: {prod: {}}
    policy:
      Version: "2012-10-17"
      Statement: [{Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "*"}]
    routes: [{path: /pets, method: GET, integration: {type: MOCK}}]
""",
    )
    config, diags = parse_config(text, source="<t>")
    assert config is not None, [d.render() for d in diags]
    with serve_admin(tmp_path, config, console=True, management=False) as handle:
        browser = client_of(handle)
        browser.sign_in()
        page = browser.get("/console/apis/fileapi01/policy")
        assert page.status == 200
        assert "readonly" in page.body
        assert "Save to the draft" not in page.body
        assert "policy.lint.public-allow" in _check(browser, "fileapi01", json.dumps(ALLOW))
        refused = browser.post(
            "/console/apis/fileapi01/policy",
            {"csrf": browser.csrf, "policy": "{}", "version": "x", "action": "save"},
        )
        assert refused.status == 403
