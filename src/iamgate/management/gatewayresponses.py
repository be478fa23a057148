"""Gateway responses: ``PutGatewayResponse``, ``GetGatewayResponse``, ``GetGatewayResponses``,
``UpdateGatewayResponse``, ``DeleteGatewayResponse``.

A gateway response replaces the answer the gateway gives for one response type (``ACCESS_DENIED``,
``DEFAULT_4XX``, ...; :data:`iamgate.pipeline.responses.RESPONSE_TYPES`): its ``statusCode``, the
headers it adds (``responseParameters``: ``gatewayresponse.header.NAME`` from a quoted literal,
``method.request.{header|querystring|path|multivalueheader|multivaluequerystring}.X``,
``stageVariables.X`` or ``context.X``) and its bodies per content type (``responseTemplates``).

The draft keeps only the customised ones, ``draft["gatewayResponses"][TYPE]``. As on AWS,
``GetGatewayResponses`` lists all 21 types: the customised ones (``defaultResponse: false``) and
the others as API Gateway generates them (``defaultResponse: true``). Deleting one brings the
type back to its default.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from iamgate.config.read_responses import parameter_problem, template_problem
from iamgate.management.core import ApiError, Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import edit, optional_str, page, read, string_map
from iamgate.management.patch import PatchOp, invalid_path, operations
from iamgate.pipeline.responses import RESPONSE_TYPES
from iamgate.store.base import Doc, Transaction

__all__ = [
    "DEFAULT_TEMPLATES",
    "ROUTES",
    "check_gateway_response",
    "gateway_response_shape",
    "problems_of",
    "response_type",
]

# what API Gateway's default responses carry (GetGatewayResponses with defaultResponse: true)
DEFAULT_TEMPLATES = {"application/json": '{"message":$context.error.messageString}'}
_STATUS = re.compile(r"[1-5][0-9][0-9]")
MIN_STATUS = 200  # the configuration reader's lowest (AWS's pattern also lets 1xx through)
_SOURCE_HELP = (
    "a gateway response sets headers, gatewayresponse.header.NAME, from a quoted literal 'value', "
    "method.request.header|querystring|path|multivalueheader|multivaluequerystring.NAME, "
    "stageVariables.NAME or context.NAME"
)
UPDATABLE = ["/statusCode", "/responseParameters/{name}", "/responseTemplates/{contentType}"]


def response_type(call: Call) -> str:
    """The response type of the request path; AWS's validation error for an unknown one."""
    kind = call.params["response_type"]
    if kind not in RESPONSE_TYPES:
        raise bad_request(
            f"1 validation error detected: Value '{kind}' at 'responseType' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(RESPONSE_TYPES)}]"
        )
    return kind


def _default_shape(kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"responseType": kind}
    status = RESPONSE_TYPES[kind]
    if status is not None:
        out["statusCode"] = str(status)
    out["responseParameters"] = {}
    out["responseTemplates"] = dict(DEFAULT_TEMPLATES)
    out["defaultResponse"] = True
    return out


def gateway_response_shape(kind: str, stored: Doc | None) -> dict[str, Any]:
    """The ``GatewayResponse`` answer of ``kind``: the customisation ``stored``, or the default."""
    if stored is None:
        return _default_shape(kind)
    out: dict[str, Any] = {"responseType": kind}
    status = stored.get("statusCode")
    if status is None and RESPONSE_TYPES[kind] is not None:
        status = str(RESPONSE_TYPES[kind])
    if status is not None:
        out["statusCode"] = status
    out["responseParameters"] = dict(stored.get("responseParameters") or {})
    out["responseTemplates"] = dict(stored.get("responseTemplates") or {})
    out["defaultResponse"] = False
    return out


def check_gateway_response(response: Doc) -> None:
    """The rules a customised gateway response keeps whatever set it (Put, a patch, an import):
    AWS's (BadRequestException with its wording), then the configuration reader's own
    (:mod:`iamgate.config.read_responses`: what the gateway could not serve, refused on save
    rather than at the next deployment)."""
    status = response.get("statusCode")
    if status is not None and (not isinstance(status, str) or not _STATUS.fullmatch(status)):
        raise bad_request(
            f"1 validation error detected: Value '{status}' at 'statusCode' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [1-5]\\d\\d"
        )
    if status is not None and int(status) < MIN_STATUS:
        raise bad_request(
            f"Invalid status code {status}: iamgate answers gateway responses with 200 to 599 (a 1xx "
            "as the final answer leaves the client waiting for another; docs/gateway-responses.md)"
        )
    for target, source in (response.get("responseParameters") or {}).items():
        problem = parameter_problem(target, source)
        if problem is not None:
            raise bad_request(f"Invalid mapping expression specified: {problem} ({_SOURCE_HELP})")
    for content_type, template in (response.get("responseTemplates") or {}).items():
        problem = template_problem(content_type, template)
        if problem is not None:
            raise bad_request(f"Invalid response template specified: {problem}")


