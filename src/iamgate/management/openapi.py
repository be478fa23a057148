"""OpenAPI 3.0 and Swagger 2.0 documents <-> a REST API's draft (ImportRestApi, PutRestApi,
GetExport), with API Gateway's ``x-amazon-apigateway-*`` extensions.

Reading a document (JSON or YAML, the same reader as configuration files, so every problem has
a line and column) yields problems located by JSON pointer:

* **errors** make the request fail (400 ``BadRequestException`` listing every one);
* **warnings** are things iamgate imports differently from AWS or not at all (an integration
  type the gateway cannot run, gateway responses, request validators...): with
  ``failonwarnings=true`` they fail the request the same way, otherwise the API is imported and
  they are returned in the response's ``warnings``.

What is read: ``info`` (name, description, version); paths (API Gateway's templates, ``{id}``
and ``{proxy+}``) with their operations and ``x-amazon-apigateway-any-method``; operation
``parameters`` (as method request parameters), ``responses`` (method responses),
``security`` (API keys, ``awsSigv4``, Lambda and Cognito authorizers), ``operationId``,
``x-amazon-apigateway-auth`` and ``x-amazon-apigateway-integration``; security schemes with
``x-amazon-apigateway-authtype`` / ``x-amazon-apigateway-authorizer``; and at the top
``x-amazon-apigateway-policy``, ``-api-key-source``, ``-endpoint-configuration``,
``-binary-media-types``, tags with ``x-amazon-apigateway-tag-value``, and iamgate's own
``x-iamgate-policy-mode``. Only local ``$ref`` (``#/...``) are followed: a document never makes
the management API fetch anything.

Export writes the deployment a stage serves (as AWS does), through ``convert`` (deployment
definition -> draft shape), then the draft shape as OpenAPI; the policy's own-API ARNs are
written back as the ``execute-api:/`` shorthand so the export imports into any API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from iamgate.config._yaml import UNSTORABLE, Positions, load_yaml
from iamgate.management import access
from iamgate.management.authorizers import check_authorizer
from iamgate.management.convert import definition_to_draft
from iamgate.management.core import ApiError, Call, Reply, Route, bad_request, not_found, storable
from iamgate.management.drafts import KIND, api_not_found
from iamgate.management.ids import new_id
from iamgate.management.integrations import check_integration
from iamgate.management.methods import check_method
from iamgate.management.policies import store_policy
from iamgate.management.resources import check_path_part
from iamgate.management.restapis import new_draft, rest_api_shape
from iamgate.pipeline.routing import ResourceTree, TemplateError
from iamgate.policy import ApiRef, prepare
from iamgate.policy.diagnostics import pointer_join
from iamgate.store.base import Doc

__all__ = ["ROUTES", "draft_to_openapi", "read_openapi"]

MAX_BODY = 6 * 1024 * 1024  # API Gateway's limit for an imported definition
_VERBS = {"get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE", "options": "OPTIONS"}
_VERBS |= {"head": "HEAD", "patch": "PATCH", "x-amazon-apigateway-any-method": "ANY"}
_INTEGRATION_TYPES = ("HTTP_PROXY", "MOCK", "HTTP", "AWS", "AWS_PROXY")
_SERVED_INTEGRATIONS = ("HTTP_PROXY", "MOCK")
_PASSTHROUGH = ("WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER")
_AUTHORIZER_TYPES = {"token": "TOKEN", "request": "REQUEST", "cognito_user_pools": "COGNITO_USER_POOLS"}
_IGNORED_TOP = {
    "x-amazon-apigateway-gateway-responses": "gateway responses are not imported; the gateway answers "
    "with API Gateway's default responses",
    "x-amazon-apigateway-request-validators": "request validators are not imported; iamgate does not "
    "validate requests against models",
    "x-amazon-apigateway-request-validator": "request validators are not imported",
    "x-amazon-apigateway-documentation": "documentation parts are not imported",
    "x-amazon-apigateway-minimum-compression-size": "response compression is not supported",
}
_ENDPOINT_TYPES = ("EDGE", "REGIONAL", "PRIVATE")
POLICY_MODE = "x-iamgate-policy-mode"


# --- reading a document -------------------------------------------------------------------


@dataclass(slots=True)
class _Problems:
    positions: Positions
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def where(self, pointer: str) -> str:
        loc = self.positions.location(pointer)
        shown = pointer or "/"
        return f"{shown} (line {loc.line}, column {loc.column})" if loc.line else shown

    def error(self, pointer: str, message: str) -> None:
        self.errors.append(f"{self.where(pointer)}: {message}")

    def warn(self, pointer: str, message: str) -> None:
        self.warnings.append(f"{self.where(pointer)}: {message}")


def _fail(title: str, problems: list[str]) -> ApiError:
    return bad_request(f"{title}:\n\t" + "\n\t".join(problems))


def read_openapi(body: bytes) -> tuple[dict[str, Any], _Problems]:
    """The document as data, and a problem collector that knows where each value is written."""
    if not body.strip():
        raise bad_request("Invalid OpenAPI input: the request body is empty; send the OpenAPI document")
    if len(body) > MAX_BODY:
        raise bad_request(f"Invalid OpenAPI input: the document is over {MAX_BODY // 1048576} MB")
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"Invalid OpenAPI input: not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
        ) from None
    parsed = load_yaml(text)
    if parsed.diagnostics:
        problems = []
        for d in parsed.diagnostics:
            loc = d.location
            at = f"line {loc.line}, column {loc.column}: " if loc.line else ""
            where = f"at '{loc.pointer}': " if d.code == UNSTORABLE and loc.pointer else ""
            problems.append(f"{at}{where}{d.message}")
        # a string no store can keep ("\0" in YAML) is valid YAML, just not storable
        valid = all(d.code == UNSTORABLE for d in parsed.diagnostics)
        raise _fail(
            "Invalid OpenAPI input" if valid else "Invalid OpenAPI input (neither valid JSON nor YAML)",
            problems,
        )
    data = parsed.data
    if not isinstance(data, dict):
        raise bad_request("Invalid OpenAPI input: the document must be an object with 'openapi' or 'swagger'")
    storable(data, "Invalid OpenAPI input")
    return data, _Problems(parsed.positions)


def _version(data: dict[str, Any], p: _Problems) -> str:
    """'oas3' or 'swagger2'; errors otherwise."""
    if "openapi" in data:
        v = str(data["openapi"])
        if v.startswith("3.0"):
            return "oas3"
        p.error(
            "/openapi", f"OpenAPI {v} is not supported; API Gateway imports OpenAPI 3.0.x and Swagger 2.0"
        )
        return "oas3"
    if "swagger" in data:
        if str(data["swagger"]) != "2.0":
            p.error("/swagger", f"Swagger {data['swagger']} is not supported; use 2.0 or OpenAPI 3.0.x")
        return "swagger2"
    p.error("", "not an OpenAPI document: it has neither 'openapi' (3.0.x) nor 'swagger' (2.0)")
    return "oas3"


def _resolve(data: dict[str, Any], node: Any, ptr: str, p: _Problems) -> tuple[Any, str]:
    """Follow local ``$ref``s; (target, its pointer), or (None, ptr) after reporting."""
    for _ in range(16):
        if not (isinstance(node, dict) and "$ref" in node):
            return node, ptr
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            p.error(f"{ptr}/$ref", f"only local references (#/...) are followed, not {ref!r}")
            return None, ptr
        target: Any = data
        for raw_token in ref[2:].split("/"):
            token = raw_token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                p.error(f"{ptr}/$ref", f"reference {ref!r} points at nothing in this document")
                return None, ptr
            target = target[token]
        node, ptr = target, ref[1:]
    p.error(ptr, "references nest too deep (a $ref cycle?)")
    return None, ptr


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _str_map(node: Any, ptr: str, p: _Problems, what: str) -> dict[str, str] | None:
    if node is None:
        return None
    if not isinstance(node, dict) or not all(_str(v) is not None for v in node.values()):
        p.error(ptr, f"{what} must be a map of names to strings")
        return None
    return {str(k): str(v) for k, v in node.items()}


# --- interpreting: document -> the parts of a draft -----------------------------------------


@dataclass(slots=True)
class Imported:
    """What a document defines, before ids are given."""

    rest: dict[str, Any]  # RestApi fields the document sets
    methods: dict[tuple[str, str], dict[str, Any]]  # (path, verb) -> Method (authorizerId = NAME)
    authorizers: dict[str, dict[str, Any]]  # name -> Authorizer (no id)
    policy: Any = None  # the policy as written (object or text), or None
    policy_pointer: str = ""
    policy_mode: str | None = None
    # ("method", "PATH VERB") / ("authorizer", NAME) -> where the document defines it
    pointers: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(slots=True)
class _Scheme:
    kind: str  # "apikey" | "iam" | "authorizer" | "other"
    name: str


def _schemes(data: dict[str, Any], version: str, p: _Problems, out: Imported) -> dict[str, _Scheme]:
    if version == "oas3":
        comps = data.get("components") or {}
        raw, base = (
            (comps.get("securitySchemes") if isinstance(comps, dict) else None),
            "/components/securitySchemes",
        )
    else:
        raw, base = data.get("securityDefinitions"), "/securityDefinitions"
    schemes: dict[str, _Scheme] = {}
    if raw is None:
        return schemes
    if not isinstance(raw, dict):
        p.error(base, "security schemes must be a map of names to schemes")
        return schemes
    for name, node0 in raw.items():
        ptr0 = pointer_join(base, name)
        node, ptr = _resolve(data, node0, ptr0, p)
        if not isinstance(node, dict):
            if node is not None:
                p.error(ptr, "a security scheme must be an object")
            continue
        authtype = node.get("x-amazon-apigateway-authtype")
        authorizer = node.get("x-amazon-apigateway-authorizer")
        if authorizer is not None:
            built = _authorizer(str(name), node, authorizer, f"{ptr}/x-amazon-apigateway-authorizer", p)
            if built is not None:
                out.authorizers[str(name)] = built
                out.pointers[("authorizer", str(name))] = ptr
                schemes[str(name)] = _Scheme("authorizer", str(name))
            continue
        if isinstance(authtype, str) and authtype.lower().startswith("aws"):
            if authtype != "awsSigv4":
                p.warn(f"{ptr}/x-amazon-apigateway-authtype", f"'{authtype}' is read as awsSigv4 (AWS_IAM)")
            schemes[str(name)] = _Scheme("iam", str(name))
        elif (
            node.get("type") == "apiKey"
            and node.get("in") == "header"
            and str(node.get("name")).lower() == "x-api-key"
        ):
            schemes[str(name)] = _Scheme("apikey", str(name))
        else:
            schemes[str(name)] = _Scheme("other", str(name))
    return schemes


def _authorizer(
    name: str, scheme: dict[str, Any], node: Any, ptr: str, p: _Problems
) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        p.error(ptr, "x-amazon-apigateway-authorizer must be an object")
        return None
    kind = _AUTHORIZER_TYPES.get(str(node.get("type", "")).lower())
    if kind is None:
        hint = " (JWT authorizers belong to HTTP APIs)" if str(node.get("type")).lower() == "jwt" else ""
        p.error(
            f"{ptr}/type",
            f"authorizer type {node.get('type')!r} is not token, request or cognito_user_pools{hint}",
        )
        return None
    out: dict[str, Any] = {"name": name, "type": kind}
    authtype = scheme.get("x-amazon-apigateway-authtype")
    out["authType"] = (
        str(authtype) if authtype else ("cognito_user_pools" if kind == "COGNITO_USER_POOLS" else "custom")
    )
    header = scheme.get("name") if scheme.get("in") == "header" else None
    source = node.get("identitySource")
    if source is None and kind != "REQUEST" and isinstance(header, str):
        source = f"method.request.header.{header}"
    if source is not None:
        if not isinstance(source, str) or not source.strip():
            p.error(
                f"{ptr}/identitySource",
                "identitySource must be a string such as method.request.header.Authorization",
            )
        else:
            out["identitySource"] = source
    ttl = node.get("authorizerResultTtlInSeconds", 300)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 3600:
        p.error(
            f"{ptr}/authorizerResultTtlInSeconds",
            f"must be a whole number of seconds from 0 to 3600, not {ttl!r}",
        )
    else:
        out["authorizerResultTtlInSeconds"] = ttl
    if kind == "COGNITO_USER_POOLS":
        arns = node.get("providerARNs")
        if not isinstance(arns, list) or not arns or not all(isinstance(a, str) for a in arns):
            p.error(
                f"{ptr}/providerARNs",
                "a cognito_user_pools authorizer needs providerARNs: a list of user pool ARNs",
            )
            return None
        out["providerARNs"] = list(arns)
    else:
        uri = node.get("authorizerUri")
        if not isinstance(uri, str) or not uri:
            p.error(ptr, f"a {kind.lower()} authorizer needs authorizerUri")
            return None
        out["authorizerUri"] = uri
        if kind == "REQUEST" and "identitySource" not in out and out.get("authorizerResultTtlInSeconds"):
            p.error(
                ptr,
                "a request authorizer with caching (authorizerResultTtlInSeconds > 0) needs identitySource",
            )
    if node.get("identityValidationExpression") is not None:
        out["identityValidationExpression"] = str(node["identityValidationExpression"])
    if node.get("authorizerCredentials") is not None:
        p.warn(
            f"{ptr}/authorizerCredentials",
            "authorizerCredentials are ignored: iamgate calls authorizers over HTTP, with no IAM role",
        )
    if "identitySource" not in out and kind != "REQUEST":
        out["identitySource"] = "method.request.header.Authorization"
    return out


def _security(
    reqs: Any, ptr: str, schemes: dict[str, _Scheme], p: _Problems
) -> tuple[bool, str | None, str | None, list[str]]:
    """(api key required, authorization type, authorizer name, scopes) from a security list."""
    if not isinstance(reqs, list):
        p.error(ptr, "security must be a list of requirement objects")
        return False, None, None, []
    key_required = False
    auth: tuple[str, str | None] | None = None
    scopes: list[str] = []
    for i, req in enumerate(reqs):
        if not isinstance(req, dict):
            p.error(f"{ptr}/{i}", "a security requirement must be an object of scheme names to scopes")
            continue
        for name, wanted in req.items():
            at = pointer_join(f"{ptr}/{i}", name)
            scheme = schemes.get(str(name))
            if scheme is None:
                p.error(at, f"security scheme '{name}' is not defined")
                continue
            if scheme.kind == "apikey":
                key_required = True
                continue
            if scheme.kind == "other":
                p.warn(
                    at,
                    f"security scheme '{name}' is not one API Gateway enforces (API key, awsSigv4, or an "
                    "authorizer); it is ignored",
                )
                continue
            this = ("AWS_IAM", None) if scheme.kind == "iam" else ("AUTHORIZER", scheme.name)
            if auth is not None and auth != this:
                p.error(at, "a method has at most one authorizer (or awsSigv4)")
                continue
            auth = this
            if isinstance(wanted, list):
                scopes += [str(s) for s in wanted]
    if auth is None:
        return key_required, None, None, []
    return key_required, auth[0], auth[1], scopes


def _parameters(data: dict[str, Any], nodes: list[tuple[Any, str]], p: _Problems) -> dict[str, bool]:
    """Method request parameters from path-item and operation ``parameters``."""
    out: dict[str, bool] = {}
    where = {"path": "path", "query": "querystring", "header": "header"}
    for raw, ptr in nodes:
        if raw is None:
            continue
        if not isinstance(raw, list):
            p.error(ptr, "parameters must be a list")
            continue
        for i, item in enumerate(raw):
            node, at = _resolve(data, item, f"{ptr}/{i}", p)
            if not isinstance(node, dict):
                continue
            loc, name = node.get("in"), node.get("name")
            if not isinstance(name, str) or not name:
                p.error(at, "a parameter needs a name")
                continue
            if loc in where:
                out[f"method.request.{where[loc]}.{name}"] = bool(node.get("required", loc == "path"))
    return out


def _method_responses(raw: Any, ptr: str, p: _Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        p.error(ptr, "responses must be a map of status codes to responses")
        return out
    for raw_code, node in raw.items():
        code = str(raw_code)
        if not (code.isdigit() and len(code) == 3):
            continue  # "default" and patterns: no method response (as API Gateway)
        item: dict[str, Any] = {"statusCode": code}
        headers = node.get("headers") if isinstance(node, dict) else None
        if isinstance(headers, dict) and headers:
            item["responseParameters"] = {f"method.response.header.{h}": False for h in headers}
        out[code] = item
    return out


def _integration(node: Any, ptr: str, p: _Problems) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        p.error(ptr, "x-amazon-apigateway-integration must be an object")
        return None
    raw_type = str(node.get("type", "")).upper()
    if raw_type not in _INTEGRATION_TYPES:
        p.error(
            f"{ptr}/type",
            f"integration type {node.get('type')!r} is not one of http_proxy, mock, http, aws, aws_proxy",
        )
        return None
    if raw_type not in _SERVED_INTEGRATIONS:
        p.warn(
            f"{ptr}/type",
            f"integration type {raw_type.lower()} is not supported by iamgate's gateway (it runs "
            "http_proxy and mock); the method is imported without an integration",
        )
        return None
    out: dict[str, Any] = {"type": raw_type}
    if node.get("credentials") is not None:
        p.warn(f"{ptr}/credentials", "integration credentials are ignored: iamgate calls the uri itself")
    if raw_type == "HTTP_PROXY":
        uri = node.get("uri")
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            p.error(f"{ptr}/uri", f"an http_proxy integration needs an http:// or https:// uri, not {uri!r}")
            return None
        method = node.get("httpMethod")
        if not isinstance(method, str) or method.upper() not in (*_VERBS.values(),):
            p.error(
                f"{ptr}/httpMethod",
                f"an http_proxy integration needs httpMethod (GET, POST, ..., ANY), not {method!r}",
            )
            return None
        out["uri"] = uri
        out["httpMethod"] = method.upper()
        connection = str(node.get("connectionType", "INTERNET")).upper()
        if connection == "VPC_LINK":
            p.warn(f"{ptr}/connectionType", "VPC links are not supported; the uri is called directly")
        out["connectionType"] = "INTERNET"
    timeout = node.get("timeoutInMillis")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 50 <= timeout <= 3_600_000:
            p.error(
                f"{ptr}/timeoutInMillis", f"must be a whole number of milliseconds from 50, not {timeout!r}"
            )
        else:
            out["timeoutInMillis"] = timeout
    for key in ("requestParameters", "requestTemplates"):
        value = _str_map(node.get(key), f"{ptr}/{key}", p, key)
        if value:
            out[key] = value
    passthrough = node.get("passthroughBehavior")
    if passthrough is not None:
        if str(passthrough).upper() not in _PASSTHROUGH:
            p.error(
                f"{ptr}/passthroughBehavior",
                f"{passthrough!r} is not when_no_match, when_no_templates or never",
            )
        else:
            out["passthroughBehavior"] = str(passthrough).upper()
    if node.get("cacheNamespace") is not None:
        out["cacheNamespace"] = str(node["cacheNamespace"])
    keys = node.get("cacheKeyParameters")
    if isinstance(keys, list):
        out["cacheKeyParameters"] = [str(k) for k in keys]
    responses = node.get("responses")
    if responses is not None:
        if not isinstance(responses, dict):
            p.error(f"{ptr}/responses", "responses must be a map of selection patterns to responses")
        else:
            ir: dict[str, Any] = {}
            for pattern, r in responses.items():
                at = pointer_join(f"{ptr}/responses", pattern)
                if not isinstance(r, dict) or _str(r.get("statusCode")) is None:
                    p.error(at, "an integration response needs statusCode")
                    continue
                code = str(r["statusCode"])
                item: dict[str, Any] = {"statusCode": code}
                if str(pattern) != "default":
                    item["selectionPattern"] = str(pattern)
                for key in ("responseParameters", "responseTemplates"):
                    value = _str_map(r.get(key), f"{at}/{key}", p, key)
                    if value:
                        item[key] = value
                ir[code] = item
            out["integrationResponses"] = ir
    return out


def interpret(data: dict[str, Any], p: _Problems, base_path: str = "ignore") -> Imported:
    """Everything the document defines (problems go to ``p``)."""
    version = _version(data, p)
    rest: dict[str, Any] = {}
    info = data.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) or not info["title"].strip():
        p.error("/info/title" if isinstance(info, dict) else "/info", "the API needs a name: info.title")
    else:
        rest["name"] = info["title"]
        if isinstance(info.get("description"), str):
            rest["description"] = info["description"]
        if _str(info.get("version")) is not None:
            rest["version"] = str(info["version"])
    out = Imported(rest, {}, {})
    source = data.get("x-amazon-apigateway-api-key-source")
    if source is not None:
        if str(source).upper() not in ("HEADER", "AUTHORIZER"):
            p.error("/x-amazon-apigateway-api-key-source", f"{source!r} is not HEADER or AUTHORIZER")
        else:
            rest["apiKeySource"] = str(source).upper()
    media = data.get("x-amazon-apigateway-binary-media-types")
    if media is not None:
        if not isinstance(media, list) or not all(isinstance(m, str) for m in media):
            p.error("/x-amazon-apigateway-binary-media-types", "must be a list of media types")
        else:
            rest["binaryMediaTypes"] = list(media)
    endpoint = data.get("x-amazon-apigateway-endpoint-configuration")
    if endpoint is not None:
        ptr = "/x-amazon-apigateway-endpoint-configuration"
        if not isinstance(endpoint, dict):
            p.error(ptr, "must be an object with vpcEndpointIds and/or disableExecuteApiEndpoint")
        else:
            vpces = endpoint.get("vpcEndpointIds")
            if vpces is not None:
                if not isinstance(vpces, list) or not all(isinstance(v, str) for v in vpces):
                    p.error(f"{ptr}/vpcEndpointIds", "must be a list of VPC endpoint ids")
                else:
                    rest["vpcEndpointIds"] = list(vpces)
            disable = endpoint.get("disableExecuteApiEndpoint")
            if disable is not None:
                if not isinstance(disable, bool):
                    p.error(f"{ptr}/disableExecuteApiEndpoint", "must be true or false")
                else:
                    rest["disableExecuteApiEndpoint"] = disable
    tags = {}
    raw_tags = data.get("tags")
    for i, tag in enumerate(raw_tags if isinstance(raw_tags, list) else []):
        if (
            isinstance(tag, dict)
            and "x-amazon-apigateway-tag-value" in tag
            and isinstance(tag.get("name"), str)
        ):
            value = _str(tag["x-amazon-apigateway-tag-value"])
            if value is None:
                p.error(f"/tags/{i}/x-amazon-apigateway-tag-value", "a tag value is a string")
            else:
                tags[tag["name"]] = value
    if tags:
        rest["tags"] = tags
    if "x-amazon-apigateway-policy" in data and data["x-amazon-apigateway-policy"] is not None:
        out.policy = data["x-amazon-apigateway-policy"]
        out.policy_pointer = "/x-amazon-apigateway-policy"
        if not isinstance(out.policy, dict | str):
            p.error(out.policy_pointer, "the policy must be a JSON object (or its text)")
            out.policy = None
    if POLICY_MODE in data:
        mode = data[POLICY_MODE]
        if mode not in ("enforce", "report"):
            p.error(f"/{POLICY_MODE}", f"{mode!r} is not enforce or report")
        else:
            out.policy_mode = mode
    for key, why in _IGNORED_TOP.items():
        if key in data:
            p.warn(pointer_join("", key), why)
    for key in data:
        if (
            str(key).startswith("x-amazon-apigateway-")
            and key not in _IGNORED_TOP
            and key
            not in (
                "x-amazon-apigateway-policy",
                "x-amazon-apigateway-api-key-source",
                "x-amazon-apigateway-binary-media-types",
                "x-amazon-apigateway-endpoint-configuration",
                "x-amazon-apigateway-importexport-version",
            )
        ):
            p.warn(pointer_join("", key), f"extension {key} is not supported here; it is ignored")
    schemes = _schemes(data, version, p, out)
    top_security = data.get("security")
    prefix = _base_path(data, version, base_path, p)
    paths = data.get("paths")
    if not isinstance(paths, dict):
        p.error("/paths", "the document needs 'paths': a map of resource paths to operations")
        return out
    tree: ResourceTree[int] = ResourceTree()
    for raw_path, item0 in paths.items():
        pptr = pointer_join("/paths", raw_path)
        path = prefix + str(raw_path) if prefix and str(raw_path) != "/" else (prefix or str(raw_path))
        if not str(raw_path).startswith("/"):
            p.error(pptr, f"path '{raw_path}' must start with '/'")
            continue
        item, iptr = _resolve(data, item0, pptr, p)
        if not isinstance(item, dict):
            if item is not None:
                p.error(pptr, "a path item must be an object of operations")
            continue
        for key, op in item.items():
            verb = (
                _VERBS.get(str(key).lower())
                if not str(key).startswith("x-") or key == "x-amazon-apigateway-any-method"
                else None
            )
            optr = pointer_join(iptr, key)
            if verb is None:
                if str(key).lower() == "trace":
                    p.warn(optr, "API Gateway has no TRACE methods; the operation is ignored")
                continue
            try:
                tree.add(path, verb, 0)
            except TemplateError as exc:
                p.error(pptr, f"path '{raw_path}': {exc}")
                break
            if not isinstance(op, dict):
                p.error(optr, "an operation must be an object")
                continue
            method = _operation(data, item, iptr, op, optr, verb, schemes, top_security, p)
            if method is not None:
                out.methods[(path, verb)] = method
                out.pointers[("method", f"{path} {verb}")] = optr
    return out


def _base_path(data: dict[str, Any], version: str, mode: str, p: _Problems) -> str:
    if mode == "ignore":
        return ""
    base = ""
    if version == "swagger2":
        base = str(data.get("basePath") or "")
    else:
        servers = data.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            url = str(servers[0].get("url") or "")
            variables = servers[0].get("variables") or {}
            if isinstance(variables, dict):
                for name, var in variables.items():
                    if isinstance(var, dict) and _str(var.get("default")) is not None:
                        url = url.replace("{" + str(name) + "}", str(var["default"]))
            rest = url.split("://", 1)[-1]
            base = "/" + rest.split("/", 1)[1] if "/" in rest else ""
    base = "/" + base.strip("/") if base.strip("/") else ""
    if mode == "split":
        parts = base.strip("/").split("/")
        base = "/" + "/".join(parts[1:]) if len(parts) > 1 else ""
    return base


def _operation(
    data: dict[str, Any],
    item: dict[str, Any],
    iptr: str,
    op: dict[str, Any],
    optr: str,
    verb: str,
    schemes: dict[str, _Scheme],
    top_security: Any,
    p: _Problems,
) -> dict[str, Any] | None:
    method: dict[str, Any] = {"httpMethod": verb, "authorizationType": "NONE", "apiKeyRequired": False}
    security = op.get("security", top_security)
    sptr = f"{optr}/security" if "security" in op else "/security"
    if security is not None:
        key_required, auth, authorizer, scopes = _security(security, sptr, schemes, p)
        method["apiKeyRequired"] = key_required
        if auth == "AWS_IAM":
            method["authorizationType"] = "AWS_IAM"
        elif auth == "AUTHORIZER" and authorizer is not None:
            method["authorizerId"] = authorizer  # a name here; ids are given when the draft is built
            method["authorizationType"] = "__authorizer__"
            if scopes:
                method["authorizationScopes"] = scopes
    explicit = op.get("x-amazon-apigateway-auth")
    if explicit is not None:
        kind = str(explicit.get("type", "")).upper() if isinstance(explicit, dict) else ""
        if kind not in ("AWS_IAM", "NONE"):
            p.error(
                f"{optr}/x-amazon-apigateway-auth",
                "x-amazon-apigateway-auth is {type: AWS_IAM} or {type: NONE}",
            )
        else:
            method["authorizationType"] = kind
            method.pop("authorizerId", None)
            method.pop("authorizationScopes", None)
    if isinstance(op.get("operationId"), str):
        method["operationName"] = op["operationId"]
    params = _parameters(
        data,
        [(item.get("parameters"), f"{iptr}/parameters"), (op.get("parameters"), f"{optr}/parameters")],
        p,
    )
    if params:
        method["requestParameters"] = params
    responses = _method_responses(op.get("responses"), f"{optr}/responses", p)
    if responses:
        method["methodResponses"] = responses
    if "x-amazon-apigateway-request-validator" in op:
        p.warn(f"{optr}/x-amazon-apigateway-request-validator", "request validators are not imported")
    integration = op.get("x-amazon-apigateway-integration")
    if integration is not None:
        built = _integration(integration, f"{optr}/x-amazon-apigateway-integration", p)
        if built is not None:
            method["methodIntegration"] = built
    return method


# --- policies -------------------------------------------------------------------------------


def policy_problems(raw: Any, api: ApiRef, max_chars: int | None) -> list[tuple[str, str, bool]]:
    """Every problem in a policy as (JSON pointer inside the policy, message, is it an error),
    from the same engine and settings as :func:`iamgate.management.policies.store_policy` (which
    then stores it): so an import reports each problem at its place in the OpenAPI document.
    Warnings (a ``Resource`` no request can match...) are the import's warnings."""
    prepared = prepare(raw, api=api, max_chars=max_chars)
    problems = []
    for d in prepared.diagnostics:
        message = f"{d.code}: {d.message}"
        if isinstance(raw, str) and d.location.line is not None:
            message += f" (line {d.location.line}, column {d.location.column} of the policy text)"
        problems.append((d.location.pointer, message + (f" ({d.help})" if d.help else ""), d.is_error))
    return problems


