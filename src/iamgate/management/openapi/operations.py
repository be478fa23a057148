"""Reading one operation into a method: its authorization (``security``,
``x-amazon-apigateway-auth``), ``operationId``, ``parameters`` (method request parameters),
``responses`` (method responses) and ``x-amazon-apigateway-integration``."""

from __future__ import annotations

from typing import Any

from iamgate.management.openapi.document import VERBS, Problems, resolve, scalar_text, str_map
from iamgate.management.openapi.security import Scheme, read_security
from iamgate.management.policies import MODE_FIELD, POLICY_FIELD
from iamgate.policy.diagnostics import pointer_join

__all__ = ["read_operation"]

_INTEGRATION_TYPES = ("HTTP_PROXY", "MOCK", "HTTP", "AWS", "AWS_PROXY")
_SERVED_INTEGRATIONS = ("HTTP_PROXY", "MOCK")
_PASSTHROUGH = ("WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER")


def _parameters(data: dict[str, Any], nodes: list[tuple[Any, str]], p: Problems) -> dict[str, bool]:
    """Method request parameters from path-item and operation ``parameters``."""
    out: dict[str, bool] = {}
    where = {"path": "path", "query": "querystring", "header": "header"}
    for raw, ptr in nodes:
        if raw is None:
            continue
        if not isinstance(raw, list):
            p.error(ptr, "parameters must be a list")
            continue
        for i, item in enumerate(raw):
            node, at = resolve(data, item, f"{ptr}/{i}", p)
            if not isinstance(node, dict):
                continue
            loc, name = node.get("in"), node.get("name")
            if not isinstance(name, str) or not name:
                p.error(at, "a parameter needs a name")
                continue
            if loc in where:
                out[f"method.request.{where[loc]}.{name}"] = bool(node.get("required", loc == "path"))
    return out


