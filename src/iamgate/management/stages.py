"""Stages: ``CreateStage``, ``GetStages``, ``GetStage``, ``UpdateStage``, ``DeleteStage``.

A stage serves one deployment. Its document keeps API Gateway's fields (``variables``,
``methodSettings``, ``accessLogSettings``, ...) and, under ``config``, the stage as a
configuration file writes it, which is what the gateway serves and ``iamgate export`` writes:
``variables``, ``access_log_format``, ``throttling`` (``methodSettings["*/*"]``) and
``method_throttling`` (``methodSettings["pets/GET"]`` -> ``"/pets/GET"``). Changing a stage needs
no new deployment, as on AWS.

``UpdateStage`` patch paths: ``/deploymentId``, ``/description``, ``/variables/NAME``,
``/accessLogSettings/format`` (and ``/destinationArn``, stored only: iamgate writes every stage
to the gateway's access log), and method settings ``/{resourcePath}/{httpMethod}/{setting}``
with the resource path's ``/`` written ``~1`` (``/~1pets/GET/throttling/rateLimit``) or ``*/*``
for every method (``/*/*/throttling/burstLimit``). Of the method settings only throttling has an
effect; logging, metrics and caching settings are accepted and shown, as a client such as
Terraform sends them all.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from iamgate.config.model import GatewaySettings
from iamgate.management.core import Call, Reply, Route, bad_request, conflict, not_found
from iamgate.management.domains import domains_mapping
from iamgate.management.drafts import api_not_found, now, optional_bool, optional_str, string_map
from iamgate.management.methods import HTTP_METHODS
from iamgate.management.patch import PatchOp, operations
from iamgate.management.policies import (
    MODE_FIELD,
    POLICY_FIELD,
    SCOPED_PATHS,
    patch_scoped_policy,
    policy_object,
)
from iamgate.management.restapis import stages_in_usage_plans
from iamgate.store.base import Doc, Transaction

__all__ = ["ROUTES", "check_stage_name", "check_variables", "config_of", "new_stage", "stage_shape"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VARIABLE = re.compile(r"[A-Za-z0-9_]{1,64}")
DEFAULTS: dict[str, Any] = {
    "metricsEnabled": False,
    "loggingLevel": "OFF",
    "dataTraceEnabled": False,
    "throttlingBurstLimit": 5000,
    "throttlingRateLimit": 10000.0,
    "cachingEnabled": False,
    "cacheTtlInSeconds": 300,
    "cacheDataEncrypted": False,
    "requireAuthorizationForCacheControl": True,
    "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER",
}
SETTINGS = {
    "throttling/rateLimit": "throttlingRateLimit",
    "throttling/burstLimit": "throttlingBurstLimit",
    "logging/loglevel": "loggingLevel",
    "logging/dataTrace": "dataTraceEnabled",
    "metrics/enabled": "metricsEnabled",
    "caching/enabled": "cachingEnabled",
    "caching/ttlInSeconds": "cacheTtlInSeconds",
    "caching/dataEncrypted": "cacheDataEncrypted",
    "caching/requireAuthorizationForCacheControl": "requireAuthorizationForCacheControl",
    "caching/unauthorizedCacheControlHeaderStrategy": "unauthorizedCacheControlHeaderStrategy",
}
STRATEGIES = ("FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER")
VALID_PATHS = (
    "/deploymentId, /description, /accessLogSettings, /accessLogSettings/destinationArn, "
    "/accessLogSettings/format, "
    + ", ".join(f"/{{resourcePath}}/{{httpMethod}}/{s}" for s in SETTINGS)
    + ", "
    + ", ".join(f"/*/*/{s}" for s in SETTINGS)
    + ", /variables/{variable_name}, /tracingEnabled, /cacheClusterEnabled"
    + ", /x-iamgate-policy, /x-iamgate-policyMode (iamgate's)"
)


def check_stage_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise bad_request(
            f"Invalid stage name {name!r}: letters, digits, '-' and '_' (at most 128 characters)"
        )
    return name


def check_variables(variables: dict[str, Any]) -> None:
    for key, value in variables.items():
        if not _VARIABLE.fullmatch(key):
            raise bad_request(f"Invalid stage variable name '{key}': letters, digits and '_' (at most 64)")
        if not isinstance(value, str):
            raise bad_request(f"Stage variable '{key}' must be a string")


def _check_log_format(text: str) -> None:
    if "$context.requestId" not in text and "$context.extendedRequestId" not in text:
        raise bad_request(
            "Access Log format must contain at least one of $context.requestId or $context.extendedRequestId"
        )


def _limit(entry: dict[str, Any], fallback: dict[str, Any]) -> dict[str, Any] | None:
    if "throttlingRateLimit" not in entry and "throttlingBurstLimit" not in entry:
        return None
    rate = entry.get(
        "throttlingRateLimit", fallback.get("throttlingRateLimit", DEFAULTS["throttlingRateLimit"])
    )
    burst = entry.get(
        "throttlingBurstLimit", fallback.get("throttlingBurstLimit", DEFAULTS["throttlingBurstLimit"])
    )
    return {"rate": int(rate) if float(rate).is_integer() else float(rate), "burst": int(burst)}


def config_of(doc: Doc) -> dict[str, Any]:
    """The stage as a configuration file's stage entry (what the gateway serves)."""
    entry: dict[str, Any] = {}
    if doc.get("variables"):
        entry["variables"] = dict(sorted(doc["variables"].items()))
    fmt = (doc.get("accessLogSettings") or {}).get("format")
    if fmt:
        entry["access_log_format"] = fmt
    settings: dict[str, dict[str, Any]] = doc.get("methodSettings") or {}
    everything = settings.get("*/*", {})
    limit = _limit(everything, {})
    if limit is not None:
        entry["throttling"] = limit
    methods = {}
    for key, setting in sorted(settings.items()):
        if key == "*/*":
            continue
        limit = _limit(setting, everything)
        if limit is not None:
            methods[f"/{key}"] = limit
    if methods:
        entry["method_throttling"] = methods
    if doc.get(POLICY_FIELD):  # iamgate's extension: the stage's own policy
        entry["policy"] = policy_object(doc[POLICY_FIELD])
        if doc.get(MODE_FIELD) == "report":
            entry["policy_mode"] = "report"
    return entry


