"""Reading an API's routes: each route's path and method, authorization (type, authorizer, scopes,
API key), integration, rate limit and request validation (validator, models, parameters). The
routes are placed in the resource tree the snapshot builds, so a route it would refuse (a
duplicate, two parameter names at one place) is an error here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iamgate.config._reader import Reader
from iamgate.config.auth import AuthorizerConfig
from iamgate.config.model import ModelConfig, RequestValidatorConfig, RouteConfig, StageConfig
from iamgate.config.read_integration import read_integration
from iamgate.config.read_models import read_request_models, read_request_parameters, read_request_validator
from iamgate.config.read_stages import ScopedReader
from iamgate.config.read_throttle import read_rate_limit
from iamgate.policy.diagnostics import did_you_mean
from iamgate.routing.tree import METHODS, ResourceTree, TemplateError, parse_template

__all__ = ["AUTHORIZATION_TYPES", "read_routes"]

AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS")


def read_routes(
    r: Reader,
    raw: object,
    ptr: str,
    stages: dict[str, StageConfig],
    authorizers: dict[str, AuthorizerConfig],
    models: dict[str, ModelConfig] | None = None,
    validators: dict[str, RequestValidatorConfig] | None = None,
    scoped: ScopedReader | None = None,
) -> list[RouteConfig]:
    """An API's ``routes``; ``stages``, ``authorizers``, ``models`` and ``validators`` are the
    API's, which routes refer to; ``scoped`` reads a route's own ``policy``."""
    routes: list[RouteConfig] = []
    seen: dict[tuple[str, str], str] = {}
    tree: ResourceTree[None] = ResourceTree()  # the snapshot's tree: what it refuses is an error here
    api = _ApiParts(stages, authorizers, models or {}, validators or {}, scoped)
    for i, item in enumerate(r.sequence(raw, ptr, "routes") or []):
        route = _route(r, item, f"{ptr}/{i}", api, seen, tree)
        if route is not None:
            routes.append(route)
    return routes


@dataclass(frozen=True, slots=True)
class _ApiParts:
    """What of its API a route may refer to."""

    stages: dict[str, StageConfig]
    authorizers: dict[str, AuthorizerConfig]
    models: dict[str, ModelConfig]
    validators: dict[str, RequestValidatorConfig]
    scoped: ScopedReader | None = None


def _route(
    r: Reader,
    raw: object,
    rp: str,
    api: _ApiParts,
    seen: dict[tuple[str, str], str],
    tree: ResourceTree[None],
) -> RouteConfig | None:
    """One route, placed in ``tree`` (``seen``: where each resource and method was defined)."""
    rm = r.mapping(
        raw,
        rp,
        "a route",
        {
            "path": True,
            "method": True,
            "integration": True,
            "authorization": False,
            "authorizer": False,
            "api_key_required": False,
            "authorization_scopes": False,
            "rate_limit": False,
            "request_validator": False,
            "request_models": False,
            "request_parameters": False,
            **({"policy": False, "policy_file": False, "policy_mode": False} if api.scoped else {}),
        },
    )
    if rm is None or not {"path", "method", "integration"} <= set(rm):
        return None
    path = r.string(rm["path"], f"{rp}/path", "path")
    method = _method(r, rm, rp)
    params: set[str] = set()
    greedy = None
    if path is not None:
        path, params, greedy = _parameters(r, path, rp)
    auth = "NONE"
    if "authorization" in rm:
        auth = (
            r.string(
                rm["authorization"],
                f"{rp}/authorization",
                "authorization",
                choices=AUTHORIZATION_TYPES,
            )
            or auth
        )
    authorizer, scopes, key_required = _route_auth(r, rm, rp, auth, api.authorizers)
    integration = read_integration(r, rm["integration"], f"{rp}/integration", params, greedy, api.stages)
    validator = None
    if "request_validator" in rm:
        validator = read_request_validator(
            r, rm["request_validator"], f"{rp}/request_validator", api.validators
        )
    request_models: tuple[tuple[str, str], ...] = ()
    if "request_models" in rm:
        request_models = read_request_models(r, rm["request_models"], f"{rp}/request_models", api.models)
    parameters: tuple[tuple[str, bool], ...] = ()
    if "request_parameters" in rm and path is not None:
        key = "request_parameters"
        parameters = read_request_parameters(r, rm[key], f"{rp}/{key}", params, greedy)
    if path is None or method is None or integration is None:
        return None
    if not _place(r, path, method, rp, seen, tree):
        return None
    rate_limit = read_rate_limit(r, rm["rate_limit"], f"{rp}/rate_limit") if "rate_limit" in rm else None
    policy = api.scoped(rm, rp, f"route:{method} {path}") if api.scoped is not None else None
    return RouteConfig(
        path,
        method,
        integration,
        auth,
        authorizer,
        key_required,
        scopes,
        rate_limit,
        request_validator=validator,
        request_models=request_models,
        request_parameters=parameters,
        policy=policy,
    )


def _method(r: Reader, rm: dict[str, Any], rp: str) -> str | None:
    """The route's method, upper-cased: an HTTP verb or ANY."""
    method = r.string(rm["method"], f"{rp}/method", "method")
    if method is not None:
        method = method.upper()
        if method not in (*METHODS, "ANY"):
            hint = did_you_mean(method, (*METHODS, "ANY"))
            r.report(
                "invalid-value",
                f"{rp}/method",
                f"method '{rm['method']}' is not valid",
                (hint + " " if hint else "") + "one of: " + ", ".join((*METHODS, "ANY")),
            )
            method = None
    return method


