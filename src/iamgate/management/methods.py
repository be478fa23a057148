"""Methods: ``PutMethod``, ``GetMethod``, ``UpdateMethod``, ``DeleteMethod``.

A method is a verb on a resource with its authorization: ``NONE``, ``AWS_IAM``, ``CUSTOM`` (a
``TOKEN``/``REQUEST`` authorizer) or ``COGNITO_USER_POOLS`` (a ``COGNITO_USER_POOLS`` authorizer,
with optional ``authorizationScopes``) or ``JWT`` (a ``JWT`` authorizer, likewise), and
``apiKeyRequired``. Request validation: ``requestParameters`` (the request values the method
declares, ``method.request.querystring.x: true`` when required), ``requestModels`` (content type
-> the name of one of the API's models, ``$default`` for any) and ``requestValidatorId`` (one of
the API's request validators, :mod:`iamgate.management.models`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from iamgate.management.core import Call, Reply, Route, bad_request, conflict, not_found
from iamgate.management.drafts import (
    edit,
    find_resource,
    optional_bool,
    optional_str,
    read,
    string_list,
    string_map,
)
from iamgate.management.patch import PatchOp, invalid_path, operations
from iamgate.management.policies import SCOPED_PATHS, patch_scoped_policy
from iamgate.management.shapes import method_shape
from iamgate.store.base import Doc, Transaction

__all__ = ["AUTHORIZATION_TYPES", "HTTP_METHODS", "ROUTES", "check_method", "find_method"]

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY")
AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS", "JWT")
NEEDS_AUTHORIZER = {
    "CUSTOM": ("TOKEN", "REQUEST"),
    "COGNITO_USER_POOLS": ("COGNITO_USER_POOLS",),
    "JWT": ("JWT",),
}
_REQUEST_PARAMETER = re.compile(
    r"method\.request\.(path|querystring|header|multivaluequerystring|multivalueheader)\.([^\s]+)"
)
UPDATABLE = [
    "/authorizationType",
    "/authorizerId",
    "/apiKeyRequired",
    "/operationName",
    "/authorizationScopes",
    "/requestParameters/{name}",
    "/requestValidatorId",
    "/requestModels/{contentType}",
    "/x-iamgate-policy",  # iamgate's extension: the method's own policy (docs/management.md)
    "/x-iamgate-policyMode",
]


def _verb(call: Call) -> str:
    verb = call.params["http_method"].upper()
    if verb not in HTTP_METHODS:
        raise bad_request(f"Invalid HttpMethod specified. Valid options are {','.join(HTTP_METHODS)}")
    return verb


def find_method(draft: Doc, resource_id: str, verb: str) -> Doc:
    resource = find_resource(draft, resource_id)
    method = (resource.get("resourceMethods") or {}).get(verb)
    if method is None:
        raise not_found("Invalid Method identifier specified")
    return method  # type: ignore[no-any-return]


def check_method(draft: Doc, method: Doc) -> None:
    """The rules a method must keep whatever set it (PutMethod or a patch)."""
    kind = method.get("authorizationType")
    if kind not in AUTHORIZATION_TYPES:
        raise bad_request(
            f"Invalid authorization type '{kind}': iamgate supports {', '.join(AUTHORIZATION_TYPES)}"
        )
    wanted = NEEDS_AUTHORIZER.get(kind)
    if wanted is None:
        method.pop("authorizerId", None)  # as AWS: an authorizer id means nothing without CUSTOM/COGNITO
    else:
        authorizer = draft["authorizers"].get(method.get("authorizerId") or "")
        if authorizer is None or authorizer.get("type") not in wanted:
            detail = (
                ""
                if authorizer is None
                else f" (authorizer {authorizer['id']} is of type {authorizer['type']})"
            )
            raise bad_request(
                "Invalid authorizer ID specified. Setting the authorization type to CUSTOM or "
                f"COGNITO_USER_POOLS requires a valid authorizer.{detail}"
            )
    if method.get("authorizationScopes") and kind not in ("COGNITO_USER_POOLS", "JWT"):
        raise bad_request(
            "authorizationScopes apply only to methods with authorizationType COGNITO_USER_POOLS or JWT"
        )
    params = method.get("requestParameters") or {}
    names: dict[str, str] = {}
    for key, required in params.items():
        m = _REQUEST_PARAMETER.fullmatch(key)
        if m is None or not isinstance(required, bool):
            raise bad_request(
                f"Invalid method request parameter '{key}': method.request.path|querystring|header.NAME "
                "mapped to true (required) or false"
            )
        if m.group(2) in names:
            raise bad_request("Parameter names must be unique across querystring, header and path")
        names[m.group(2)] = m.group(1)
    validator = method.get("requestValidatorId")
    if validator is not None and validator not in (draft.get("requestValidators") or {}):
        raise bad_request("Invalid Request Validator identifier specified")
    models = {m["name"] for m in (draft.get("models") or {}).values()}
    for content_type, name in (method.get("requestModels") or {}).items():
        if not content_type or (content_type != "$default" and "/" not in content_type):
            raise bad_request(
                f"Invalid content type specified: '{content_type}' (a media type such as application/json, "
                "or $default)"
            )
        if not isinstance(name, str) or name not in models:
            raise bad_request(f"Invalid model identifier specified: {name}")


async def put_method(call: Call) -> Reply:
    verb = _verb(call)
    body = call.json()
    where = "PutMethod"
    kind = optional_str(body, "authorizationType", where)
    if kind is None:
        raise bad_request(
            "PutMethod: 'authorizationType' is required (NONE, AWS_IAM, CUSTOM or COGNITO_USER_POOLS)"
        )
    params = string_map(body, "requestParameters", where, bool)
    method: Doc = {
        "httpMethod": verb,
        "authorizationType": kind,
        "authorizerId": optional_str(body, "authorizerId", where),
        "apiKeyRequired": bool(optional_bool(body, "apiKeyRequired", where)),
        "operationName": optional_str(body, "operationName", where),
        "requestParameters": params or None,
        "requestValidatorId": optional_str(body, "requestValidatorId", where) or None,
        "requestModels": string_map(body, "requestModels", where) or None,
        "authorizationScopes": string_list(body, "authorizationScopes", where) or None,
    }
    method = {k: v for k, v in method.items() if v is not None}

    def put(tx: Transaction, draft: Doc) -> dict[str, Any]:
        resource = find_resource(draft, call.params["resource_id"])
        methods = resource.setdefault("resourceMethods", {})
        if verb in methods:
            raise conflict("Method already exists for this resource")
        check_method(draft, method)
        methods[verb] = method
        return method_shape(method)

    return Reply(201, await edit(call, call.params["restapi_id"], put))


async def get_method(call: Call) -> Reply:
    verb = _verb(call)
    shape = await read(
        call,
        call.params["restapi_id"],
        lambda tx, d: method_shape(find_method(d, call.params["resource_id"], verb)),
    )
    return Reply(200, shape)


async def delete_method(call: Call) -> Reply:
    verb = _verb(call)

    def remove(tx: Transaction, draft: Doc) -> None:
        find_method(draft, call.params["resource_id"], verb)
        del find_resource(draft, call.params["resource_id"])["resourceMethods"][verb]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(204)


def _apply(method: Doc, op: PatchOp) -> None:
    tokens = op.tokens
    if op.path == "/authorizationType" and op.op == "replace":
        value = op.need_value()
        if value not in ("COGNITO_USER_POOLS", "JWT"):
            method.pop("authorizationScopes", None)
        method["authorizationType"] = value
    elif op.path == "/authorizerId" and op.op in ("replace", "remove"):
        if op.op == "remove" or not op.value:
            method.pop("authorizerId", None)
        else:
            method["authorizerId"] = op.value
    elif op.path == "/apiKeyRequired" and op.op == "replace":
        method["apiKeyRequired"] = op.boolean()
    elif op.path == "/operationName" and op.op in ("replace", "remove"):
        if op.value and op.op == "replace":
            method["operationName"] = op.value
        else:
            method.pop("operationName", None)
    elif op.path == "/authorizationScopes" and op.op in ("add", "remove", "replace"):
        scopes: list[str] = list(method.get("authorizationScopes") or [])
        value = op.need_value()
        if op.op == "add" and value not in scopes:
            scopes.append(value)
        elif op.op == "remove":
            scopes = [s for s in scopes if s != value]
        elif op.op == "replace":
            scopes = [s.strip() for s in value.split(",") if s.strip()]
        if scopes:
            method["authorizationScopes"] = scopes
        else:
            method.pop("authorizationScopes", None)
    elif len(tokens) == 2 and tokens[0] == "requestParameters" and op.op in ("add", "replace", "remove"):
        params = dict(method.get("requestParameters") or {})
        if op.op == "remove":
            params.pop(tokens[1], None)
        else:
            params[tokens[1]] = op.boolean() if op.value else False
        if params:
            method["requestParameters"] = params
        else:
            method.pop("requestParameters", None)
    elif op.path == "/requestValidatorId" and op.op in ("replace", "remove"):
        if op.op == "remove" or not op.value:
            method.pop("requestValidatorId", None)
        else:
            method["requestValidatorId"] = op.value
    elif len(tokens) >= 2 and tokens[0] == "requestModels" and op.op in ("add", "replace", "remove"):
        models = dict(method.get("requestModels") or {})
        content_type = "/".join(tokens[1:])  # application~1json, or the rest of the path unescaped
        if op.op == "remove":
            models.pop(content_type, None)
        else:
            models[content_type] = op.need_value()
        if models:
            method["requestModels"] = models
        else:
            method.pop("requestModels", None)
    else:
        raise invalid_path(op, UPDATABLE)


async def update_method(call: Call) -> Reply:
    verb = _verb(call)
    ops = operations(call.json())

    settings = call.gateway.config().settings
    api_id = call.params["restapi_id"]

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        work = copy.deepcopy(draft)
        method = find_method(work, call.params["resource_id"], verb)
        for op in ops:
            if op.path in SCOPED_PATHS:
                patch_scoped_policy(method, op, settings, api_id)
            else:
                _apply(method, op)
        check_method(work, method)
        draft.clear()
        draft.update(work)
        return method_shape(method)

    return Reply(200, await edit(call, call.params["restapi_id"], change))


_BASE = "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}"
ROUTES = [
    Route("PUT", _BASE, put_method),
    Route("GET", _BASE, get_method),
    Route("PATCH", _BASE, update_method),
    Route("DELETE", _BASE, delete_method),
]
