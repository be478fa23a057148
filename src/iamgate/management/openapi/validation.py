"""Reading what request validation and gateway responses need from a document:
``x-amazon-apigateway-gateway-responses``, ``x-amazon-apigateway-request-validators``,
``x-amazon-apigateway-request-validator`` (the API's default at the top, a method's own on an
operation), the schemas (OpenAPI 3 ``components.schemas``, Swagger 2 ``definitions``) as models,
and an operation's request body (OpenAPI 3 ``requestBody``, a Swagger 2 ``in: body`` parameter)
and responses' schemas as the method's ``requestModels`` / ``responseModels``.

A schema's ``$ref`` to another schema of the document (``#/components/schemas/X``,
``#/definitions/X``) is stored in API Gateway's form, the model's URL
``https://apigateway.amazonaws.com/restapis/{api_id}/models/X``; the export writes it back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from iamgate.management.gatewayresponses import problems_of
from iamgate.management.models import DATA_KEYWORDS, MODEL_URL
from iamgate.management.openapi.document import Imported, Problems, resolve, scalar_text, str_map
from iamgate.pipeline.responses import RESPONSE_TYPES
from iamgate.policy.diagnostics import pointer_join

__all__ = [
    "GATEWAY_RESPONSES",
    "VALIDATOR",
    "VALIDATORS",
    "read_api_validation",
    "read_operation_validation",
    "schema_prefix",
]

GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"
VALIDATORS = "x-amazon-apigateway-request-validators"
VALIDATOR = "x-amazon-apigateway-request-validator"
_MODEL_NAME = re.compile(r"[A-Za-z0-9]{1,128}")


def schema_prefix(version: str) -> str:
    """Where a document's named schemas are: ``#/components/schemas/`` or ``#/definitions/``."""
    return "#/components/schemas/" if version == "oas3" else "#/definitions/"


def _schemas(data: dict[str, Any], version: str) -> tuple[Any, str]:
    if version == "oas3":
        components = data.get("components")
        return (components.get("schemas") if isinstance(components, dict) else None), "/components/schemas"
    return data.get("definitions"), "/definitions"


