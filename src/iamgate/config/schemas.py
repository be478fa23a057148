"""Models as JSON Schema draft 4 (API Gateway's ``Model``): checking a schema and compiling it.

Pure functions of the models' data, shared by the configuration reader (a schema that is not
valid is a located error), the snapshot (each model used by a route is compiled once per
configuration version) and whoever else reads models (the management API, OpenAPI).

A model may refer to another model of the same API with API Gateway's URL form
``https://apigateway.amazonaws.com/restapis/{api_id}/models/{Name}`` (optionally followed by a
``#/...`` fragment), and to parts of itself with ``#/...``. Every model of the API is a resource
of one registry under its URL, so references resolve in the document they are written in, and
models may refer to each other in cycles (``Pet`` -> ``Owner`` -> ``Pet``). Nothing is ever
fetched: a reference to anything else is an error.

The library is ``jsonschema-rs`` (a Rust validator with Python bindings; see pyproject.toml and
docs/request-validation.md for why): its constructor checks the schema against the draft 4
meta-schema and reports where inside the schema the problem is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jsonschema_rs

from iamgate.policy.diagnostics import pointer_join

__all__ = [
    "MODEL_NAME",
    "SchemaProblem",
    "check_models",
    "compile_model",
    "model_url",
    "models_registry",
    "parse_schema",
]

MODEL_NAME: Final = re.compile(r"[A-Za-z0-9]{1,255}")  # API Gateway's model names
_MODEL_REF: Final = re.compile(r"https://apigateway\.amazonaws\.com/restapis/([^/#]+)/models/([^/#]*)(#.*)?")
# keywords whose values are data, not schemas: a "$ref" key inside them is not a reference
_DATA_KEYWORDS: Final = frozenset({"enum", "default", "example", "examples", "const"})


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """What is wrong with a model's schema: ``pointer`` is a JSON pointer inside the schema
    ("" for the whole schema), ``code`` a stable name (``invalid-schema``, ``unknown-model``,
    ``invalid-ref``)."""

    code: str
    pointer: str
    message: str


def model_url(api_id: str, name: str) -> str:
    """The URL a schema uses to refer to a model of its API (API Gateway's form)."""
    return f"https://apigateway.amazonaws.com/restapis/{api_id}/models/{name}"


def parse_schema(text: str) -> tuple[Any, str | None]:
    """A schema's JSON text as data, or (None, why it is not JSON)."""
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, str(exc)


def _refusing_retriever(uri: str) -> Any:
    raise ValueError(f"{uri} is not a model of this API (nothing is fetched)")


def models_registry(api_id: str, schemas: Mapping[str, Any]) -> jsonschema_rs.Registry:
    """One registry holding every model of an API (name -> parsed schema) under its URL."""
    return jsonschema_rs.Registry(
        [(model_url(api_id, name), schema) for name, schema in schemas.items()],
        draft=jsonschema_rs.Draft4,
        retriever=_refusing_retriever,
    )


def compile_model(
    api_id: str, name: str, schemas: Mapping[str, Any], registry: jsonschema_rs.Registry | None = None
) -> jsonschema_rs.Draft4Validator:
    """The draft 4 validator of model ``name`` (``schemas``: every model of the API, parsed).
    Raises ``jsonschema_rs.ValidationError`` (or ``ReferencingError``) when it cannot be built;
    :func:`schema_problems` says where."""
    if registry is None:
        registry = models_registry(api_id, schemas)
    return jsonschema_rs.Draft4Validator(
        schemas[name],
        registry=registry,
        retriever=_refusing_retriever,
        base_uri=model_url(api_id, name),
    )


def _walk_refs(node: Any, pointer: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(pointer of the ``$ref`` value, the reference) for every reference in a schema."""
    if depth > 200:
        return
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield pointer_join(pointer, "$ref"), ref
        for key, value in node.items():
            if key in _DATA_KEYWORDS or key == "$ref":
                continue
            if key in {"properties", "patternProperties", "definitions"}:
                if isinstance(value, dict):  # names -> schemas: a name may be "$ref"
                    for name, sub in value.items():
                        yield from _walk_refs(sub, pointer_join(pointer_join(pointer, key), name), depth + 1)
                continue
            yield from _walk_refs(value, pointer_join(pointer, key), depth + 1)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_refs(item, f"{pointer}/{i}", depth + 1)


def _resolve_pointer(document: Any, fragment: str) -> bool:
    """Whether the ``#...`` fragment (a JSON pointer) names a value of ``document``."""
    if fragment in ("", "#"):
        return True
    if not fragment.startswith("#/"):
        return False  # draft 4 ids as fragments ("#foo") are not supported
    node = document
    for raw in fragment[2:].split("/"):
        part = raw.replace("%25", "%").replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _ref_problem(api_id: str, ref: str, own: Any, schemas: Mapping[str, Any]) -> tuple[str, str] | None:
    """(code, message) when a reference does not resolve to a model of the API, else None."""
    if ref.startswith("#"):
        if not _resolve_pointer(own, ref):
            return "invalid-ref", f"$ref '{ref}' names nothing in this schema"
        return None
    m = _MODEL_REF.fullmatch(ref)
    if m is None:
        return (
            "invalid-ref",
            f"$ref '{ref}' is neither a part of this schema ('#/...') nor a model of this API "
            f"({model_url(api_id, '{Name}')})",
        )
    ref_api, name, fragment = m.group(1), m.group(2), m.group(3) or ""
    if ref_api != api_id:
        return "invalid-ref", f"$ref '{ref}' names a model of API '{ref_api}', not of this API ('{api_id}')"
    if name not in schemas:
        known = ", ".join(sorted(schemas)) or "none"
        return "unknown-model", f"$ref '{ref}' names model '{name}', which is not defined (defined: {known})"
    if not _resolve_pointer(schemas[name], fragment):
        return "invalid-ref", f"$ref '{ref}' names nothing in model '{name}'"
    return None


def _error_pointer(exc: Exception) -> str:
    path = getattr(exc, "instance_path", None) or []
    pointer = ""
    for part in path:
        pointer = pointer_join(pointer, part)
    return pointer


_META: list[jsonschema_rs.Draft4Validator] = []  # the draft 4 meta-schema, built on first use


def _meta_problem(schema: Any) -> SchemaProblem | None:
    """The first thing the draft 4 meta-schema refuses in ``schema`` (its references are not
    followed: each model is checked on its own), or None."""
    if not _META:
        _META.append(
            jsonschema_rs.Draft4Validator(
                {"$ref": "http://json-schema.org/draft-04/schema#"}, retriever=_refusing_retriever
            )
        )
    for error in _META[0].iter_errors(schema):
        pointer = _error_pointer(error)
        message = error.message
        if pointer.endswith("/type") or pointer == "/type":
            message = (
                f"{json.dumps(error.instance)} is not a type of JSON Schema (array, boolean, integer, "
                "null, number, object, string, or a list of them)"
            )
        return SchemaProblem("invalid-schema", pointer, f"not a valid JSON Schema (draft 4): {message}")
    return None


def check_models(api_id: str, schemas: Mapping[str, Any]) -> dict[str, list[SchemaProblem]]:
    """What is wrong with each model of an API (``schemas``: name -> parsed schema): its
    references (each located), a reference to a model that has problems itself, then what the
    draft 4 meta-schema refuses (the first problem, located inside the schema). A model without
    problems has an empty list: it compiles."""
    problems: dict[str, list[SchemaProblem]] = {name: [] for name in schemas}
    targets: dict[str, set[str]] = {name: set() for name in schemas}
    for name, own in schemas.items():
        if not isinstance(own, dict):
            kind = "a list" if isinstance(own, list) else type(own).__name__
            problems[name].append(
                SchemaProblem("invalid-schema", "", f"a schema must be a JSON object, not {kind}")
            )
            continue
        for pointer, ref in _walk_refs(own, ""):
            found = _ref_problem(api_id, ref, own, schemas)
            if found is not None:
                problems[name].append(SchemaProblem(found[0], pointer, found[1]))
            elif not ref.startswith("#"):
                m = _MODEL_REF.fullmatch(ref)
                if m is not None:
                    targets[name].add(m.group(2))
        if not problems[name]:
            meta = _meta_problem(own)
            if meta is not None:
                problems[name].append(meta)
    changed = True
    while changed:  # a model that refers to a model with problems cannot be compiled either
        changed = False
        for name, refs in targets.items():
            if problems[name]:
                continue
            broken = sorted(t for t in refs if problems.get(t))
            if broken:
                problems[name].append(
                    SchemaProblem(
                        "invalid-ref", "", f"it refers to model(s) {', '.join(broken)}, which have errors"
                    )
                )
                changed = True
    usable = {name: schemas[name] for name in schemas if not problems[name]}
    if not usable:
        return problems
    try:
        registry = models_registry(api_id, usable)
    except (jsonschema_rs.ReferencingError, ValueError) as exc:
        for name in usable:
            problems[name].append(
                SchemaProblem("invalid-schema", "", f"the models cannot be read together: {exc}")
            )
        return problems
    for name in usable:
        try:
            compile_model(api_id, name, usable, registry)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            message = getattr(exc, "message", None) or str(exc).split("\n", 1)[0]
            problems[name].append(
                SchemaProblem(
                    "invalid-schema", _error_pointer(exc), f"not a valid JSON Schema (draft 4): {message}"
                )
            )
    return problems