def _parameters(r: Reader, path: str, rp: str) -> tuple[str | None, set[str], str | None]:
    """The path (None when it is not a valid template, reported), its ``{parameter}`` names and
    its ``{greedy+}`` parameter's."""
    params: set[str] = set()
    greedy = None
    try:
        for seg in parse_template(path):
            if seg.kind == "param":
                params.add(seg.value)
            elif seg.kind == "greedy":
                greedy = seg.value
    except TemplateError as exc:
        r.report(
            "invalid-value",
            f"{rp}/path",
            f"path '{path}': {exc}",
            "for example /pets, /pets/{id} or /{proxy+}",
        )
        return None, params, greedy
    return path, params, greedy


def _place(
    r: Reader, path: str, method: str, rp: str, seen: dict[tuple[str, str], str], tree: ResourceTree[None]
) -> bool:
    """Add the route to ``tree``; False (reported) when it is there already or the tree refuses it."""
    key = (
        "/" + "/".join(s.value if s.kind == "literal" else "{}" for s in parse_template(path)),
        method,
    )
    if key in seen:
        r.report("duplicate-route", rp, f"{method} {path} is already defined by {seen[key]}")
        return False
    seen[key] = rp
    try:
        tree.add(path, method, None)
    except TemplateError as exc:
        r.report(
            "conflicting-route",
            f"{rp}/path",
            str(exc),
            "API Gateway allows one {parameter} (and one {greedy+}) name among the children "
            "of a resource; use the same name in every route through it",
        )
        return False
    return True


def _route_auth(
    r: Reader, rm: dict[str, Any], rp: str, auth: str, authorizers: dict[str, AuthorizerConfig]
) -> tuple[str | None, tuple[str, ...], bool]:
    """A route's authorizer, scopes and API-key requirement, checked against its type."""
    name = r.string(rm["authorizer"], f"{rp}/authorizer", "authorizer") if "authorizer" in rm else None
    wanted = {"CUSTOM": ("TOKEN", "REQUEST"), "COGNITO_USER_POOLS": ("COGNITO_USER_POOLS", "JWT")}.get(auth)
    if wanted is not None:
        if name is None:
            r.report(
                "missing-key",
                rp,
                f"a route with authorization {auth} needs 'authorizer'",
                "the name of one of the API's authorizers of type " + " or ".join(wanted),
            )
        elif name not in authorizers:
            r.report(
                "invalid-value",
                f"{rp}/authorizer",
                f"authorizer '{name}' is not defined for this API",
                "defined: " + (", ".join(authorizers) or "none"),
            )
        elif authorizers[name].type not in wanted:
            r.report(
                "invalid-value",
                f"{rp}/authorizer",
                f"authorizer '{name}' is a {authorizers[name].type} authorizer; {auth} needs "
                + " or ".join(wanted),
            )
    elif name is not None:
        r.report(
            "invalid-value",
            f"{rp}/authorizer",
            f"authorization {auth} takes no authorizer",
            "use authorization: CUSTOM or COGNITO_USER_POOLS",
        )
    scopes: tuple[str, ...] = ()
    if "authorization_scopes" in rm:
        items = (
            r.sequence(rm["authorization_scopes"], f"{rp}/authorization_scopes", "authorization_scopes") or []
        )
        scopes = tuple(str(s) for s in items)
        if auth != "COGNITO_USER_POOLS":
            r.report(
                "invalid-value",
                f"{rp}/authorization_scopes",
                "authorization_scopes apply to COGNITO_USER_POOLS routes only",
            )
    key_required = False
    if "api_key_required" in rm:
        key_required = bool(r.boolean(rm["api_key_required"], f"{rp}/api_key_required", "api_key_required"))
    return name, scopes, key_required
