"""REST APIs: ``CreateRestApi``, ``GetRestApis``, ``GetRestApi``, ``UpdateRestApi``,
``DeleteRestApi`` (paths, status codes and shapes of botocore's ``apigateway`` model).

Creating an API creates its draft with a root resource (``/``). The resource policy is validated
and stored as AWS returns it (:mod:`iamgate.management.policies`); changing it needs
``apigateway:UpdateRestApiPolicy`` besides the HTTP method's action, as on AWS. ``policyMode``
(``enforce`` or ``report``) is iamgate's extension: ``replace /policyMode``.
"""

from __future__ import annotations

import copy
from typing import Any

from iamgate.management import access
from iamgate.management.core import Call, Reply, Route, bad_request
from iamgate.management.domains import domains_mapping
from iamgate.management.drafts import (
    KIND,
    api_not_found,
    edit,
    now,
    optional_bool,
    optional_str,
    read,
    stored_page,
    string_list,
    string_map,
)
from iamgate.management.ids import new_id
from iamgate.management.models import default_models
from iamgate.management.patch import PatchOp, invalid_op, invalid_path, operations
from iamgate.management.policies import save_policy
from iamgate.store.base import Doc, Transaction

__all__ = ["ROUTES", "new_draft", "rest_api_shape", "stages_in_usage_plans", "with_warnings"]

ENDPOINT_TYPES = ("EDGE", "REGIONAL", "PRIVATE")
KEY_SOURCES = ("HEADER", "AUTHORIZER")
POLICY_MODES = ("enforce", "report")
WHERE = "CreateRestApi"
UPDATABLE = [
    "/name",
    "/description",
    "/version",
    "/policy",
    "/policyMode",
    "/apiKeySource",
    "/disableExecuteApiEndpoint",
    "/minimumCompressionSize",
    "/binaryMediaTypes/{type}",
    "/endpointConfiguration/types/{type}",
    "/endpointConfiguration/vpcEndpointIds",
]


def new_draft(api_id: str, rest_api: dict[str, Any], root_id: str | None = None) -> Doc:
    """A draft with only its root resource; ``rest_api`` gets ``id``, ``rootResourceId`` and the
    defaults AWS fills."""
    root = root_id or new_id("resource")
    api = {
        "id": api_id,
        "createdDate": now(),
        "apiKeySource": "HEADER",
        "endpointConfiguration": {"types": ["EDGE"]},
        "disableExecuteApiEndpoint": False,
        **rest_api,
    }
    api["id"] = api_id
    api["rootResourceId"] = root
    return {
        "restApi": api,
        "resources": {root: {"id": root, "path": "/", "resourceMethods": {}}},
        "authorizers": {},
        "models": default_models(),
        "requestValidators": {},
        "gatewayResponses": {},
    }


def rest_api_shape(draft: Doc) -> dict[str, Any]:
    """The ``RestApi`` answer: the stored fields, with AWS's defaults for absent ones."""
    api = {k: v for k, v in draft["restApi"].items() if v is not None}
    api.setdefault("apiKeySource", "HEADER")
    api.setdefault("disableExecuteApiEndpoint", False)
    api.setdefault("endpointConfiguration", {"types": ["EDGE"]})
    api.setdefault("tags", {})
    if draft.get("policyMode"):
        api["policyMode"] = draft["policyMode"]  # iamgate's extension (clients ignore unknown keys)
    return api