def _settings_of(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``methodSettings`` from a configuration stage entry (the reverse of :func:`config_of`)."""
    out: dict[str, dict[str, Any]] = {}
    if entry.get("throttling"):
        out["*/*"] = {
            "throttlingRateLimit": float(entry["throttling"]["rate"]),
            "throttlingBurstLimit": int(entry["throttling"]["burst"]),
        }
    for key, limit in (entry.get("method_throttling") or {}).items():
        out[key[1:]] = {
            "throttlingRateLimit": float(limit["rate"]),
            "throttlingBurstLimit": int(limit["burst"]),
        }
    return out


def new_stage(
    name: str,
    deployment_id: str,
    *,
    description: str | None = None,
    variables: dict[str, str] | None = None,
    entry: dict[str, Any] | None = None,
    previous: Doc | None = None,
) -> Doc:
    """A stage document; ``entry`` is a configuration stage entry (``iamgate apply``), whose
    settings replace those of ``previous`` (whose creation date, description and tags stay)."""
    stamp = now()
    doc: Doc = {
        "stageName": name,
        "deploymentId": deployment_id,
        "createdDate": (previous or {}).get("createdDate", stamp),
        "lastUpdatedDate": stamp,
        "tags": (previous or {}).get("tags", {}),
    }
    text = description if description is not None else (previous or {}).get("description")
    if text:
        doc["description"] = text
    if entry is not None:
        if entry.get("variables"):
            doc["variables"] = dict(entry["variables"])
        if entry.get("access_log_format"):
            doc["accessLogSettings"] = {"format": entry["access_log_format"]}
        settings = _settings_of(entry)
        if settings:
            doc["methodSettings"] = settings
        if entry.get("policy") is not None:  # a configuration's stage policy (iamgate apply)
            doc[POLICY_FIELD] = json.dumps(entry["policy"], separators=(",", ":"))
            if entry.get("policy_mode") == "report":
                doc[MODE_FIELD] = "report"
    elif variables:
        doc["variables"] = dict(variables)
    doc["config"] = config_of(doc)
    return doc


def stage_shape(doc: Doc) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stageName": doc["stageName"],
        "deploymentId": doc["deploymentId"],
        "cacheClusterEnabled": bool(doc.get("cacheClusterEnabled", False)),
        "cacheClusterStatus": "NOT_AVAILABLE",
        "methodSettings": {k: {**DEFAULTS, **v} for k, v in (doc.get("methodSettings") or {}).items()},
        "tracingEnabled": bool(doc.get("tracingEnabled", False)),
        "tags": doc.get("tags") or {},
        "createdDate": doc["createdDate"],
        "lastUpdatedDate": doc["lastUpdatedDate"],
    }
    for key in ("description", "variables", "accessLogSettings", POLICY_FIELD, MODE_FIELD):
        if doc.get(key):
            out[key] = doc[key]
    return out


def _api_exists(tx: Transaction, call: Call, api_id: str) -> None:
    if tx.get("restapi", "", api_id) is None:
        raise api_not_found(call, api_id)


async def create_stage(call: Call) -> Reply:
    api_id = call.params["restapi_id"]
    body = call.json()
    where = "CreateStage"
    name = check_stage_name(body.get("stageName"))
    deployment_id = optional_str(body, "deploymentId", where)
    if not deployment_id:
        raise bad_request("CreateStage: 'deploymentId' is required")
    variables = string_map(body, "variables", where) or {}
    check_variables(variables)
    if body.get("canarySettings"):
        raise bad_request("iamgate does not support canary deployments: leave 'canarySettings' out")
    doc = new_stage(
        name, deployment_id, description=optional_str(body, "description", where), variables=variables
    )
    doc["tags"] = string_map(body, "tags", where) or {}
    for flag in ("tracingEnabled", "cacheClusterEnabled"):
        if optional_bool(body, flag, where):
            doc[flag] = True

    def run() -> Doc:
        with call.store.transaction() as tx:
            _api_exists(tx, call, api_id)
            if tx.get("deployment", api_id, deployment_id) is None:
                raise bad_request(f"Invalid deployment identifier specified: {deployment_id}")
            if tx.get("stage", api_id, name) is not None:
                raise conflict("Stage already exists")
            tx.insert("stage", api_id, name, doc)
            return doc

    return Reply(201, stage_shape(await call.in_store(run)))


async def get_stages(call: Call) -> Reply:
    api_id = call.params["restapi_id"]
    wanted = call.arg("deploymentId")

    def run() -> list[dict[str, Any]]:
        with call.store.transaction() as tx:
            _api_exists(tx, call, api_id)
            docs = [d for _, _, d in tx.list("stage", api_id)]
        return [stage_shape(d) for d in docs if wanted is None or d["deploymentId"] == wanted]

    return Reply(200, {"item": await call.in_store(run)})


def _find(tx: Transaction, call: Call) -> Doc:
    api_id, name = call.params["restapi_id"], call.params["stage_name"]
    _api_exists(tx, call, api_id)
    doc = tx.get("stage", api_id, name)
    if doc is None:
        raise not_found("Invalid Stage identifier specified")
    return doc


async def get_stage(call: Call) -> Reply:
    def run() -> Doc:
        with call.store.transaction() as tx:
            return _find(tx, call)

    return Reply(200, stage_shape(await call.in_store(run)))


def _setting(op: PatchOp, field: str) -> Any:
    if field == "throttlingRateLimit":
        return op.number(0, 1e9)
    if field in ("throttlingBurstLimit",):
        return op.integer(0, 1_000_000_000)
    if field == "cacheTtlInSeconds":
        return op.integer(0, 3600)
    if field == "loggingLevel":
        value = op.need_value().upper()
        if value not in ("OFF", "ERROR", "INFO"):
            raise bad_request(f"Invalid value for {op.path}: '{op.value}' (OFF, ERROR or INFO)")
        return value
    if field == "unauthorizedCacheControlHeaderStrategy":
        value = op.need_value()
        if value not in STRATEGIES:
            raise bad_request(f"Invalid value for {op.path}: '{value}' (one of {', '.join(STRATEGIES)})")
        return value
    return op.boolean()


def _invalid(op: PatchOp) -> Exception:
    return bad_request(f"Invalid method setting path: {op.path}. Must be one of: [{VALID_PATHS}]")


def _apply(tx: Transaction, api_id: str, doc: Doc, op: PatchOp, gateway: GatewaySettings) -> None:
    tokens = op.tokens
    if op.path in SCOPED_PATHS:  # iamgate's extension: the stage's own policy
        patch_scoped_policy(doc, op, gateway, api_id)
    elif tokens == ["deploymentId"] and op.op == "replace":
        target = op.need_value()
        if tx.get("deployment", api_id, target) is None:
            raise bad_request(f"Invalid deployment identifier specified: {target}")
        doc["deploymentId"] = target
    elif tokens == ["description"] and op.op == "replace":
        if op.value:
            doc["description"] = op.value
        else:
            doc.pop("description", None)
    elif len(tokens) == 2 and tokens[0] == "variables" and op.op in ("add", "replace", "remove"):
        variables = dict(doc.get("variables") or {})
        if op.op == "remove":
            variables.pop(tokens[1], None)
        else:
            variables[tokens[1]] = op.need_value()
            check_variables(variables)
        doc["variables"] = variables
    elif tokens == ["accessLogSettings"] and op.op == "remove":
        doc.pop("accessLogSettings", None)
    elif len(tokens) == 2 and tokens[0] == "accessLogSettings" and tokens[1] in ("format", "destinationArn"):
        settings = dict(doc.get("accessLogSettings") or {})
        if op.op == "remove" or (op.op == "replace" and not op.value):
            settings.pop(tokens[1], None)
        elif op.op == "replace":
            if tokens[1] == "format":
                _check_log_format(op.need_value())
            settings[tokens[1]] = op.need_value()
        else:
            raise _invalid(op)
        doc["accessLogSettings"] = settings
    elif tokens in (["tracingEnabled"], ["cacheClusterEnabled"]) and op.op == "replace":
        doc[tokens[0]] = op.boolean()
    elif len(tokens) in (2, 4) and _method_key(tokens) is not None:
        key = _method_key(tokens)
        settings = copy.deepcopy(doc.get("methodSettings") or {})
        if len(tokens) == 2:
            if op.op != "remove":
                raise _invalid(op)
            settings.pop(key, None)
        else:
            field = SETTINGS.get(f"{tokens[2]}/{tokens[3]}")
            if field is None or op.op not in ("replace", "remove"):
                raise _invalid(op)
            entry = settings.setdefault(key, {})
            if op.op == "remove":
                entry.pop(field, None)
            else:
                entry[field] = _setting(op, field)
        doc["methodSettings"] = {k: v for k, v in settings.items() if v}
    else:
        raise _invalid(op)


def _method_key(tokens: list[str]) -> str | None:
    """``["*", "*", ...]`` -> ``*/*``; ``["/pets", "GET", ...]`` -> ``pets/GET``; else None."""
    resource, verb = tokens[0], tokens[1]
    if resource == "*" and verb == "*":
        return "*/*"
    if resource.startswith("/") and (verb in HTTP_METHODS or verb == "*"):
        return f"{resource[1:]}/{verb}"
    return None


async def update_stage(call: Call) -> Reply:
    ops = operations(call.json())
    api_id = call.params["restapi_id"]

    gateway = call.gateway.config().settings

    def run() -> Doc:
        with call.store.transaction() as tx:
            doc = copy.deepcopy(_find(tx, call))
            for op in ops:
                _apply(tx, api_id, doc, op, gateway)
            doc["lastUpdatedDate"] = now()
            doc["config"] = config_of(doc)
            tx.put("stage", api_id, doc["stageName"], doc)
            return doc

    return Reply(200, stage_shape(await call.in_store(run)))


async def delete_stage(call: Call) -> Reply:
    api_id, name = call.params["restapi_id"], call.params["stage_name"]

    def run() -> None:
        with call.store.transaction() as tx:
            _find(tx, call)
            domains = domains_mapping(tx, api_id, name)
            if domains:  # AWS's refusal, word for word
                raise bad_request(
                    f"Deleting stage {name} failed. Please remove all base path mappings related to the "
                    f"stage in your domains: {', '.join(domains)}"
                )
            plans = stages_in_usage_plans(tx, api_id, name)
            if plans:
                raise bad_request(
                    f"Cannot delete stage {name}: it is in usage plan(s) {', '.join(plans)}; "
                    "remove it from the plans first"
                )
            tx.delete("stage", api_id, name)

    await call.in_store(run)
    return Reply(202)


_BASE = "/restapis/{restapi_id}/stages"
ROUTES = [
    Route("POST", _BASE, create_stage),
    Route("GET", _BASE, get_stages),
    Route("GET", _BASE + "/{stage_name}", get_stage),
    Route("PATCH", _BASE + "/{stage_name}", update_stage),
    Route("DELETE", _BASE + "/{stage_name}", delete_stage),
]
