"""Integrations: ``PutIntegration``, ``GetIntegration``, ``UpdateIntegration``,
``DeleteIntegration``, and their responses (``PutIntegrationResponse``,
``GetIntegrationResponse``, ``DeleteIntegrationResponse``) for MOCK integrations.

iamgate serves two integration types:

* ``HTTP_PROXY``: the request goes to ``uri`` unchanged and the backend's answer comes back
  unchanged. ``uri`` is an ``http(s)://`` URL that may use ``${stageVariables.NAME}`` and the
  resource's path parameters (``{id}``, ``{proxy}``); ``integrationHttpMethod`` must be ``ANY`` or
  the method's own verb (iamgate always sends the client's method); ``timeoutInMillis`` 50 to
  3,600,000; ``requestParameters`` map ``integration.request.header.NAME`` from request values
  (``method.request.header.X``, ``context.authorizer.KEY``, ``'literal'``, ...), and
  ``integration.request.path.P`` only from ``method.request.path.P`` (what iamgate does anyway).
* ``MOCK``: the status comes from the request template ``{"statusCode": 200}``; the integration
  response chosen for it gives the body (``responseTemplates``, used as literal text) and headers
  (``responseParameters`` ``method.response.header.NAME: "'value'"``).

``AWS``, ``AWS_PROXY`` and ``HTTP`` integrations, VPC links and integration credentials are
refused with a message saying so.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

from iamgate.management.core import Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import edit, find_resource, optional_str, read, string_map
from iamgate.management.methods import HTTP_METHODS, find_method
from iamgate.management.patch import PatchOp, invalid_path, operations
from iamgate.management.shapes import integration_shape
from iamgate.routing.tree import parse_template
from iamgate.store.base import Doc, Transaction

__all__ = [
    "RESPONSE_HEADER",
    "ROUTES",
    "check_integration",
    "find_integration_response",
    "literal_mapping",
    "mock_status",
    "status_code",
]

SUPPORTED = ("HTTP_PROXY", "MOCK")
AWS_TYPES = ("HTTP", "MOCK", "AWS_PROXY", "HTTP_PROXY", "AWS")
_STAGE_VAR = re.compile(r"\$\{stageVariables\.[A-Za-z0-9_.-]*\}")
_URI_PARAM = re.compile(r"\{([A-Za-z0-9._-]+)\}")
_HEADER_TARGET = re.compile(r"integration\.request\.header\.[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PATH_TARGET = re.compile(r"integration\.request\.path\.([A-Za-z0-9._-]+)")
_SOURCE = re.compile(
    r"'[^'\r\n]*'|context\.authorizer\.[A-Za-z0-9_.:-]+|context\.(requestId|identity\.sourceIp|stage|apiId"
    r"|httpMethod|resourcePath|identity\.apiKey)|method\.request\.(header|querystring|path)\.[A-Za-z0-9_.-]+"
    r"|stageVariables\.[A-Za-z0-9_]+"
)
RESPONSE_HEADER = re.compile(r"method\.response\.header\.[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS = re.compile(r'"statusCode"\s*:\s*"?([1-5][0-9][0-9])"?')
UPDATABLE = [
    "/uri",
    "/httpMethod",
    "/timeoutInMillis",
    "/connectionType",
    "/passthroughBehavior",
    "/requestParameters/{name}",
    "/requestTemplates/{contentType}",
]


def mock_status(integration: Doc) -> int:
    """The status a MOCK integration's request template asks for (200 when it says nothing)."""
    templates = integration.get("requestTemplates") or {}
    for template in templates.values():
        m = _STATUS.search(template or "")
        if m:
            return int(m.group(1))
    return 200


def _params(resource: Doc) -> set[str]:
    return {seg.value for seg in parse_template(resource["path"]) if seg.kind in ("param", "greedy")}


