"""Policy documents the tests write by hand: one statement for everyone on execute-api:Invoke,
and a 2012-10-17 document of statements."""

from __future__ import annotations

from typing import Any

__all__ = ["document", "statement"]


def statement(
    effect: str, resource: str = "execute-api:/*", condition: dict[str, Any] | None = None, sid: str = ""
) -> dict[str, Any]:
    """A statement with ``Principal: "*"`` and ``Action: execute-api:Invoke``."""
    st: dict[str, Any] = {
        "Effect": effect,
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": resource,
    }
    if sid:
        st["Sid"] = sid
    if condition:
        st["Condition"] = condition
    return st


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}
