"""``TestInvokeMethod``: call one method of a REST API's **draft**, as API Gateway's console test.

As on AWS, the test skips authorization (no resource policy, authorizer, API key or throttle is
consulted) and runs the integration for real:

* the method's definition is built from the draft exactly as a deployment would build it
  (core's ``convert``), then validated and compiled by the gateway's own configuration loader
  and snapshot builder, for a stage named ``test-invoke-stage`` carrying the request's
  ``stageVariables``; so the URI template, stage variables, path parameters and
  request-parameter mappings resolve as the gateway resolves them;
* ``HTTP_PROXY``: one real request to the backend through the gateway's upstream client
  (:func:`iamgate.upstream.fetch.fetch`); the response is returned whole (up to 1 MiB) with AWS's
  ``x-amzn-Remapped-*`` renames. The request is the gateway's: the test's headers become a real
  :class:`~iamgate.pipeline.exchange.Exchange` (repeated names joined as the gateway joins them),
  the gateway's request-parameter mapping
  (:func:`iamgate.pipeline.mapping.request_parameter`) reads it, and the gateway's header rules
  decide what is forwarded: never ``REQUEST_DROP`` (hop-by-hop and replaced headers), the
  gateway's ``drop_request_headers`` or the names the request's ``Connection`` header lists,
  and a mapped header replaces the client's of that name. ``Authorization`` and
  ``X-Amz-Security-Token`` are passed on, as the gateway passes them on where it verifies no
  signature (a test invocation verifies none). No ``X-Forwarded-For`` is added: there is no
  client connection. As on AWS, the request's ``$context.identity.sourceIp`` is
  ``test-invoke-source-ip`` and its ``$context.requestId`` the id in the log;
* ``MOCK``: the integration's configured answer.

The answer is AWS's ``TestInvokeMethodResponse``: ``status``, ``body``, ``headers``,
``multiValueHeaders``, ``log`` (an execution log in API Gateway's wording) and ``latency`` (ms).
A backend that fails gives the status the gateway would send (502 / 504) with the reason in the
log, as AWS reports integration failures in a test invocation.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from iamgate.management.core import Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import KIND, api_not_found
from iamgate.store.base import Doc

if TYPE_CHECKING:
    from iamgate.pipeline.exchange import Exchange
    from iamgate.pipeline.responses import GatewayResponse

__all__ = ["ROUTES", "SOURCE_IP", "STAGE"]

STAGE = "test-invoke-stage"  # the stage name API Gateway gives test invocations
SOURCE_IP = "test-invoke-source-ip"  # $context.identity.sourceIp of a test invocation, as on AWS
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110 token)
_NOT_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")  # controls but HTAB; not latin-1
_NOT_IN_TARGET = re.compile(r"[\x00-\x20\x7f]|[^\x00-\xff]")  # what a request line cannot carry


class _Log:
    """An execution log in API Gateway's wording: ``Sat Nov 28 09:38:54 UTC 2026 : text``."""

    def __init__(self, request_id: str) -> None:
        self.lines = [f"Execution log for request {request_id}"]

    def add(self, text: str) -> None:
        stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
        self.lines.append(f"{stamp} : {text}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _strings(body: dict[str, Any], name: str) -> dict[str, str]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise bad_request(f"'{name}' must be a map of strings to strings")
    return dict(value)


def _lists(body: dict[str, Any], name: str) -> dict[str, list[str]]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
        for k, v in value.items()
    ):
        raise bad_request(f"'{name}' must be a map of strings to lists of strings")
    return {k: list(v) for k, v in value.items()}


def _shown(values: dict[str, Any]) -> str:
    """``{a=1, b=2}``: how API Gateway's execution log prints maps."""
    return "{" + ", ".join(f"{k}={v}" for k, v in values.items()) + "}"


def _find(call: Call, draft: Doc, resource_id: str, verb: str) -> tuple[dict[str, Any], dict[str, Any]]:
    resource = (draft.get("resources") or {}).get(resource_id)
    if resource is None:
        raise not_found(f"Invalid Resource identifier specified: there is no resource '{resource_id}'")
    method = (resource.get("resourceMethods") or {}).get(verb)
    if method is None:
        raise not_found(
            f"Invalid Method identifier specified: resource {resource['path']} has no {verb} method"
        )
    return resource, method


