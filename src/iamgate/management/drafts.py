"""Reading and editing drafts (kind ``restapi``), and what every handler shares: the clock,
AWS's "not found" messages, pagination and request-body fields.

A draft is one JSON document per API (``("", api id)``), in the shape described in
``docs/management.md`` (and shared with the OpenAPI import): ``{"restApi", "resources",
"authorizers", "policyMode", "models", "requestValidators", "gatewayResponses"}``. A draft written
before models existed gets API Gateway's default models when it is loaded, with ids derived from
the API's id (the same on every read until an edit stores them).

An edit reads, changes and writes a draft in **one store transaction** (:func:`edit`), so two
concurrent edits of one API never lose each other's changes: the store serialises writers.
"""

from __future__ import annotations

import hashlib
import string
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from iamgate.management.core import ApiError, Call, bad_request, not_found
from iamgate.management.ids import new_id
from iamgate.store.base import Doc, Transaction

__all__ = [
    "DEFAULT_MODELS",
    "KIND",
    "api_not_found",
    "default_models",
    "each_method",
    "edit",
    "find_resource",
    "is_default_model",
    "load",
    "now",
    "optional_bool",
    "optional_str",
    "page",
    "read",
    "stored_page",
    "string_list",
    "string_map",
]

# API Gateway's models on every new REST API: (name, description, schema)
DEFAULT_MODELS = (
    (
        "Empty",
        "This is a default empty schema model",
        '{\n  "$schema": "http://json-schema.org/draft-04/schema#",\n  "title" : "Empty Schema",\n'
        '  "type" : "object"\n}',
    ),
    (
        "Error",
        "This is a default error schema model",
        '{\n  "$schema" : "http://json-schema.org/draft-04/schema#",\n  "title" : "Error Schema",\n'
        '  "type" : "object",\n  "properties" : {\n    "message" : { "type" : "string" }\n  }\n}',
    ),
)

T = TypeVar("T")
KIND = "restapi"
_ID_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_LIMIT = 25  # API Gateway's page size
MAX_LIMIT = 500


def now() -> int:
    """createdDate / lastUpdatedDate: epoch seconds (botocore reads numbers as timestamps)."""
    return int(time.time())


def default_models(taken: set[str] | None = None, *, seed: str | None = None) -> dict[str, Doc]:
    """API Gateway's ``Empty`` and ``Error`` models, with fresh ids (none of ``taken``); with
    ``seed`` (an API id) the ids are derived from it, the same on every call."""
    out: dict[str, Doc] = {}
    used = set(taken or ())
    for name, description, schema in DEFAULT_MODELS:
        mid = _derived_id(f"{seed}/{name}") if seed is not None else new_id("model")
        while mid in used:
            mid = new_id("model")
        used.add(mid)
        out[mid] = {
            "id": mid,
            "name": name,
            "description": description,
            "schema": schema,
            "contentType": "application/json",
        }
    return out


def is_default_model(model: Doc) -> bool:
    return any(
        model.get("name") == name and model.get("schema") == schema and model.get("description") == text
        for name, text, schema in DEFAULT_MODELS
    )


def _derived_id(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:6])


def api_not_found(call: Call, api_id: str) -> ApiError:
    account = call.gateway.config().settings.account_id
    return not_found(f"Invalid API identifier specified {account}:{api_id}")


def load(tx: Transaction, call: Call, api_id: str) -> Doc:
    draft = tx.get(KIND, "", api_id)
    if draft is None:
        raise api_not_found(call, api_id)
    if "models" not in draft:  # a draft of an earlier iamgate: API Gateway's default models, fixed ids
        draft["models"] = default_models(seed=api_id)
    return draft


async def read(call: Call, api_id: str, fn: Callable[[Transaction, Doc], T]) -> T:
    """``fn(tx, draft)`` in a transaction that writes nothing; NotFound for an unknown API."""

    def run() -> T:
        with call.store.transaction() as tx:
            return fn(tx, load(tx, call, api_id))

    return await call.in_store(run)


