"""The playground (``/console/playground``): a request decided against the draft or a deployed
stage, explained with the engine's trace, and turned into a test case line that ``iamgate policy
test`` runs; stage and route policies included; bad input; authorization; escaping."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.console.conftest import Client, client_of
from tests.console.test_pages import XSS, deployed_api
from tests.management.conftest import NOBODY, AdminHandle
from tests.policies import document, statement

IAMGATE = str(Path(sys.executable).parent / "iamgate")


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps(document(*statements))


def _st(
    effect: str, condition: dict[str, Any] | None = None, sid: str = "", resource: str = "execute-api:/*"
) -> dict[str, Any]:
    return statement(effect, resource, condition, sid)


OFFICE = _policy(
    _st("Allow", sid="Everyone"),
    _st("Deny", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, "OfficeOnly"),
)


def _api_with_policy(console: AdminHandle, policy: str = OFFICE) -> tuple[Any, str]:
    c = console.boto3()
    api_id = deployed_api(c)
    c.update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": policy}]
    )
    return c, api_id


def _ask(browser: Client, **fields: str) -> str:
    answer = browser.get("/console/playground?" + urlencode(fields))
    assert answer.status == 200, answer.body
    return answer.body


def _decision(page: str) -> str:
    found = re.search(r'id="decision">([^<]+)<', page)
    assert found is not None, page
    return found.group(1)


def _case_line(page: str) -> str:
    found = re.search(r'<textarea id="case-line" readonly rows="4">(.*?)</textarea>', page, re.S)
    assert found is not None
    return html.unescape(found.group(1))


def test_the_draft_decides_and_explains(console: AdminHandle) -> None:
    _, api_id = _api_with_policy(console)
    browser = client_of(console)
    browser.sign_in()
    denied = _ask(browser, api=api_id, target="draft", method="GET", path="/pets", source_ip="192.0.2.1")
    assert _decision(denied) == "ExplicitDeny"
    assert "Decided by the api policy" in denied
    assert "#1 (OfficeOnly)" in denied
    assert "request 192.0.2.1; policy 10.0.0.0/8" in denied  # each condition's request and policy values
    allowed = _ask(browser, api=api_id, target="draft", method="GET", path="/pets", source_ip="10.1.2.3")
    assert _decision(allowed) == "Allow"


def test_a_deployed_stage_is_what_it_serves_not_the_draft(console: AdminHandle) -> None:
    c, api_id = _api_with_policy(console)  # the policy is in the draft only
    browser = client_of(console)
    browser.sign_in()
    page = _ask(browser, api=api_id, target="prod", method="GET", path="/pets", source_ip="192.0.2.1")
    assert _decision(page) == "Allow"  # the stage's deployment has no policy yet
    assert "No resource policy" in page
    c.create_deployment(restApiId=api_id, stageName="prod")
    page = _ask(browser, api=api_id, target="prod", method="GET", path="/pets", source_ip="192.0.2.1")
    assert _decision(page) == "ExplicitDeny"


def test_the_case_line_runs_in_iamgate_policy_test(console: AdminHandle, tmp_path: Path) -> None:
    _, api_id = _api_with_policy(console)
    browser = client_of(console)
    browser.sign_in()
    lines = []
    for ip in ("192.0.2.1", "10.0.0.7"):
        page = _ask(
            browser,
            api=api_id,
            target="draft",
            method="GET",
            path="/pets",
            source_ip=ip,
            headers="X-Trace: abc",
        )
        line = _case_line(page)
        case = json.loads(line)
        assert case["expect"] == _decision(page)
        assert case["request"]["headers"] == {"X-Trace": "abc"}
        lines.append(line)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [IAMGATE, "policy", "test", str(cases)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout or "passed: 2" in done.stdout or "2/2" in done.stdout, done.stdout


def test_route_and_stage_policies_take_part(console: AdminHandle) -> None:
    c, api_id = _api_with_policy(console, _policy(_st("Allow", sid="Everyone")))
    pets = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/pets")
    c.update_method(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        patchOperations=[
            {
                "op": "replace",
                "path": "/x-iamgate-policy",
                "value": _policy(
                    _st("Allow", {"StringEquals": {"iamgate:RequestHeader/X-Team": "blue"}}, "BlueTeam")
                ),
            }
        ],
    )
    browser = client_of(console)
    browser.sign_in()
    refused = _ask(browser, api=api_id, target="draft", method="GET", path="/pets")
    assert _decision(refused) == "ImplicitDeny"
    assert "Decided by the route:GET /pets policy" in refused
    allowed = _ask(browser, api=api_id, target="draft", method="GET", path="/pets", headers="X-Team: blue")
    assert _decision(allowed) == "Allow"
    assert json.loads(_case_line(allowed))["route_policy"]["Statement"][0]["Sid"] == "BlueTeam"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"method": "FETCH", "path": "/pets"}, "is not one of"),
        ({"method": "GET", "path": "pets"}, "starts with /"),
        ({"method": "GET", "path": "/pets", "headers": "no colon here"}, "Header line 1"),
        ({"method": "GET", "path": "/pets", "stage": "a b"}, "stage name"),
    ],
    ids=["method", "path", "header", "stage"],
)
def test_bad_input_is_said_not_decided(console: AdminHandle, fields: dict[str, str], says: str) -> None:
    _, api_id = _api_with_policy(console)
    browser = client_of(console)
    browser.sign_in()
    answer = browser.get("/console/playground?" + urlencode({"api": api_id, **fields}))
    assert answer.status == 400
    assert says in html.unescape(answer.body)
    assert 'id="decision"' not in answer.body


def test_hostile_values_are_shown_as_text(console: AdminHandle) -> None:
    _, api_id = _api_with_policy(console)
    browser = client_of(console)
    browser.sign_in()
    page = _ask(
        browser,
        api=api_id,
        method="GET",
        path="/pets",
        principal=XSS,
        headers=f"X-Evil: {XSS}",
        source_ip=XSS,
    )
    assert XSS not in page


def test_who_may_use_it(console: AdminHandle) -> None:
    _, api_id = _api_with_policy(console)
    assert client_of(console).get("/console/playground").status == 303  # no session
    nobody = client_of(console)
    nobody.sign_in(NOBODY)
    assert nobody.get("/console/playground?" + urlencode({"api": api_id, "path": "/pets"})).status == 403