def _map_resources(policy: Any, fn: Any) -> Any:
    out = json.loads(json.dumps(policy))
    statements = out.get("Statement") if isinstance(out, dict) else None
    for st in (
        statements if isinstance(statements, list) else [statements] if isinstance(statements, dict) else []
    ):
        for key in ("Resource", "NotResource"):
            value = st.get(key)
            if isinstance(value, str):
                st[key] = fn(value)
            elif isinstance(value, list):
                st[key] = [fn(v) if isinstance(v, str) else v for v in value]
    return out


def _shorthand(policy_text: str, api: ApiRef) -> Any:
    """The stored policy with this API's own ARNs written back as ``execute-api:/...``."""
    prefix = api.arn_prefix + "/"
    return _map_resources(
        json.loads(policy_text), lambda r: "execute-api:/" + r[len(prefix) :] if r.startswith(prefix) else r
    )


# --- building drafts ------------------------------------------------------------------------


def _region_account(call: Call) -> tuple[str, str]:
    s = call.gateway.config().settings
    return s.region, s.account_id


def _ensure(draft: dict[str, Any], by_path: dict[str, str], path: str) -> dict[str, Any]:
    """The resource at ``path``, creating it and its missing parents (checked with core's rules
    for a new path part: ApiError when refused)."""
    resources: dict[str, Any] = draft["resources"]
    if path in by_path:
        found: dict[str, Any] = resources[by_path[path]]
        return found
    parent_path = path.rsplit("/", 1)[0] or "/"
    parent = _ensure(draft, by_path, parent_path)
    part = path.rsplit("/", 1)[1]
    check_path_part(draft, parent, part)
    rid = new_id("resource")
    while rid in resources:
        rid = new_id("resource")
    res = {"id": rid, "parentId": parent["id"], "pathPart": part, "path": path, "resourceMethods": {}}
    resources[rid] = res
    by_path[path] = rid
    return res


