"""Reading an API's ``cors`` block and expanding it into the objects API Gateway's console
"Enable CORS" writes (docs/cors.md), so that what is served, applied to a store and exported is
what AWS would hold:

* on every resource that has routes and no ``OPTIONS`` route, an ``OPTIONS`` route with
  authorization ``NONE`` and a MOCK integration answering 200 with the ``Access-Control-Allow-*``
  headers and an empty body (the preflight answer);
* on every MOCK route of the API, ``Access-Control-Allow-Origin`` on its answer (the console adds
  it to the integration response of non-proxy methods; HTTP_PROXY backends send it themselves);
* unless ``gateway_responses: false``, ``DEFAULT_4XX`` and ``DEFAULT_5XX`` gateway responses that
  add the headers to every error answer of the API; a gateway response the API declares itself
  wins over the generated one of its type.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from iamgate.config._reader import Reader
from iamgate.config.model import GatewayResponseConfig, MockIntegration, RouteConfig
from iamgate.policy.diagnostics import did_you_mean
from iamgate.routing.tree import METHODS, parse_template

__all__ = [
    "DEFAULT_ALLOW_HEADERS",
    "CorsSettings",
    "apply_cors",
    "expand_routes",
    "gateway_responses",
    "read_cors",
]

# what the console offers in its Access-Control-Allow-Headers field
DEFAULT_ALLOW_HEADERS: Final[tuple[str, ...]] = (
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
)
# an HTTP token without "'": header values are written as API Gateway's quoted literals ('...')
_HEADER_NAME = re.compile(r"[!#$%&*+.^_`|~0-9A-Za-z-]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_DNS_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_ORIGIN_HELP = (
    "'*' or one origin as browsers send it: scheme://host[:port] in lower case, without a path, "
    "a trailing '/' or the scheme's default port, e.g. https://app.example.com or http://localhost:3000"
)
_KEYS = {
    "allow_origin": True,
    "allow_methods": False,
    "allow_headers": False,
    "expose_headers": False,
    "max_age": False,
    "allow_credentials": False,
    "gateway_responses": False,
}
_MAX_AGE = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CorsSettings:
    """An API's ``cors`` block, checked."""

    allow_origin: str
    allow_methods: tuple[str, ...] | None = None  # None: each resource's methods + OPTIONS
    allow_headers: tuple[str, ...] = DEFAULT_ALLOW_HEADERS
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False
    gateway_responses: bool = True


def read_cors(r: Reader, raw: object, ptr: str) -> CorsSettings | None:
    """An API's ``cors`` block; None when it has any error (reported)."""
    m = r.mapping(raw, ptr, "cors", _KEYS)
    if m is None:
        return None
    before = len([d for d in r.diags if d.is_error])
    origin = _origin(r, m["allow_origin"], f"{ptr}/allow_origin") if "allow_origin" in m else None
    methods = _methods(r, m["allow_methods"], f"{ptr}/allow_methods") if "allow_methods" in m else None
    headers = DEFAULT_ALLOW_HEADERS
    if "allow_headers" in m:
        headers = _names(r, m["allow_headers"], f"{ptr}/allow_headers", "allow_headers", star=True)
    expose: tuple[str, ...] = ()
    if "expose_headers" in m:
        expose = _names(r, m["expose_headers"], f"{ptr}/expose_headers", "expose_headers", star=True)
    max_age = None
    if "max_age" in m:
        n = r.number(m["max_age"], f"{ptr}/max_age", "max_age", low=0, high=_MAX_AGE, integer=True)
        max_age = None if n is None else int(n)
    credentials = False
    if "allow_credentials" in m:
        credentials = bool(r.boolean(m["allow_credentials"], f"{ptr}/allow_credentials", "allow_credentials"))
    responses = True
    if "gateway_responses" in m:
        value = r.boolean(m["gateway_responses"], f"{ptr}/gateway_responses", "gateway_responses")
        responses = True if value is None else value
    if credentials:
        _credentials_with_wildcards(r, ptr, origin, methods, headers, expose)
    if origin is None or len([d for d in r.diags if d.is_error]) > before:
        return None
    return CorsSettings(origin, methods, headers, expose, max_age, credentials, responses)


def _origin(r: Reader, raw: object, ptr: str) -> str | None:
    """``*`` or a serialised origin (RFC 6454): browsers compare Access-Control-Allow-Origin with
    their Origin header byte for byte, so a value they never send is refused, not served."""
    text = r.string(raw, ptr, "allow_origin", help=_ORIGIN_HELP)
    if text is None or text == "*":
        return text
    problem = _origin_problem(text)
    if problem is not None:
        r.report("invalid-value", ptr, f"allow_origin '{text}' {problem}", _ORIGIN_HELP)
        return None
    return text