def _runtime(
    call: Call, draft: Doc, resource: dict[str, Any], verb: str, variables: dict[str, str]
) -> tuple[Any, Any]:
    """(snapshot, api): the method's route as the gateway would run it: core's conversion of the
    draft reduced to this one method (authorization off, as AWS's test), validated and compiled
    by the gateway's own configuration loader and snapshot builder, with the settings the gateway
    runs with (its upstream timeout, the request headers it drops)."""
    from iamgate.config.load import parse_config  # noqa: PLC0415 - heavy, only for test invocations
    from iamgate.config.snapshot import build_snapshot  # noqa: PLC0415
    from iamgate.management.convert import draft_to_definition  # noqa: PLC0415

    method = dict(resource["resourceMethods"][verb])
    for key in ("authorizationType", "authorizerId", "authorizationScopes", "apiKeyRequired"):
        method.pop(key, None)
    api = {k: v for k, v in draft["restApi"].items() if k != "policy"}
    one = {"restApi": api, "resources": {resource["id"]: {**resource, "resourceMethods": {verb: method}}}}
    # the method's request validator and the models it uses come along: the test validates the
    # request as the deployed method would (gateway responses do not: a test shows the defaults)
    one["models"] = _models_used(draft, method)
    validators = draft.get("requestValidators") or {}
    vid = method.get("requestValidatorId")
    one["requestValidators"] = {vid: validators[vid]} if vid in validators else {}
    definition = draft_to_definition({**one, "authorizers": {}}, call.gateway.config().settings)
    definition.pop("endpoint_type", None)
    definition["stages"] = {STAGE: {"variables": variables}}
    config, diags = parse_config(json.dumps({"apis": [definition]}), source="test-invoke")
    if config is None:
        problems = "; ".join(d.message for d in diags if d.is_error)
        raise bad_request(f"The method cannot be run: {problems}")
    snapshot = build_snapshot(dataclasses.replace(config, settings=call.gateway.config().settings))
    return snapshot, snapshot.apis[definition["id"]]


def _models_used(draft: Doc, method: Doc) -> dict[str, Doc]:
    """The draft's models a method's ``requestModels`` name, and those their ``$ref``s name."""
    from iamgate.management.models import referenced_models  # noqa: PLC0415 - beside convert's import

    by_name = {m["name"]: (mid, m) for mid, m in (draft.get("models") or {}).items()}
    todo = [n for n in (method.get("requestModels") or {}).values() if n in by_name]
    found: dict[str, Doc] = {}
    while todo:
        mid, model = by_name[todo.pop()]
        if mid in found:
            continue
        found[mid] = model
        refs = referenced_models(model.get("schema") or "", str(draft["restApi"]["id"]))
        todo.extend(n for n in refs if n in by_name)
    return found