def _gateway_responses(draft: Doc) -> dict[str, Doc]:
    found: dict[str, Doc] = draft.setdefault("gatewayResponses", {})
    return found


async def put_gateway_response(call: Call) -> Reply:
    kind = response_type(call)
    body = call.json()
    where = "PutGatewayResponse"
    response: Doc = {}
    status = optional_str(body, "statusCode", where)
    if status is not None:
        response["statusCode"] = status
    params = string_map(body, "responseParameters", where)
    if params:
        response["responseParameters"] = params
    templates = string_map(body, "responseTemplates", where)
    if templates:
        response["responseTemplates"] = templates
    check_gateway_response(response)

    def put(tx: Transaction, draft: Doc) -> dict[str, Any]:
        _gateway_responses(draft)[kind] = response
        return gateway_response_shape(kind, response)

    return Reply(201, await edit(call, call.params["restapi_id"], put))


async def get_gateway_response(call: Call) -> Reply:
    kind = response_type(call)
    shape = await read(
        call,
        call.params["restapi_id"],
        lambda tx, d: gateway_response_shape(kind, (d.get("gatewayResponses") or {}).get(kind)),
    )
    return Reply(200, shape)


async def get_gateway_responses(call: Call) -> Reply:
    def shapes(tx: Transaction, draft: Doc) -> list[dict[str, Any]]:
        stored = draft.get("gatewayResponses") or {}
        return [gateway_response_shape(kind, stored.get(kind)) for kind in sorted(RESPONSE_TYPES)]

    items = await read(call, call.params["restapi_id"], shapes)
    return Reply(200, page(call, items, key="responseType"))


def _map_key(op: PatchOp) -> str:
    """The key a ``/responseParameters/...`` or ``/responseTemplates/...`` path names: one
    escaped token (``application~1json``) or, as some clients write it, the rest of the path."""
    return "/".join(op.tokens[1:])


def _apply(response: Doc, op: PatchOp) -> None:
    tokens = op.tokens
    if op.path == "/statusCode" and op.op == "replace":
        if op.value:
            response["statusCode"] = op.value
        else:
            response.pop("statusCode", None)
    elif len(tokens) >= 2 and tokens[0] in ("responseParameters", "responseTemplates"):
        if op.op not in ("add", "replace", "remove"):
            raise invalid_path(op, UPDATABLE)
        key = _map_key(op)
        mapping = dict(response.get(tokens[0]) or {})
        if op.op == "remove":
            if key not in mapping:
                raise bad_request(f"Invalid patch path  '{op.path}': there is no {tokens[0]} entry '{key}'")
            del mapping[key]
        else:
            mapping[key] = op.need_value()
        if mapping:
            response[tokens[0]] = mapping
        else:
            response.pop(tokens[0], None)
    else:
        raise invalid_path(op, UPDATABLE)


async def update_gateway_response(call: Call) -> Reply:
    kind = response_type(call)
    ops = operations(call.json())

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        stored = (draft.get("gatewayResponses") or {}).get(kind)
        # a default response is customised by its first update, starting from what it shows
        work: Doc = copy.deepcopy(stored) if stored is not None else {}
        if stored is None:
            work["responseTemplates"] = dict(DEFAULT_TEMPLATES)
        for op in ops:
            _apply(work, op)
        check_gateway_response(work)
        _gateway_responses(draft)[kind] = work
        return gateway_response_shape(kind, work)

    return Reply(200, await edit(call, call.params["restapi_id"], change))


async def delete_gateway_response(call: Call) -> Reply:
    kind = response_type(call)

    def remove(tx: Transaction, draft: Doc) -> None:
        stored = draft.get("gatewayResponses") or {}
        if kind not in stored:
            raise not_found("Invalid Gateway Response identifier specified")
        del stored[kind]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(202)


def problems_of(response: Doc) -> str | None:
    """Why ``response`` would be refused (for an import, which reports instead of raising)."""
    try:
        check_gateway_response(response)
    except ApiError as exc:
        return exc.message
    return None


_BASE = "/restapis/{restapi_id}/gatewayresponses"
ROUTES = [
    Route("GET", _BASE, get_gateway_responses),
    Route("PUT", _BASE + "/{response_type}", put_gateway_response),
    Route("GET", _BASE + "/{response_type}", get_gateway_response),
    Route("PATCH", _BASE + "/{response_type}", update_gateway_response),
    Route("DELETE", _BASE + "/{response_type}", delete_gateway_response),
]
