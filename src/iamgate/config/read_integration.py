"""Reading a route's integration: HTTP_PROXY (a backend URI, a timeout, request-parameter mappings
to backend headers) or MOCK (a fixed answer)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from iamgate.config._reader import Reader
from iamgate.config.model import HttpProxyIntegration, MockIntegration, StageConfig
from iamgate.policy.diagnostics import pointer_join

__all__ = ["INTEGRATION_TYPES", "read_integration"]

INTEGRATION_TYPES = ("HTTP_PROXY", "MOCK")
_STAGE_VAR = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_.-]*)\}")
_URI_PARAM = re.compile(r"\{([A-Za-z0-9._-]+)\}")


def read_integration(
    r: Reader, raw: object, ptr: str, params: set[str], greedy: str | None, stages: dict[str, StageConfig]
) -> HttpProxyIntegration | MockIntegration | None:
    """A route's ``integration``; ``params`` and ``greedy`` are the route path's parameters, which
    its URI and request parameters may name; ``stages`` say which stage variables are defined."""
    m = r.mapping(
        raw,
        ptr,
        "integration",
        {
            "type": True,
            "uri": False,
            "timeout": False,
            "status": False,
            "headers": False,
            "body": False,
            "request_parameters": False,
        },
    )
    if m is None or "type" not in m:
        return None
    kind = r.string(m["type"], f"{ptr}/type", "integration type", choices=INTEGRATION_TYPES)
    if kind is None:
        return None
    if kind == "MOCK":
        return _mock(r, m, ptr)
    return _http_proxy(r, m, ptr, params, greedy, stages)


def _mock(r: Reader, m: dict[str, Any], ptr: str) -> MockIntegration:
    """A MOCK integration: the gateway answers with ``status``, ``headers`` and ``body``."""
    for key in ("uri", "timeout"):
        if key in m:
            r.report("unknown-key", f"{ptr}/{key}", f"a MOCK integration has no {key}")
    status = 200
    if "status" in m:
        n = r.number(m["status"], f"{ptr}/status", "status", low=100, high=599, integer=True)
        status = int(n) if n is not None else 200
    headers: list[tuple[str, str]] = []
    if "headers" in m:
        headers = _mock_headers(r, m["headers"], f"{ptr}/headers")
    body = b""
    if "body" in m:
        text = r.string(m["body"], f"{ptr}/body", "body")
        body = (text or "").encode()
    return MockIntegration(status, tuple(headers), body)


def _mock_headers(r: Reader, raw: object, ptr: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, "headers must be a mapping of name: value")
        return headers
    for name, value in raw.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", str(name)) or not isinstance(value, str | int):
            r.report(
                "invalid-value",
                pointer_join(ptr, name),
                f"header {name!r}: {value!r} is not a valid header name and string value",
            )
        elif any(c in str(value) for c in "\r\n\x00"):
            r.report(
                "invalid-value",
                pointer_join(ptr, name),
                f"header {name!r} has a line break or NUL in its value",
            )
        else:
            headers.append((str(name), str(value)))
    return headers


def _http_proxy(
    r: Reader,
    m: dict[str, Any],
    ptr: str,
    params: set[str],
    greedy: str | None,
    stages: dict[str, StageConfig],
) -> HttpProxyIntegration | None:
    """An HTTP_PROXY integration: the request goes to ``uri`` (with stage variables and path
    parameters filled in), with the headers ``request_parameters`` map."""
    for key in ("status", "headers", "body"):
        if key in m:
            r.report(
                "unknown-key",
                f"{ptr}/{key}",
                f"an HTTP_PROXY integration has no {key}",
                "status, headers and body belong to MOCK integrations",
            )
    if "uri" not in m:
        r.report("missing-key", ptr, "an HTTP_PROXY integration needs 'uri'")
        return None
    uri = r.string(m["uri"], f"{ptr}/uri", "uri")
    if uri is None:
        return None
    probe = _STAGE_VAR.sub("stagevar", uri)
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        r.report(
            "invalid-value",
            f"{ptr}/uri",
            f"uri '{uri}' is not an http:// or https:// URL with a host",
            "for example http://127.0.0.1:9000/pets/{id} or http://${stageVariables.backend}/pets",
        )
        return None
    try:
        _ = parts.port
    except ValueError:
        r.report("invalid-value", f"{ptr}/uri", f"uri '{uri}' has an invalid port")
        return None
    if parts.query or parts.fragment:
        r.report(
            "invalid-value",
            f"{ptr}/uri",
            f"uri '{uri}' has a query or fragment",
            "the request's query string is passed through to the backend",
        )
        return None
    for name in _URI_PARAM.findall(parts.path):
        if name not in params and name != greedy:
            r.report(
                "invalid-value",
                f"{ptr}/uri",
                f"uri uses {{{name}}} but the route path has no such parameter",
                f"route parameters: {', '.join(sorted(params | ({greedy} if greedy else set()))) or 'none'}",
            )
    for var in _STAGE_VAR.findall(uri):
        missing = [s for s, st in stages.items() if var not in st.variables]
        if missing:
            r.warn(
                "undefined-stage-variable",
                f"{ptr}/uri",
                f"uri uses ${{stageVariables.{var}}} but stage(s) {', '.join(missing)} do not define it; "
                "requests there get 500 Internal server error",
            )
    timeout = None
    if "timeout" in m:
        timeout = r.number(m["timeout"], f"{ptr}/timeout", "timeout", low=0.05, high=3600)
    return HttpProxyIntegration(
        uri,
        timeout,
        _request_parameters(
            r, m.get("request_parameters"), f"{ptr}/request_parameters", params | {greedy or ""}
        ),
    )


_PARAM_TARGET = re.compile(r"integration\.request\.header\.([!#$%&'*+.^_`|~0-9A-Za-z-]+)")
_PARAM_SOURCE = re.compile(
    r"'[^'\r\n]*'|context\.authorizer\.[A-Za-z0-9_.:-]+|context\.(requestId|identity\.sourceIp|stage|apiId"
    r"|httpMethod|resourcePath|identity\.apiKey)|method\.request\.(header|querystring|path)\.[A-Za-z0-9_.-]+"
    r"|stageVariables\.[A-Za-z0-9_]+"
)


def _request_parameters(r: Reader, raw: object, ptr: str, params: set[str]) -> tuple[tuple[str, str], ...]:
    """API Gateway's request-parameter mappings to backend headers, e.g.
    ``integration.request.header.X-User: context.authorizer.principalId``."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, "request_parameters must be a mapping of target: source")
        return ()
    out = []
    for target, source in raw.items():
        p = pointer_join(ptr, target)
        tm = _PARAM_TARGET.fullmatch(str(target))
        if tm is None:
            r.report(
                "invalid-value",
                p,
                f"'{target}' is not a request-parameter target",
                "integration.request.header.NAME",
            )
            continue
        if not isinstance(source, str) or not _PARAM_SOURCE.fullmatch(source):
            r.report(
                "invalid-value",
                p,
                f"'{source}' is not a request-parameter source",
                "a quoted literal 'value', context.authorizer.KEY, context.authorizer.claims.NAME, "
                "context.requestId, context.identity.sourceIp, method.request.header.NAME, "
                "method.request.querystring.NAME, method.request.path.NAME or stageVariables.NAME",
            )
            continue
        if source.startswith("method.request.path.") and source.split(".", 3)[3] not in params:
            r.report("invalid-value", p, f"'{source}' names a path parameter the route does not have")
            continue
        out.append((tm.group(1), source))
    return tuple(out)