def _prefixes(path: str) -> set[str]:
    parts = [s for s in path.split("/") if s]
    return {"/" + "/".join(parts[: i + 1]) for i in range(len(parts))}


def _apply(draft: dict[str, Any], imported: Imported, p: _Problems, *, overwrite: bool) -> None:
    """Put ``imported``'s routes and authorizers into ``draft`` (ids given here), each checked
    with the rules of core's own operations (CreateResource, PutMethod, PutIntegration,
    CreateAuthorizer); a refusal is an error at the place in the document that caused it."""
    resources: dict[str, Any] = draft.setdefault("resources", {})
    authorizers: dict[str, Any] = draft.setdefault("authorizers", {})
    by_name = {a["name"]: aid for aid, a in authorizers.items()}
    if overwrite:
        for aid in [a for name, a in by_name.items() if name not in imported.authorizers]:
            del authorizers[aid]
        by_name = {n: a for n, a in by_name.items() if n in imported.authorizers}
    for name, shape in imported.authorizers.items():
        aid = by_name.get(name) or new_id("authorizer")
        authorizers[aid] = {"id": aid, **shape}
        by_name[name] = aid
        try:
            check_authorizer(draft, authorizers[aid])
        except ApiError as exc:
            p.error(imported.pointers.get(("authorizer", name), ""), exc.message)
    root_id = draft["restApi"]["rootResourceId"]
    if overwrite:
        # the old definition's resources that no imported path goes through are removed
        wanted = {"/"}.union(*(_prefixes(path) for path, _ in imported.methods))
        for rid in list(resources):
            if rid != root_id and resources[rid]["path"] not in wanted:
                del resources[rid]
        for res in resources.values():
            res["resourceMethods"] = {}
    by_path = {res["path"]: rid for rid, res in resources.items()}
    for (path, verb), method in sorted(imported.methods.items()):
        where = imported.pointers.get(("method", f"{path} {verb}"), "")
        m = json.loads(json.dumps(method))
        try:
            res = _ensure(draft, by_path, path)
            if m.get("authorizationType") == "__authorizer__":
                auth = authorizers[by_name[m["authorizerId"]]]
                m["authorizerId"] = auth["id"]
                m["authorizationType"] = (
                    "COGNITO_USER_POOLS" if auth["type"] == "COGNITO_USER_POOLS" else "CUSTOM"
                )
            check_method(draft, m)
            integration = m.get("methodIntegration")
            if integration is not None:
                integration.setdefault("cacheNamespace", res["id"])
                integration.setdefault("cacheKeyParameters", [])
                check_integration(res, m, integration)
        except ApiError as exc:
            p.error(where, exc.message)
            continue
        res.setdefault("resourceMethods", {})[verb] = m


