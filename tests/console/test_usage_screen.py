"""The usage screen (``/console/usage``): plans, keys with their values hidden until one is asked
for, the per-key chart's data, the throttled counts; who may see what; escaping."""

from __future__ import annotations

import html
import json
import re

from iamgate.console.usage_screen import throttled_counts
from tests.console.conftest import client_of
from tests.console.test_pages import XSS, deployed_api
from tests.management.conftest import READER, AdminHandle

VALUE = "abcdefghijklmnopqrstuvwxyz0123456789VALUE"


def test_plans_and_keys_with_values_hidden_until_asked(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c)
    key = c.create_api_key(name="mobile", value=VALUE, enabled=True)
    plan = c.create_usage_plan(
        name="gold",
        apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 5, "burstLimit": 10},
        quota={"limit": 1000, "period": "DAY"},
    )
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    browser = client_of(console)
    browser.sign_in()
    page = browser.get("/console/usage")
    assert page.status == 200, page.body
    assert f'id="plan-{plan["id"]}"' in page.body
    assert f"{api_id}/prod" in page.body
    assert "1000 per day" in page.body
    assert key["id"] in page.body
    assert VALUE not in page.body  # hidden
    data = re.search(r'<script type="application/json" id="usage-data">(.*?)</script>', page.body, re.S)
    assert data is not None
    chart = json.loads(data.group(1))
    assert len(chart[plan["id"]]["days"]) == 7
    # this in-process admin server has no throttle backend: the plan says why it has no usage
    assert "The usage cannot be read" in page.body
    shown = browser.get(f"/console/usage/keys/{key['id']}")
    assert shown.status == 200
    assert f'<code id="key-value">{VALUE}</code>' in shown.body
    assert shown.headers["cache-control"] == "no-store"


def test_a_reader_without_usage_rights_sees_the_refusals(console: AdminHandle) -> None:
    c = console.boto3()
    key = c.create_api_key(name="mobile", value=VALUE, enabled=True)
    reader = client_of(console)
    reader.sign_in(READER)  # apigateway:GET on /restapis* only
    assert reader.get("/console/usage").status == 403
    refused = reader.get(f"/console/usage/keys/{key['id']}")
    assert refused.status == 403
    assert VALUE not in refused.body


def test_names_with_html_stay_text_and_cannot_end_the_data_script(console: AdminHandle) -> None:
    c = console.boto3()
    api_id = deployed_api(c)
    c.create_usage_plan(name=XSS + "</script>", apiStages=[{"apiId": api_id, "stage": "prod"}])
    c.create_api_key(name=XSS, value=VALUE, enabled=True)
    browser = client_of(console)
    browser.sign_in()
    page = browser.get("/console/usage")
    assert page.status == 200
    assert XSS not in page.body
    assert page.body.count("</script>") == page.body.count("<script")  # the data cannot close its script
    assert html.escape(XSS, quote=False) in page.body


def test_the_usage_screens_need_a_session(console: AdminHandle) -> None:
    stranger = client_of(console)
    assert stranger.get("/console/usage").status == 303
    assert stranger.get("/console/usage/keys/abc").status == 303


def test_throttled_counts_are_read_from_the_metrics() -> None:
    text = (
        "# HELP iamgate_throttled_total Requests refused (429) by a rate limit, by level.\n"
        "# TYPE iamgate_throttled_total counter\n"
        'iamgate_throttled_total{level="stage"} 3.0\n'
        'iamgate_throttled_total{level="usage_plan"} 7.0\n'
        'iamgate_throttled_total{level="stage"} 2.0\n'
        'iamgate_requests_total{status="429"} 12.0\n'
    )
    assert throttled_counts(text) == (("stage", 5), ("usage_plan", 7))
    assert throttled_counts("") == ()