async def edit(call: Call, api_id: str, fn: Callable[[Transaction, Doc], T]) -> T:
    """``fn(tx, draft)`` may change the draft in place; it is written back in the same
    transaction (nothing is written when ``fn`` raises)."""

    def run() -> T:
        with call.store.transaction() as tx:
            draft = load(tx, call, api_id)
            result = fn(tx, draft)
            tx.put(KIND, "", api_id, draft)
            return result

    return await call.in_store(run)


def _limit(call: Call) -> int:
    raw_limit = call.arg("limit")
    if raw_limit is None:
        return DEFAULT_LIMIT
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise bad_request(f"Invalid limit {raw_limit!r}: a number from 1 to {MAX_LIMIT}")
    return int(raw_limit)


def page(call: Call, items: list[Doc], key: str = "id", field: str = "item") -> dict[str, Any]:
    """One page of ``items`` (already in their final order) as ``{"item": [...], "position"}``
    (``item`` is the wire name of botocore's ``items``): ``limit`` (1..500, default 25) and
    ``position`` (the opaque token of the previous page: the key of the first item of this one)
    from the query."""
    limit = _limit(call)
    start = 0
    position = call.arg("position")
    if position:
        keys = [str(item.get(key, "")) for item in items]
        if position in keys:
            start = keys.index(position)
        else:  # the item the token names is gone: go on after where it would be (lists sorted by key)
            start = next((i for i, k in enumerate(keys) if k > position), len(items))
    chunk = items[start : start + limit]
    out: dict[str, Any] = {field: chunk}
    if start + limit < len(items):
        out["position"] = str(items[start + limit].get(key, ""))
    return out


async def stored_page(
    call: Call, kind: str, api_id: str, shape: Callable[[Doc], Doc], field: str = "item"
) -> dict[str, Any]:
    """One page of the objects of ``kind`` and ``api_id``, ordered by id, as :func:`page`
    answers it (the same ``limit`` and ``position``), reading only that page from the store:
    a list of a thousand APIs costs one page, not a thousand documents."""
    limit = _limit(call)
    position = call.arg("position") or ""

    def run() -> list[tuple[str, Doc]]:
        with call.store.transaction() as tx:
            return tx.page(kind, api_id, position, limit + 1)

    rows = await call.in_store(run)
    out: dict[str, Any] = {field: [shape(doc) for _, doc in rows[:limit]]}
    if len(rows) > limit:
        out["position"] = rows[limit][0]
    return out


def optional_str(body: dict[str, Any], name: str, where: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{where}: '{name}' must be a string, not {type(value).__name__}")
    return value


def optional_bool(body: dict[str, Any], name: str, where: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_request(f"{where}: '{name}' must be true or false, not {value!r}")
    return value


def string_list(body: dict[str, Any], name: str, where: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{where}: '{name}' must be a list of strings")
    return list(value)


def string_map(body: dict[str, Any], name: str, where: str, values: type = str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, values) and not (values is not bool and isinstance(v, bool))
        for k, v in value.items()
    ):
        kind = "true/false" if values is bool else "strings"
        raise bad_request(f"{where}: '{name}' must be a map of strings to {kind}")
    return dict(value)


def each_method(draft: Doc) -> Iterator[tuple[str, str, Doc]]:
    """(resource path, verb, method) of every method of the draft, by path then verb."""
    for resource in sorted(draft["resources"].values(), key=lambda r: r["path"]):
        for verb, method in sorted((resource.get("resourceMethods") or {}).items()):
            yield resource["path"], verb, method


def find_resource(draft: Doc, resource_id: str) -> Doc:
    """A resource of the draft; NotFound with AWS's message otherwise."""
    resource = draft["resources"].get(resource_id)
    if resource is None:
        raise not_found("Invalid Resource identifier specified")
    return resource  # type: ignore[no-any-return]
