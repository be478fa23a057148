"""The evaluator's indexes and memos agree with the statement-by-statement walk.

The sorted prefix index (one binary search plus a chain of nested prefixes), the per-address
memo of ``IpAddress`` groups and the decision memos keyed by statement masks are checked here
against ``explain=True`` (which walks every statement) on inputs chosen to stress them: nested
and sibling prefixes, addresses that are unreadable or change between calls, and memos pushed
past their bound.
"""

from __future__ import annotations

import json
import random

from iamgate.policy import ApiRef, Context, DecisionEffect, Request, prepare
from tests.policy.agreement import assert_decide_agrees

API = ApiRef("us-east-1", "111122223333", "a1b2c3d4e5")
PREFIX = API.arn_prefix + "/prod/GET/"


def compiled(statements: list[dict]):  # type: ignore[no-untyped-def]
    prepared = prepare(
        json.dumps({"Version": "2012-10-17", "Statement": statements}), api=API, max_chars=None
    )
    assert prepared.policy is not None, [d.render() for d in prepared.diagnostics]
    return prepared.policy


def same(policy, request: Request) -> None:  # type: ignore[no-untyped-def]
    fast = policy.evaluate(request)
    assert_decide_agrees(policy, request, fast)
    walk = policy.evaluate(request, explain=True)
    assert (fast.effect, fast.determining, fast.principal_match) == (
        walk.effect,
        walk.determining,
        walk.principal_match,
    ), request


def test_nested_and_sibling_prefixes_agree_with_the_walk() -> None:
    rng = random.Random(7)
    alphabet = "ab/"
    for _ in range(40):
        patterns = set()
        while len(patterns) < rng.randint(1, 12):
            patterns.add("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))))
        statements = [
            {
                "Effect": rng.choice(["Allow", "Allow", "Deny"]),
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": [f"execute-api:/prod/GET/{p}*" for p in group],
            }
            for group in (rng.sample(sorted(patterns), rng.randint(1, len(patterns))) for _ in range(6))
        ]
        statements.append(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "NotResource": f"execute-api:/prod/GET/{rng.choice(sorted(patterns))}*",
            }
        )
        policy = compiled(statements)
        for _ in range(60):
            path = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))
            same(policy, Request(None, "execute-api:Invoke", PREFIX + path))
        # ARNs that sort before and after every prefix
        same(policy, Request(None, "execute-api:Invoke", API.arn_prefix))
        same(policy, Request(None, "execute-api:Invoke", PREFIX[:-1] + "\uffff"))


def test_ip_memo_is_per_address_and_bounded() -> None:
    policy = compiled(
        [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}},
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.1.0.0/16"]}},
            },
        ]
    )
    arn = PREFIX + "pets"

    def ask(ip: str) -> Request:
        return Request(None, "execute-api:Invoke", arn, Context({"aws:sourceip": ip}))

    addresses = ["10.1.2.3", "10.2.3.4", "11.0.0.1", "not-an-ip", "", "2001:db8::1", "::ffff:10.1.0.9"]
    for ip in addresses * 3:  # memo hits after the first round
        same(policy, ask(ip))
    expected = {ip: policy.evaluate(ask(ip)) for ip in addresses}
    assert expected["10.1.2.3"].effect is DecisionEffect.ALLOW
    assert expected["10.2.3.4"].effect is DecisionEffect.EXPLICIT_DENY
    assert expected["11.0.0.1"].effect is DecisionEffect.EXPLICIT_DENY
    assert expected["::ffff:10.1.0.9"].effect is DecisionEffect.ALLOW
    for i in range(10_000):
        ip = f"10.1.{i // 250}.{i % 250}"
        assert policy.evaluate(ask(ip)).allowed
    for group in policy._groups:
        assert len(getattr(group, "memo", {})) <= 4096
    for ip in addresses:  # still right after the memo was cleared
        got = policy.evaluate(ask(ip))
        assert got == expected[ip]


def test_decision_memos_are_bounded_and_keyed_by_mask_and_match_kind() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "111122223333"},
            "Action": "execute-api:Invoke",
            "Resource": f"execute-api:/prod/GET/s{i}/*",
        }
        for i in range(13)
    ]
    statements.append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/prod/GET/s0/*",
        }
    )
    policy = compiled(statements)
    alice = "arn:aws:iam::111122223333:user/alice"
    bob = "arn:aws:iam::111122223333:user/bob"
    first = policy.evaluate(Request(bob, "execute-api:Invoke", PREFIX + "s0/x"))
    assert first.principal_match.value == "account"
    full = policy.evaluate(Request(alice, "execute-api:Invoke", PREFIX + "s0/x"))
    assert full.principal_match.value == "full"
    assert len(full.determining) == 2
    for caller in (alice, bob):
        for i in range(13):
            same(policy, Request(caller, "execute-api:Invoke", PREFIX + f"s{i}/x"))
    assert len(policy._allows) <= 4096
    assert len(policy._denials) <= 4096


def test_decide_memoises_only_what_the_decision_depends_on() -> None:
    policy = compiled(
        [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/prod/GET/pets/*",
                "Condition": {
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    "StringEquals": {"aws:UserAgent": ["curl", "wrk"]},
                },
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": "arn:aws:iam::111122223333:user/mallory"},
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
            },
        ]
    )
    assert policy._memo_keys == ("aws:sourceip", "aws:useragent")
    rng = random.Random(3)
    principals = [None, "arn:aws:iam::111122223333:user/mallory", "arn:aws:iam::111122223333:user/bob"]
    for _ in range(3000):
        ctx = Context()
        ip = rng.choice(["10.1.1.1", "11.1.1.1", "garbage"])
        if ip != "garbage" or rng.random() < 0.5:
            ctx["aws:sourceip"] = ip
        agent = rng.choice(["curl", "wrk", "other", None])
        if agent is not None:
            ctx["aws:useragent"] = agent
        ctx["aws:currenttime"] = str(rng.random())  # not read by the policy: not part of the key
        principal = rng.choice(principals)
        arn = PREFIX + rng.choice(["pets/1", "pets/2", "cats/1"])
        got = policy.decide(principal, "execute-api:Invoke", arn, ctx)
        assert got == policy.evaluate(Request(principal, "execute-api:Invoke", arn, ctx))
    assert 0 < len(policy._decided.found) <= 4096
    # a plain dict is normalised by Request, so it is never looked up in the memo
    plain = policy.decide(
        None, "execute-api:Invoke", PREFIX + "pets/1", {"aws:SourceIp": "10.1.1.1", "aws:UserAgent": "wrk"}
    )  # type: ignore[arg-type]
    assert plain.allowed


def test_decide_does_not_memoise_policies_reading_other_keys() -> None:
    policy = compiled(
        [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/prod/GET/${aws:username}/*",
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/prod/GET/open/*",
                "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            },
        ]
    )
    assert policy._memo_keys is None
    for user in ("alice", "bob"):
        ctx = Context({"aws:username": user, "aws:currenttime": "2026-01-01T00:00:00Z"})
        assert policy.decide(None, "execute-api:Invoke", PREFIX + "alice/x", ctx).allowed is (user == "alice")
    late = Context({"aws:currenttime": "2031-01-01T00:00:00Z"})
    assert not policy.decide(None, "execute-api:Invoke", PREFIX + "open/x", late).allowed
    assert not policy._decided.found
