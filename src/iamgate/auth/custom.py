"""Lambda-style (``CUSTOM``) authorizers: TOKEN and REQUEST, as API Gateway runs them.

The authorizer is a function that receives AWS's event and returns AWS's output
(``principalId``, ``policyDocument``, ``context``, ``usageIdentifierKey``). iamgate runs it
either in-process (a Python callable ``module:function``, sync or async: an existing Lambda
handler works unchanged) or over HTTP (the event is POSTed as JSON to a URL; a few lines of
HTTP in front of a Lambda handler serve it).

* Identity sources are checked before any call: a missing or empty source (TOKEN always;
  REQUEST when caching is on) or a token failing ``identityValidationExpression`` is 401
  without invoking anything.
* Results are cached per identity-source values for the TTL (default 300 s, 0 = off, at most
  3600); what is cached is the *policy*, which is evaluated again for each method ARN — so an
  authorizer that allows only ``event.methodArn`` denies the next path during the TTL, exactly
  as on AWS.
* Errors: the function answering ``Unauthorized`` is 401; any other error, a timeout or an
  output that is not valid is 500 ``AuthorizerConfigurationException`` (never cached).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from iamgate.policy import CompiledPolicy, PolicyKind, prepare
from iamgate.upstream.fetch import FetchError, fetch
from iamgate.upstream.pool import UpstreamPools

__all__ = [
    "AuthorizerError",
    "AuthorizerResult",
    "CustomAuthorizer",
    "IdentitySource",
    "RequestFacts",
    "Unauthorized",
    "load_callable",
    "parse_identity_sources",
]

_SOURCE = re.compile(r"(method\.request\.header|method\.request\.querystring|stageVariables|context)\.(.+)")


class Unauthorized(Exception):
    """401 ``{"message":"Unauthorized"}``."""


class AuthorizerError(Exception):
    """500 ``AuthorizerConfigurationException``: the authorizer failed or answered nonsense."""


@dataclass(frozen=True, slots=True)
class IdentitySource:
    kind: str  # header | querystring | stageVariables | context
    name: str
    text: str  # as configured


def parse_identity_sources(text: str) -> list[IdentitySource]:
    """``method.request.header.Authorization, method.request.querystring.token`` -> sources.
    Raises ValueError with the reason."""
    out = []
    for raw in text.split(","):
        item = raw.strip()
        m = _SOURCE.fullmatch(item)
        if not m:
            raise ValueError(
                f"'{item}' is not an identity source; use method.request.header.NAME, "
                "method.request.querystring.NAME, stageVariables.NAME or context.NAME"
            )
        prefix, name = m.groups()
        kind = {"method.request.header": "header", "method.request.querystring": "querystring"}.get(
            prefix, prefix
        )
        out.append(IdentitySource(kind, name, item))
    if not out:
        raise ValueError("no identity source given")
    return out


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the authorizer event is built from (the gateway fills it from the exchange)."""

    method_arn: str
    http_method: str
    resource_path: str  # the template, /pets/{id}
    path: str  # the canonical path after the stage
    stage: str
    api_id: str
    account_id: str
    request_id: str
    source_ip: str
    headers: list[tuple[str, str]]  # original names, arrival order
    query: bytes
    path_parameters: dict[str, str]
    stage_variables: dict[str, str]
    api_key: str | None = None
    context_path: str | None = None  # $context.path (None: /{stage}{path})
    client_cert: dict[str, Any] | None = None  # $context.identity.clientCert (mutual TLS)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        values = [v for k, v in self.headers if k.lower() == lowered]
        return ",".join(values) if values else None

    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query.decode("latin-1"), keep_blank_values=True)

    def context_value(self, name: str) -> str | None:
        return {
            "requestId": self.request_id,
            "stage": self.stage,
            "apiId": self.api_id,
            "accountId": self.account_id,
            "httpMethod": self.http_method,
            "resourcePath": self.resource_path,
            "identity.sourceIp": self.source_ip,
        }.get(name)


