"""What the policies of one gateway remember of the requests they decided is bounded per process
(issue 19): each policy's decision memo gets a share of one budget, so a client spraying distinct
paths over many APIs fills a bounded amount of memory, not one full memo per API."""

from __future__ import annotations

import yaml

from iamgate.config.load import parse_config
from iamgate.config.snapshot import MEMO_BUDGET, MEMO_MAX, MEMO_MIN, Snapshot, build_snapshot
from iamgate.policy import CompiledPolicy
from iamgate.policy.request import Context
from tests.scale import SCALE


def _snapshot(apis: int) -> Snapshot:
    # two statements: an IpAddress allow and a deny, decisions the policy memoises whole
    config, diags = parse_config(yaml.safe_dump(SCALE.config(apis, statements=2)))
    assert config is not None, diags
    return build_snapshot(config)


def _policy(snapshot: Snapshot, index: int) -> CompiledPolicy:
    policy = snapshot.apis[SCALE.api_id(index)].policy
    assert policy is not None
    return policy


def test_one_api_keeps_the_full_memo_and_many_share_the_budget() -> None:
    assert _policy(_snapshot(1), 0)._decided.limit == MEMO_MAX
    many = _snapshot(300)
    share = max(MEMO_MIN, MEMO_BUDGET // 300)
    assert all(_policy(many, i)._decided.limit == share for i in range(300))


def test_a_spray_of_distinct_paths_stays_within_the_share() -> None:
    snapshot = _snapshot(300)
    policy = _policy(snapshot, 7)
    limit = policy._decided.limit
    prefix = f"arn:aws:execute-api:us-east-1:{SCALE.ACCOUNT}:{SCALE.api_id(7)}/prod/GET/items/"
    context = Context({"aws:sourceip": "127.0.0.1"})

    def ask(n: int) -> None:
        decision = policy.decide(None, "execute-api:Invoke", prefix + str(n), context)
        assert decision.effect.value == "Allow"

    for _ in range(2):  # a question asked twice is remembered
        for n in range(limit // 2):
            ask(n)
    assert len(policy._decided) == limit // 2
    for _ in range(2):  # a spray of distinct paths, each asked twice
        for n in range(limit * 4):
            ask(n)
            assert len(policy._decided) <= limit


def test_the_callers_identity_policies_take_their_share_too() -> None:
    """An AWS_IAM caller's identity policies memoise their decisions as well; a thousand users
    with a policy each must not bring a thousand full memos."""
    raw = SCALE.config(1, statements=2)
    users, keys = [], []
    for i in range(299):
        arn = f"arn:aws:iam::{SCALE.ACCOUNT}:user/u{i}"
        resource = f"arn:aws:execute-api:*:*:*/prod/GET/u{i}/*"
        statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}
        users.append({"arn": arn, "policies": [{"Version": "2012-10-17", "Statement": [statement]}]})
        keys.append({"id": f"AKIA{i:016d}", "secret": f"secret-{i}", "owner": arn})
    raw["identities"] = {"accounts": [{"id": SCALE.ACCOUNT}], "users": users, "access_keys": keys}
    config, diags = parse_config(yaml.safe_dump(raw))
    assert config is not None, diags
    snapshot = build_snapshot(config)
    share = max(MEMO_MIN, MEMO_BUDGET // 300)  # the API's policy and 299 identity policies
    identity_policies = config.auth.store.policies()
    assert len(identity_policies) == 299
    assert all(policy._decided.limit == share for policy in identity_policies)
    assert _policy(snapshot, 0)._decided.limit == share
