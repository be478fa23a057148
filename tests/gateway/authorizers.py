"""Lambda-style authorizer handlers for the end-to-end tests, written as AWS Lambda handlers are.

The gateway runs them in-process (``function: tests.gateway.authorizers:token_handler``; the
gateway subprocess gets ``PYTHONPATH`` pointing at the repository), and the tests' loopback HTTP
endpoint (``tests/gateway/auth_support.py``) runs the very same :func:`lambda_handler` behind a
few lines of HTTP, as the docs describe.

The token says what the authorizer answers: ``VERB:NONCE`` (tests use a fresh nonce each time,
so the gateway's per-token cache never leaks between tests):

============== =============================================================================
allow          Allow ``{api}/{stage}/*``; principalId ``user-NONCE``; context tier/count/admin
only           Allow exactly ``event.methodArn`` (the classic caching pitfall)
silent         Allow a path nobody calls: the policy does not cover the method (implicit deny)
deny           Deny ``{api}/{stage}/*`` (explicit deny)
key            Allow, with ``usageIdentifierKey`` = NONCE (``api_key_source: AUTHORIZER``)
unauthorized   raise ``Exception("Unauthorized")``: 401
boom           raise something else: 500 AuthorizerConfigurationException
noprincipal    output without principalId
nopolicy       output without policyDocument
badpolicy      a policyDocument that is not a valid policy
objcontext     a context value that is an object
sleep          answer only after 3 s (longer than the authorizers' timeout)
============== =============================================================================

When the environment variable ``IAMGATE_TEST_AUTHORIZER_LOG`` names a file, every invocation
appends its event (and the Lambda context's function name) there as one JSON line: the tests
count invocations by reading it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

LOG_ENV = "IAMGATE_TEST_AUTHORIZER_LOG"
SLEEP_SECONDS = 3.0
_lock = threading.Lock()


def record(event: dict[str, Any], context: Any) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = json.dumps({"event": event, "function": getattr(context, "function_name", None)})
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def token_of(event: dict[str, Any]) -> str:
    """TOKEN: the header value; REQUEST: the ``X-Token`` header, else the ``q`` query parameter."""
    if event.get("type") == "TOKEN":
        return str(event.get("authorizationToken") or "")
    headers = event.get("headers") or {}
    query = event.get("queryStringParameters") or {}
    return str(headers.get("X-Token") or query.get("q") or "")


def _statement(effect: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource}],
    }


def decide(event: dict[str, Any]) -> Any:
    """The authorizer's answer for an event (raises for ``unauthorized`` and ``boom``)."""
    token = token_of(event)
    verb, _, nonce = token.partition(":")
    method_arn = str(event["methodArn"])
    prefix, _, rest = method_arn.rpartition(":")
    api, stage = rest.split("/")[:2]
    everything = f"{prefix}:{api}/{stage}/*"
    principal = f"user-{nonce}"
    context = {"tier": "gold", "count": 3, "admin": False}
    if verb == "unauthorized":
        raise Exception("Unauthorized")
    if verb == "boom":
        raise ValueError("the authorizer broke")
    if verb == "only":
        return {
            "principalId": principal,
            "policyDocument": _statement("Allow", method_arn),
            "context": context,
        }
    if verb == "silent":
        return {
            "principalId": principal,
            "policyDocument": _statement("Allow", f"{prefix}:{api}/{stage}/GET/none"),
        }
    if verb == "deny":
        return {"principalId": principal, "policyDocument": _statement("Deny", everything)}
    if verb == "key":
        return {
            "principalId": principal,
            "policyDocument": _statement("Allow", everything),
            "usageIdentifierKey": nonce,
        }
    if verb == "noprincipal":
        return {"policyDocument": _statement("Allow", everything)}
    if verb == "nopolicy":
        return {"principalId": principal}
    if verb == "badpolicy":
        return {
            "principalId": principal,
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]},
        }
    if verb == "objcontext":
        return {
            "principalId": principal,
            "policyDocument": _statement("Allow", everything),
            "context": {"o": {"a": 1}},
        }
    # allow (and anything else a test sends on purpose)
    return {"principalId": principal, "policyDocument": _statement("Allow", everything), "context": context}


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    """A synchronous Lambda authorizer (TOKEN or REQUEST)."""
    record(event, context)
    if token_of(event).startswith("sleep:"):
        time.sleep(SLEEP_SECONDS)  # the behaviour under test: an authorizer slower than its timeout
    return decide(event)


token_handler = lambda_handler
request_handler = lambda_handler


async def async_token_handler(event: dict[str, Any], context: Any) -> Any:
    """The same authorizer as a coroutine function."""
    record(event, context)
    if token_of(event).startswith("sleep:"):
        await asyncio.sleep(SLEEP_SECONDS)  # as above: slower than its timeout
    return decide(event)