def check_integration(resource: Doc, method: Doc, integration: Doc) -> None:
    kind = integration.get("type")
    if kind not in SUPPORTED:
        if kind in AWS_TYPES:
            raise bad_request(
                f"iamgate supports integration types HTTP_PROXY and MOCK; {kind} is not supported "
                "(use HTTP_PROXY to pass requests to an HTTP backend unchanged)"
            )
        raise bad_request(f"Invalid integration type '{kind}': one of {', '.join(AWS_TYPES)}")
    if integration.get("connectionType") not in (None, "INTERNET"):
        raise bad_request("iamgate does not support VPC links: connectionType must be INTERNET")
    if integration.get("credentials"):
        raise bad_request("iamgate does not use integration credentials: leave 'credentials' out")
    timeout = integration.get("timeoutInMillis")
    if timeout is not None and (
        not isinstance(timeout, int) or isinstance(timeout, bool) or not 50 <= timeout <= 3_600_000
    ):
        raise bad_request(f"Invalid timeoutInMillis {timeout!r}: between 50 and 3600000")
    params = integration.get("requestParameters") or {}
    if kind == "MOCK":
        if params:
            raise bad_request("A MOCK integration takes no requestParameters in iamgate")
        return
    verb = integration.get("httpMethod")
    if not verb:
        raise bad_request("Enumeration value for HttpMethod must be non-empty")
    if verb not in HTTP_METHODS:
        raise bad_request(
            f"Invalid integration HttpMethod '{verb}'. Valid options are {','.join(HTTP_METHODS)}"
        )
    if verb not in ("ANY", method["httpMethod"]):
        raise bad_request(
            f"iamgate's HTTP_PROXY integrations send the client's method: integrationHttpMethod must be ANY "
            f"or {method['httpMethod']}, not {verb}"
        )
    uri = integration.get("uri")
    if not uri:
        raise bad_request("Invalid HTTP endpoint specified for URI: an HTTP_PROXY integration needs 'uri'")
    parts = urlsplit(_STAGE_VAR.sub("stagevar", uri))
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise bad_request(
            f"Invalid HTTP endpoint specified for URI: '{uri}' is not an http:// or https:// URL"
        )
    if parts.query or parts.fragment:
        raise bad_request(f"Invalid HTTP endpoint specified for URI: '{uri}' has a query or fragment")
    names = _params(resource)
    for name in _URI_PARAM.findall(parts.path):
        if name not in names:
            raise bad_request(
                f"The uri uses {{{name}}} but the resource {resource['path']} has no such path parameter"
            )
    for target, source in params.items():
        path_target = _PATH_TARGET.fullmatch(target)
        if path_target is not None:
            if source != f"method.request.path.{path_target.group(1)}" or path_target.group(1) not in names:
                raise bad_request(
                    f"Invalid mapping expression specified: {target} = {source}; iamgate fills the uri's "
                    "path parameters from the resource path only "
                    "(integration.request.path.P = method.request.path.P)"
                )
            continue
        if not _HEADER_TARGET.fullmatch(target):
            raise bad_request(
                f"Invalid mapping expression specified: '{target}': iamgate maps to "
                "integration.request.header.NAME (and integration.request.path.P from method.request.path.P)"
            )
        if not isinstance(source, str) or not _SOURCE.fullmatch(source):
            raise bad_request(
                f"Invalid mapping expression specified: '{source}' for {target}: a quoted literal 'value', "
                "context.authorizer.KEY, context.requestId, context.identity.sourceIp, "
                "method.request.header|querystring|path.NAME or stageVariables.NAME"
            )
        if source.startswith("method.request.path.") and source.split(".", 3)[3] not in names:
            raise bad_request(
                f"Invalid mapping expression specified: {source} is not a path parameter of the resource"
            )


async def put_integration(call: Call) -> Reply:
    body = call.json()
    where = "PutIntegration"
    timeout = body.get("timeoutInMillis")
    integration: Doc = {
        "type": optional_str(body, "type", where),
        "httpMethod": optional_str(body, "httpMethod", where),
        "uri": optional_str(body, "uri", where),
        "connectionType": optional_str(body, "connectionType", where),
        "credentials": optional_str(body, "credentials", where),
        "requestParameters": string_map(body, "requestParameters", where) or None,
        "requestTemplates": string_map(body, "requestTemplates", where) or None,
        "passthroughBehavior": optional_str(body, "passthroughBehavior", where),
        "timeoutInMillis": timeout,
    }
    if integration["type"] is None:
        raise bad_request("PutIntegration: 'type' is required (HTTP_PROXY or MOCK)")
    if body.get("connectionId"):
        raise bad_request("iamgate does not support VPC links: connectionId is not supported")
    if integration["type"] == "MOCK":
        integration["httpMethod"] = integration["uri"] = None

    def put(tx: Transaction, draft: Doc) -> dict[str, Any]:
        rid = call.params["resource_id"]
        method = find_method(draft, rid, call.params["http_method"].upper())
        doc = {k: v for k, v in integration.items() if v is not None}
        doc["cacheNamespace"] = rid
        doc["cacheKeyParameters"] = []
        check_integration(find_resource(draft, rid), method, doc)
        method["methodIntegration"] = doc
        return integration_shape(doc)

    return Reply(201, await edit(call, call.params["restapi_id"], put))


def _find(draft: Doc, call: Call) -> Doc:
    method = find_method(draft, call.params["resource_id"], call.params["http_method"].upper())
    integration = method.get("methodIntegration")
    if integration is None:
        raise not_found("Invalid Integration identifier specified")
    return integration  # type: ignore[no-any-return]


async def get_integration(call: Call) -> Reply:
    shape = await read(call, call.params["restapi_id"], lambda tx, d: integration_shape(_find(d, call)))
    return Reply(200, shape)


