"""Models and request validators: ``CreateModel``, ``GetModel``, ``GetModels``, ``UpdateModel``,
``DeleteModel``; ``CreateRequestValidator``, ``GetRequestValidator(s)``,
``UpdateRequestValidator``, ``DeleteRequestValidator``.

A model is a JSON Schema draft 4 document (as API Gateway uses) stored as JSON text,
``draft["models"][id]`` with ``id``, ``name`` (letters and digits, unique in the API, how paths and
methods name it), ``contentType``, ``description`` and ``schema``. A schema is checked when it is
saved (:func:`schema_problem`) with the configuration reader's own rules
(:mod:`iamgate.config.schemas`, ``jsonschema-rs``): valid JSON, an object, valid against the draft
4 meta-schema, and every ``$ref`` either inside the schema (``#/definitions/X``) or another model of
the same API by API Gateway's URL (``https://apigateway.amazonaws.com/restapis/{api_id}/models/{Name}``);
iamgate never fetches a schema. Every new API has API Gateway's two models, ``Empty`` and ``Error``.

A request validator (``draft["requestValidators"][id]``: ``id``, ``name``, ``validateRequestBody``,
``validateRequestParameters``) is what a method's ``requestValidatorId`` names. A model or a
validator a method uses cannot be deleted (``ConflictException``), nor a model another model's
``$ref`` names.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from iamgate.config.schemas import check_models
from iamgate.management.core import Call, Reply, Route, bad_request, conflict, not_found
from iamgate.management.drafts import (
    DEFAULT_MODELS,
    default_models,
    each_method,
    edit,
    is_default_model,
    optional_bool,
    optional_str,
    page,
    read,
)
from iamgate.management.ids import new_id
from iamgate.management.patch import PatchOp, invalid_path, operations
from iamgate.store.base import Doc, Transaction

__all__ = [
    "DATA_KEYWORDS",
    "DEFAULT_MODELS",
    "MODEL_URL",
    "ROUTES",
    "check_validator",
    "default_models",
    "find_model_by_name",
    "is_default_model",
    "model_refs",
    "model_shape",
    "model_users",
    "referenced_models",
    "schema_problem",
    "validator_shape",
]

MODEL_URL = "https://apigateway.amazonaws.com/restapis/{api_id}/models/{name}"
_MODEL_REF = re.compile(r"https://apigateway\.amazonaws\.com/restapis/([^/]+)/models/([^/#]+)(#.*)?")
_NAME = re.compile(r"[A-Za-z0-9]{1,128}")
_VALIDATOR_NAME_MAX = 256
MAX_DEPTH = 64  # how deep a schema may nest: checking and exporting it walk it recursively
MODEL_UPDATABLE = ["/schema", "/description"]
# keywords whose values are data, not schemas: a "$ref" inside them is no reference
DATA_KEYWORDS = frozenset({"enum", "default", "example", "examples", "const"})
VALIDATOR_UPDATABLE = ["/name", "/validateRequestBody", "/validateRequestParameters"]


def model_shape(model: Doc) -> dict[str, Any]:
    keys = ("id", "name", "description", "schema", "contentType")
    return {k: model[k] for k in keys if model.get(k) is not None}


def validator_shape(validator: Doc) -> dict[str, Any]:
    return {
        "id": validator["id"],
        "name": validator["name"],
        "validateRequestBody": bool(validator.get("validateRequestBody")),
        "validateRequestParameters": bool(validator.get("validateRequestParameters")),
    }


# --- schemas ---------------------------------------------------------------------------------------
def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path else "/"


def model_refs(document: Any) -> list[tuple[str, str]]:
    """Every ``$ref`` of a schema as (where, reference), depth first (not inside data:
    ``enum``, ``default``, ``example(s)``, ``const``)."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, list[Any]]] = [(document, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.append((_pointer([*path, "$ref"]), ref))
            stack.extend(
                (v, [*path, k])
                for k, v in node.items()
                if (k != "$ref" or not isinstance(v, str)) and k not in DATA_KEYWORDS
            )
        elif isinstance(node, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(node))
    return sorted(found)


def referenced_models(schema: str, api_id: str) -> set[str]:
    """The names of the models of API ``api_id`` that a schema's ``$ref``s name."""
    try:
        document = json.loads(schema)
    except ValueError:
        return set()
    names = set()
    for _, ref in model_refs(document):
        m = _MODEL_REF.fullmatch(ref)
        if m is not None and m.group(1) == api_id:
            names.add(m.group(2))
    return names


