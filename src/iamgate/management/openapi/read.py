"""Reading a document: bytes -> data (:func:`read_openapi`), data -> :class:`Imported`
(:func:`interpret`): the API's own fields, the top-level extensions, the paths and their
operations (read by :mod:`.operations`), the security schemes (:mod:`.security`).

Reading never fetches anything (only local ``$ref`` are followed) and never raises for a problem
in the document: every problem goes to the :class:`~.document.Problems` collector, at its place.
Only a body that cannot be read at all (empty, too big, not UTF-8, not JSON or YAML) is refused
at once.
"""

from __future__ import annotations

from typing import Any

from iamgate.config._yaml import UNSTORABLE, load_yaml
from iamgate.management.core import bad_request, storable
from iamgate.management.openapi.document import (
    POLICY_MODE,
    VERBS,
    Imported,
    Problems,
    fail,
    resolve,
    scalar_text,
)
from iamgate.management.openapi.operations import read_operation
from iamgate.management.openapi.security import read_schemes
from iamgate.management.openapi.validation import (
    GATEWAY_RESPONSES,
    VALIDATOR,
    VALIDATORS,
    read_api_validation,
    read_operation_validation,
)
from iamgate.policy.diagnostics import pointer_join
from iamgate.routing.tree import ResourceTree, TemplateError

__all__ = ["MAX_BODY", "interpret", "read_openapi"]

MAX_BODY = 6 * 1024 * 1024  # API Gateway's limit for an imported definition


_IGNORED_TOP = {
    "x-amazon-apigateway-documentation": "documentation parts are not imported",
    "x-amazon-apigateway-minimum-compression-size": "response compression is not supported",
}


def read_openapi(body: bytes) -> tuple[dict[str, Any], Problems]:
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
        raise fail(
            "Invalid OpenAPI input" if valid else "Invalid OpenAPI input (neither valid JSON nor YAML)",
            problems,
        )
    data = parsed.data
    if not isinstance(data, dict):
        raise bad_request("Invalid OpenAPI input: the document must be an object with 'openapi' or 'swagger'")
    storable(data, "Invalid OpenAPI input")
    return data, Problems(parsed.positions)


def _version(data: dict[str, Any], p: Problems) -> str:
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


def interpret(data: dict[str, Any], p: Problems, base_path: str = "ignore", api_id: str = "") -> Imported:
    """Everything the document defines (problems go to ``p``); ``api_id``: the API it goes to
    (its models' references to each other are stored with it)."""
    version = _version(data, p)
    rest: dict[str, Any] = {}
    info = data.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) or not info["title"].strip():
        p.error("/info/title" if isinstance(info, dict) else "/info", "the API needs a name: info.title")
    else:
        rest["name"] = info["title"]
        if isinstance(info.get("description"), str):
            rest["description"] = info["description"]
        if scalar_text(info.get("version")) is not None:
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
            value = scalar_text(tag["x-amazon-apigateway-tag-value"])
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
                GATEWAY_RESPONSES,
                VALIDATORS,
                VALIDATOR,
            )
        ):
            p.warn(pointer_join("", key), f"extension {key} is not supported here; it is ignored")
    schemes = read_schemes(data, version, p, out)
    default_validator = read_api_validation(data, version, api_id, p, out)
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
        item, iptr = resolve(data, item0, pptr, p)
        if not isinstance(item, dict):
            if item is not None:
                p.error(pptr, "a path item must be an object of operations")
            continue
        for key, op in item.items():
            verb = (
                VERBS.get(str(key).lower())
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
            method = read_operation(data, item, iptr, op, optr, verb, schemes, top_security, p)
            if method is not None:
                read_operation_validation(
                    data, version, api_id, item, iptr, op, optr, path, verb, method, default_validator, p, out
                )
                out.methods[(path, verb)] = method
                out.pointers[("method", f"{path} {verb}")] = optr
    return out


def _base_path(data: dict[str, Any], version: str, mode: str, p: Problems) -> str:
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
                    if isinstance(var, dict) and scalar_text(var.get("default")) is not None:
                        url = url.replace("{" + str(name) + "}", str(var["default"]))
            rest = url.split("://", 1)[-1]
            base = "/" + rest.split("/", 1)[1] if "/" in rest else ""
    base = "/" + base.strip("/") if base.strip("/") else ""
    if mode == "split":
        parts = base.strip("/").split("/")
        base = "/" + "/".join(parts[1:]) if len(parts) > 1 else ""
    return base