def _set_rest(draft: dict[str, Any], imported: Imported, *, overwrite: bool) -> None:
    rest = draft["restApi"]
    fields = (
        "name",
        "description",
        "version",
        "apiKeySource",
        "binaryMediaTypes",
        "disableExecuteApiEndpoint",
    )
    if overwrite:
        for key in ("description", "version", "policy"):
            rest.pop(key, None)
        rest["apiKeySource"] = "HEADER"
        rest["binaryMediaTypes"] = []
        rest["disableExecuteApiEndpoint"] = False
        draft.pop("policyMode", None)
    for key in fields:
        if key in imported.rest:
            rest[key] = imported.rest[key]
    if "vpcEndpointIds" in imported.rest:
        rest.setdefault("endpointConfiguration", {"types": ["EDGE"]})["vpcEndpointIds"] = imported.rest[
            "vpcEndpointIds"
        ]
    if "tags" in imported.rest:
        rest["tags"] = {**(rest.get("tags") or {}), **imported.rest["tags"]}
    if imported.policy_mode is not None:
        draft["policyMode"] = imported.policy_mode


# --- handlers: import and put -----------------------------------------------------------------


def _flag(call: Call, name: str) -> bool:
    value = (call.arg(name) or "false").lower()
    if value not in ("true", "false"):
        raise bad_request(f"query parameter '{name}' must be true or false, not {call.arg(name)!r}")
    return value == "true"


