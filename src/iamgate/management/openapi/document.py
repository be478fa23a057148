"""The document being read: where each problem is (:class:`Problems`), local ``$ref``s,
scalar readers, and :class:`Imported`, what a document defines once read.

Problems are collected, not raised: **errors** make an import fail (400 listing every one),
**warnings** are what iamgate imports differently from AWS or not at all. Each is written as
``/json/pointer (line L, column C): message``, the place in the document that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iamgate.config._yaml import Positions
from iamgate.management.core import ApiError, bad_request

__all__ = ["POLICY_MODE", "VERBS", "Imported", "Problems", "fail", "resolve", "scalar_text", "str_map"]

# an operation's key in a path item -> the method's verb
VERBS = {"get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE", "options": "OPTIONS"}
VERBS |= {"head": "HEAD", "patch": "PATCH", "x-amazon-apigateway-any-method": "ANY"}
# iamgate's own top-level extension: the API's policy mode (enforce or report), read and exported
POLICY_MODE = "x-iamgate-policy-mode"


@dataclass(slots=True)
class Problems:
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


def fail(title: str, problems: list[str]) -> ApiError:
    return bad_request(f"{title}:\n\t" + "\n\t".join(problems))


def resolve(data: dict[str, Any], node: Any, ptr: str, p: Problems) -> tuple[Any, str]:
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


def scalar_text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def str_map(node: Any, ptr: str, p: Problems, what: str) -> dict[str, str] | None:
    if node is None:
        return None
    if not isinstance(node, dict) or not all(scalar_text(v) is not None for v in node.values()):
        p.error(ptr, f"{what} must be a map of names to strings")
        return None
    return {str(k): str(v) for k, v in node.items()}


@dataclass(slots=True)
class Imported:
    """What a document defines, before ids are given."""

    rest: dict[str, Any]  # RestApi fields the document sets
    methods: dict[tuple[str, str], dict[str, Any]]  # (path, verb) -> Method (authorizerId = NAME)
    authorizers: dict[str, dict[str, Any]]  # name -> Authorizer (no id)
    policy: Any = None  # the policy as written (object or text), or None
    policy_pointer: str = ""
    policy_mode: str | None = None
    # ("method", "PATH VERB") / ("authorizer", NAME) / ("model", NAME) / ("validator", NAME) /
    # ("gateway_response", TYPE) -> where the document defines it
    pointers: dict[tuple[str, str], str] = field(default_factory=dict)
    # name -> Model without id ({name, contentType, schema (JSON text, $refs to other models in
    # API Gateway's URL form), description}); a method's requestModels name them
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    # name -> RequestValidator without id; a method's requestValidatorId is a NAME here
    validators: dict[str, dict[str, Any]] = field(default_factory=dict)
    # response type -> the draft's gatewayResponses entry
    gateway_responses: dict[str, dict[str, Any]] = field(default_factory=dict)