async def delete_integration(call: Call) -> Reply:
    def remove(tx: Transaction, draft: Doc) -> None:
        _find(draft, call)
        find_method(draft, call.params["resource_id"], call.params["http_method"].upper()).pop(
            "methodIntegration"
        )

    await edit(call, call.params["restapi_id"], remove)
    return Reply(204)


def _apply(integration: Doc, op: PatchOp) -> None:
    tokens = op.tokens
    simple = {"/uri": "uri", "/httpMethod": "httpMethod", "/connectionType": "connectionType"}
    if op.path in simple and op.op == "replace":
        integration[simple[op.path]] = op.need_value()
    elif op.path == "/passthroughBehavior" and op.op == "replace":
        integration["passthroughBehavior"] = op.need_value()
    elif op.path == "/timeoutInMillis" and op.op == "replace":
        integration["timeoutInMillis"] = op.integer(50, 3_600_000)
    elif len(tokens) == 2 and tokens[0] in ("requestParameters", "requestTemplates"):
        if op.op not in ("add", "replace", "remove"):
            raise invalid_path(op, UPDATABLE)
        mapping = dict(integration.get(tokens[0]) or {})
        if op.op == "remove":
            mapping.pop(tokens[1], None)
        else:
            mapping[tokens[1]] = op.need_value()
        integration[tokens[0]] = mapping or None
    else:
        raise invalid_path(op, UPDATABLE)


async def update_integration(call: Call) -> Reply:
    ops = operations(call.json())

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        work = copy.deepcopy(draft)
        integration = _find(work, call)
        for op in ops:
            _apply(integration, op)
        rid = call.params["resource_id"]
        method = find_method(work, rid, call.params["http_method"].upper())
        check_integration(find_resource(work, rid), method, integration)
        draft.clear()
        draft.update(work)
        return integration_shape({k: v for k, v in integration.items() if v is not None})

    return Reply(200, await edit(call, call.params["restapi_id"], change))


def status_code(call: Call) -> str:
    """The path's three-digit status code (a method or integration response's)."""
    code = call.params["status_code"]
    if not re.fullmatch(r"[1-5][0-9][0-9]", code):
        raise bad_request(f"Invalid status code '{code}': a three-digit HTTP status")
    return code


async def put_integration_response(call: Call) -> Reply:
    code = status_code(call)
    body = call.json()
    where = "PutIntegrationResponse"
    response: Doc = {"statusCode": code}
    pattern = optional_str(body, "selectionPattern", where)
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise bad_request(f"Invalid selectionPattern '{pattern}': {exc}") from None
        response["selectionPattern"] = pattern
    params = string_map(body, "responseParameters", where) or {}
    for target, source in params.items():
        literal_mapping(target, source)
    if params:
        response["responseParameters"] = params
    templates = string_map(body, "responseTemplates", where)
    if templates:
        response["responseTemplates"] = templates

    def put(tx: Transaction, draft: Doc) -> Doc:
        integration = _find(draft, call)
        integration.setdefault("integrationResponses", {})[code] = response
        return response

    return Reply(201, await edit(call, call.params["restapi_id"], put))


def literal_mapping(target: str, source: str) -> str:
    """``source``, when ``target: source`` is a MOCK integration response's header mapping (only
    a quoted literal); else BadRequest."""
    if not RESPONSE_HEADER.fullmatch(target) or not re.fullmatch(r"'[^'\r\n]*'", source):
        raise bad_request(
            f"Invalid mapping expression specified: {target} = {source}; iamgate's MOCK responses take "
            "method.response.header.NAME = 'literal value'"
        )
    return source


def find_integration_response(draft: Doc, call: Call, code: str) -> Doc:
    response = (_find(draft, call).get("integrationResponses") or {}).get(code)
    if response is None:
        raise not_found("Invalid Response status code specified")
    return response  # type: ignore[no-any-return]


async def get_integration_response(call: Call) -> Reply:
    code = status_code(call)
    return Reply(
        200,
        await read(call, call.params["restapi_id"], lambda tx, d: find_integration_response(d, call, code)),
    )


async def delete_integration_response(call: Call) -> Reply:
    code = status_code(call)

    def remove(tx: Transaction, draft: Doc) -> None:
        find_integration_response(draft, call, code)
        del _find(draft, call)["integrationResponses"][code]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(204)


_BASE = "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration"
ROUTES = [
    Route("PUT", _BASE, put_integration),
    Route("GET", _BASE, get_integration),
    Route("PATCH", _BASE, update_integration),
    Route("DELETE", _BASE, delete_integration),
    Route("PUT", _BASE + "/responses/{status_code}", put_integration_response),
    Route("GET", _BASE + "/responses/{status_code}", get_integration_response),
    Route("DELETE", _BASE + "/responses/{status_code}", delete_integration_response),
]