def schema_problem(schema: Any, api_id: str, models: Mapping[str, str], own: str) -> str | None:
    """Why ``schema`` (model ``own``'s JSON text) cannot be saved, with where in it; None when it
    can. ``models``: the API's other models (name -> schema text), which a ``$ref`` may name. The
    checks are the configuration reader's own (:func:`iamgate.config.schemas.check_models`: the
    draft 4 meta-schema, every ``$ref`` resolved), so what is saved can be deployed."""
    if not isinstance(schema, str):
        return "the schema must be a string holding a JSON document"
    try:
        document = json.loads(schema, parse_constant=_no_constant)
    except ValueError as exc:
        return f"the schema is not valid JSON: {exc}"
    except RecursionError:
        return f"the schema nests deeper than {MAX_DEPTH} levels"
    if not isinstance(document, dict):
        return f"the schema must be a JSON object, not {type(document).__name__}"
    if _depth(document) > MAX_DEPTH:
        return f"the schema nests deeper than {MAX_DEPTH} levels"
    schemas: dict[str, Any] = {}
    for name, text in models.items():
        try:
            schemas[name] = json.loads(text)
        except (ValueError, RecursionError, TypeError):
            continue  # another model's own problem: saved before these checks, or not JSON at all
    schemas[own] = document
    problems = check_models(api_id, schemas)[own]
    if not problems:
        return None
    first = problems[0]
    return f"at '{first.pointer or '/'}': {first.message}"


def _depth(document: Any) -> int:
    """How deep a JSON value nests (iteratively: a deep one must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _schema_error(problem: str) -> Exception:
    return bad_request(f"Invalid model schema specified: {problem}")


# --- models ----------------------------------------------------------------------------------------
def _models(draft: Doc) -> dict[str, Doc]:
    found: dict[str, Doc] = draft.setdefault("models", {})
    return found


def find_model_by_name(draft: Doc, name: str) -> Doc:
    for model in (draft.get("models") or {}).values():
        if model["name"] == name:
            return model  # type: ignore[no-any-return]
    raise not_found("Invalid model name specified: " + name)


def _names(draft: Doc) -> set[str]:
    return {m["name"] for m in (draft.get("models") or {}).values()}


def _texts(draft: Doc) -> dict[str, str]:
    """The API's models: name -> schema text."""
    return {m["name"]: m.get("schema") or "{}" for m in (draft.get("models") or {}).values()}


async def create_model(call: Call) -> Reply:
    body = call.json()
    where = "CreateModel"
    api_id = call.params["restapi_id"]
    name = optional_str(body, "name", where)
    content_type = optional_str(body, "contentType", where)
    if not name:
        raise bad_request("CreateModel: 'name' is required")
    if not _NAME.fullmatch(name):
        raise bad_request(f"Invalid model name specified: '{name}'. Model names must be alphanumeric")
    if not content_type:
        raise bad_request("CreateModel: 'contentType' is required (e.g. application/json)")
    schema = optional_str(body, "schema", where)
    description = optional_str(body, "description", where)

    def add(tx: Transaction, draft: Doc) -> dict[str, Any]:
        models = _models(draft)
        if name in _names(draft):
            raise conflict("Model name already exists for this REST API")
        if schema is not None:
            problem = schema_problem(schema, api_id, _texts(draft), own=name)
            if problem:
                raise _schema_error(problem)
        mid = new_id("model")
        while mid in models:
            mid = new_id("model")
        model = {"id": mid, "name": name, "description": description, "schema": schema}
        model["contentType"] = content_type
        models[mid] = {k: v for k, v in model.items() if v is not None}
        return model_shape(models[mid])

    return Reply(201, await edit(call, api_id, add))


async def get_models(call: Call) -> Reply:
    def shapes(tx: Transaction, draft: Doc) -> list[dict[str, Any]]:
        return [model_shape(m) for m in sorted((draft.get("models") or {}).values(), key=lambda m: m["name"])]

    return Reply(200, page(call, await read(call, call.params["restapi_id"], shapes), key="name"))


async def get_model(call: Call) -> Reply:
    name = call.params["model_name"]
    api_id = call.params["restapi_id"]
    shape = await read(call, api_id, lambda tx, d: model_shape(find_model_by_name(d, name)))
    return Reply(200, shape)


def _apply_model(model: Doc, op: PatchOp) -> None:
    if op.path in MODEL_UPDATABLE and op.op == "replace":
        key = op.path[1:]
        if op.value is None or (key == "description" and op.value == ""):
            model.pop(key, None)
        else:
            model[key] = op.value
    else:
        raise invalid_path(op, MODEL_UPDATABLE)


async def update_model(call: Call) -> Reply:
    ops = operations(call.json())
    name = call.params["model_name"]
    api_id = call.params["restapi_id"]

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        model = find_model_by_name(draft, name)
        work = copy.deepcopy(model)
        for op in ops:
            _apply_model(work, op)
        if "schema" in work:
            problem = schema_problem(work["schema"], api_id, _texts(draft), own=name)
            if problem:
                raise _schema_error(problem)
        model.clear()
        model.update(work)
        return model_shape(model)

    return Reply(200, await edit(call, api_id, change))


def model_users(draft: Doc, name: str) -> list[str]:
    """Where model ``name`` is used: AWS's ``method request: /path/VERB`` and ``model: NAME``."""
    api_id = draft["restApi"]["id"]
    found = []
    for path, verb, method in each_method(draft):
        if name in (method.get("requestModels") or {}).values():
            found.append(f"method request: {path}/{verb}")
        responses = method.get("methodResponses") or {}
        if any(name in (r.get("responseModels") or {}).values() for r in responses.values()):
            found.append(f"method response: {path}/{verb}")
    for other in sorted((draft.get("models") or {}).values(), key=lambda m: m["name"]):
        if other["name"] != name and name in referenced_models(other.get("schema") or "", api_id):
            found.append(f"model: {other['name']}")
    return found


