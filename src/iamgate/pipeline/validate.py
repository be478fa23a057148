"""The validate stage: API Gateway's request validation (docs/request-validation.md).

Runs after throttling, as API Gateway orders it (authorization, API key, throttling, then the
request validator). What a route checks was compiled with the snapshot (``RouteRuntime.check``):

1. parameters (a validator with ``validate_request_parameters``): every required query-string
   parameter, header (names case-insensitive) and path parameter must be present and not empty,
   else 400 ``BAD_REQUEST_PARAMETERS`` ``Missing required request parameters: [a, b]``;
2. the body (``validate_request_body``): the model is the one for the request's content type
   (its media type, lower-case, without parameters; ``application/json`` when the request has no
   Content-Type, as API Gateway assumes), else the ``$default`` one; with neither, the body is
   not validated. With a model, the stage asks for the whole body (``NEED_BODY``: buffered
   within ``max_request_body``/``max_buffered_body``, which answer 413 first), parses it as JSON
   (an empty body is ``{}``) and validates it; a body that is not JSON or does not match is
   answered 400 ``BAD_REQUEST_BODY`` ``Invalid request body`` and never forwarded, and
   ``Exchange.validation_error`` ($context.error.validationErrorString) says why.

The stage never raises on what a client sends: any JSON value is validated (a property test
checks it), and a body nested deeper than the JSON parser allows (1,024 levels) is an invalid body.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl

import orjson

from iamgate.pipeline import responses as R
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import NEED_BODY, StageResult

__all__ = ["describe_errors", "parse_body", "validate"]

DEFAULT_CONTENT_TYPE: Final = "application/json"  # what API Gateway assumes without a Content-Type
MAX_REPORTED: Final = 10  # validation errors described in the validation error string
MAX_VALUE_CHARS: Final = 80  # of a value quoted in a message (the rest is "...")
MAX_MESSAGE_CHARS: Final = 300  # of one message


def validate(ex: Exchange) -> StageResult:
    route = ex.route
    assert route is not None  # route ran first
    check = route.check
    if check is None:
        return None
    validator = ex.body_model
    if validator is not None and ex.body is not None:  # run again with the body it asked for
        return _check_body(ex, validator, ex.body)
    if check.parameters:
        missing = _missing(ex, check.parameters)
        if missing:
            message = f"Missing required request parameters: [{', '.join(missing)}]"
            ex.validation_error = message
            return R.gateway_error(R.BAD_REQUEST_PARAMETERS, message)
    models = check.models
    if not models:
        return None
    validator = models.get(_media_type(ex.hmap.get(b"content-type")))
    if validator is None:
        validator = models.get("$default")
        if validator is None:
            return None  # no model for this content type: not validated, as API Gateway does
    body = ex.body
    if body is None:
        ex.body_model = validator
        return NEED_BODY
    return _check_body(ex, validator, body)


def _check_body(ex: Exchange, validator: Any, body: bytes) -> StageResult:
    value, why = parse_body(body)
    if why is None:
        if validator.is_valid(value):
            return None
        why = describe_errors(validator, value)
    ex.validation_error = why
    return R.gateway_error(R.BAD_REQUEST_BODY)


_MEDIA_TYPES: Final[dict[bytes, str]] = {}  # Content-Type value -> its media type, lower-case
_MEDIA_TYPES_LIMIT: Final = 256  # values kept (cleared beyond: clients send a handful)


def _media_type(header: bytes | None) -> str:
    if header is None:
        return DEFAULT_CONTENT_TYPE
    found = _MEDIA_TYPES.get(header)
    if found is None:
        found = header.split(b";", 1)[0].strip().lower().decode("latin-1")
        if len(header) <= 128:
            if len(_MEDIA_TYPES) >= _MEDIA_TYPES_LIMIT:
                _MEDIA_TYPES.clear()
            _MEDIA_TYPES[header] = found
    return found


def _missing(ex: Exchange, parameters: tuple[tuple[str, str, bytes], ...]) -> list[str]:
    """The names of the required parameters the request lacks (or sends empty), in order."""
    missing: list[str] = []
    query: dict[str, str] | None = None
    for where, name, header in parameters:
        if where == "header":
            value = ex.hmap.get(header)
            if value is None or not value.strip():
                missing.append(name)
        elif where == "querystring":
            if query is None:
                query = dict(parse_qsl(ex.query.decode("utf-8", "replace"), keep_blank_values=True))
            if not query.get(name):
                missing.append(name)
        else:
            params = ex.params
            if not params or not params.get(name):
                missing.append(name)
    return missing


def parse_body(body: bytes) -> tuple[Any, str | None]:
    """The body as a JSON value (an empty or blank body is ``{}``), or (None, why not)."""
    if not body.strip():
        return {}, None
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        return None, f"[Invalid JSON: {exc}]"


def describe_errors(validator: Any, value: Any) -> str:
    """The validation error string of a value that does not match: API Gateway's shape, a list
    of messages in brackets (``[object has missing required properties (["name"])]``)."""
    parts: list[str | list[str]] = []  # a message, or the missing properties of one object
    missing_at: dict[str, list[str]] = {}
    for error in validator.iter_errors(value):
        if len(parts) >= MAX_REPORTED:
            break
        kind = type(error.kind).__name__
        if kind == "Required":
            where = "/".join(str(p) for p in error.instance_path)
            names = missing_at.get(where)
            if names is None:
                names = missing_at[where] = []
                parts.append(names)
            names.append(str(error.kind.property))
            continue
        message = _message(kind, error)
        parts.append(message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "...")
    out = [
        part if isinstance(part, str) else f"object has missing required properties ({_json(sorted(part))})"
        for part in parts
    ]
    return "[" + ", ".join(out) + "]"


def _json(value: Any) -> str:
    """A value as JSON in a message; long ones cut (a body's value must not fill the log)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # (an integer beyond 64 bits)
        text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _message(kind: str, error: Any) -> str:
    """One error in the words of API Gateway's validator, for the common keywords."""
    details = error.kind.as_dict()
    instance = error.instance
    limit = details.get("limit")
    if kind == "Type":
        types = details.get("types") or []
        return (
            f"instance type ({_type_name(instance)}) does not match any allowed primitive type "
            f"(allowed: {_json(sorted(types))})"
        )
    if kind == "Minimum":
        return (
            "numeric instance is lower than the required minimum "
            f"(minimum: {_json(limit)}, found: {_json(instance)})"
        )
    if kind == "Maximum":
        return (
            "numeric instance is greater than the required maximum "
            f"(maximum: {_json(limit)}, found: {_json(instance)})"
        )
    if kind == "MinLength" and isinstance(instance, str):
        return f"string {_json(instance)} is too short (length: {len(instance)}, required minimum: {limit})"
    if kind == "MaxLength" and isinstance(instance, str):
        return f"string {_json(instance)} is too long (length: {len(instance)}, maximum allowed: {limit})"
    if kind == "Enum":
        return (
            f"instance value ({_json(instance)}) not found in enum "
            f"(possible values: {_json(details.get('options'))})"
        )
    if kind == "Pattern":
        return f"ECMA 262 regex {_json(details.get('pattern'))} does not match input string {_json(instance)}"
    if kind == "AdditionalProperties":
        return (
            "object instance has properties which are not allowed by the schema: "
            f"{_json(sorted(str(u) for u in details.get('unexpected') or []))}"
        )
    if kind == "MinItems" and isinstance(instance, list):
        return (
            f"array is too short: must have at least {details.get('limit')} elements but instance has "
            f"{len(instance)} elements"
        )
    if kind == "MaxItems" and isinstance(instance, list):
        return (
            f"array is too long: must have at most {details.get('limit')} elements but instance has "
            f"{len(instance)} elements"
        )
    if kind == "UniqueItems":
        return "array must not contain duplicate elements"
    return str(error.message)
