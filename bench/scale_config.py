"""A generated configuration of many APIs, for the scale benchmark and the scale tests.

Each API has ``routes`` routes (literal paths, a path parameter, a greedy proxy route, several
methods) answered by MOCK integrations that name their API and route, a 5-statement resource
policy (source networks, an explicit deny, a principal, a condition on time and one on the
user agent) that differs per API in its addresses, and one stage ``prod``. Every API is reached
as ``Host: {api-id}.execute-api.localhost``.

    python bench/scale_config.py --apis 1000 --out /tmp/scale.yaml
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "111122223333"


def api_id(index: int) -> str:
    """A stable 10-character API id, as API Gateway's ids look (lower-case letters and digits)."""
    return "s" + hashlib.sha256(str(index).encode()).hexdigest()[:9]


def policy(index: int, *, statements: int = 5) -> dict[str, Any]:
    """Five statements; the networks differ per API, so no two APIs' policies are the same text."""
    net = f"10.{index // 256 % 256}.{index % 256}.0/24"
    body: list[dict[str, Any]] = [
        {
            "Sid": "FromTheOffice",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/prod/*",
            "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1", net]}},
        },
        {
            "Sid": "NobodyReachesAdmin",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*/*/admin*",
        },
        {
            "Sid": "TheAuditRole",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/audit-{index}"},
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/prod/GET/*",
        },
        {
            "Sid": "NotAfterTheMigration",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/prod/DELETE/*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        },
        {
            "Sid": "NoScanners",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
            "Condition": {"StringLike": {"aws:UserAgent": ["*sqlmap*", "*nikto*"]}},
        },
    ]
    return {"Version": "2012-10-17", "Statement": body[:statements]}


ROUTE_SHAPES = (
    ("/health", "GET"),
    ("/items", "GET"),
    ("/items", "POST"),
    ("/items/{id}", "GET"),
    ("/items/{id}", "PUT"),
    ("/items/{id}", "DELETE"),
    ("/items/{id}/tags", "GET"),
    ("/users/{user}/orders", "GET"),
    ("/admin", "ANY"),
    ("/files/{proxy+}", "GET"),
)


def routes(index: int, count: int) -> list[dict[str, Any]]:
    out = []
    for n in range(count):
        path, method = ROUTE_SHAPES[n % len(ROUTE_SHAPES)]
        if n >= len(ROUTE_SHAPES):
            path = f"/v{n // len(ROUTE_SHAPES)}{path}"
        out.append(
            {
                "path": path,
                "method": method,
                "integration": {"type": "MOCK", "status": 200, "body": f"{api_id(index)} {method} {path}"},
            }
        )
    return out


def api(index: int, *, routes_per_api: int = 10, statements: int = 5) -> dict[str, Any]:
    return {
        "id": api_id(index),
        "name": f"service-{index}",
        "policy": policy(index, statements=statements),
        "stages": {"prod": {}},
        "routes": routes(index, routes_per_api),
    }


def config(apis: int, *, routes_per_api: int = 10, statements: int = 5) -> dict[str, Any]:
    return {
        "gateway": {"region": "us-east-1", "account_id": ACCOUNT},
        "apis": [api(i, routes_per_api=routes_per_api, statements=statements) for i in range(apis)],
    }


def write(path: Path, apis: int, *, routes_per_api: int = 10, statements: int = 5) -> Path:
    doc = config(apis, routes_per_api=routes_per_api, statements=statements)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(doc, Dumper=dumper, sort_keys=False))
    return path


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--apis", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=10)
    parser.add_argument("--statements", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write(args.out, args.apis, routes_per_api=args.routes, statements=args.statements)
    print(args.out)


if __name__ == "__main__":
    main()
