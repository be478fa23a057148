"""An iamgate row of bench/proxy_bench.py: a gateway config for PORT/UPSTREAM, then `iamgate serve`.

Usage (proxy_bench.py runs it for its iamgate-* rows; see docs/benchmarks.md):
    python bench/gateway_row.py PORT UPSTREAM POLICY [--log on|off] [--workers N] [--run DIR]
        [--throttle off|memory|redis] [--tls DIR] [--auth none|iam]

POLICY: allow-all (no policy: a public API), small (bench/policies/small.json: 5 statements),
large (large.json: 200 statements, 1,000 CIDRs) or localhost (allow-localhost-get-pets.json);
every policy but allow-all also gets the statement that allows 127.0.0.1 to GET /pets/*, so the
harness's readiness check passes. One API "petapi" (us-east-1, 123456789012), stage prod,
route GET /pets/{id} -> HTTP_PROXY UPSTREAM/pets/{id}, exactly the request the harness sends.
--throttle adds limits that never trigger (account + stage buckets), kept in memory or in Redis
(IAMGATE_BENCH_REDIS, default redis://127.0.0.1:6379/15). --tls serves TLS on PORT with
DIR/chain.pem and DIR/key.pem (gateway.tls, the default security policy TLS_1_2). --auth iam
makes the route AWS_IAM, with one same-account user whose identity policy allows everything and
its key (IAM_ACCESS_KEY, IAM_SECRET): requests signed by :func:`sign_get` pass (the readiness
check and wrk send them; the API's policy then decides with the caller's policy, Table A).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
POLICIES = HERE / "policies"


def policy_for(name: str) -> dict[str, object] | None:
    if name == "allow-all":
        return None
    allow = json.loads((POLICIES / "allow-localhost-get-pets.json").read_text())
    if name == "localhost":
        return allow
    doc = json.loads((POLICIES / f"{name}.json").read_text())
    doc["Statement"] = [*doc["Statement"], *allow["Statement"]]
    return doc


ACCOUNT = "123456789012"
# --auth iam: a same-account IAM user whose identity policy allows everything, and its key
IAM_ACCESS_KEY = "AKIAHOTPATHBENCH0001"
IAM_SECRET = "hotpath/Bench+Secret0000000000000000000"


def iam_identities() -> dict[str, object]:
    """The ``identities`` section of ``--auth iam``: the user and its access key."""
    user = f"arn:aws:iam::{ACCOUNT}:user/bench"
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
    }
    return {
        "users": [{"arn": user, "policies": [allow_all]}],
        "access_keys": [{"id": IAM_ACCESS_KEY, "secret": IAM_SECRET, "owner": user}],
    }


def sign_get(url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` and what botocore's SigV4 signer adds to them for ``GET url`` now
    (``X-Amz-Date``, ``Authorization``), as the AWS SDKs sign: the gateway accepts the signature
    for 5 minutes (its clock skew), so a benchmark signs again for every run of wrk."""
    # only the iam rows need botocore
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    aws = AWSRequest(method="GET", url=url, headers=dict(headers or {}))
    SigV4Auth(Credentials(IAM_ACCESS_KEY, IAM_SECRET), "execute-api", "us-east-1").add_auth(aws)
    return dict(aws.headers.items())


def throttle_for(mode: str) -> tuple[dict[str, object], dict[str, object]]:
    """(top-level ``throttling`` section, the stage's settings) for a throttle that never triggers:
    the account bucket and a stage bucket, each far above any load a benchmark can offer."""
    if mode == "off":
        return {}, {}
    never = {"rate": 1e9, "burst": 1_000_000_000}
    section: dict[str, object] = {"account": never}
    if mode == "redis":
        url = os.environ.get("IAMGATE_BENCH_REDIS", "redis://127.0.0.1:6379/15")
        section.update({"backend": "redis", "redis": {"url": url}})
    return {"throttling": section}, {"throttling": never}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("upstream")
    parser.add_argument("policy", choices=["allow-all", "localhost", "small", "large"])
    parser.add_argument("--log", choices=["on", "off"], default="on")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--throttle", choices=["off", "memory", "redis"], default="off")
    parser.add_argument("--run", default=os.environ.get("TMPDIR", "/tmp"))
    parser.add_argument("--tls", metavar="DIR", help="serve TLS: DIR/chain.pem and DIR/key.pem")
    parser.add_argument("--auth", choices=["none", "iam"], default="none")
    args = parser.parse_args()
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    top, stage = throttle_for(args.throttle)
    api: dict[str, object] = {
        "id": "petapi",
        "stages": {"prod": stage},
        "routes": [
            {
                "path": "/pets/{id}",
                "method": "GET",
                "integration": {"type": "HTTP_PROXY", "uri": f"{args.upstream}/pets/{{id}}"},
            }
        ],
    }
    policy = policy_for(args.policy)
    if policy is not None:
        api["policy"] = policy
    if args.auth == "iam":
        api["routes"][0]["authorization"] = "AWS_IAM"  # type: ignore[index]
        top = {**top, "identities": iam_identities()}
    config = {
        "gateway": {
            "region": "us-east-1",
            "account_id": ACCOUNT,
            "max_policy_chars": None,
            "access_log": {"destination": str(run / f"iamgate-{args.port}-access.log")}
            if args.log == "on"
            else None,
            **(
                {"tls": {"certificate": f"{args.tls}/chain.pem", "key": f"{args.tls}/key.pem"}}
                if args.tls
                else {}
            ),
        },
        "apis": [api],
        **top,
    }
    path = run / f"iamgate-{args.port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    exe = Path(sys.executable).parent / "iamgate"
    os.execv(
        str(exe),
        [
            str(exe),
            "serve",
            "--config",
            str(path),
            "--port",
            str(args.port),
            "--admin-port",
            "0",
            "--workers",
            str(args.workers),
            "--no-watch",
        ],
    )


if __name__ == "__main__":
    main()
