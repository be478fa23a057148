"""Request-parameter mappings: values for backend headers, as API Gateway's
``integration.request.header.NAME: SOURCE``.

Sources: a quoted literal (``'value'``), ``context.authorizer.principalId``,
``context.authorizer.KEY`` (a Lambda authorizer's context), ``context.authorizer.claims.NAME``
(a JWT's claims), ``context.requestId``, ``context.identity.sourceIp``, ``context.stage``,
``context.apiId``, ``context.httpMethod``, ``context.resourcePath``, ``context.identity.apiKey``,
``method.request.header.NAME``, ``method.request.querystring.NAME``, ``method.request.path.NAME``
and ``stageVariables.NAME``. A source without a value adds no header.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from iamgate.pipeline.exchange import Exchange

__all__ = ["authorizer_values", "request_parameter"]


def authorizer_values(ex: Exchange) -> dict[str, str]:
    """``$context.authorizer.*`` of an exchange: a Lambda authorizer's principalId and context,
    a JWT authorizer's claims (as ``claims.NAME``), as strings."""
    out: dict[str, str] = {}
    result = ex.authorizer
    if result is not None:
        out["principalId"] = result.principal_id
        out.update(result.context)
    claims = ex.claims
    if claims is not None:
        for name, value in claims.as_strings().items():
            out[f"claims.{name}"] = value
    return out


def request_parameter(ex: Exchange, source: str) -> str | None:
    """The value of one mapping source for this request, or None when it has none: a header as
    the gateway holds it (a repeated one joined by ``", "``), a query parameter's values joined by
    ``","``, a path parameter as routed."""
    if source.startswith("'"):
        return source[1:-1]
    kind, _, name = source.partition(".")
    if kind == "context":
        if name.startswith("authorizer."):
            return authorizer_values(ex).get(name[len("authorizer.") :])
        if name == "requestId":
            return ex.request_id
        if name == "identity.sourceIp":
            return ex.source_ip
        if name == "identity.apiKey":
            return ex.api_key.value if ex.api_key is not None else None
        if name == "stage":
            return ex.stage.name if ex.stage is not None else None
        if name == "apiId":
            return ex.api.id if ex.api is not None else None
        if name == "httpMethod":
            return ex.method
        if name == "resourcePath":
            return ex.route.resource_path if ex.route is not None else None
        return None
    if kind == "stageVariables":
        return ex.stage.variables.get(name) if ex.stage is not None else None
    if kind != "method" or not name.startswith("request."):
        return None
    where, _, key = name.removeprefix("request.").partition(".")
    if where == "header":
        return ex.header(key.lower().encode())
    if where == "querystring":
        values = [v for k, v in parse_qsl(ex.query.decode("latin-1"), keep_blank_values=True) if k == key]
        return ",".join(values) if values else None
    if where == "path":
        return (ex.params or {}).get(key)
    return None
