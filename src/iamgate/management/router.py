"""Which handler answers a request: path templates in API Gateway's REST API form.

Each module named in :data:`ROUTE_MODULES` exports ``ROUTES``, a list of
:class:`~iamgate.management.core.Route`; :func:`load_routes` imports them (lazily, when the
management app is built) and :class:`Router` joins them. A template is the ``requestUri`` of
botocore's service model: ``/restapis/{restapi_id}/resources/{resource_id}``. A template may end
in a query condition, as the model writes ``ImportRestApi``: ``/restapis?mode=import`` matches
only requests with that query parameter and value, and wins over the same path without one.

Matching works on the raw path: it is split on ``/`` first and each parameter value is then
percent-decoded, so an encoded ``/`` (``%2F``, as in a tag's resource ARN) stays inside its
parameter. Among templates that fit, literal segments beat parameters, left to right. A path that
fits but not with the request's method is :class:`Unmatched` with the methods that would fit
(answered 405); no fit at all is :class:`Unmatched` with none (answered 404).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from iamgate.management.core import Route

__all__ = ["ROUTE_MODULES", "Matched", "Router", "Unmatched", "load_routes"]

# Modules whose ROUTES the management API serves, in no particular order (matching does not
# depend on it). Append a module here to serve its routes.
ROUTE_MODULES: list[str] = [
    "iamgate.management.restapis",
    "iamgate.management.resources",
    "iamgate.management.methods",
    "iamgate.management.integrations",
    "iamgate.management.authorizers",
    "iamgate.management.gatewayresponses",
    "iamgate.management.models",
    "iamgate.management.deployments",
    "iamgate.management.stages",
    "iamgate.management.openapi",
    "iamgate.management.keys",
    "iamgate.management.invoke",
    "iamgate.management.domains",
    "iamgate.management.method_responses",
]


def load_routes(modules: Iterable[str] | None = None) -> list[Route]:
    """Every route of ``modules`` (default: :data:`ROUTE_MODULES`). A module that cannot be
    imported or has no ``ROUTES`` list is an error (ImportError / TypeError): a half-served API
    would answer 404 for operations it claims to have."""
    routes: list[Route] = []
    for name in ROUTE_MODULES if modules is None else modules:
        module = importlib.import_module(name)
        found = getattr(module, "ROUTES", None)
        if not isinstance(found, list) or not all(isinstance(r, Route) for r in found):
            raise TypeError(f"{name}.ROUTES must be a list of iamgate.management.core.Route")
        routes.extend(found)
    return routes


@dataclass(frozen=True, slots=True)
class Matched:
    route: Route
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Unmatched:
    allowed: tuple[str, ...]  # methods that would fit the path; empty: no template fits at all


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: Route
    segments: tuple[tuple[bool, str], ...]  # (is_param, literal text or parameter name)
    query: tuple[tuple[str, str], ...]  # required query parameters and values
    rank: tuple[int, ...]  # 0 for a literal segment, 1 for a parameter: lower is more specific


def _compile(route: Route) -> _Compiled:
    path, _, query = route.template.partition("?")
    if not path.startswith("/"):
        raise ValueError(f"route template {route.template!r} must start with '/'")
    segments: list[tuple[bool, str]] = []
    for part in path.split("/")[1:]:
        if part.startswith("{") and part.endswith("}") and len(part) > 2:
            segments.append((True, part[1:-1]))
        elif "{" in part or "}" in part:
            raise ValueError(f"route template {route.template!r}: a parameter is a whole segment")
        else:
            segments.append((False, part))
    conditions: list[tuple[str, str]] = []
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        conditions.append((key, value))
    rank = tuple(1 if is_param else 0 for is_param, _ in segments)
    return _Compiled(route, tuple(segments), tuple(conditions), rank)


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        compiled = [_compile(r) for r in routes]
        seen: dict[tuple[str, tuple[tuple[bool, str], ...], tuple[tuple[str, str], ...]], str] = {}
        for c in compiled:
            shape = tuple((p, "" if p else text) for p, text in c.segments)
            key = (c.route.method.upper(), shape, tuple(sorted(c.query)))
            if key in seen:
                raise ValueError(f"routes {seen[key]!r} and {c.route.template!r} ({c.route.method}) clash")
            seen[key] = c.route.template
        # most specific first: literals before parameters (left to right), query conditions first
        self._routes = sorted(compiled, key=lambda c: (len(c.segments), c.rank, -len(c.query)))

    def match(self, method: str, raw_path: str, query: Mapping[str, list[str]]) -> Matched | Unmatched:
        parts = raw_path.split("/")[1:] if raw_path.startswith("/") else None
        if parts is None:
            return Unmatched(())
        allowed: list[str] = []
        best_rank: tuple[int, ...] | None = None
        for c in self._routes:
            if len(c.segments) != len(parts):
                continue
            params = _fit(c, parts)
            if params is None:
                continue
            if best_rank is not None and c.rank != best_rank:
                break  # a less specific template: only the most specific path shape counts
            if any(value not in query.get(key, ()) for key, value in c.query):
                continue
            best_rank = c.rank
            if c.route.method.upper() == method.upper():
                return Matched(c.route, params)
            if c.route.method.upper() not in allowed:
                allowed.append(c.route.method.upper())
        return Unmatched(tuple(allowed))


def _fit(c: _Compiled, parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for (is_param, text), part in zip(c.segments, parts, strict=True):
        if is_param:
            if not part:
                return None
            params[text] = unquote(part)
        elif part != text:
            return None
    return params
