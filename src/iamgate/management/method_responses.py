"""Method responses (``PutMethodResponse``, ``GetMethodResponse``, ``UpdateMethodResponse``,
``DeleteMethodResponse``) and ``UpdateIntegrationResponse``: the remaining calls of the AWS CLI
sequence that API Gateway's console "Enable CORS" amounts to (docs/cors.md).

A method response declares, per status code, the headers (``method.response.header.NAME``: true
when required) and the models (content type -> model name) a method's answer may carry. They are
kept with the method, shown by ``GetMethod`` and exported to OpenAPI as the operation's responses.
iamgate's answers do not depend on them: a MOCK integration response sets its headers whether or
not a method response declares them (API Gateway refuses such a mapping; see docs/management.md).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, Final

from iamgate.management.core import Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import edit, read
from iamgate.management.integrations import (
    RESPONSE_HEADER,
    find_integration_response,
    literal_mapping,
    status_code,
)
from iamgate.management.methods import find_method
from iamgate.management.patch import PatchOp, invalid_op, invalid_path, operations
from iamgate.store.base import Doc, Transaction

__all__ = ["ROUTES"]

_CONTENT_TYPE: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9*][A-Za-z0-9!#$&^_.+*-]*|\$default"
)
_UPDATABLE: Final = ["/responseParameters/{name}", "/responseModels/{contentType}"]
_RESPONSE_PATCHABLE: Final = [
    "/selectionPattern",
    "/contentHandling",
    "/responseParameters/{name}",
    "/responseTemplates/{contentType}",
]


def _model_names(draft: Doc) -> set[str] | None:
    """The API's model names (None: a draft that keeps no models, which checks nothing)."""
    models = draft.get("models")
    if models is None:
        return None
    return {str(m.get("name")) for m in models.values()}


def _parameters(raw: object) -> dict[str, bool]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(
            "'responseParameters' must be a map of method.response.header.NAME to true or false"
        )
    out: dict[str, bool] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not RESPONSE_HEADER.fullmatch(key):
            raise bad_request(f"Invalid mapping expression specified: {key}: method.response.header.NAME")
        if not isinstance(value, bool):
            raise bad_request(f"Invalid value for {key}: true (required) or false")
        out[key] = value
    return out


def _models(raw: object, draft: Doc) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request("'responseModels' must be a map of content type to model name")
    known = _model_names(draft)
    out: dict[str, str] = {}
    for content_type, name in raw.items():
        if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type):
            raise bad_request(f"Invalid content type specified: {content_type!r}")
        if not isinstance(name, str) or not name:
            raise bad_request(f"Invalid model name specified for {content_type}: {name!r}")
        if known is not None and name not in known:
            raise bad_request(f"Invalid model specified: Model '{name}' does not exist")
        out[content_type] = name
    return out


def _method(draft: Doc, call: Call) -> Doc:
    return find_method(draft, call.params["resource_id"], call.params["http_method"].upper())


def _find(draft: Doc, call: Call, code: str) -> Doc:
    found = (_method(draft, call).get("methodResponses") or {}).get(code)
    if found is None:
        raise not_found("Invalid Response status code specified")
    return found  # type: ignore[no-any-return]


async def put_method_response(call: Call) -> Reply:
    code = status_code(call)
    body = call.json()

    def put(tx: Transaction, draft: Doc) -> Doc:
        response: Doc = {"statusCode": code}
        parameters = _parameters(body.get("responseParameters"))
        if parameters:
            response["responseParameters"] = parameters
        models = _models(body.get("responseModels"), draft)
        if models:
            response["responseModels"] = models
        _method(draft, call).setdefault("methodResponses", {})[code] = response
        return response

    return Reply(201, await edit(call, call.params["restapi_id"], put))


async def get_method_response(call: Call) -> Reply:
    code = status_code(call)
    return Reply(200, await read(call, call.params["restapi_id"], lambda tx, d: _find(d, call, code)))


