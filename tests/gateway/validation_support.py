"""An in-process authorizer for tests/gateway/test_validation.py: it answers only after a pause,
so that a request's body arrives while the authorize stage waits (the validate stage, after
it, must still see that body)."""

from __future__ import annotations

import asyncio
from typing import Any

PAUSE = 0.4  # seconds: longer than the test waits between the request's head and its body


async def slow_allow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    await asyncio.sleep(PAUSE)
    prefix, _, rest = str(event["methodArn"]).rpartition(":")
    api, stage = rest.split("/")[:2]
    statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{prefix}:{api}/{stage}/*"}
    return {"principalId": "user", "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