def _read(call: Call, api_id: str) -> tuple[Imported, _Problems]:
    """Read and interpret the body (BadRequest only when it cannot be read at all)."""
    base_path = (call.arg("basepath") or call.arg("basePath") or "ignore").lower()
    if base_path not in ("ignore", "prepend", "split"):
        raise bad_request(f"basepath must be ignore, prepend or split, not {base_path!r}")
    data, p = read_openapi(call.body)
    imported = interpret(data, p, base_path)
    settings = call.gateway.config().settings
    if imported.policy is not None:
        api = ApiRef(settings.region, settings.account_id, api_id)
        for pointer, message, error in policy_problems(imported.policy, api, settings.max_policy_chars):
            inner = pointer if isinstance(imported.policy, dict) else ""
            if error:
                p.error(imported.policy_pointer + inner, f"invalid policy: {message}")
            else:
                p.warn(imported.policy_pointer + inner, f"policy: {message}")
    return imported, p


def _finish(call: Call, draft: dict[str, Any], imported: Imported, p: _Problems) -> list[str]:
    """Refuse the import if it has errors (or warnings with failonwarnings=true); else store the
    policy as core stores it and return the warnings."""
    types = (draft["restApi"].get("endpointConfiguration") or {}).get("types") or ["EDGE"]
    if draft["restApi"].get("endpointConfiguration", {}).get("vpcEndpointIds") and types[0] != "PRIVATE":
        p.error(
            "/x-amazon-apigateway-endpoint-configuration/vpcEndpointIds",
            "vpcEndpointIds can only be given for a PRIVATE API "
            "(parameters endpointConfigurationTypes=PRIVATE)",
        )
    if p.errors:
        raise _fail("Errors found during import", p.errors)
    if p.warnings and _flag(call, "failonwarnings"):
        raise _fail("Warnings found during import (failonwarnings=true)", p.warnings)
    if imported.policy is not None:
        api_id = str(draft["restApi"]["id"])
        access.require("apigateway:UpdateRestApiPolicy", f"/restapis/{api_id}")
        draft["restApi"]["policy"] = store_policy(imported.policy, call.gateway.config().settings, api_id)
    return p.warnings