def _origin_problem(text: str) -> str | None:
    """Why ``text`` is not an origin a browser sends, or None."""
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme:
        return "is not '*' nor scheme://host[:port]"
    if not _SCHEME.fullmatch(scheme):
        return "has an invalid or upper-case scheme"
    if any(c in rest for c in "/?#"):
        return "has a path, query or fragment (an origin has none, not even a trailing '/')"
    if "@" in rest:
        return "has user information (an origin has none)"
    host, port = rest, None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return "has an unclosed '[' around an IPv6 address"
        host, after = rest[: end + 1], rest[end + 1 :]
        if after:
            if not after.startswith(":"):
                return "has text after the IPv6 address"
            port = after[1:]
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"has an invalid IPv6 address {host}"
        if f"[{address.compressed}]" != host:
            return f"writes the IPv6 address as browsers do not (they send [{address.compressed}])"
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    if not host.startswith("[") and not _DNS_NAME.fullmatch(host):
        if host.lower() != host:
            return "has upper-case letters in its host (browsers send it in lower case)"
        return f"has an invalid host '{host}'"
    if port is not None:
        if not port.isascii() or not port.isdigit() or int(port) > 65535 or port != str(int(port)):
            return f"has an invalid port '{port}'"
        if _DEFAULT_PORTS.get(scheme) == int(port):
            return f"names the default port {port} of {scheme} (browsers leave it out of the origin)"
    return None


def _methods(r: Reader, raw: object, ptr: str) -> tuple[str, ...] | None:
    """``allow_methods``: HTTP methods (any case, stored upper-case) or ``*`` alone."""
    items = r.sequence(raw, ptr, "allow_methods")
    if items is None:
        return None
    if not items:
        r.report("invalid-value", ptr, "allow_methods is empty", "leave it out for each resource's methods")
        return None
    out: list[str] = []
    ok = True
    for i, item in enumerate(items):
        method = r.string(item, f"{ptr}/{i}", "method")
        if method is None:
            ok = False
            continue
        upper = method.upper()
        if upper == "*" and len(items) == 1:
            out.append(upper)
        elif upper not in METHODS:
            hint = did_you_mean(upper, METHODS)
            r.report(
                "invalid-value",
                f"{ptr}/{i}",
                f"method '{method}' is not valid in allow_methods",
                (hint + " " if hint else "") + "one of: " + ", ".join(METHODS) + " (or '*' alone)",
            )
            ok = False
        elif upper in out:
            r.report("invalid-value", f"{ptr}/{i}", f"method '{method}' is listed twice")
            ok = False
        else:
            out.append(upper)
    return tuple(out) if ok else None


def _names(r: Reader, raw: object, ptr: str, what: str, *, star: bool) -> tuple[str, ...]:
    """A list of header names (``*`` alone allowed when ``star``); () on errors (reported)."""
    items = r.sequence(raw, ptr, what)
    if items is None:
        return ()
    out: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = r.string(item, f"{ptr}/{i}", "header name")
        if name is None:
            continue
        if name == "*" and star and len(items) == 1:
            out.append(name)
        elif not _HEADER_NAME.fullmatch(name) or "*" in name:
            r.report(
                "invalid-value",
                f"{ptr}/{i}",
                f"'{name}' is not a header name",
                "letters, digits and !#$%&*+.^_`|~- (no spaces, commas or quotes); '*' only alone",
            )
        elif name.lower() in seen:
            r.report("invalid-value", f"{ptr}/{i}", f"header '{name}' is listed twice")
        else:
            seen.add(name.lower())
            out.append(name)
    return tuple(out)


def _credentials_with_wildcards(
    r: Reader,
    ptr: str,
    origin: str | None,
    methods: tuple[str, ...] | None,
    headers: tuple[str, ...],
    expose: tuple[str, ...],
) -> None:
    """With credentials, browsers refuse ``Access-Control-Allow-Origin: *`` and take ``*`` in the
    other lists as a literal name: both are errors."""
    if origin == "*":
        r.report(
            "invalid-value",
            f"{ptr}/allow_credentials",
            "allow_credentials: true with allow_origin '*': browsers refuse credentialed answers "
            "whose Access-Control-Allow-Origin is '*'",
            "name the one origin that may send credentials, e.g. allow_origin: https://app.example.com",
        )
    lists = (("allow_methods", methods or ()), ("allow_headers", headers), ("expose_headers", expose))
    for key, values in lists:
        if values == ("*",):
            r.report(
                "invalid-value",
                f"{ptr}/{key}",
                f"{key}: ['*'] with allow_credentials: true: browsers read '*' as a literal name "
                "in credentialed answers",
                "list the names",
            )


# --- the expansion -------------------------------------------------------------------------------


def _resource_key(path: str) -> str:
    """A resource's shape: two paths with one shape are one resource (as the route reader says)."""
    return "/" + "/".join(s.value if s.kind == "literal" else "{}" for s in parse_template(path))


def _methods_value(methods: set[str]) -> str:
    """The Access-Control-Allow-Methods value the console writes: the methods and OPTIONS in
    alphabetical order, comma-separated without spaces (ANY stands for every method)."""
    verbs = set(METHODS) if "ANY" in methods else set(methods)
    return ",".join(sorted(verbs | {"OPTIONS"}))