async def update_method_response(call: Call) -> Reply:
    code = status_code(call)
    ops = operations(call.json())

    def change(tx: Transaction, draft: Doc) -> Doc:
        work = copy.deepcopy(draft)
        response = _find(work, call, code)
        for op in ops:
            _apply(response, op, work)
        draft.clear()
        draft.update(work)
        return response

    return Reply(200, await edit(call, call.params["restapi_id"], change))


def _apply(response: Doc, op: PatchOp, draft: Doc) -> None:
    tokens = op.tokens
    if len(tokens) != 2 or tokens[0] not in ("responseParameters", "responseModels"):
        raise invalid_path(op, _UPDATABLE)
    if op.op not in ("add", "replace", "remove"):
        raise invalid_op(("add", "replace", "remove"))
    field, key = tokens
    if field == "responseParameters":
        _patch_entry(response, op, field, key, lambda: _parameters({key: op.boolean()})[key])
    else:
        _patch_entry(response, op, field, key, lambda: _models({key: op.need_value()}, draft)[key])


def _patch_entry(response: Doc, op: PatchOp, field: str, key: str, value: Callable[[], Any]) -> None:
    """``response[field][key]`` removed, or set to ``value()`` (checked there); an emptied map
    goes (as AWS shows none)."""
    table: dict[str, Any] = response.setdefault(field, {})
    if op.op == "remove":
        if key not in table:
            raise not_found(f"Invalid {field} key specified: {key}")
        del table[key]
    else:
        table[key] = value()
    if not table:
        del response[field]


async def delete_method_response(call: Call) -> Reply:
    code = status_code(call)

    def remove(tx: Transaction, draft: Doc) -> None:
        _find(draft, call, code)
        del _method(draft, call)["methodResponses"][code]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(204)


async def update_integration_response(call: Call) -> Reply:
    """``UpdateIntegrationResponse``: patch a MOCK integration's response (the same rules as
    ``PutIntegrationResponse``: literal header values, a selection pattern that compiles)."""
    code = status_code(call)
    ops = operations(call.json())

    def change(tx: Transaction, draft: Doc) -> Doc:
        work = copy.deepcopy(draft)
        response = find_integration_response(work, call, code)
        for op in ops:
            _apply_integration(response, op)
        draft.clear()
        draft.update(work)
        return response

    return Reply(200, await edit(call, call.params["restapi_id"], change))


def _apply_integration(response: Doc, op: PatchOp) -> None:
    tokens = op.tokens
    if op.op not in ("add", "replace", "remove"):
        raise invalid_op(("add", "replace", "remove"))
    if len(tokens) == 1 and tokens[0] in ("selectionPattern", "contentHandling"):
        if op.op == "remove":
            response.pop(tokens[0], None)
            return
        value = op.need_value()
        if tokens[0] == "selectionPattern":
            try:
                re.compile(value)
            except re.error as exc:
                raise bad_request(f"Invalid selectionPattern '{value}': {exc}") from None
        elif value not in ("CONVERT_TO_BINARY", "CONVERT_TO_TEXT"):
            raise bad_request(f"Invalid contentHandling '{value}': CONVERT_TO_BINARY or CONVERT_TO_TEXT")
        response[tokens[0]] = value
        return
    if len(tokens) != 2 or tokens[0] not in ("responseParameters", "responseTemplates"):
        raise invalid_path(op, _RESPONSE_PATCHABLE)
    field, key = tokens
    if field == "responseParameters":
        _patch_entry(response, op, field, key, lambda: literal_mapping(key, op.need_value()))
    else:
        if not _CONTENT_TYPE.fullmatch(key):
            raise bad_request(f"Invalid content type specified: {key!r}")
        _patch_entry(response, op, field, key, lambda: op.value or "")


_BASE: Final = "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}"
ROUTES = [
    Route("PUT", _BASE + "/responses/{status_code}", put_method_response),
    Route("GET", _BASE + "/responses/{status_code}", get_method_response),
    Route("PATCH", _BASE + "/responses/{status_code}", update_method_response),
    Route("DELETE", _BASE + "/responses/{status_code}", delete_method_response),
    Route("PATCH", _BASE + "/integration/responses/{status_code}", update_integration_response),
]