def _to_model_refs(node: Any, prefix: str, api_id: str, names: set[str]) -> Any:
    """A copy of a schema whose ``$ref``s to the document's named schemas are model URLs."""
    if isinstance(node, list):
        return [_to_model_refs(v, prefix, api_id, names) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(prefix):
            name, _, rest = value[len(prefix) :].partition("/")
            name = name.replace("~1", "/").replace("~0", "~")
            if name in names:
                out[key] = MODEL_URL.format(api_id=api_id, name=name) + (f"#/{rest}" if rest else "")
                continue
        out[key] = value if key in DATA_KEYWORDS else _to_model_refs(value, prefix, api_id, names)
    return out


def _gateway_responses(data: dict[str, Any], p: Problems, out: Imported) -> None:
    raw = data.get(GATEWAY_RESPONSES)
    ptr = f"/{GATEWAY_RESPONSES}"
    if raw is None:
        return
    if not isinstance(raw, dict):
        p.error(ptr, "must be a map of response types to gateway responses")
        return
    for kind, node in raw.items():
        at = pointer_join(ptr, kind)
        if kind not in RESPONSE_TYPES:
            p.error(at, f"'{kind}' is not a gateway response type: one of {', '.join(RESPONSE_TYPES)}")
            continue
        if not isinstance(node, dict):
            p.error(
                at, "a gateway response is an object with statusCode, responseParameters, responseTemplates"
            )
            continue
        response: dict[str, Any] = {}
        if node.get("statusCode") is not None:
            status = scalar_text(node["statusCode"])
            if status is None:
                p.error(f"{at}/statusCode", 'statusCode is a three-digit status such as "403"')
                continue
            response["statusCode"] = status
        for key in ("responseParameters", "responseTemplates"):
            value = str_map(node.get(key), f"{at}/{key}", p, key)
            if value:
                response[key] = value
        problem = problems_of(response)
        if problem is not None:
            p.error(at, problem)
            continue
        out.gateway_responses[str(kind)] = response
        out.pointers[("gateway_response", str(kind))] = at


def _validators(data: dict[str, Any], p: Problems, out: Imported) -> str | None:
    raw = data.get(VALIDATORS)
    ptr = f"/{VALIDATORS}"
    if raw is not None:
        if not isinstance(raw, dict):
            p.error(
                ptr, "must be a map of validator names to {validateRequestBody, validateRequestParameters}"
            )
        else:
            for name, node in raw.items():
                at = pointer_join(ptr, name)
                if not isinstance(node, dict):
                    p.error(
                        at,
                        "a request validator is an object: {validateRequestBody, validateRequestParameters}",
                    )
                    continue
                validator: dict[str, Any] = {"name": str(name)}
                for key in ("validateRequestBody", "validateRequestParameters"):
                    value = node.get(key, False)
                    if not isinstance(value, bool):
                        p.error(f"{at}/{key}", f"{key} is true or false, not {value!r}")
                    validator[key] = value is True
                out.validators[str(name)] = validator
                out.pointers[("validator", str(name))] = at
    default = data.get(VALIDATOR)
    if default is None:
        return None
    if not isinstance(default, str) or default not in out.validators:
        p.error(f"/{VALIDATOR}", f"request validator {default!r} is not defined in {VALIDATORS}")
        return None
    return default


def _models(data: dict[str, Any], version: str, api_id: str, p: Problems, out: Imported) -> None:
    raw, ptr = _schemas(data, version)
    if raw is None:
        return
    if not isinstance(raw, dict):
        p.error(ptr, "schemas must be a map of names to schemas")
        return
    names = {str(n) for n in raw}
    prefix = schema_prefix(version)
    for name, node in raw.items():
        at = pointer_join(ptr, name)
        if not _MODEL_NAME.fullmatch(str(name)):
            p.error(at, f"schema name '{name}': API Gateway's model names are alphanumeric (A-Z, a-z, 0-9)")
            continue
        if not isinstance(node, dict):
            p.error(at, "a schema must be an object")
            continue
        schema = _to_model_refs(node, prefix, api_id, names)
        model: dict[str, Any] = {"name": str(name), "contentType": "application/json"}
        if isinstance(node.get("description"), str):
            model["description"] = node["description"]
        model["schema"] = json.dumps(schema, indent=2, ensure_ascii=False)
        out.models[str(name)] = model
        out.pointers[("model", str(name))] = at


def read_api_validation(
    data: dict[str, Any], version: str, api_id: str, p: Problems, out: Imported
) -> str | None:
    """The document's gateway responses, request validators and models (into ``out``); the
    API's default request validator (top-level ``x-amazon-apigateway-request-validator``)."""
    _gateway_responses(data, p, out)
    default = _validators(data, p, out)
    _models(data, version, api_id, p, out)
    return default


def _model_for(
    data: dict[str, Any],
    schema: Any,
    at: str,
    content_type: str,
    hint: str,
    version: str,
    api_id: str,
    p: Problems,
    out: Imported,
) -> str | None:
    """The model a body schema names: a document schema by ``$ref``, or a new model for an
    inline schema (named after the operation)."""
    prefix = schema_prefix(version)
    if isinstance(schema, dict) and set(schema) == {"$ref"} and isinstance(schema["$ref"], str):
        ref = schema["$ref"]
        name = ref[len(prefix) :] if ref.startswith(prefix) else None
        if name is None or name not in out.models:
            p.error(f"{at}/$ref", f"'{ref}' does not name a schema of {prefix[1:-1]} (a model)")
            return None
        return name
    if not isinstance(schema, dict):
        p.error(at, "a body schema must be an object")
        return None
    base = re.sub(r"[^A-Za-z0-9]", "", hint) or "Body"
    name, n = base, 1
    while name in out.models:
        n += 1
        name = f"{base}{n}"
    names = set(out.models) | set(_named(data, version))
    out.models[name] = {
        "name": name,
        "contentType": content_type,
        "schema": json.dumps(_to_model_refs(schema, prefix, api_id, names), indent=2, ensure_ascii=False),
    }
    out.pointers[("model", name)] = at
    return name


def _named(data: dict[str, Any], version: str) -> list[str]:
    raw, _ = _schemas(data, version)
    return [str(n) for n in raw] if isinstance(raw, dict) else []


def _title(path: str, verb: str, op: dict[str, Any]) -> str:
    if isinstance(op.get("operationId"), str) and op["operationId"]:
        base = str(op["operationId"])
        return base[:1].upper() + base[1:] + "Body"
    words = [w.strip("{}+") for w in path.split("/") if w]
    return verb.title() + "".join(w[:1].upper() + w[1:] for w in words) + "Body"


def read_operation_validation(
    data: dict[str, Any],
    version: str,
    api_id: str,
    item: dict[str, Any],
    iptr: str,
    op: dict[str, Any],
    optr: str,
    path: str,
    verb: str,
    method: dict[str, Any],
    default_validator: str | None,
    p: Problems,
    out: Imported,
) -> None:
    """A method's request validator (by name), request models and response models."""
    validator = op.get(VALIDATOR, default_validator)
    if validator is not None:
        if not isinstance(validator, str) or validator not in out.validators:
            p.error(f"{optr}/{VALIDATOR}", f"request validator {validator!r} is not defined in {VALIDATORS}")
        else:
            method["requestValidatorId"] = validator  # a name here; ids are given when the draft is built
    hint = _title(path, verb, op)
    models: dict[str, str] = {}
    if version == "oas3":
        body, bptr = resolve(data, op.get("requestBody"), f"{optr}/requestBody", p)
        if isinstance(body, dict) and isinstance(body.get("content"), dict):
            for content_type, media in body["content"].items():
                if isinstance(media, dict) and media.get("schema") is not None:
                    at = pointer_join(f"{bptr}/content", content_type) + "/schema"
                    name = _model_for(
                        data, media["schema"], at, str(content_type), hint, version, api_id, p, out
                    )
                    if name is not None:
                        models[str(content_type)] = name
    else:
        for raw, ptr in (
            (item.get("parameters"), f"{iptr}/parameters"),
            (op.get("parameters"), f"{optr}/parameters"),
        ):
            for i, entry in enumerate(raw if isinstance(raw, list) else []):
                node, at = resolve(data, entry, f"{ptr}/{i}", p)
                if not isinstance(node, dict) or node.get("in") != "body" or node.get("schema") is None:
                    continue
                consumes = op.get("consumes", data.get("consumes")) or ["application/json"]
                for content_type in consumes if isinstance(consumes, list) else ["application/json"]:
                    name = _model_for(
                        data, node["schema"], f"{at}/schema", str(content_type), hint, version, api_id, p, out
                    )
                    if name is not None:
                        models[str(content_type)] = name
    if models:
        method["requestModels"] = models
    _response_models(data, version, op, optr, method, p, out)


def _response_models(
    data: dict[str, Any],
    version: str,
    op: dict[str, Any],
    optr: str,
    method: dict[str, Any],
    p: Problems,
    out: Imported,
) -> None:
    """``responseModels`` of the method responses: the named schemas a response's body uses."""
    responses = op.get("responses")
    prefix = schema_prefix(version)
    for code, response in (method.get("methodResponses") or {}).items():
        node = responses.get(code, responses.get(int(code))) if isinstance(responses, dict) else None
        node, _ = resolve(data, node, pointer_join(f"{optr}/responses", code), p)
        if not isinstance(node, dict):
            continue
        schemas: dict[str, Any] = {}
        if version == "oas3" and isinstance(node.get("content"), dict):
            schemas = {str(ct): m.get("schema") for ct, m in node["content"].items() if isinstance(m, dict)}
        elif version != "oas3" and node.get("schema") is not None:
            produces = op.get("produces", data.get("produces")) or ["application/json"]
            schemas = {str(ct): node["schema"] for ct in (produces if isinstance(produces, list) else [])}
        found = {}
        for content_type, schema in schemas.items():
            ref = schema.get("$ref") if isinstance(schema, dict) else None
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in out.models:
                found[content_type] = ref[len(prefix) :]
        if found:
            response["responseModels"] = found