def _method_responses(raw: Any, ptr: str, p: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        p.error(ptr, "responses must be a map of status codes to responses")
        return out
    for raw_code, node in raw.items():
        code = str(raw_code)
        if not (code.isdigit() and len(code) == 3):
            continue  # "default" and patterns: no method response (as API Gateway)
        item: dict[str, Any] = {"statusCode": code}
        headers = node.get("headers") if isinstance(node, dict) else None
        if isinstance(headers, dict) and headers:
            item["responseParameters"] = {f"method.response.header.{h}": False for h in headers}
        out[code] = item
    return out


def _integration(node: Any, ptr: str, p: Problems) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        p.error(ptr, "x-amazon-apigateway-integration must be an object")
        return None
    raw_type = str(node.get("type", "")).upper()
    if raw_type not in _INTEGRATION_TYPES:
        p.error(
            f"{ptr}/type",
            f"integration type {node.get('type')!r} is not one of http_proxy, mock, http, aws, aws_proxy",
        )
        return None
    if raw_type not in _SERVED_INTEGRATIONS:
        p.warn(
            f"{ptr}/type",
            f"integration type {raw_type.lower()} is not supported by iamgate's gateway (it runs "
            "http_proxy and mock); the method is imported without an integration",
        )
        return None
    out: dict[str, Any] = {"type": raw_type}
    if node.get("credentials") is not None:
        p.warn(f"{ptr}/credentials", "integration credentials are ignored: iamgate calls the uri itself")
    if raw_type == "HTTP_PROXY":
        uri = node.get("uri")
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            p.error(f"{ptr}/uri", f"an http_proxy integration needs an http:// or https:// uri, not {uri!r}")
            return None
        method = node.get("httpMethod")
        if not isinstance(method, str) or method.upper() not in (*VERBS.values(),):
            p.error(
                f"{ptr}/httpMethod",
                f"an http_proxy integration needs httpMethod (GET, POST, ..., ANY), not {method!r}",
            )
            return None
        out["uri"] = uri
        out["httpMethod"] = method.upper()
        connection = str(node.get("connectionType", "INTERNET")).upper()
        if connection == "VPC_LINK":
            p.warn(f"{ptr}/connectionType", "VPC links are not supported; the uri is called directly")
        out["connectionType"] = "INTERNET"
    timeout = node.get("timeoutInMillis")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 50 <= timeout <= 3_600_000:
            p.error(
                f"{ptr}/timeoutInMillis", f"must be a whole number of milliseconds from 50, not {timeout!r}"
            )
        else:
            out["timeoutInMillis"] = timeout
    for key in ("requestParameters", "requestTemplates"):
        value = str_map(node.get(key), f"{ptr}/{key}", p, key)
        if value:
            out[key] = value
    passthrough = node.get("passthroughBehavior")
    if passthrough is not None:
        if str(passthrough).upper() not in _PASSTHROUGH:
            p.error(
                f"{ptr}/passthroughBehavior",
                f"{passthrough!r} is not when_no_match, when_no_templates or never",
            )
        else:
            out["passthroughBehavior"] = str(passthrough).upper()
    if node.get("cacheNamespace") is not None:
        out["cacheNamespace"] = str(node["cacheNamespace"])
    keys = node.get("cacheKeyParameters")
    if isinstance(keys, list):
        out["cacheKeyParameters"] = [str(k) for k in keys]
    responses = node.get("responses")
    if responses is not None:
        if not isinstance(responses, dict):
            p.error(f"{ptr}/responses", "responses must be a map of selection patterns to responses")
        else:
            ir: dict[str, Any] = {}
            for pattern, r in responses.items():
                at = pointer_join(f"{ptr}/responses", pattern)
                if not isinstance(r, dict) or scalar_text(r.get("statusCode")) is None:
                    p.error(at, "an integration response needs statusCode")
                    continue
                code = str(r["statusCode"])
                item: dict[str, Any] = {"statusCode": code}
                if str(pattern) != "default":
                    item["selectionPattern"] = str(pattern)
                for key in ("responseParameters", "responseTemplates"):
                    value = str_map(r.get(key), f"{at}/{key}", p, key)
                    if value:
                        item[key] = value
                ir[code] = item
            out["integrationResponses"] = ir
    return out


POLICY_EXTENSION = "x-iamgate-policy"
MODE_EXTENSION = "x-iamgate-policy-mode"


def read_operation(
    data: dict[str, Any],
    item: dict[str, Any],
    iptr: str,
    op: dict[str, Any],
    optr: str,
    verb: str,
    schemes: dict[str, Scheme],
    top_security: Any,
    p: Problems,
) -> dict[str, Any] | None:
    method: dict[str, Any] = {"httpMethod": verb, "authorizationType": "NONE", "apiKeyRequired": False}
    security = op.get("security", top_security)
    sptr = f"{optr}/security" if "security" in op else "/security"
    if security is not None:
        key_required, auth, authorizer, scopes = read_security(security, sptr, schemes, p)
        method["apiKeyRequired"] = key_required
        if auth == "AWS_IAM":
            method["authorizationType"] = "AWS_IAM"
        elif auth == "AUTHORIZER" and authorizer is not None:
            method["authorizerId"] = authorizer  # a name here; ids are given when the draft is built
            method["authorizationType"] = "__authorizer__"
            if scopes:
                method["authorizationScopes"] = scopes
    explicit = op.get("x-amazon-apigateway-auth")
    if explicit is not None:
        kind = str(explicit.get("type", "")).upper() if isinstance(explicit, dict) else ""
        if kind not in ("AWS_IAM", "NONE"):
            p.error(
                f"{optr}/x-amazon-apigateway-auth",
                "x-amazon-apigateway-auth is {type: AWS_IAM} or {type: NONE}",
            )
        else:
            method["authorizationType"] = kind
            method.pop("authorizerId", None)
            method.pop("authorizationScopes", None)
    if isinstance(op.get("operationId"), str):
        method["operationName"] = op["operationId"]
    params = _parameters(
        data,
        [(item.get("parameters"), f"{iptr}/parameters"), (op.get("parameters"), f"{optr}/parameters")],
        p,
    )
    if params:
        method["requestParameters"] = params
    responses = _method_responses(op.get("responses"), f"{optr}/responses", p)
    if responses:
        method["methodResponses"] = responses
    integration = op.get("x-amazon-apigateway-integration")
    if integration is not None:
        built = _integration(integration, f"{optr}/x-amazon-apigateway-integration", p)
        if built is not None:
            method["methodIntegration"] = built
    _own_policy(op, optr, method, p)
    return method


def _own_policy(op: dict[str, Any], optr: str, method: dict[str, Any], p: Problems) -> None:
    """iamgate's ``x-iamgate-policy`` (the method's own policy, an object or JSON text: checked
    and stored when the draft is saved) and ``x-iamgate-policy-mode``; AWS ignores both."""
    own = op.get(POLICY_EXTENSION)
    if own is not None:
        if isinstance(own, dict | str) and own:
            method[POLICY_FIELD] = own
        else:
            p.error(f"{optr}/{POLICY_EXTENSION}", f"{POLICY_EXTENSION} is a policy: an object or JSON text")
    mode = op.get(MODE_EXTENSION)
    if mode is not None:
        if mode not in ("enforce", "report"):
            p.error(f"{optr}/{MODE_EXTENSION}", f"{MODE_EXTENSION} is enforce or report")
        elif own is None:
            p.error(f"{optr}/{MODE_EXTENSION}", f"{MODE_EXTENSION} without {POLICY_EXTENSION}")
        elif mode == "report":
            method[MODE_FIELD] = "report"
