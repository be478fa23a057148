"""Units of the decision stream: the per-process log (kinds, the bounded ring, cursors and what
was missed, explanations with the policy that decided) and the console's feed (one refresh
shared by every viewer, what a viewer lost, drops counted in the metrics). The request side is a
real exchange of a real snapshot, with the attributes the stages would have set (``DecisionLog.add``
is compiled: it takes nothing else); the policy is compiled by the engine."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from iamgate.config.load import parse_config
from iamgate.config.read_api import ApiMemo
from iamgate.config.snapshot import (
    ApiRuntime,
    Reuse,
    RouteRuntime,
    Snapshot,
    build_snapshot,
    release_superseded,
)
from iamgate.console.feed import ASK, Feed, local_feed
from iamgate.observe.decisions import KEPT, DecisionLog
from iamgate.observe.metrics import Metrics, render
from iamgate.pipeline.exchange import Exchange

ARN = "arn:aws:execute-api:us-east-1:123456789012:api1/prod/GET/admin/x"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "NoAdmin", "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
         "Resource": "arn:aws:execute-api:us-east-1:123456789012:api1/*/*/admin/*"},
        {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
         "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    ],
}  # fmt: skip


def _snapshot(policy: dict[str, Any], reuse: Reuse, memo: ApiMemo) -> Snapshot:
    route_policy = {**POLICY, "Statement": POLICY["Statement"][1:]}
    text = f"""
gateway: {{region: us-east-1, account_id: "123456789012"}}
apis:
  - id: api1
    stages: {{prod: {{}}}}
    policy: {json.dumps(policy)}
    routes:
      - {{path: /admin/x, method: GET, integration: {{type: MOCK}}, policy: {json.dumps(route_policy)}}}
  - id: api2
    stages: {{prod: {{}}}}
    policy: {json.dumps(route_policy)}
    routes: [{{path: /, method: GET, integration: {{type: MOCK}}}}]
