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
]

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


def storable(value: object, what: str) -> None:
    """Refuse what no store can keep: a NUL character in a string (PostgreSQL's ``jsonb`` and
    ``text`` cannot hold one) and numbers that are not finite (NaN and infinities are not JSON).
    Checked where bodies come in, so every store answers alike: 400 naming the place, never a 503
    from the store or a document only one kind of store accepts."""
    nul = "a NUL character (\\u0000)"
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise bad_request(f"{what}: the string at '{where or '/'}' contains {nul}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise bad_request(f"{what}: the number at '{where or '/'}' is {item}, not a finite number")
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = str(key).replace("~", "~0").replace("/", "~1")
                if isinstance(key, str) and "\x00" in key:
                    raise bad_request(f"{what}: a name in '{where or '/'}' contains {nul}")
                stack.append((sub, f"{where}/{name}"))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}/{i}") for i, sub in enumerate(item))


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
