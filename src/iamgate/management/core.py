"""The seam every management-API handler is written against.

The management API speaks Amazon API Gateway's REST API (the ``apigateway`` service: JSON bodies,
AWS's paths, status codes and error shapes) so the AWS CLI and boto3 work against iamgate by
changing only the endpoint. It is served on the admin port when a store is configured.

A handler is ``async def handler(call: Call) -> Reply``; modules export ``ROUTES``, a list of
:class:`Route` (method, path template, handler), and the router joins them. Handlers raise
:class:`ApiError` for AWS-shaped errors. The store is synchronous: run its transactions through
:meth:`Call.in_store` (a worker thread), never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from iamgate.config.model import GatewayConfig
from iamgate.store.base import Store

__all__ = [
    "ApiError",
    "Call",
    "GatewayContext",
    "Handler",
    "Reply",
    "Route",
    "bad_request",
    "conflict",
    "not_found",
    "storable",
    "storable_text",
]

# what PostgreSQL's text and jsonb cannot hold: a NUL, and lone surrogates (not UTF-8 at all)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

T = TypeVar("T")


class ApiError(Exception):
    """An error as API Gateway answers it: ``status``, the exception name (``x-amzn-ErrorType``
    header and ``__type``) and a message."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequestException", message)


def _unstorable(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    kind = "a NUL character" if char == "\x00" else "a lone surrogate"
    return f"{kind} (\\u{ord(char):04x})"


def storable_text(text: str, what: str) -> None:
    """Refuse a NUL or a lone surrogate in one string (a path parameter, a query value)."""
    bad = _unstorable(text)
    if bad is not None:
        raise bad_request(f"{what} contains {bad}")


def storable(value: object, what: str, whose: str = "") -> None:
    """Refuse what no store can keep: a NUL character in a string (PostgreSQL's ``jsonb`` and
    ``text`` cannot hold one), a lone surrogate (not even UTF-8) and numbers that are not finite
    (NaN and infinities are not JSON). Checked where bodies come in, so every store answers
    alike: 400 naming the place, never a 503 from the store or a document only one kind of store
    accepts. ``whose`` names the document when it is not the body itself (``the policy's``)."""
    the = f"{whose} " if whose else "the "
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            bad = _unstorable(item)
            if bad is not None:
                raise bad_request(f"{what}: {the}string at '{where or '/'}' contains {bad}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise bad_request(f"{what}: {the}number at '{where or '/'}' is {item}, not a finite number")
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = str(key).replace("~", "~0").replace("/", "~1")
                bad = _unstorable(key) if isinstance(key, str) else None
                if bad is not None:
                    raise bad_request(
                        f"{what}: {'a ' if not whose else the}name in '{where or '/'}' contains {bad}"
                    )
                stack.append((sub, f"{where}/{name}"))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}/{i}") for i, sub in enumerate(item))


def _policies(body: dict[str, Any]) -> list[str]:
    """The policy documents a body carries as JSON text (CreateRestApi's ``policy``, a patch
    operation on ``/policy``): they are stored as objects once deployed, so what they hold must
    be storable too."""
    found = [body["policy"]] if isinstance(body.get("policy"), str) else []
    operations = body.get("patchOperations")
    for op in operations if isinstance(operations, list) else []:
        if isinstance(op, dict) and op.get("path") == "/policy" and isinstance(op.get("value"), str):
            found.append(op["value"])
    return found


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFoundException", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "ConflictException", message)


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable (dict/list), bytes (sent as is), or None (no body)
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


@dataclass(slots=True)
class GatewayContext:
    """What handlers may know of the running gateway."""

    config: Callable[[], GatewayConfig]  # the configuration being served now (settings, identities)
    usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]] | None = None  # GetUsage reports
    base_dir: Any = None  # the configuration file's directory (relative paths), or None


@dataclass(slots=True)
class Call:
    method: str
    path: str  # decoded path, e.g. /restapis/abc123/resources
    params: dict[str, str]  # path template values
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    store: Store
    gateway: GatewayContext
    caller: str | None = None  # the authenticated caller's ARN (None: authentication is off)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty); BadRequestException otherwise."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body, parse_constant=_no_constant)
        except ValueError as exc:
            raise bad_request(f"Invalid JSON in the request body: {exc}") from None
        if not isinstance(value, dict):
            raise bad_request("The request body must be a JSON object")
        storable(value, "Invalid request body")
        for text in _policies(value):
            try:
                document = json.loads(text, parse_constant=_no_constant)
            except ValueError:
                continue  # not JSON: the policy's own validation says where and why
            storable(document, "Invalid request body", "the policy's")
        return value

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    async def in_store(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str  # GET, POST, PUT, PATCH, DELETE
    template: str  # e.g. /restapis/{restapi_id}/resources/{resource_id}
    handler: Handler
