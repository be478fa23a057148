"""Prepare once, evaluate many: read -> parse -> validate -> compile.

``prepare`` takes policy text (str or bytes) or already-decoded data (a dict from YAML) and
returns a :class:`Prepared`: the compiled policy when there is no error, the AST, and every
diagnostic. It never raises on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ._json import MAX_DEPTH, JsonNode, LineIndex, ReadResult, from_python, read_json
from .ast import Policy, PolicyKind
from .compile import ApiRef
from .diagnostics import Diagnostic, Location, Severity, has_errors
from .evaluate import CompiledPolicy
from .parse import parse
from .validate import validate

__all__ = ["DEFAULT_MAX_CHARS", "HARD_MAX_CHARS", "Prepared", "prepare", "read_document"]

DEFAULT_MAX_CHARS = 8192  # API Gateway's quota for a resource policy
HARD_MAX_CHARS = 1 << 20  # beyond this nothing is parsed at all, whatever the setting


@dataclass(frozen=True, slots=True)
class Prepared:
    policy: CompiledPolicy | None
    ast: Policy | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.policy is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)


def _error(code: str, message: str, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, Location(""), help)


def _decode(data: bytes) -> tuple[str | None, Diagnostic | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _error(
            "policy.read.invalid-utf8",
            f"the policy is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            "policies are UTF-8 JSON",
        )
    return text, None


def read_document(
    source: str | bytes | Mapping[str, object] | JsonNode,
    *,
    kind: PolicyKind = PolicyKind.RESOURCE,
    max_chars: int | None = DEFAULT_MAX_CHARS,
    strict: bool = False,
    lines: LineIndex | None = None,
    api: ApiRef | None = None,
    strict_aws: bool = False,
    aws_notes: bool = False,
) -> tuple[Policy | None, list[Diagnostic]]:
    """Read, parse and validate, without compiling. ``max_chars=None`` lifts the size limit;
    ``api``, the API the policy is attached to, lets validation report resources of others."""
    diags: list[Diagnostic] = []
    result: ReadResult
    if isinstance(source, bytes):
        text, problem = _decode(source)
        if problem is not None or text is None:
            return None, [problem] if problem else []
        source = text
    if isinstance(source, str):
        if source.startswith("\ufeff"):
            source = source[1:]
        size = len(source)
        if size > HARD_MAX_CHARS:
            return None, [
                _error(
                    "policy.read.too-large",
                    f"the policy has {size:,} characters; nothing over {HARD_MAX_CHARS:,} is read",
                )
            ]
        result = read_json(source, max_depth=MAX_DEPTH)
    elif isinstance(source, JsonNode):
        # a value inside a larger JSON text (a case file line): positions stay those of that text
        result = ReadResult(source, (), lines or LineIndex(None))
        size = len(json.dumps(source.to_python(), separators=(",", ":"), ensure_ascii=False))
    else:
        result = from_python(source, max_depth=MAX_DEPTH)
        size = None
        if result.root is not None:
            size = len(json.dumps(source, separators=(",", ":"), ensure_ascii=False))
    if size is not None and max_chars is not None and size > max_chars:
        diags.append(
            _error(
                "policy.read.too-large",
                f"the policy has {size:,} characters, more than the limit of {max_chars:,}",
                "API Gateway's quota is 8,192 characters; raise max_policy_chars to accept larger "
                "policies on iamgate",
            )
        )
    diags.extend(result.diagnostics)
    if result.root is None:
        return None, diags
    policy, problems = parse(result.root, result.lines, kind)
    diags.extend(problems)
    if policy is not None:
        diags.extend(validate(policy, strict=strict, api=api, strict_aws=strict_aws, aws_notes=aws_notes))
    return policy, diags


def prepare(
    source: str | bytes | Mapping[str, object] | JsonNode,
    *,
    api: ApiRef | None = None,
    kind: PolicyKind = PolicyKind.RESOURCE,
    max_chars: int | None = DEFAULT_MAX_CHARS,
    strict: bool = False,
    source_name: str | None = None,
    lines: LineIndex | None = None,
    strict_aws: bool = False,
    aws_notes: bool = False,
) -> Prepared:
    """Everything from text to a compiled policy. ``api`` expands ``execute-api:/`` shorthand;
    ``strict_aws`` refuses what AWS would not read the same way (iamgate's own condition keys)."""
    policy, diags = read_document(
        source,
        kind=kind,
        max_chars=max_chars,
        strict=strict,
        lines=lines,
        api=api,
        strict_aws=strict_aws,
        aws_notes=aws_notes,
    )
    if policy is not None and api is None and _uses_shorthand(policy):
        diags.append(
            Diagnostic(
                "policy.compile.shorthand-unexpanded",
                Severity.WARNING,
                "the policy uses the execute-api:/ shorthand but no API is known to expand it with; "
                "those resources match nothing",
                Location(""),
                "give the API (region, account, id), e.g. --api-id/--region/--account",
            )
        )
    if source_name is not None:
        diags = [d.with_source(source_name) for d in diags]
    compiled = None
    if policy is not None and not has_errors(diags):
        compiled = CompiledPolicy(policy, api)
    return Prepared(compiled, policy, tuple(diags))


def _uses_shorthand(policy: Policy) -> bool:
    return any(r.value.startswith("execute-api:/") for st in policy.statements for r in st.resources)
