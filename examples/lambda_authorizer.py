"""A Lambda TOKEN authorizer, and the few lines of HTTP that let iamgate call it (docs/authentication.md).

iamgate runs it either in-process (``function: lambda_authorizer:handler`` with ``examples`` on
``PYTHONPATH``) or over HTTP::

    python examples/lambda_authorizer.py 9001        # serves POST http://127.0.0.1:9001/

``handler`` is written exactly as for AWS Lambda: it gets the TOKEN event and returns the IAM
policy output. Tokens name users; ``bob`` is on the free tier and may only read. The policy
covers the whole stage (``.../prod/*``), so a cached answer fits every method of it.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USERS = {"alice-token": ("alice", "gold"), "bob-token": ("bob", "free")}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    user = USERS.get(event["authorizationToken"])
    if user is None:
        raise Exception("Unauthorized")
    name, tier = user
    # arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/VERB/PATH -> everything in this stage
    arn_prefix, _, rest = event["methodArn"].rpartition(":")
    api, stage = rest.split("/")[:2]
    statements = [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{arn_prefix}:{api}/{stage}/*"}
    ]
    if tier == "free":
        statements.append(
            {
                "Effect": "Deny",
                "Action": "execute-api:Invoke",
                "Resource": f"{arn_prefix}:{api}/{stage}/DELETE/*",
            }
        )
    return {
        "principalId": name,
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": {"tier": tier},
    }


class _Http(BaseHTTPRequestHandler):
    """POST the event JSON, get the output JSON; ``{"errorMessage": ...}`` with 500 on an error
    (the Lambda runtime's shape: iamgate maps ``Unauthorized`` to 401, anything else to 500)."""

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        try:
            status, output = 200, handler(event, None)
        except Exception as exc:
            status, output = 500, {"errorMessage": str(exc), "errorType": type(exc).__name__}
        body = json.dumps(output).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
    server = ThreadingHTTPServer(("127.0.0.1", port), _Http)
    print(f"authorizer listening on http://127.0.0.1:{port}/", flush=True)
    server.serve_forever()
