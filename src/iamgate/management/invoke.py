"""``TestInvokeMethod``: call one method of a REST API's **draft**, as API Gateway's console test.

As on AWS, the test skips authorization (no resource policy, authorizer, API key or throttle is
consulted) and runs the integration for real:

* the method's definition is built from the draft exactly as a deployment would build it
  (core's ``convert``), then validated and compiled by the gateway's own configuration loader
  and snapshot builder, for a stage named ``test-invoke-stage`` carrying the request's
  ``stageVariables``; so the URI template, stage variables, path parameters and
  request-parameter mappings resolve as the gateway resolves them;
* ``HTTP_PROXY``: one real request to the backend through the gateway's upstream client
  (:func:`iamgate.upstream.fetch.fetch`), with the gateway's header rules; the response is
  returned whole (up to 1 MiB) with AWS's ``x-amzn-Remapped-*`` renames;
* ``MOCK``: the integration's configured answer.

The answer is AWS's ``TestInvokeMethodResponse``: ``status``, ``body``, ``headers``,
``multiValueHeaders``, ``log`` (an execution log in API Gateway's wording) and ``latency`` (ms).
A backend that fails gives the status the gateway would send (502 / 504) with the reason in the
log, as AWS reports integration failures in a test invocation.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from iamgate.management.core import Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import KIND, api_not_found
from iamgate.store.base import Doc

__all__ = ["ROUTES", "STAGE"]

STAGE = "test-invoke-stage"  # the stage name API Gateway gives test invocations
_DROP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
    "max-forwards",
    "content-md5",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
}


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


def _runtime(call: Call, draft: Doc, resource: dict[str, Any], verb: str, variables: dict[str, str]) -> Any:
    """The method's route as the gateway would run it: core's conversion of the draft reduced to
    this one method (authorization off, as AWS's test), validated and compiled by the gateway's
    own configuration loader and snapshot builder."""
    from iamgate.config.load import parse_config  # noqa: PLC0415 - heavy, only for test invocations
    from iamgate.config.snapshot import build_snapshot  # noqa: PLC0415
    from iamgate.management.convert import draft_to_definition  # noqa: PLC0415

    method = dict(resource["resourceMethods"][verb])
    for key in ("authorizationType", "authorizerId", "authorizationScopes", "apiKeyRequired"):
        method.pop(key, None)
    api = {k: v for k, v in draft["restApi"].items() if k != "policy"}
    one = {"restApi": api, "resources": {resource["id"]: {**resource, "resourceMethods": {verb: method}}}}
    definition = draft_to_definition({**one, "authorizers": {}}, call.gateway.config().settings)
    definition.pop("endpoint_type", None)
    definition["stages"] = {STAGE: {"variables": variables}}
    config, diags = parse_config(json.dumps({"apis": [definition]}), source="test-invoke")
    if config is None:
        problems = "; ".join(d.message for d in diags if d.is_error)
        raise bad_request(f"The method cannot be run: {problems}")
    return build_snapshot(config).apis[definition["id"]]


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
    all_headers: dict[str, list[str]] = {k: [v] for k, v in headers.items()}
    for k, values in multi.items():
        all_headers.setdefault(k, [])
        all_headers[k] += [v for v in values if v not in all_headers[k]]
    if not method.get("methodIntegration"):
        log.add("Execution failed due to configuration error: No integration defined for method")
        log.add("Method completed with status: 500")
        return _answer(500, b'{"message": "Internal server error"}', [], log, started)
    api = _runtime(call, draft, resource, verb, variables)
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
    if not isinstance(route.integration, HttpProxyIntegration):
        mock = route.integration
        log.add("Method response body after transformations: " + mock.body.decode("utf-8", "replace"))
        log.add(f"Method response headers: {_shown(dict(mock.headers))}")
        log.add("Successfully completed execution")
        log.add(f"Method completed with status: {mock.status}")
        return _answer(mock.status, mock.body, list(mock.headers), log, started)
    return await _proxy(
        call, api, route, match, run_verb, query, all_headers, payload, variables, log, started
    )


async def _proxy(
    call: Call,
    api: Any,
    route: Any,
    match: Any,
    verb: str,
    query: str,
    headers: dict[str, list[str]],
    payload: str | None,
    variables: dict[str, str],
    log: _Log,
    started: float,
) -> Reply:
    from iamgate.upstream.fetch import FetchError, fetch  # noqa: PLC0415
    from iamgate.upstream.pool import UpstreamPools  # noqa: PLC0415

    settings = call.gateway.config().settings.upstream
    target = route.target(api.stages[STAGE])
    if target.error:
        log.add(f"Execution failed due to configuration error: {target.error}")
        log.add("Method completed with status: 500")
        return _answer(500, b'{"message": "Internal server error"}', [], log, started)
    scheme_default = {"http": 80, "https": 443}[target.scheme]
    netloc = target.host if target.port == scheme_default else f"{target.host}:{target.port}"
    url = f"{target.scheme}://{netloc}{target.path(match.params, route.greedy)}" + (
        f"?{query}" if query else ""
    )
    out_headers = [(k, v) for k, values in headers.items() if k.lower() not in _DROP for v in values]
    for name, source in route.integration.request_parameters:
        value = _parameter(source, match.params, query, headers, variables, api.id, route.resource_path, verb)
        if value is not None:
            out_headers = [(k, v) for k, v in out_headers if k.lower() != name.lower()] + [(name, value)]
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


def _parameter(
    source: str,
    params: dict[str, str],
    query: str,
    headers: dict[str, list[str]],
    variables: dict[str, str],
    api_id: str,
    resource_path: str,
    verb: str,
) -> str | None:
    """A request-parameter mapping's value, as the gateway computes it (authorizer values are
    absent: a test invocation runs no authorizer)."""
    if source.startswith("'"):
        return source[1:-1]
    kind, _, name = source.partition(".")
    if kind == "stageVariables":
        return variables.get(name)
    if kind == "context":
        return {"stage": STAGE, "apiId": api_id, "httpMethod": verb, "resourcePath": resource_path}.get(name)
    where, _, key = name.partition(".")[2].partition(".")
    if where == "path":
        return params.get(key)
    if where == "querystring":
        return dict(parse_qsl(query, keep_blank_values=True)).get(key)
    if where == "header":
        for k, values in headers.items():
            if k.lower() == key.lower():
                return ",".join(values)
    return None


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