def _lines(headers: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The test's headers as the header lines of one request, in order; values without the
    spaces around them, as the gateway's parser reads a line. A name that is not a token or a
    value no request head can carry (CR, LF and other controls, characters beyond ISO-8859-1) is
    refused."""
    lines = []
    for name, values in headers.items():
        if not _TOKEN.fullmatch(name):
            raise bad_request(f"header name {name!r} is not a valid HTTP header name")
        for value in values:
            if _NOT_IN_VALUE.search(value):
                raise bad_request(
                    f"header {name}: its value holds a control character or a character beyond ISO-8859-1"
                )
            lines.append((name, value.strip(" \t")))
    return lines


def _exchange(
    snapshot: Any, api: Any, match: Any, verb: str, path: str, query: str, lines: list[tuple[str, str]]
) -> Exchange:
    """The test request as the gateway holds a routed request: its header lines as received
    (lower-case name, raw line) and the header map in which a repeated name's values are joined
    by ", " (as the gateway's parser joins them); the API, the test stage, the route and its path
    parameters; the test's source address."""
    from iamgate.pipeline.exchange import Exchange  # noqa: PLC0415 - the request path, only for test invocations

    raw = [
        (name.lower().encode("latin-1"), f"{name}: {value}\r\n".encode("latin-1")) for name, value in lines
    ]
    hmap: dict[bytes, bytes] = {}
    for (lname, _), (_, value) in zip(raw, lines, strict=True):
        prev = hmap.get(lname)
        hmap[lname] = value.encode("latin-1") if prev is None else prev + b", " + value.encode("latin-1")
    path_bytes = path.encode("utf-8", "surrogateescape")
    ex = Exchange(
        snapshot, verb, path_bytes, query.encode("latin-1"), raw, hmap, "HTTP/1.1", False, SOURCE_IP, True
    )
    ex.api = api
    ex.stage = api.stages[STAGE]
    ex.route = match.target
    ex.params = match.params
    return ex


def _forwarded(
    ex: Exchange, lines: list[tuple[str, str]], mapped: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """The headers the gateway sends a backend for this request, by the gateway's rules (the
    request head it writes to a backend): none of the snapshot's ``request_drop`` (``REQUEST_DROP`` and
    ``gateway.drop_request_headers``), of the names the request's Connection header lists, or of
    the names a request-parameter mapping sets; then each mapping's value from
    :func:`~iamgate.pipeline.mapping.request_parameter` (none for a source without a value or a
    value holding CR or LF). The signature headers stay: a test invocation verifies no
    signature, like the gateway on a method that is not AWS_IAM."""
    from iamgate.pipeline.mapping import request_parameter  # noqa: PLC0415 - the request path
    from iamgate.upstream.headers import connection_tokens  # noqa: PLC0415

    dropped: frozenset[bytes] = ex.snapshot.request_drop
    connection = ex.hmap.get(b"connection")
    if connection is not None:
        dropped = dropped | connection_tokens(connection)
    if mapped:
        dropped = dropped | {name.lower().encode() for name, _ in mapped}
    out = [line for line, (lname, _) in zip(lines, ex.headers, strict=True) if lname not in dropped]
    for name, source in mapped:
        value = request_parameter(ex, source)
        if value is not None and "\r" not in value and "\n" not in value:
            # the gateway writes a mapped value as UTF-8; fetch() writes header text as ISO-8859-1
            out.append((name, value.encode("utf-8", "replace").decode("latin-1")))
    return out


async def test_invoke_method(call: Call) -> Reply:
    api_id, resource_id = call.params["restapi_id"], call.params["resource_id"]
    verb = call.params["http_method"].upper()
    body = call.json()
    target = body.get("pathWithQueryString")
    if target is not None and not isinstance(target, str):
        raise bad_request("'pathWithQueryString' must be a string such as /pets/42?limit=1")
    payload = body.get("body")
    if payload is not None and not isinstance(payload, str):
        raise bad_request("'body' must be a string")
    headers = _strings(body, "headers")
    multi = _lists(body, "multiValueHeaders")
    variables = _strings(body, "stageVariables")
    if body.get("clientCertificateId"):
        raise bad_request("client certificates are not supported by iamgate")
    all_headers: dict[str, list[str]] = {k: [v] for k, v in headers.items()}
    for k, values in multi.items():
        all_headers.setdefault(k, [])
        all_headers[k] += [v for v in values if v not in all_headers[k]]
    lines = _lines(all_headers)
    if target is not None and _NOT_IN_TARGET.search(target.partition("?")[2]):
        raise bad_request(
            "pathWithQueryString: the query string holds a space, a control character or a character "
            "beyond ISO-8859-1; percent-encode it"
        )

    def read() -> tuple[Doc, dict[str, Any], dict[str, Any]]:
        with call.store.transaction() as tx:
            draft = tx.get(KIND, "", api_id)
            if draft is None:
                raise api_not_found(call, api_id)
            resource, method = _find(call, draft, resource_id, verb)
            return draft, resource, method

    draft, resource, method = await call.in_store(read)
    request_id = str(uuid.uuid4())
    log = _Log(request_id)
    started = time.monotonic()
    path_text, _, query = (target or resource["path"]).partition("?")
    if not path_text.startswith("/"):
        path_text = "/" + path_text
    run_verb = verb if verb != "ANY" else "GET"
    log.add(f"Starting execution for request: {request_id}")
    log.add(f"HTTP Method: {run_verb}, Resource Path: {path_text}")
    if not method.get("methodIntegration"):
        log.add("Execution failed due to configuration error: No integration defined for method")
        log.add("Method completed with status: 500")
        return _answer(500, b'{"message": "Internal server error"}', [], log, started)
    snapshot, api = _runtime(call, draft, resource, verb, variables)
    from iamgate.config.model import HttpProxyIntegration  # noqa: PLC0415
    from iamgate.pipeline.stages import canonical_segments  # noqa: PLC0415

    segments = canonical_segments(path_text.encode("utf-8", "surrogateescape"), False)
    if not isinstance(segments, tuple):
        raise bad_request(f"pathWithQueryString: {segments.reason}")
    match = api.tree.match(segments, run_verb)
    if match is None or match.target is None:
        raise bad_request(
            f"pathWithQueryString '{path_text}' does not match the resource path {resource['path']}"
        )
    route = match.target
    log.add(f"Method request path: {_shown(match.params)}")
    log.add(f"Method request query string: {_shown(dict(parse_qsl(query, keep_blank_values=True)))}")
    log.add(f"Method request headers: {_shown({k: ','.join(v) for k, v in all_headers.items()})}")
    log.add(f"Method request body before transformations: {payload or ''}")
    ex = _exchange(snapshot, api, match, run_verb, path_text, query, lines)
    ex.request_id = request_id
    refused = _validated(ex, payload, log)
    if refused is not None:
        return _answer(refused.status, refused.body, list(refused.headers), log, started)
    if not isinstance(route.integration, HttpProxyIntegration):
        mock = route.integration
        log.add("Method response body after transformations: " + mock.body.decode("utf-8", "replace"))
        log.add(f"Method response headers: {_shown(dict(mock.headers))}")
        log.add("Successfully completed execution")
        log.add(f"Method completed with status: {mock.status}")
        return _answer(mock.status, mock.body, list(mock.headers), log, started)
    return await _proxy(call, ex, lines, payload, log, started)


def _validated(ex: Exchange, payload: str | None, log: _Log) -> GatewayResponse | None:
    """The gateway's validate stage on the test request (the method's request validator and
    models): None when it passes, else the answer (400 ``Missing required request parameters``
    or ``Invalid request body``), logged with why."""
    from iamgate.pipeline.responses import GatewayResponse  # noqa: PLC0415 - the request path
    from iamgate.pipeline.validate import validate  # noqa: PLC0415

    ex.body = (payload or "").encode("utf-8")
    refused = validate(ex)
    if not isinstance(refused, GatewayResponse):  # None; never a wait: the whole body is there
        return None
    log.add(f"Request validation failed: {ex.validation_error or 'the request does not match'}")
    log.add(f"Method completed with status: {refused.status}")
    return refused


async def _proxy(
    call: Call, ex: Exchange, lines: list[tuple[str, str]], payload: str | None, log: _Log, started: float
) -> Reply:
    from iamgate.upstream.fetch import FetchError, fetch  # noqa: PLC0415
    from iamgate.upstream.pool import UpstreamPools  # noqa: PLC0415

    settings = call.gateway.config().settings.upstream
    route: Any = ex.route
    verb = ex.method
    query = ex.query.decode("latin-1")
    target = route.target(ex.stage)
    if target.error:
        log.add(f"Execution failed due to configuration error: {target.error}")
        log.add("Method completed with status: 500")
        return _answer(500, b'{"message": "Internal server error"}', [], log, started)
    scheme_default = {"http": 80, "https": 443}[target.scheme]
    netloc = target.host if target.port == scheme_default else f"{target.host}:{target.port}"
    url = f"{target.scheme}://{netloc}{target.path(ex.params or {}, route.greedy)}" + (
        f"?{query}" if query else ""
    )
    out_headers = _forwarded(ex, lines, route.integration.request_parameters)
    out_headers.append(("X-Forwarded-Proto", "https" if target.scheme == "https" else "http"))
    log.add(f"Endpoint request URI: {url}")
    log.add(f"Endpoint request headers: {_shown(dict(out_headers))}")
    log.add(f"Endpoint request body after transformations: {payload or ''}")
    log.add(f"Sending request to {url}")
    pools = UpstreamPools(
        max_connections=4, max_idle=0, idle_timeout=1.0, connect_timeout=settings.connect_timeout
    )
    sent = time.monotonic()
    try:
        response = await fetch(
            pools, verb, url, body=(payload or "").encode(), headers=out_headers, timeout=route.timeout
        )
    except FetchError as exc:
        timed_out = "no response within" in str(exc)
        status = 504 if timed_out else 502
        message = "Endpoint request timed out" if timed_out else "Internal server error"
        log.add(f"Execution failed due to a{' timeout' if timed_out else 'n'} error: {exc}")
        log.add(f"Method completed with status: {status}")
        return _answer(status, json.dumps({"message": message}).encode(), [], log, started)
    finally:
        pools.close()
    integration_ms = int((time.monotonic() - sent) * 1000)
    got: list[tuple[str, str]] = []
    for _, line in response.headers:
        # the gateway's upstream client already left out hop-by-hop headers and Content-Length
        # and renamed Server and Date (x-amzn-Remapped-*), as API Gateway does
        name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
        got.append((name.strip(), value.strip()))
    text = response.body.decode("utf-8", "replace")
    log.add(f"Received response. Status: {response.status}, Integration latency: {integration_ms} ms")
    log.add(f"Endpoint response headers: {_shown(dict(got))}")
    log.add(f"Endpoint response body before transformations: {text}")
    log.add(f"Method response body after transformations: {text}")
    log.add(f"Method response headers: {_shown(dict(got))}")
    log.add("Successfully completed execution")
    log.add(f"Method completed with status: {response.status}")
    return _answer(response.status, response.body, got, log, started)


def _answer(status: int, body: bytes, headers: list[tuple[str, str]], log: _Log, started: float) -> Reply:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
        single[name] = ",".join(multi[name])
    return Reply(
        200,
        {
            "status": status,
            "body": body.decode("utf-8", "replace"),
            "headers": single,
            "multiValueHeaders": multi,
            "log": log.text(),
            "latency": int((time.monotonic() - started) * 1000),
        },
    )


ROUTES = [
    Route("POST", "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}", test_invoke_method),
]