"""
    config, diags = parse_config(text, source="gateway.yaml", memo=memo)
    assert config is not None, diags
    return build_snapshot(config, reuse)


@functools.cache
def _served() -> Snapshot:
    """One snapshot for the exchanges of these tests (they do not change it)."""
    return _snapshot(POLICY, Reuse(), ApiMemo())


def runtime() -> ApiRuntime:
    """A served API whose resource policy is :data:`POLICY`."""
    return _served().apis["api1"]


def exchange(status: int = 200, **kw: Any) -> Exchange:
    """A finished request as the stages leave it: by default an anonymous GET /prod/admin/x from
    10.1.2.3 answered ``status``, without its API (not explainable); ``kw`` sets the rest."""
    ex = Exchange(_served(), "GET", b"/prod/admin/x", b"", [], {}, "1.1", True, "10.1.2.3", False)
    values: dict[str, Any] = {
        "status": status,
        "wall": 1.0,
        "path": "/admin/x",
        "stage": runtime().stages["prod"],
        "request_id": "rid",
        "arn": ARN,
        "context": {"aws:sourceip": "10.1.2.3"},
    }
    values.update(kw)
    for name, value in values.items():
        setattr(ex, name, value)
    return ex


def test_kinds_are_what_the_answer_says() -> None:
    log = DecisionLog()
    log.add(exchange(200))
    log.add(
        exchange(
            403, response_type="ACCESS_DENIED", error_message="User: anonymous ... with an explicit deny"
        )
    )
    log.add(exchange(403, response_type="ACCESS_DENIED", error_message="User: anonymous is not authorized"))
    log.add(exchange(429, throttled_by="stage"))
    log.add(exchange(502))
    log.add(exchange(403, response_type="MISSING_AUTHENTICATION_TOKEN"))
    assert log.totals() == {
        "allow": 1,
        "explicit-deny": 1,
        "implicit-deny": 1,
        "throttled": 1,
        "5xx": 1,
        "other": 1,
    }
    events, cursor, missed = log.since(0, 100)
    assert [e["decision"] for e in events] == [
        "allow",
        "explicit-deny",
        "implicit-deny",
        "throttled",
        "5xx",
        "other",
    ]
    assert (cursor, missed) == (6, 0)
    assert events[0]["path"] == "/prod/admin/x"
    assert events[0]["caller"] == "anonymous"


def test_the_ring_is_bounded_and_says_what_it_missed() -> None:
    log = DecisionLog()
    for i in range(2500):
        if i % 500 == 0:
            log.refill(1.0)  # a second passes: 2,500 requests in 5 s, every one kept
        log.add(exchange())
    assert log.seq == 2500
    assert len(log.ring) == KEPT
    events, cursor, missed = log.since(0, 250)
    assert len(events) == 250
    assert events[-1]["id"].endswith("-2500")
    assert (cursor, missed) == (2500, 2250)
    assert log.since(2500, 250) == ([], 2500, 0)
    assert log.since(2490, 250)[0][0]["id"].endswith("-2491")
    assert log.find(1000) is None  # dropped by the ring
    assert log.find(1501) is not None
    assert log.explain(10) is None


def test_an_explanation_uses_the_policy_that_decided() -> None:
    log = DecisionLog()
    log.add(
        exchange(403, api=runtime(), response_type="ACCESS_DENIED", error_message="... with an explicit deny")
    )
    found = log.explain(1)
    assert found is not None
    [explanation] = found["explanations"]
    assert explanation["label"] == "API resource policy"
    assert explanation["decision"] == "ExplicitDeny"
    assert explanation["statements"] == [{"index": 0, "sid": "NoAdmin"}]
    assert "Decision: ExplicitDeny: denied by #0 (NoAdmin)" in explanation["text"]
    condition = explanation["trace"][1]["conditions"][0]
    assert condition["request_values"] == ["10.1.2.3"]
    assert condition["policy_values"] == ["10.0.0.0/8"]
    assert found["event"]["explainable"] is True


def test_a_kept_request_keeps_its_policies_not_its_api() -> None:
    """A request kept in the ring outlives a redeploy of its API: it holds what explains it, not
    the API's runtime (which would keep the superseded API's routes and integrations for as long
    as the request stays in the ring), and once a reload has replaced the API not even the
    compiled policy: the explanation compiles the same text again."""
    reuse, memo = Reuse(), ApiMemo()
    snapshot = _snapshot(POLICY, reuse, memo)
    api = snapshot.apis["api1"]
    route = api.tree.match(("admin", "x"), "GET")
    assert route is not None
    assert route.target is not None
    log = DecisionLog()
    log.add(
        exchange(
            403,
            api=api,
            route=route.target,
            stage=api.stages["prod"],
            response_type="ACCESS_DENIED",
            error_message="... with an explicit deny",
        )
    )
    [kept] = log.ring
    assert not [v for v in kept if isinstance(v, ApiRuntime | RouteRuntime)]
    before = log.explain(1)
    assert before is not None
    labels = [(e["label"], e["decision"]) for e in before["explanations"]]
    assert labels == [("API resource policy", "ExplicitDeny"), ("route:GET /admin/x policy", "Allow")]
    assert before["event"]["api"] == "api1"
    assert api.deciding is not None
    assert api.deciding.compiled() is api.policy  # served: the very policy that decided
    other = snapshot.apis["api2"]
    redeployed = _snapshot({**POLICY, "Statement": POLICY["Statement"][::-1]}, reuse, memo)
    assert redeployed.apis["api2"] is other  # unchanged: reused
    release_superseded(snapshot, redeployed)
    assert api.deciding.compiled() is not api.policy  # replaced: compiled again from its text
    assert other.deciding is not None
    assert other.policy is not None
    assert other.deciding.compiled() is other.policy  # still served: kept
    after = log.explain(1)
    assert after is not None
    assert after["explanations"] == before["explanations"]


def test_at_most_a_thousand_a_second_are_kept() -> None:
    log = DecisionLog()
    for _ in range(1500):
        log.add(exchange())
    assert log.seq == 1000  # the budget: the console reads at most 1,000 a second
    assert log.totals()["allow"] == 1500  # every one counted
    events, cursor, missed = log.since(0, 250)
    assert (len(events), cursor, missed) == (250, 1000, 750 + 500)
    log.refill(0.05)
    for _ in range(100):
        log.add(exchange())
    assert log.seq == 1050
    assert log.since(1000, 250)[2] == 50
    log.refill(60)
    assert log.budget == KEPT


def test_off_counts_but_keeps_nothing() -> None:
    log = DecisionLog()
    log.add(exchange())
    log.set_keep(False)
    assert not log.ring
    log.add(exchange())
    assert log.totals()["allow"] == 2
    assert log.since(0, 100) == ([], 1, 1)  # the one kept before was let go, unread


def test_one_refresh_serves_every_viewer_and_drops_are_counted() -> None:
    log = DecisionLog()
    calls: list[int] = []
    metrics = Metrics()

    async def scenario() -> None:
        feed = local_feed(log, lambda: metrics)
        inner = feed.gather

        async def counted(cursors: dict[int, int], limit: int) -> list[dict[str, Any]]:
            calls.append(limit)
            return await inner(cursors, limit)

        feed.gather = counted
        for _ in range(10):
            log.add(exchange())
        await asyncio.gather(*(feed.refresh() for _ in range(5)))
        assert calls == [ASK]  # five viewers, one question
        assert feed.seq == 10
        assert feed.after(4)[0][0][0] == 5
        feed.drop(3)
        assert feed.dropped == 3

    asyncio.run(scenario())
    assert 'iamgate_console_decisions_dropped_total{reason="viewer"} 3' in render(metrics)


def test_a_viewer_far_behind_is_told_what_it_lost() -> None:
    async def gather(cursors: dict[int, int], limit: int) -> list[dict[str, Any]]:
        return []

    async def explain(pid: int, seq: int) -> dict[str, Any] | None:
        return None

    feed = Feed(gather, explain, Metrics, size=10)
    feed.take(
        [{"pid": 1, "started": 0.0, "totals": {}, "cursor": 30, "missed": 0,
          "events": [{"time": float(i), "n": i} for i in range(30)]}],
        True,
        counted=True,
    )  # fmt: skip
    events, lost = feed.after(5)
    assert lost == 15  # 6..20 are no longer in a ring of 10
    assert [e["n"] for _, e in events] == list(range(20, 30))
    assert asyncio.run(feed.explain("not-an-id")) is None


def test_the_setting_is_read_with_located_errors() -> None:
    from iamgate.config.load import parse_config

    base = 'gateway: {region: us-east-1, account_id: "123456789012"}\napis: []\n'
    config, _ = parse_config(base + "management: {console: {decisions: false}}\n")
    assert config is not None
    assert config.management.decisions is False
    config, _ = parse_config(base)
    assert config is not None
    assert config.management.decisions is True
    for bad, pointer in (
        ("management: {console: {decisions: yes please}}", "/management/console/decisions"),
        ("management: {console: {decision: false}}", "/management/console"),
        ("management: {console: []}", "/management/console"),
    ):
        config, diags = parse_config(base + bad + "\n")
        assert config is None, bad
        assert any(pointer in d.render() for d in diags), [d.render() for d in diags]
