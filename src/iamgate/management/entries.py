"""A validated configuration written back as configuration-file entries (plain dicts).

``iamgate apply`` validates a file with the loader and stores what the loader understood, not the
text: policies read from ``policy_file`` are inlined (as JSON objects), secrets taken from
``value_env`` / ``value_file`` are stored as values, relative file names are absolute, defaults
are left out and lists are sorted. Gateway responses, models, request validators and a route's
request validation come along (a ``cors`` block as what it expanded into). Parsing an entry
again gives the same configuration, and writing it again gives the same entry (the round trip
``iamgate export`` relies on).
"""

from __future__ import annotations

import json
import time
from typing import Any

from iamgate.config.auth import ApiKey, AuthorizerConfig
from iamgate.config.model import ApiConfig, HttpProxyIntegration, RouteConfig, ScopedPolicy, StageConfig
from iamgate.throttle.settings import Limit, UsagePlan

__all__ = ["api_definition", "api_key_entry", "stage_entry", "usage_plan_entry"]

DEFAULT_SOURCE = "method.request.header.Authorization"


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _limit(limit: Limit) -> dict[str, Any]:
    return {"rate": _number(limit.rate), "burst": limit.burst}


def _authorizer(a: AuthorizerConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": a.name, "type": a.type}
    if a.type in ("TOKEN", "REQUEST"):
        if a.function:
            entry["function"] = a.function
        else:
            entry["url"] = a.url
        if a.validation:
            entry["identity_validation_expression"] = a.validation
        if a.timeout != 10.0:
            entry["timeout"] = _number(a.timeout)
    else:
        entry["issuer"] = a.issuer
        if a.audiences:
            entry["audiences"] = list(a.audiences)
        if a.jwks_file:
            entry["jwks_file"] = a.jwks_file
        elif a.jwks_url and a.jwks_url != (a.issuer or "").rstrip("/") + "/.well-known/jwks.json":
            entry["jwks_url"] = a.jwks_url
        if a.algorithms != ("RS256",):
            entry["algorithms"] = list(a.algorithms)
        if a.token_use:
            entry["token_use"] = a.token_use
        if a.leeway != 60.0:
            entry["leeway"] = _number(a.leeway)
    if a.identity_source != DEFAULT_SOURCE:
        entry["identity_source"] = a.identity_source
    if a.ttl != 300:
        entry["result_ttl"] = a.ttl
    return entry


def _route(route: RouteConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": route.path, "method": route.method}
    if route.authorization != "NONE":
        entry["authorization"] = route.authorization
    if route.authorizer:
        entry["authorizer"] = route.authorizer
    if route.authorization_scopes:
        entry["authorization_scopes"] = list(route.authorization_scopes)
    if route.api_key_required:
        entry["api_key_required"] = True
    if route.rate_limit is not None:
        entry["rate_limit"] = {"by": route.rate_limit.by, **_limit(route.rate_limit.limit)}
    integration = route.integration
    if isinstance(integration, HttpProxyIntegration):
        spec: dict[str, Any] = {"type": "HTTP_PROXY", "uri": integration.uri}
        if integration.timeout is not None:
            spec["timeout"] = _number(integration.timeout)
        if integration.request_parameters:
            spec["request_parameters"] = {
                f"integration.request.header.{name}": source
                for name, source in sorted(integration.request_parameters)
            }
    else:
        spec = {"type": "MOCK"}
        if integration.status != 200:
            spec["status"] = integration.status
        if integration.headers:
            spec["headers"] = dict(integration.headers)
        if integration.body:
            spec["body"] = integration.body.decode("utf-8", "replace")
    entry["integration"] = spec
    if route.request_validator:
        entry["request_validator"] = route.request_validator
    if route.request_models:
        entry["request_models"] = dict(sorted(route.request_models))
    if route.request_parameters:
        entry["request_parameters"] = dict(sorted(route.request_parameters))
    entry.update(_scoped(route.policy))
    return entry


def _scoped(policy: ScopedPolicy | None) -> dict[str, Any]:
    """A stage's or route's own policy as configuration keys (none when it has none)."""
    if policy is None:
        return {}
    out: dict[str, Any] = {"policy": json.loads(policy.text.lstrip("\ufeff"))}
    if policy.mode != "enforce":
        out["policy_mode"] = policy.mode
    return out


def _gateway_responses(api: ApiConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, response in sorted(api.gateway_responses.items()):
        entry: dict[str, Any] = {}
        if response.status_code is not None:
            entry["status_code"] = response.status_code
        if response.response_parameters:
            entry["response_parameters"] = dict(response.response_parameters)
        if response.response_templates:
            entry["response_templates"] = dict(response.response_templates)
        out[kind] = entry
    return out


def _models(api: ApiConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, model in sorted(api.models.items()):
        entry: dict[str, Any] = {"schema": model.schema}
        if model.content_type != "application/json":
            entry["content_type"] = model.content_type
        if model.description:
            entry["description"] = model.description
        out[name] = entry
    return out


def api_definition(api: ApiConfig) -> dict[str, Any]:
    """An ``apis`` entry without ``stages`` and ``deployment`` (what a deployment stores)."""
    entry: dict[str, Any] = {"id": api.id, "name": api.name, "endpoint_type": api.endpoint_type}
    if api.policy_text is not None:
        entry["policy"] = json.loads(api.policy_text.lstrip("\ufeff"))
    if api.policy_mode != "enforce":
        entry["policy_mode"] = api.policy_mode
    if api.api_key_source != "HEADER":
        entry["api_key_source"] = api.api_key_source
    if api.disable_execute_api_endpoint:  # as a deployment made by the management API keeps it
        entry["disable_execute_api_endpoint"] = True
    if api.authorizers:
        entry["authorizers"] = [_authorizer(a) for _, a in sorted(api.authorizers.items())]
    if api.gateway_responses:
        entry["gateway_responses"] = _gateway_responses(api)
    if api.models:
        entry["models"] = _models(api)
    if api.request_validators:
        entry["request_validators"] = {
            name: {
                key: True
                for key, on in (
                    ("validate_request_body", v.validate_request_body),
                    ("validate_request_parameters", v.validate_request_parameters),
                )
                if on
            }
            for name, v in sorted(api.request_validators.items())
        }
    entry["routes"] = [_route(r) for r in sorted(api.routes, key=lambda r: (r.path, r.method))]
    return entry


def stage_entry(stage: StageConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if stage.variables:
        entry["variables"] = dict(sorted(stage.variables.items()))
    if stage.access_log_format:
        entry["access_log_format"] = stage.access_log_format
    if stage.throttle is not None:
        entry["throttling"] = _limit(stage.throttle)
    if stage.method_throttle:
        entry["method_throttling"] = {k: _limit(v) for k, v in sorted(stage.method_throttle.items())}
    entry.update(_scoped(stage.policy))
    return entry


def api_key_entry(key: ApiKey) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": key.id, "name": key.name, "value": key.value}
    if not key.enabled:
        entry["enabled"] = False
    return entry


def usage_plan_entry(plan: UsagePlan) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": plan.id, "name": plan.name, "api_stages": []}
    for st in plan.stages:
        stage: dict[str, Any] = {"api": st.api, "stage": st.stage}
        if st.methods:
            stage["throttle"] = {k: _limit(v) for k, v in sorted(st.methods.items())}
        entry["api_stages"].append(stage)
    if plan.throttle is not None:
        entry["throttle"] = _limit(plan.throttle)
    if plan.quota is not None:
        quota: dict[str, Any] = {"limit": plan.quota.limit, "period": plan.quota.period}
        if plan.quota.offset:
            quota["offset"] = plan.quota.offset
        if plan.quota.subtract:
            quota["offset_mode"] = "subtract"
        if plan.quota.created is not None:
            quota["created"] = time.strftime("%Y-%m-%d", time.gmtime(plan.quota.created))
        entry["quota"] = quota
    if plan.keys:
        entry["keys"] = list(plan.keys)
    if not plan.fail_open:
        entry["on_backend_error"] = "closed"
    return entry