def _common_headers(cors: CorsSettings) -> list[tuple[str, str]]:
    """The headers of every CORS answer: the allowed origin, and credentials when allowed."""
    headers = [("Access-Control-Allow-Origin", cors.allow_origin)]
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return headers


def _preflight(cors: CorsSettings, methods: str) -> MockIntegration:
    """The OPTIONS route's MOCK answer: 200, the Access-Control-Allow-* headers, an empty body."""
    headers: list[tuple[str, str]] = []
    if cors.allow_headers:
        headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    headers.append(("Access-Control-Allow-Methods", methods))
    headers.extend(_common_headers(cors))
    if cors.max_age is not None:
        headers.append(("Access-Control-Max-Age", str(cors.max_age)))
    return MockIntegration(200, tuple(headers), b"")


def _actual_headers(cors: CorsSettings) -> list[tuple[str, str]]:
    """The headers an actual (not preflight) answer gets."""
    headers = _common_headers(cors)
    if cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    return headers


def _with_headers(route: RouteConfig, add: list[tuple[str, str]]) -> RouteConfig:
    """A MOCK route whose answer also carries ``add``; a header it sets itself is kept."""
    integration = route.integration
    if not isinstance(integration, MockIntegration):
        return route
    have = {name.lower() for name, _ in integration.headers}
    extra = tuple((name, value) for name, value in add if name.lower() not in have)
    if not extra:
        return route
    mock = MockIntegration(integration.status, integration.headers + extra, integration.body)
    return dataclasses.replace(route, integration=mock)


def expand_routes(cors: CorsSettings, routes: list[RouteConfig]) -> list[RouteConfig]:
    """``routes`` with CORS headers on the MOCK answers, then the generated OPTIONS routes (one per
    resource that has routes and no OPTIONS route, in the order resources first appear)."""
    by_resource: dict[str, tuple[str, set[str]]] = {}
    for route in routes:
        path, methods = by_resource.setdefault(_resource_key(route.path), (route.path, set()))
        methods.add(route.method)
    actual = _actual_headers(cors)
    out = [_with_headers(route, actual) if route.method != "OPTIONS" else route for route in routes]
    for path, methods in by_resource.values():
        if "OPTIONS" in methods:
            continue  # the API's own OPTIONS route answers the preflight, as written
        value = ",".join(cors.allow_methods) if cors.allow_methods else _methods_value(methods)
        out.append(RouteConfig(path, "OPTIONS", _preflight(cors, value), authorization="NONE"))
    return out


def gateway_responses(cors: CorsSettings, routes: list[RouteConfig]) -> dict[str, GatewayResponseConfig]:
    """The DEFAULT_4XX and DEFAULT_5XX gateway responses the console's checkboxes write: the
    allowed origin, headers and methods (here the API's methods, every resource's at once) on
    every error answer; empty when ``gateway_responses: false``."""
    if not cors.gateway_responses:
        return {}
    every = {route.method for route in routes}
    methods = ",".join(cors.allow_methods) if cors.allow_methods else _methods_value(every)
    headers: list[tuple[str, str]] = [("Access-Control-Allow-Origin", cors.allow_origin)]
    if cors.allow_headers:
        headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    headers.append(("Access-Control-Allow-Methods", methods))
    headers.extend(h for h in _actual_headers(cors) if h[0] != "Access-Control-Allow-Origin")
    # sorted, as the gateway-responses reader keeps them: the same block read back from an export
    # (where it is written out) gives the same configuration
    parameters = tuple(sorted((f"gatewayresponse.header.{name}", f"'{value}'") for name, value in headers))
    return {kind: GatewayResponseConfig(kind, None, parameters) for kind in ("DEFAULT_4XX", "DEFAULT_5XX")}


def apply_cors(
    r: Reader,
    cors: CorsSettings,
    ptr: str,
    routes: list[RouteConfig],
    declared: dict[str, GatewayResponseConfig],
) -> tuple[list[RouteConfig], dict[str, GatewayResponseConfig]]:
    """The API's routes and gateway responses with ``cors`` expanded into them. A gateway response
    the API declares (``declared``, read at ``ptr``/gateway_responses) wins over the generated one of
    its type; one without Access-Control-Allow-Origin is a warning, as browsers cannot read the
    errors it answers."""
    expanded = gateway_responses(cors, routes)
    if cors.gateway_responses:
        for kind, response in declared.items():
            names = {key.lower() for key, _ in response.response_parameters}
            if "gatewayresponse.header.access-control-allow-origin" not in names:
                r.warn(
                    "cors-gateway-response",
                    f"{ptr}/gateway_responses/{kind}",
                    f"gateway response {kind} has no Access-Control-Allow-Origin header: it replaces "
                    "the one cors would add, so browsers cannot read the errors it answers",
                    "add gatewayresponse.header.Access-Control-Allow-Origin: \"'"
                    + cors.allow_origin
                    + "'\" to its response_parameters",
                )
    return expand_routes(cors, routes), {**expanded, **declared}