def _types(call: Call) -> list[str] | None:
    raw = call.arg("endpointConfigurationTypes")
    if raw is None:
        return None
    if raw.upper() not in _ENDPOINT_TYPES:
        raise bad_request(f"endpointConfigurationTypes must be EDGE, REGIONAL or PRIVATE, not {raw!r}")
    return [raw.upper()]


def _rest_shape(draft: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    out = rest_api_shape(draft)
    if warnings:
        out["warnings"] = warnings
    return out


async def import_rest_api(call: Call) -> Reply:
    types = _types(call) or ["EDGE"]
    api_id = new_id("restapi")
    imported, p = _read(call, api_id)
    draft = new_draft(api_id, {"name": api_id, "endpointConfiguration": {"types": types}, "tags": {}})
    _set_rest(draft, imported, overwrite=True)
    _apply(draft, imported, p, overwrite=True)
    warnings = _finish(call, draft, imported, p)

    def write() -> None:
        with call.store.transaction() as tx:
            tx.insert(KIND, "", api_id, draft)

    await call.in_store(write)
    return Reply(201, _rest_shape(draft, warnings))


async def put_rest_api(call: Call) -> Reply:
    api_id = call.params["restapi_id"]
    mode = (call.arg("mode") or "merge").lower()
    if mode not in ("merge", "overwrite"):
        raise bad_request(f"mode must be merge or overwrite, not {call.arg('mode')!r}")
    types = _types(call)
    imported, p = _read(call, api_id)

    def write() -> tuple[dict[str, Any], list[str]]:
        with call.store.transaction() as tx:
            draft = tx.get(KIND, "", api_id)
            if draft is None:
                raise api_not_found(call, api_id)
            _set_rest(draft, imported, overwrite=mode == "overwrite")
            if types is not None:
                draft["restApi"].setdefault("endpointConfiguration", {})["types"] = types
            _apply(draft, imported, p, overwrite=mode == "overwrite")
            warnings = _finish(call, draft, imported, p)
            tx.put(KIND, "", api_id, draft)
            return draft, warnings

    draft, warnings = await call.in_store(write)
    return Reply(200, _rest_shape(draft, warnings))


# --- export ---------------------------------------------------------------------------------


def draft_to_openapi(
    draft: dict[str, Any], *, stage: str, kind: str, extensions: set[str], region: str, account: str
) -> dict[str, Any]:
    """A draft-shaped API as an OpenAPI 3.0.1 (``oas30``) or Swagger 2.0 (``swagger``) document.
    ``extensions``: ``integrations``, ``authorizers``, ``apigateway`` (all of AWS's extensions)."""
    rest = draft["restApi"]
    api_id = str(rest["id"])
    everything = "apigateway" in extensions
    with_integrations = everything or "integrations" in extensions
    with_authorizers = everything or "authorizers" in extensions
    oas3 = kind == "oas30"
    info: dict[str, Any] = {"title": rest.get("name") or api_id, "version": str(rest.get("version") or "1.0")}
    if rest.get("description"):
        info["description"] = rest["description"]
    doc: dict[str, Any] = {"openapi": "3.0.1"} if oas3 else {"swagger": "2.0"}
    doc["info"] = info
    host = f"{api_id}.execute-api.{region}.amazonaws.com"
    if oas3:
        doc["servers"] = [
            {"url": f"https://{host}/{{basePath}}", "variables": {"basePath": {"default": stage}}}
        ]
    else:
        doc |= {"host": host, "basePath": f"/{stage}", "schemes": ["https"]}
    authorizers = draft.get("authorizers") or {}
    schemes: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for res in sorted((draft.get("resources") or {}).values(), key=lambda r: str(r["path"])):
        methods = res.get("resourceMethods") or {}
        if not methods:
            continue
        item: dict[str, Any] = {}
        for verb, m in sorted(methods.items()):
            op: dict[str, Any] = {}
            if m.get("operationName"):
                op["operationId"] = m["operationName"]
            params = []
            for name, required in sorted((m.get("requestParameters") or {}).items()):
                pieces = name.split(".", 3)
                if len(pieces) != 4:
                    continue
                where = {"path": "path", "querystring": "query", "header": "header"}.get(pieces[2])
                if where is None:
                    continue
                param: dict[str, Any] = {
                    "name": pieces[3],
                    "in": where,
                    "required": bool(required) or where == "path",
                }
                param |= {"schema": {"type": "string"}} if oas3 else {"type": "string"}
                params.append(param)
            if params:
                op["parameters"] = params
            responses: dict[str, Any] = {}
            for code, mr in sorted((m.get("methodResponses") or {}).items()):
                r: dict[str, Any] = {"description": f"{code} response"}
                headers = [
                    k.split(".", 3)[3] for k in (mr.get("responseParameters") or {}) if k.count(".") >= 3
                ]
                if headers:
                    r["headers"] = {
                        h: ({"schema": {"type": "string"}} if oas3 else {"type": "string"}) for h in headers
                    }
                responses[str(code)] = r
            op["responses"] = responses or {"default": {"description": "Default response"}}
            requirement: dict[str, list[str]] = {}
            if m.get("apiKeyRequired"):
                schemes["api_key"] = {"type": "apiKey", "name": "x-api-key", "in": "header"}
                requirement["api_key"] = []
            auth = m.get("authorizationType")
            if auth == "AWS_IAM":
                schemes["sigv4"] = {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
                requirement["sigv4"] = []
            elif auth in ("CUSTOM", "COGNITO_USER_POOLS") and m.get("authorizerId") in authorizers:
                a = authorizers[m["authorizerId"]]
                schemes[a["name"]] = _scheme(a, with_authorizers)
                requirement[a["name"]] = list(m.get("authorizationScopes") or [])
            if requirement:
                op["security"] = [requirement]
            integration = m.get("methodIntegration")
            if with_integrations and integration:
                op["x-amazon-apigateway-integration"] = _integration_out(integration)
            key = "x-amazon-apigateway-any-method" if verb == "ANY" else verb.lower()
            item[key] = op
        paths[str(res["path"])] = item
    doc["paths"] = paths
    if schemes:
        if oas3:
            doc["components"] = {"securitySchemes": schemes}
        else:
            doc["securityDefinitions"] = schemes
    if everything:
        if rest.get("policy"):
            doc["x-amazon-apigateway-policy"] = _shorthand(rest["policy"], ApiRef(region, account, api_id))
        doc["x-amazon-apigateway-api-key-source"] = rest.get("apiKeySource") or "HEADER"
        endpoint: dict[str, Any] = {}
        vpces = (rest.get("endpointConfiguration") or {}).get("vpcEndpointIds")
        if vpces:
            endpoint["vpcEndpointIds"] = vpces
        if rest.get("disableExecuteApiEndpoint"):
            endpoint["disableExecuteApiEndpoint"] = True
        if endpoint:
            doc["x-amazon-apigateway-endpoint-configuration"] = endpoint
        if rest.get("binaryMediaTypes"):
            doc["x-amazon-apigateway-binary-media-types"] = rest["binaryMediaTypes"]
        if draft.get("policyMode") == "report":
            doc[POLICY_MODE] = "report"
    return doc


def _scheme(a: dict[str, Any], with_authorizer: bool) -> dict[str, Any]:
    source = str(a.get("identitySource") or "")
    header = (
        source.split("method.request.header.", 1)[1]
        if source.startswith("method.request.header.") and "," not in source
        else "Unused"
    )
    out: dict[str, Any] = {"type": "apiKey", "name": header, "in": "header"}
    out["x-amazon-apigateway-authtype"] = a.get("authType") or (
        "cognito_user_pools" if a["type"] == "COGNITO_USER_POOLS" else "custom"
    )
    if with_authorizer:
        body: dict[str, Any] = {"type": str(a["type"]).lower()}
        for key in ("authorizerUri", "authorizerCredentials", "identityValidationExpression", "providerARNs"):
            if a.get(key):
                body[key] = a[key]
        if a["type"] == "REQUEST" and source:
            body["identitySource"] = source
        if a.get("authorizerResultTtlInSeconds") is not None:
            body["authorizerResultTtlInSeconds"] = a["authorizerResultTtlInSeconds"]
        out["x-amazon-apigateway-authorizer"] = body
    return out


def _integration_out(i: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": str(i["type"]).lower()}
    for key in (
        "httpMethod",
        "uri",
        "connectionType",
        "timeoutInMillis",
        "requestParameters",
        "requestTemplates",
        "cacheNamespace",
        "cacheKeyParameters",
    ):
        if i.get(key) not in (None, {}, []):
            out[key] = i[key]
    if i.get("passthroughBehavior"):
        out["passthroughBehavior"] = str(i["passthroughBehavior"]).lower()
    responses = {}
    for ir in (i.get("integrationResponses") or {}).values():
        r: dict[str, Any] = {"statusCode": str(ir["statusCode"])}
        for key in ("responseParameters", "responseTemplates"):
            if ir.get(key):
                r[key] = ir[key]
        responses[ir.get("selectionPattern") or "default"] = r
    if responses:
        out["responses"] = responses
    return out


async def get_export(call: Call) -> Reply:
    api_id, stage, kind = call.params["restapi_id"], call.params["stage_name"], call.params["export_type"]
    if kind not in ("oas30", "swagger"):
        raise bad_request(f"export type {kind!r} is not supported; oas30 or swagger")
    extensions = {e.strip().lower() for e in (call.arg("extensions") or "").split(",") if e.strip()}
    unknown = extensions - {"integrations", "authorizers", "apigateway"}
    if unknown:
        raise bad_request(
            f"extensions {', '.join(sorted(unknown))} not supported; integrations, authorizers, apigateway"
        )
    accept = (call.headers.get("accept") or "application/json").split(";")[0].strip().lower()
    if accept in ("", "*/*"):
        accept = "application/json"
    if accept not in ("application/json", "application/yaml"):
        raise bad_request(f"Accept must be application/json or application/yaml, not {accept!r}")
    region, account = _region_account(call)

    def read() -> dict[str, Any]:
        with call.store.transaction() as tx:
            draft = tx.get(KIND, "", api_id)
            if draft is None:
                raise api_not_found(call, api_id)
            st = tx.get("stage", api_id, stage)
            if st is None:
                raise not_found(
                    f"Invalid stage identifier specified: REST API '{api_id}' has no stage '{stage}'"
                )
            dep = tx.get("deployment", api_id, str(st.get("deploymentId") or ""))
            if dep is None:
                raise not_found(f"stage '{stage}' of REST API '{api_id}' serves no deployment")
            return _deployed_draft(call, draft, dep)

    deployed = await call.in_store(read)
    doc = draft_to_openapi(
        deployed, stage=stage, kind=kind, extensions=extensions, region=region, account=account
    )
    ext = "yaml" if accept == "application/yaml" else "json"
    body = (
        yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()
        if ext == "yaml"
        else json.dumps(doc, indent=2, ensure_ascii=False).encode()
    )
    name = f"{api_id}-{stage}-{kind}.{ext}"
    return Reply(200, body, [("Content-Disposition", f'attachment; filename="{name}"')], accept)


def _deployed_draft(call: Call, draft: Doc, deployment: Doc) -> dict[str, Any]:
    """The API as the deployment snapshotted it, in the draft's shape (ids kept from the draft)."""
    settings = call.gateway.config().settings
    definition = deployment.get("definition") or {}
    out = definition_to_draft(definition, str(draft["restApi"]["id"]), settings=settings, previous=draft)
    for key in ("version", "binaryMediaTypes", "disableExecuteApiEndpoint"):
        if draft["restApi"].get(key) is not None:
            out["restApi"].setdefault(key, draft["restApi"][key])
    vpces = (draft["restApi"].get("endpointConfiguration") or {}).get("vpcEndpointIds")
    if vpces:
        out["restApi"]["endpointConfiguration"]["vpcEndpointIds"] = vpces
    return out


ROUTES = [
    Route("POST", "/restapis?mode=import", import_rest_api),
    Route("PUT", "/restapis/{restapi_id}", put_rest_api),
    Route("GET", "/restapis/{restapi_id}/stages/{stage_name}/exports/{export_type}", get_export),
]
