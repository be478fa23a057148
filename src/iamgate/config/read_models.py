"""Reading request validation (docs/request-validation.md): an API's ``models`` and
``request_validators``, and a route's ``request_validator``, ``request_models`` and
``request_parameters``.

Each function reads the YAML data it is given and reports located diagnostics through the
reader; none depends on anything but its arguments, so the management API and the OpenAPI
importer can read the same shapes. Codes: ``config.invalid-json`` (a schema string that is not
JSON), ``config.invalid-schema`` (not JSON Schema draft 4, located inside the schema),
``config.unknown-model`` (a ``$ref`` or a route naming a model the API does not define),
``config.invalid-ref`` (a ``$ref`` that names nothing), ``config.unknown-validator``,
``config.invalid-parameter`` (an expression that is not ``method.request.{querystring|header|
path}.NAME``) and ``config.unknown-path-parameter`` (a required path parameter the route's path
does not have).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from iamgate.config._reader import Reader
from iamgate.config.model import ModelConfig, RequestValidatorConfig
from iamgate.config.schemas import MODEL_NAME, check_models, parse_schema
from iamgate.policy.diagnostics import did_you_mean, pointer_join

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "PARAMETER",
    "read_models",
    "read_request_models",
    "read_request_parameters",
    "read_request_validator",
    "read_request_validators",
]

DEFAULT_CONTENT_TYPE: Final = "$default"  # a route's model for any content type without its own
# a method request parameter: where it is (query string, header, path) and its name
PARAMETER: Final = re.compile(
    r"method\.request\.(querystring|header|path|multivaluequerystring|multivalueheader)\.([^\s]+)"
)
_CONTENT_TYPE: Final = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+*-]+")


def read_models(r: Reader, raw: object, ptr: str, api_id: str | None) -> dict[str, ModelConfig]:
    """An API's ``models`` (name -> model). Each schema is checked as JSON Schema draft 4, its
    ``$ref``s against the API's other models. Problems are reported; every model whose schema is
    JSON is returned (routes may name it), for an API with an error is never served."""
    m = _names(r, raw, ptr, "models")
    if m is None:
        return {}
    texts: dict[str, ModelConfig] = {}
    parsed: dict[str, Any] = {}
    inline: dict[str, bool] = {}  # the schema was written as a mapping (located inside), not a string
    for name, item in m.items():
        mp = pointer_join(ptr, name)
        model = _model(r, name, item, mp)
        if model is None:
            continue
        data, why = parse_schema(model.schema)
        if why is not None:  # only a string can fail here (a mapping was dumped from data)
            r.report(
                "invalid-json",
                f"{mp}/schema",
                f"the schema of model '{name}' is not JSON: {why}",
                "write the schema as a YAML mapping, or as a string holding a JSON object",
            )
            continue
        texts[name] = model
        parsed[name] = data
        inline[name] = isinstance(item, dict) and isinstance(item.get("schema"), dict)
    if not parsed:
        return texts
    found = check_models(api_id or "api", parsed)
    for name in texts:
        at = f"{pointer_join(ptr, name)}/schema"
        problems = found[name]
        for p in problems:
            where = at + p.pointer if inline[name] else at
            inside = f" (at {p.pointer} in the schema)" if p.pointer and not inline[name] else ""
            message = f"model '{name}': {p.message}{inside}"
            if p.code == "unknown-model":
                r.report("unknown-model", where, message)
            elif p.code == "invalid-ref":
                help = (
                    "refer to a model as https://apigateway.amazonaws.com/restapis/{api_id}/models/{Name}, "
                    "or to a part of the same schema as #/definitions/..."
                )
                r.report("invalid-ref", where, message, help if p.message.startswith("$ref") else None)
            else:
                r.report("invalid-schema", where, message)
    return texts


def _model(r: Reader, name: object, item: object, mp: str) -> ModelConfig | None:
    """One model: its name, schema (as JSON text), content type and description."""
    ok = True
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        r.report(
            "invalid-value",
            mp,
            f"model name '{name}' is not valid",
            "letters and digits only, as API Gateway's model names (e.g. Pet, NewOrder)",
            at_key=True,
        )
        ok = False
    mm = r.mapping(item, mp, f"model '{name}'", {"schema": True, "content_type": False, "description": False})
    if mm is None or "schema" not in mm:
        return None
    content_type = "application/json"
    if "content_type" in mm:
        content_type = (
            r.string(
                mm["content_type"],
                f"{mp}/content_type",
                "content_type",
                pattern=_CONTENT_TYPE,
                help="a media type such as application/json",
            )
            or content_type
        )
    description = None
    if "description" in mm:
        description = r.string(mm["description"], f"{mp}/description", "description")
    schema = mm["schema"]
    if isinstance(schema, dict):
        try:
            text = json.dumps(schema, ensure_ascii=False, allow_nan=False)
        except ValueError:
            r.report(
                "invalid-schema",
                f"{mp}/schema",
                f"the schema of model '{name}' holds a number JSON cannot represent (NaN or infinity)",
            )
            return None
    elif isinstance(schema, str):
        text = schema
    else:
        r.report(
            "wrong-type",
            f"{mp}/schema",
            f"the schema of model '{name}' must be a mapping or a string holding JSON, not {r.kind(schema)}",
        )
        return None
    if not ok:
        return None
    return ModelConfig(str(name), text, content_type, description)


def _names(r: Reader, raw: object, ptr: str, what: str) -> dict[Any, Any] | None:
    """A mapping whose keys are names the user chooses (unlike ``Reader.mapping``'s fixed keys)."""
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, f"{what} must be a mapping, not {r.kind(raw)}")
        return None
    return raw