@dataclass(frozen=True, slots=True)
class AuthorizerResult:
    principal_id: str
    policy: CompiledPolicy
    context: dict[str, str]
    usage_identifier_key: str | None
    cached: bool = False


def load_callable(spec: str) -> Callable[..., Any]:
    """``package.module:function``; raises ValueError with the reason."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"'{spec}' is not module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{module_name} has no callable {attr}")
    return fn  # type: ignore[no-any-return]


class _LambdaContext:
    """The bits of a Lambda context object handlers commonly read."""

    def __init__(self, name: str, request_id: str, timeout: float) -> None:
        self.function_name = name
        self.aws_request_id = request_id
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{name}"
        self.memory_limit_in_mb = 128
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class CustomAuthorizer:
    """One configured Lambda-style authorizer of one API."""

    name: str
    type: str  # TOKEN | REQUEST
    sources: list[IdentitySource]
    ttl: int = 300
    validation: re.Pattern[str] | None = None
    url: str | None = None
    function: Callable[..., Any] | None = None
    timeout: float = 10.0
    max_entries: int = 10_000
    _cache: OrderedDict[tuple[str, ...], tuple[float, AuthorizerResult]] = field(default_factory=OrderedDict)

    # --- before invoking ---------------------------------------------------------------------
    def identity(self, facts: RequestFacts) -> tuple[str, ...]:
        """The identity-source values (the cache key); raises :class:`Unauthorized` when a source
        is missing or empty (TOKEN always; REQUEST when caching is on) or fails the regex."""
        values = []
        for source in self.sources:
            value = self._value(source, facts)
            if (value is None or value == "") and (self.type == "TOKEN" or self.ttl > 0):
                raise Unauthorized(f"identity source {source.text} is missing")
            values.append(value or "")
        if self.type == "TOKEN" and self.validation is not None and not self.validation.fullmatch(values[0]):
            raise Unauthorized("the token does not match the identity validation expression")
        return (facts.stage, *values)

    @staticmethod
    def _value(source: IdentitySource, facts: RequestFacts) -> str | None:
        if source.kind == "header":
            return facts.header(source.name)
        if source.kind == "querystring":
            values = [v for k, v in facts.query_params() if k == source.name]
            return ",".join(values) if values else None
        if source.kind == "stageVariables":
            return facts.stage_variables.get(source.name)
        return facts.context_value(source.name)

    # --- the call ----------------------------------------------------------------------------
    def event(self, facts: RequestFacts) -> dict[str, Any]:
        if self.type == "TOKEN":
            token = facts.header(self.sources[0].name)
            return {"type": "TOKEN", "authorizationToken": token, "methodArn": facts.method_arn}
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in facts.headers:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in facts.query_params():
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        identity: dict[str, Any] = {
            "sourceIp": facts.source_ip,
            "userAgent": facts.header("user-agent"),
            "apiKey": facts.api_key,
        }
        if facts.client_cert is not None:
            identity["clientCert"] = facts.client_cert
        return {
            "type": "REQUEST",
            "methodArn": facts.method_arn,
            "resource": facts.resource_path,
            "path": facts.path,
            "httpMethod": facts.http_method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": dict(facts.path_parameters),
            "stageVariables": dict(facts.stage_variables),
            "requestContext": {
                "accountId": facts.account_id,
                "apiId": facts.api_id,
                "resourcePath": facts.resource_path,
                "stage": facts.stage,
                "requestId": facts.request_id,
                "httpMethod": facts.http_method,
                "path": facts.context_path or f"/{facts.stage}{facts.path}",
                "identity": identity,
            },
        }

    async def authorize(self, facts: RequestFacts, pools: UpstreamPools) -> AuthorizerResult:
        """Raises :class:`Unauthorized` or :class:`AuthorizerError`."""
        key = self.identity(facts)
        now = time.monotonic()
        if self.ttl > 0:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(key)
                result = hit[1]
                return AuthorizerResult(
                    result.principal_id,
                    result.policy,
                    result.context,
                    result.usage_identifier_key,
                    cached=True,
                )
        event = self.event(facts)
        try:
            async with asyncio.timeout(self.timeout):
                output = await self._invoke(event, facts.request_id, pools)
        except TimeoutError:
            raise AuthorizerError(
                f"authorizer {self.name} did not answer within {self.timeout:g} s"
            ) from None
        result = parse_output(output, self.name)
        if self.ttl > 0:
            self._cache[key] = (now + self.ttl, result)
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return result

    async def _invoke(self, event: dict[str, Any], request_id: str, pools: UpstreamPools) -> Any:
        if self.function is not None:
            context = _LambdaContext(self.name, request_id, self.timeout)
            try:
                if inspect.iscoroutinefunction(self.function):
                    return await self.function(event, context)
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, self.function, event, context)
            except Exception as exc:
                if str(exc) == "Unauthorized":
                    raise Unauthorized("the authorizer answered Unauthorized") from None
                raise AuthorizerError(f"authorizer {self.name} raised {type(exc).__name__}: {exc}") from None
        assert self.url is not None
        try:
            response = await fetch(
                pools,
                "POST",
                self.url,
                body=json.dumps(event).encode(),
                headers=[("Content-Type", "application/json")],
                timeout=self.timeout,
            )
        except FetchError as exc:
            raise AuthorizerError(f"authorizer {self.name} at {self.url}: {exc}") from None
        try:
            payload = json.loads(response.body) if response.body.strip() else None
        except ValueError:
            payload = None
        if response.status == 401 or (
            isinstance(payload, dict) and payload.get("errorMessage") == "Unauthorized"
        ):
            raise Unauthorized("the authorizer answered Unauthorized")
        if response.status != 200:
            raise AuthorizerError(f"authorizer {self.name} answered HTTP {response.status}")
        if payload is None:
            raise AuthorizerError(f"authorizer {self.name} answered something that is not JSON")
        return payload


def parse_output(output: Any, name: str) -> AuthorizerResult:
    """Validate an authorizer's output (AWS's Lambda authorizer output); raises :class:`AuthorizerError`."""
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            raise AuthorizerError(f"authorizer {name} returned a string that is not JSON") from None
    if not isinstance(output, dict):
        raise AuthorizerError(f"authorizer {name} returned {type(output).__name__}, not an object")
    principal = output.get("principalId")
    if not isinstance(principal, str | int) or isinstance(principal, bool):
        raise AuthorizerError(f"authorizer {name}: principalId is missing or not a string")
    document = output.get("policyDocument")
    if isinstance(document, str):
        source: Any = document
    elif isinstance(document, dict):
        source = document
    else:
        raise AuthorizerError(f"authorizer {name}: policyDocument is missing")
    prepared = prepare(source, kind=PolicyKind.IDENTITY, max_chars=None)
    if prepared.policy is None:
        problems = "; ".join(f"{d.location.pointer or '/'}: {d.message}" for d in prepared.errors[:3])
        raise AuthorizerError(f"authorizer {name}: could not parse policy: {problems}")
    context_raw = output.get("context") or {}
    if not isinstance(context_raw, dict):
        raise AuthorizerError(f"authorizer {name}: context is not an object")
    context: dict[str, str] = {}
    for key, value in context_raw.items():
        if key == "claims":
            raise AuthorizerError(f"authorizer {name}: context.claims is reserved")
        if isinstance(value, bool):
            context[str(key)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            context[str(key)] = str(value)
        else:
            raise AuthorizerError(f"authorizer {name}: context.{key} is not a string, number or boolean")
    usage = output.get("usageIdentifierKey")
    if usage is not None and not isinstance(usage, str):
        raise AuthorizerError(f"authorizer {name}: usageIdentifierKey is not a string")
    return AuthorizerResult(str(principal), prepared.policy, context, usage)