async def delete_model(call: Call) -> Reply:
    name = call.params["model_name"]

    def remove(tx: Transaction, draft: Doc) -> None:
        model = find_model_by_name(draft, name)
        users = model_users(draft, name)
        if users:
            raise conflict(f"Cannot delete model '{name}', is referenced in {users[0]}")
        del draft["models"][model["id"]]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(202)


# --- request validators ----------------------------------------------------------------------------
def _validators(draft: Doc) -> dict[str, Doc]:
    found: dict[str, Doc] = draft.setdefault("requestValidators", {})
    return found


def _find_validator(draft: Doc, vid: str) -> Doc:
    validator = (draft.get("requestValidators") or {}).get(vid)
    if validator is None:
        raise not_found("Invalid Request Validator identifier specified")
    return validator  # type: ignore[no-any-return]


def check_validator(draft: Doc, validator: Doc) -> None:
    name = validator.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > _VALIDATOR_NAME_MAX:
        raise bad_request(
            f"Invalid request validator name {name!r}: a name of 1 to 256 characters is required"
        )
    for other in (draft.get("requestValidators") or {}).values():
        if other["id"] != validator["id"] and other["name"] == name:
            raise conflict(f"A request validator named '{name}' already exists for this API ({other['id']})")


async def create_request_validator(call: Call) -> Reply:
    body = call.json()
    where = "CreateRequestValidator"
    validator: Doc = {
        "name": optional_str(body, "name", where),
        "validateRequestBody": bool(optional_bool(body, "validateRequestBody", where)),
        "validateRequestParameters": bool(optional_bool(body, "validateRequestParameters", where)),
    }

    def add(tx: Transaction, draft: Doc) -> dict[str, Any]:
        validators = _validators(draft)
        vid = new_id("requestvalidator")
        while vid in validators:
            vid = new_id("requestvalidator")
        validator["id"] = vid
        check_validator(draft, validator)
        validators[vid] = validator
        return validator_shape(validator)

    return Reply(201, await edit(call, call.params["restapi_id"], add))


async def get_request_validators(call: Call) -> Reply:
    def shapes(tx: Transaction, draft: Doc) -> list[dict[str, Any]]:
        return [validator_shape(v) for _, v in sorted((draft.get("requestValidators") or {}).items())]

    return Reply(200, page(call, await read(call, call.params["restapi_id"], shapes)))


async def get_request_validator(call: Call) -> Reply:
    vid = call.params["requestvalidator_id"]
    return Reply(
        200,
        await read(call, call.params["restapi_id"], lambda tx, d: validator_shape(_find_validator(d, vid))),
    )


def _apply_validator(validator: Doc, op: PatchOp) -> None:
    if op.op != "replace" or op.path not in VALIDATOR_UPDATABLE:
        raise invalid_path(op, VALIDATOR_UPDATABLE)
    if op.path == "/name":
        validator["name"] = op.value or ""
    else:
        validator[op.path[1:]] = op.boolean()


async def update_request_validator(call: Call) -> Reply:
    ops = operations(call.json())
    vid = call.params["requestvalidator_id"]

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        validator = _find_validator(draft, vid)
        work = copy.deepcopy(validator)
        for op in ops:
            _apply_validator(work, op)
        check_validator(draft, work)
        validator.clear()
        validator.update(work)
        return validator_shape(validator)

    return Reply(200, await edit(call, call.params["restapi_id"], change))


async def delete_request_validator(call: Call) -> Reply:
    vid = call.params["requestvalidator_id"]

    def remove(tx: Transaction, draft: Doc) -> None:
        validator = _find_validator(draft, vid)
        for path, verb, method in each_method(draft):
            if method.get("requestValidatorId") == vid:
                raise conflict(
                    f"Cannot delete request validator '{validator['name']}', is referenced in method: "
                    f"{path}/{verb}"
                )
        del draft["requestValidators"][vid]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(202)


_MODELS = "/restapis/{restapi_id}/models"
_VALIDATORS = "/restapis/{restapi_id}/requestvalidators"
ROUTES = [
    Route("POST", _MODELS, create_model),
    Route("GET", _MODELS, get_models),
    Route("GET", _MODELS + "/{model_name}", get_model),
    Route("PATCH", _MODELS + "/{model_name}", update_model),
    Route("DELETE", _MODELS + "/{model_name}", delete_model),
    Route("POST", _VALIDATORS, create_request_validator),
    Route("GET", _VALIDATORS, get_request_validators),
    Route("GET", _VALIDATORS + "/{requestvalidator_id}", get_request_validator),
    Route("PATCH", _VALIDATORS + "/{requestvalidator_id}", update_request_validator),
    Route("DELETE", _VALIDATORS + "/{requestvalidator_id}", delete_request_validator),
]