def read_request_validators(r: Reader, raw: object, ptr: str) -> dict[str, RequestValidatorConfig]:
    """An API's ``request_validators`` (name -> what it validates)."""
    m = _names(r, raw, ptr, "request_validators")
    if m is None:
        return {}
    out: dict[str, RequestValidatorConfig] = {}
    for name, item in m.items():
        vp = pointer_join(ptr, name)
        if not isinstance(name, str) or not name.strip():
            r.report("invalid-value", vp, f"request validator name '{name}' is not valid", at_key=True)
            continue
        keys = {"validate_request_body": False, "validate_request_parameters": False}
        vm = r.mapping(item, vp, f"request validator '{name}'", keys)
        if vm is None:
            continue
        flags = [False, False]
        for i, key in enumerate(keys):
            if key in vm:
                flags[i] = bool(r.boolean(vm[key], f"{vp}/{key}", key))
        out[name] = RequestValidatorConfig(name, flags[0], flags[1])
    return out


def read_request_validator(
    r: Reader, raw: object, ptr: str, validators: dict[str, RequestValidatorConfig]
) -> str | None:
    """A route's ``request_validator``: the name of one of the API's validators."""
    name = r.string(raw, ptr, "request_validator")
    if name is None:
        return None
    if name not in validators:
        hint = did_you_mean(name, validators)
        r.report(
            "unknown-validator",
            ptr,
            f"request validator '{name}' is not defined for this API",
            (hint + " " if hint else "")
            + "defined: "
            + (", ".join(validators) or "none (add request_validators)"),
        )
        return None
    return name


def read_request_models(
    r: Reader, raw: object, ptr: str, models: dict[str, ModelConfig]
) -> tuple[tuple[str, str], ...]:
    """A route's ``request_models``: content type (or ``$default``) -> the name of a model of
    the API. Content types are kept as written (the snapshot matches them case-insensitively);
    one written twice in two cases is an error."""
    m = _names(r, raw, ptr, "request_models")
    if m is None:
        return ()
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for content_type, name in m.items():
        cp = pointer_join(ptr, content_type)
        ct = str(content_type).strip().lower()
        if ct != DEFAULT_CONTENT_TYPE and not _CONTENT_TYPE.fullmatch(ct):
            r.report(
                "invalid-value",
                cp,
                f"'{content_type}' is not a content type",
                "a media type such as application/json, or $default for any other",
                at_key=True,
            )
            continue
        if ct in seen:
            r.report("invalid-value", cp, f"content type '{content_type}' is listed twice", at_key=True)
            continue
        seen.add(ct)
        model = r.string(name, cp, "a request model")
        if model is None:
            continue
        if model not in models:
            hint = did_you_mean(model, models)
            r.report(
                "unknown-model",
                cp,
                f"model '{model}' is not defined for this API",
                (hint + " " if hint else "") + "defined: " + (", ".join(models) or "none (add models)"),
            )
            continue
        out.append((str(content_type).strip(), model))
    return tuple(out)


def read_request_parameters(
    r: Reader, raw: object, ptr: str, path_params: set[str], greedy: str | None
) -> tuple[tuple[str, bool], ...]:
    """A route's ``request_parameters``: ``method.request.{querystring|header|path}.NAME`` (or
    the ``multivaluequerystring`` / ``multivalueheader`` forms, required as the single ones) ->
    whether it is required. A path parameter must be one of the route's path's (``path_params``,
    ``greedy``). Header names are kept as written (matched case-insensitively)."""
    m = _names(r, raw, ptr, "request_parameters")
    if m is None:
        return ()
    out: list[tuple[str, bool]] = []
    for expression, required in m.items():
        pp = pointer_join(ptr, expression)
        match = PARAMETER.fullmatch(str(expression))
        if match is None:
            r.report(
                "invalid-parameter",
                pp,
                f"'{expression}' is not a method request parameter",
                "method.request.querystring.NAME, method.request.header.NAME, method.request.path.NAME, "
                "method.request.multivaluequerystring.NAME or method.request.multivalueheader.NAME",
                at_key=True,
            )
            continue
        flag = r.boolean(required, pp, f"'{expression}'")
        if flag is None:
            continue
        where, name = match.group(1), match.group(2)
        if where == "path" and name not in path_params and name != greedy:
            known = sorted(path_params | ({greedy} if greedy else set()))
            r.report(
                "unknown-path-parameter",
                pp,
                f"the route's path has no parameter '{name}'",
                "its path parameters: " + (", ".join(known) or "none"),
                at_key=True,
            )
            continue
        out.append((str(expression), flag))
    return tuple(sorted(out))  # by expression: the order of the missing-parameters message