def _endpoint(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("endpointConfiguration")
    if raw is None:
        return {"types": ["EDGE"]}
    if not isinstance(raw, dict):
        raise bad_request(f"{WHERE}: 'endpointConfiguration' must be an object with 'types'")
    types = string_list(raw, "types", f"{WHERE}: endpointConfiguration") or ["EDGE"]
    if len(types) != 1 or types[0] not in ENDPOINT_TYPES:
        raise bad_request(
            f"Invalid endpoint configuration types {types}: exactly one of {', '.join(ENDPOINT_TYPES)}"
        )
    out: dict[str, Any] = {"types": types}
    vpces = string_list(raw, "vpcEndpointIds", f"{WHERE}: endpointConfiguration")
    if vpces:
        if types[0] != "PRIVATE":
            raise bad_request("vpcEndpointIds can only be given for a PRIVATE API")
        out["vpcEndpointIds"] = vpces
    return out


async def create_rest_api(call: Call) -> Reply:
    body = call.json()
    name = optional_str(body, "name", WHERE)
    if not name or not name.strip():
        raise bad_request("Invalid REST API name specified: a name is required")
    description = optional_str(body, "description", WHERE)
    if description == "":
        raise bad_request("Description cannot be an empty string")
    if body.get("cloneFrom") is not None:
        raise bad_request("iamgate does not support cloneFrom; export the API and import it instead")
    key_source = optional_str(body, "apiKeySource", WHERE) or "HEADER"
    if key_source not in KEY_SOURCES:
        raise bad_request(f"Invalid apiKeySource '{key_source}': one of {', '.join(KEY_SOURCES)}")
    rest_api: dict[str, Any] = {
        "name": name,
        "description": description,
        "version": optional_str(body, "version", WHERE),
        "apiKeySource": key_source,
        "endpointConfiguration": _endpoint(body),
        "disableExecuteApiEndpoint": bool(optional_bool(body, "disableExecuteApiEndpoint", WHERE)),
        "binaryMediaTypes": string_list(body, "binaryMediaTypes", WHERE),
        "tags": string_map(body, "tags", WHERE) or {},
    }
    compression = body.get("minimumCompressionSize")
    if compression is not None:
        if (
            not isinstance(compression, int)
            or isinstance(compression, bool)
            or not 0 <= compression <= 10485760
        ):
            raise bad_request("Invalid minimum compression size, must be between 0 and 10485760")
        rest_api["minimumCompressionSize"] = compression
    api_id = new_id("restapi")
    warnings: list[str] = []
    policy = body.get("policy")
    if policy is not None:
        if not isinstance(policy, str):
            raise bad_request(f"{WHERE}: 'policy' must be a string (the policy document as JSON text)")
        access.require("apigateway:UpdateRestApiPolicy", f"/restapis/{api_id}")
        rest_api["policy"], warnings = save_policy(policy, call.gateway.config().settings, api_id)
    draft = new_draft(api_id, {k: v for k, v in rest_api.items() if v is not None})

    def run() -> None:
        with call.store.transaction() as tx:
            tx.insert(KIND, "", api_id, draft)

    await call.in_store(run)
    return Reply(201, with_warnings(rest_api_shape(draft), warnings))


async def get_rest_apis(call: Call) -> Reply:
    return Reply(200, await stored_page(call, KIND, "", rest_api_shape))


async def get_rest_api(call: Call) -> Reply:
    return Reply(200, await read(call, call.params["restapi_id"], lambda tx, d: rest_api_shape(d)))


def with_warnings(shape: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """A ``RestApi`` answer with ``warnings`` (only when there are some, as AWS answers)."""
    if warnings:
        shape["warnings"] = warnings
    return shape


def _apply(call: Call, draft: Doc, op: PatchOp) -> list[str]:
    """Apply one patch operation; the warnings of a policy it saves."""
    api = draft["restApi"]
    tokens = op.tokens
    head = tokens[0] if tokens else ""
    settings = call.gateway.config().settings
    if op.path in ("/name", "/description", "/version") and op.op == "replace":
        value = op.value or ""
        if op.path == "/name" and not value.strip():
            raise bad_request("Invalid REST API name specified: a name is required")
        if value:
            api[head] = value
        elif op.path == "/name":
            api["name"] = value
        else:
            api.pop(head, None)
    elif op.path == "/policy":
        access.require("apigateway:UpdateRestApiPolicy", f"/restapis/{api['id']}")
        if op.op == "remove" or (op.op == "replace" and not (op.value or "").strip()):
            api.pop("policy", None)
        elif op.op == "replace":
            api["policy"], warnings = save_policy(op.need_value(), settings, api["id"])
            return warnings
        else:
            raise invalid_op(("replace", "remove"))
    elif op.path == "/policyMode" and op.op == "replace":
        mode = op.need_value()
        if mode not in POLICY_MODES:
            raise bad_request(f"Invalid policyMode '{mode}': one of {', '.join(POLICY_MODES)}")
        if mode == "enforce":
            draft.pop("policyMode", None)
        else:
            draft["policyMode"] = mode
    elif op.path == "/apiKeySource" and op.op == "replace":
        value = op.need_value()
        if value not in KEY_SOURCES:
            raise bad_request(f"Invalid apiKeySource '{value}': one of {', '.join(KEY_SOURCES)}")
        api["apiKeySource"] = value
    elif op.path == "/disableExecuteApiEndpoint" and op.op == "replace":
        api["disableExecuteApiEndpoint"] = op.boolean()
    elif op.path == "/minimumCompressionSize" and op.op == "replace":
        if not op.value:
            api.pop("minimumCompressionSize", None)
        else:
            try:
                size = int(op.value)
            except ValueError:
                size = -1
            if not 0 <= size <= 10485760:
                raise bad_request("Invalid minimum compression size, must be between 0 and 10485760")
            api["minimumCompressionSize"] = size
    elif head == "binaryMediaTypes" and len(tokens) == 2 and op.op in ("add", "remove", "replace"):
        types: list[str] = list(api.get("binaryMediaTypes") or [])
        if op.op in ("remove", "replace") and tokens[1] in types:
            types.remove(tokens[1])
        if op.op == "add":
            types.append(tokens[1])
        if op.op == "replace":
            types.append(op.need_value())
        api["binaryMediaTypes"] = types
    elif tokens[:2] == ["endpointConfiguration", "types"] and len(tokens) == 3 and op.op == "replace":
        config = api.setdefault("endpointConfiguration", {"types": ["EDGE"]})
        current = (config.get("types") or ["EDGE"])[0]
        if tokens[2] not in (current, "0"):
            raise bad_request(
                f"Invalid patch path {op.path}: the API's endpoint type is {current} "
                f"(replace /endpointConfiguration/types/{current})"
            )
        value = op.need_value()
        if value not in ENDPOINT_TYPES:
            raise bad_request(f"Invalid endpoint type '{value}': one of {', '.join(ENDPOINT_TYPES)}")
        config["types"] = [value]
        if value != "PRIVATE":
            config.pop("vpcEndpointIds", None)
    elif tokens == ["endpointConfiguration", "vpcEndpointIds"] and op.op in ("add", "remove", "replace"):
        config = api.setdefault("endpointConfiguration", {"types": ["EDGE"]})
        ids: list[str] = list(config.get("vpcEndpointIds") or [])
        given = [v.strip() for v in op.need_value().split(",") if v.strip()]
        if op.op == "replace":
            ids = given
        elif op.op == "add":
            ids += [v for v in given if v not in ids]
        else:
            ids = [v for v in ids if v not in given]
        if ids and (config.get("types") or ["EDGE"])[0] != "PRIVATE":
            raise bad_request("vpcEndpointIds can only be given for a PRIVATE API")
        config["vpcEndpointIds"] = ids
    elif op.path in UPDATABLE or head in ("binaryMediaTypes", "endpointConfiguration"):
        raise invalid_op()
    else:
        raise invalid_path(op, UPDATABLE)
    return []


async def update_rest_api(call: Call) -> Reply:
    ops = operations(call.json())

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        work = copy.deepcopy(draft)
        warnings = [w for op in ops for w in _apply(call, work, op)]
        draft.clear()
        draft.update(work)
        return with_warnings(rest_api_shape(draft), warnings)

    return Reply(200, await edit(call, call.params["restapi_id"], change))


def stages_in_usage_plans(tx: Transaction, api_id: str, stage: str | None = None) -> list[str]:
    """``plan (api/stage)`` for every usage plan that names a stage of the API (or that stage)."""
    found = []
    for _, plan_id, plan in tx.list("usageplan"):
        for entry in plan.get("api_stages") or []:
            if entry.get("api") == api_id and (stage is None or entry.get("stage") == stage):
                found.append(f"{plan_id} ({api_id}/{entry.get('stage')})")
    return found


async def delete_rest_api(call: Call) -> Reply:
    api_id = call.params["restapi_id"]

    def run() -> None:
        with call.store.transaction() as tx:
            if tx.get(KIND, "", api_id) is None:
                raise api_not_found(call, api_id)
            domains = domains_mapping(tx, api_id)
            if domains:  # AWS's refusal, word for word
                raise bad_request(
                    f"Deleting RestApi {api_id} failed. Please remove all base path mappings related to "
                    f"the RestApi in your domains: {', '.join(domains)}"
                )
            plans = stages_in_usage_plans(tx, api_id)
            if plans:
                raise bad_request(
                    f"Cannot delete the API: its stages are in usage plan(s) {', '.join(plans)}; "
                    "remove them from the plans first"
                )
            tx.delete_api(api_id)

    await call.in_store(run)
    return Reply(202)


ROUTES = [
    Route("POST", "/restapis", create_rest_api),
    Route("GET", "/restapis", get_rest_apis),
    Route("GET", "/restapis/{restapi_id}", get_rest_api),
    Route("PATCH", "/restapis/{restapi_id}", update_rest_api),
    Route("DELETE", "/restapis/{restapi_id}", delete_rest_api),
]
