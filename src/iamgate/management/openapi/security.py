"""Reading security: the document's security schemes (API keys, ``awsSigv4``, Lambda and
Cognito authorizers with ``x-amazon-apigateway-authorizer``) and an operation's ``security``
requirements (which of them a method uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iamgate.management.openapi.document import Imported, Problems, resolve
from iamgate.policy.diagnostics import pointer_join

__all__ = ["Scheme", "read_schemes", "read_security"]

_AUTHORIZER_TYPES = {"token": "TOKEN", "request": "REQUEST", "cognito_user_pools": "COGNITO_USER_POOLS"}


@dataclass(slots=True)
class Scheme:
    kind: str  # "apikey" | "iam" | "authorizer" | "other"
    name: str


def read_schemes(data: dict[str, Any], version: str, p: Problems, out: Imported) -> dict[str, Scheme]:
    if version == "oas3":
        comps = data.get("components") or {}
        raw, base = (
            (comps.get("securitySchemes") if isinstance(comps, dict) else None),
            "/components/securitySchemes",
        )
    else:
        raw, base = data.get("securityDefinitions"), "/securityDefinitions"
    schemes: dict[str, Scheme] = {}
    if raw is None:
        return schemes
    if not isinstance(raw, dict):
        p.error(base, "security schemes must be a map of names to schemes")
        return schemes
    for name, node0 in raw.items():
        ptr0 = pointer_join(base, name)
        node, ptr = resolve(data, node0, ptr0, p)
        if not isinstance(node, dict):
            if node is not None:
                p.error(ptr, "a security scheme must be an object")
            continue
        authtype = node.get("x-amazon-apigateway-authtype")
        authorizer = node.get("x-amazon-apigateway-authorizer")
        if authorizer is not None:
            built = _authorizer(str(name), node, authorizer, f"{ptr}/x-amazon-apigateway-authorizer", p)
            if built is not None:
                out.authorizers[str(name)] = built
                out.pointers[("authorizer", str(name))] = ptr
                schemes[str(name)] = Scheme("authorizer", str(name))
            continue
        if isinstance(authtype, str) and authtype.lower().startswith("aws"):
            if authtype != "awsSigv4":
                p.warn(f"{ptr}/x-amazon-apigateway-authtype", f"'{authtype}' is read as awsSigv4 (AWS_IAM)")
            schemes[str(name)] = Scheme("iam", str(name))
        elif (
            node.get("type") == "apiKey"
            and node.get("in") == "header"
            and str(node.get("name")).lower() == "x-api-key"
        ):
            schemes[str(name)] = Scheme("apikey", str(name))
        else:
            schemes[str(name)] = Scheme("other", str(name))
    return schemes


def _authorizer(name: str, scheme: dict[str, Any], node: Any, ptr: str, p: Problems) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        p.error(ptr, "x-amazon-apigateway-authorizer must be an object")
        return None
    kind = _AUTHORIZER_TYPES.get(str(node.get("type", "")).lower())
    if kind is None:
        hint = " (JWT authorizers belong to HTTP APIs)" if str(node.get("type")).lower() == "jwt" else ""
        p.error(
            f"{ptr}/type",
            f"authorizer type {node.get('type')!r} is not token, request or cognito_user_pools{hint}",
        )
        return None
    out: dict[str, Any] = {"name": name, "type": kind}
    authtype = scheme.get("x-amazon-apigateway-authtype")
    out["authType"] = (
        str(authtype) if authtype else ("cognito_user_pools" if kind == "COGNITO_USER_POOLS" else "custom")
    )
    header = scheme.get("name") if scheme.get("in") == "header" else None
    source = node.get("identitySource")
    if source is None and kind != "REQUEST" and isinstance(header, str):
        source = f"method.request.header.{header}"
    if source is not None:
        if not isinstance(source, str) or not source.strip():
            p.error(
                f"{ptr}/identitySource",
                "identitySource must be a string such as method.request.header.Authorization",
            )
        else:
            out["identitySource"] = source
    ttl = node.get("authorizerResultTtlInSeconds", 300)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 3600:
        p.error(
            f"{ptr}/authorizerResultTtlInSeconds",
            f"must be a whole number of seconds from 0 to 3600, not {ttl!r}",
        )
    else:
        out["authorizerResultTtlInSeconds"] = ttl
    if kind == "COGNITO_USER_POOLS":
        arns = node.get("providerARNs")
        if not isinstance(arns, list) or not arns or not all(isinstance(a, str) for a in arns):
            p.error(
                f"{ptr}/providerARNs",
                "a cognito_user_pools authorizer needs providerARNs: a list of user pool ARNs",
            )
            return None
        out["providerARNs"] = list(arns)
    else:
        uri = node.get("authorizerUri")
        if not isinstance(uri, str) or not uri:
            p.error(ptr, f"a {kind.lower()} authorizer needs authorizerUri")
            return None
        out["authorizerUri"] = uri
        if kind == "REQUEST" and "identitySource" not in out and out.get("authorizerResultTtlInSeconds"):
            p.error(
                ptr,
                "a request authorizer with caching (authorizerResultTtlInSeconds > 0) needs identitySource",
            )
    if node.get("identityValidationExpression") is not None:
        out["identityValidationExpression"] = str(node["identityValidationExpression"])
    if node.get("authorizerCredentials") is not None:
        p.warn(
            f"{ptr}/authorizerCredentials",
            "authorizerCredentials are ignored: iamgate calls authorizers over HTTP, with no IAM role",
        )
    if "identitySource" not in out and kind != "REQUEST":
        out["identitySource"] = "method.request.header.Authorization"
    return out


def read_security(
    reqs: Any, ptr: str, schemes: dict[str, Scheme], p: Problems
) -> tuple[bool, str | None, str | None, list[str]]:
    """(api key required, authorization type, authorizer name, scopes) from a security list."""
    if not isinstance(reqs, list):
        p.error(ptr, "security must be a list of requirement objects")
        return False, None, None, []
    key_required = False
    auth: tuple[str, str | None] | None = None
    scopes: list[str] = []
    for i, req in enumerate(reqs):
        if not isinstance(req, dict):
            p.error(f"{ptr}/{i}", "a security requirement must be an object of scheme names to scopes")
            continue
        for name, wanted in req.items():
            at = pointer_join(f"{ptr}/{i}", name)
            scheme = schemes.get(str(name))
            if scheme is None:
                p.error(at, f"security scheme '{name}' is not defined")
                continue
            if scheme.kind == "apikey":
                key_required = True
                continue
            if scheme.kind == "other":
                p.warn(
                    at,
                    f"security scheme '{name}' is not one API Gateway enforces (API key, awsSigv4, or an "
                    "authorizer); it is ignored",
                )
                continue
            this = ("AWS_IAM", None) if scheme.kind == "iam" else ("AUTHORIZER", scheme.name)
            if auth is not None and auth != this:
                p.error(at, "a method has at most one authorizer (or awsSigv4)")
                continue
            auth = this
            if isinstance(wanted, list):
                scopes += [str(s) for s in wanted]
    if auth is None:
        return key_required, None, None, []
    return key_required, auth[0], auth[1], scopes
