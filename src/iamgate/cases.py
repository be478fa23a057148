"""Decision cases: the JSON-lines format of ``tests/conformance`` (its README), run against the engine.

One case per line::

    {"name": ..., "policy": {...} | "json text", "request": {"principal": ARN | null,
     "action": ..., "resource": ARN, "context": {key: value | [values]}}, "expect": ..., "why": ...}

A request may also describe what iamgate's own condition keys are read from (``iamgate:...``,
docs/policy-semantics.md): ``headers``, ``query``, ``path_parameters``, ``authorizer_context``
(objects of a string or a list of strings), ``claims`` (the verified token's JSON object),
``client_cert`` (``subjectDN``, ``issuerDN``, ``serialNumber``, ``SAN``), ``api_key_id``,
``stage``, ``http_method``, ``resource_path``. A key also given in ``context`` keeps that value.

``stage_policy`` and ``route_policy`` (objects or JSON text) are a stage's and a route's own
policies (iamgate's extension): the case is decided by all of them together, as the gateway
does (each must allow; any explicit deny denies), and its result names the one that decided.

``policy_file`` (a path relative to the case file) may replace ``policy``. A policy written
with the ``execute-api:/`` shorthand expands with the API of the request's resource ARN (or the
API given on the command line). ``aws:PrincipalArn`` and ``aws:PrincipalAccount`` are derived
from the principal when absent. Object-form policies are read from the line itself, so a
duplicate key inside them is caught and every diagnostic points at the line and column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .policy import ApiRef, Decision, Diagnostic, Location, Request, Severity, prepare
from .policy._json import JsonNode, LineIndex, read_json
from .policy.decision import combine_policies
from .policy.extension_keys import extension_context

__all__ = [
    "DECISIONS",
    "Case",
    "CaseResult",
    "build_request",
    "read_cases",
    "run_case",
    "with_extension_keys",
]

DECISIONS = ("Allow", "ExplicitDeny", "ImplicitDeny", "Invalid")
OTHER_API = "policy.validate.other-api"  # left out when the API is only guessed from the request


@dataclass(frozen=True, slots=True)
class Case:
    line: int
    name: str | None
    policy: JsonNode | str | bytes | None
    request: dict[str, object] | None
    expect: str | None
    problems: tuple[Diagnostic, ...]  # problems of the case itself (not of its policy)
    policy_problems: tuple[Diagnostic, ...]  # duplicate keys inside an object-form policy
    lines: LineIndex | None = None
    policy_source: str | None = None  # the policy_file path, when the policy comes from one
    # a stage's and a route's own policies (iamgate's extension): ("stage" | "route", policy)
    scoped: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    decision: str
    result: Decision | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    explained: Decision | None = None
    policy: str | None = None  # with stage/route policies: the one that decided a denial

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.case.name,
            "decision": self.decision,
            "statements": [r.to_dict() for r in self.result.determining] if self.result else [],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }
        if self.case.scoped:
            out["policy"] = self.policy
        return out


def _problem(code: str, line: int, message: str, source: str | None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, Location("", line, 1), None, source)


def _on_line(d: Diagnostic, line: int, source: str | None) -> Diagnostic:
    loc = d.location
    return Diagnostic(d.code, d.severity, d.message, Location(loc.pointer, line, loc.column), d.help, source)


def read_cases(text: str, *, source: str | None = None, base: Path | None = None) -> Iterator[Case]:
    """Cases in input order. A line that is not a case still yields a :class:`Case` (with
    problems), so output stays aligned with input."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        result = read_json(raw)
        if result.root is None or result.root.kind != "object":
            message = result.diagnostics[0].message if result.diagnostics else "a case must be a JSON object"
            yield Case(
                number,
                None,
                None,
                None,
                None,
                (_problem("cases.invalid-line", number, f"not a case: {message}", source),),
                (),
            )
            continue
        members = {k: node for k, _, node in result.root.members()}
        shifted = [_on_line(d, number, source) for d in result.diagnostics]
        policy_problems = tuple(d for d in shifted if d.location.pointer.startswith("/policy/"))
        problems = [d for d in shifted if not d.location.pointer.startswith("/policy/")]
        name_node = members.get("name")
        name = str(name_node.value) if name_node is not None and name_node.kind == "string" else None
        expect_node = members.get("expect")
        expect = str(expect_node.value) if expect_node is not None and expect_node.kind == "string" else None
        policy: JsonNode | str | bytes | None = None
        policy_source: str | None = None
        if "policy" in members:
            node = members["policy"]
            policy = str(node.value) if node.kind == "string" else node
        elif "policy_file" in members and members["policy_file"].kind == "string":
            path = Path(str(members["policy_file"].value))
            if base is not None and not path.is_absolute():
                path = base / path
            policy_source = str(path)
            try:
                policy = path.read_bytes()
            except OSError as exc:
                problems.append(
                    _problem(
                        "cases.policy-file",
                        number,
                        f"cannot read policy_file {path}: {exc.strerror or exc}",
                        source,
                    )
                )
        else:
            problems.append(
                _problem(
                    "cases.missing-policy", number, "the case has neither policy nor policy_file", source
                )
            )
        scoped: list[tuple[str, object]] = []
        for label in ("stage", "route"):
            given = members.get(f"{label}_policy")
            if given is None:
                continue
            if given.kind in ("object", "string"):
                scoped.append((label, given.to_python()))
            else:
                problems.append(
                    _problem(
                        "cases.invalid-policy",
                        number,
                        f"{label}_policy must be a policy (an object or JSON text)",
                        source,
                    )
                )
        request: dict[str, object] | None = None
        if "request" in members:
            raw_request = members["request"].to_python()
            if isinstance(raw_request, dict):
                request = raw_request
            else:
                problems.append(
                    _problem("cases.invalid-request", number, "request must be an object", source)
                )
        if expect is not None and expect not in DECISIONS:
            problems.append(
                _problem(
                    "cases.invalid-expect",
                    number,
                    f"expect '{expect}' is not one of {', '.join(DECISIONS)}",
                    source,
                )
            )
        yield Case(
            number,
            name,
            policy,
            request,
            expect,
            tuple(problems),
            policy_problems,
            result.lines,
            policy_source,
            tuple(scoped),
        )


def build_request(raw: dict[str, object]) -> tuple[Request | None, str | None]:
    """A :class:`Request` from a case's request object, or a message saying what is wrong."""
    principal = raw.get("principal")
    action = raw.get("action", "execute-api:Invoke")
    resource = raw.get("resource")
    context = raw.get("context") or {}
    if principal is not None and not isinstance(principal, str):
        return None, "request.principal must be a string or null"
    if not isinstance(action, str):
        return None, "request.action must be a string"
    if not isinstance(resource, str):
        return None, "request.resource must be a string"
    if not isinstance(context, dict):
        return None, "request.context must be an object"
    for key, value in context.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict | list) or v is None for v in values):
            return None, f"request.context[{key!r}] must be a string or a list of strings"
    problem = _extension_problem(raw)
    if problem is not None:
        return None, problem
    return Request.build(principal, action, resource, context), None


_NAMED_INPUTS = ("headers", "query", "path_parameters", "authorizer_context", "client_cert")
_TEXT_INPUTS = ("api_key_id", "stage", "http_method", "resource_path")


def _extension_problem(raw: dict[str, object]) -> str | None:
    for field in _NAMED_INPUTS:
        given = raw.get(field)
        if given is None:
            continue
        if not isinstance(given, dict):
            return f"request.{field} must be an object"
        for name, value in given.items():
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                return f"request.{field}[{name!r}] must be a string or a list of strings"
    claims = raw.get("claims")
    if claims is not None and not isinstance(claims, dict):
        return "request.claims must be an object (the token's claims)"
    for field in _TEXT_INPUTS:
        if raw.get(field) is not None and not isinstance(raw.get(field), str):
            return f"request.{field} must be a string"
    return None


def with_extension_keys(request: Request, raw: dict[str, object], keys: tuple[str, ...]) -> Request:
    """``request`` with iamgate's own condition keys read from the case's request parts (those
    its ``context`` does not already give); ``keys``: the policy's ``extension_keys``."""
    if not any(raw.get(f) is not None for f in (*_NAMED_INPUTS, *_TEXT_INPUTS, "claims")):
        return request

    def named(field: str) -> dict[str, object] | None:
        given = raw.get(field)
        return given if isinstance(given, dict) else None

    def text(field: str) -> str | None:
        given = raw.get(field)
        return given if isinstance(given, str) else None

    extra = extension_context(
        keys,
        headers=named("headers"),
        query=named("query"),
        path_parameters=named("path_parameters"),
        claims=named("claims"),
        authorizer_context=named("authorizer_context"),
        api_key_id=text("api_key_id"),
        client_cert=named("client_cert"),
        stage=text("stage"),
        http_method=text("http_method"),
        resource_path=text("resource_path"),
    )
    context: dict[str, object] = dict(request.context)
    for key, value in extra.items():
        context.setdefault(key, list(value) if isinstance(value, tuple) else value)
    return Request(request.principal, request.action, request.resource, context)


def run_case(
    case: Case,
    *,
    api: ApiRef | None = None,
    max_chars: int | None = 8192,
    explain: bool = False,
    source: str | None = None,
) -> CaseResult:
    """Decide one case. A case whose policy is invalid is ``Invalid`` with its diagnostics."""
    blocking = [d for d in case.problems if d.is_error and d.code != "policy.read.duplicate-key"]
    if case.policy is None or blocking:
        return CaseResult(case, "Invalid", None, case.problems)
    request: Request | None = None
    if case.request is not None:
        request, problem = build_request(case.request)
        if problem is not None:
            return CaseResult(
                case,
                "Invalid",
                None,
                (*case.problems, _problem("cases.invalid-request", case.line, problem, source)),
            )
    guessed = api is None
    if api is None and request is not None:
        api = ApiRef.from_arn(request.resource)
    policy = case.policy
    if isinstance(policy, JsonNode):
        prepared = prepare(policy, api=api, max_chars=max_chars, lines=case.lines)
        policy_diags = tuple(_on_line(d, case.line, source) for d in prepared.diagnostics)
    else:
        label = case.policy_source or f"{source or '<cases>'} line {case.line}, policy text"
        prepared = prepare(policy, api=api, max_chars=max_chars, source_name=label)
        policy_diags = prepared.diagnostics
    if guessed:
        # the API of the request's ARN stands in for the one the policy is attached to (for the
        # shorthand); a case may well ask about a request to another API, so resources naming
        # other APIs are not reported against that guess
        policy_diags = tuple(d for d in policy_diags if d.code != OTHER_API)
    diags = (*case.problems, *case.policy_problems, *policy_diags)
    if prepared.policy is None or case.policy_problems:
        return CaseResult(case, "Invalid", None, diags)
    if request is None:
        missing = _problem(
            "cases.missing-request", case.line, "the policy is valid but the case has no request", source
        )
        return CaseResult(case, "Invalid", None, (*diags, missing))
    assert case.request is not None  # a request was built from it
    request = with_extension_keys(request, case.request, prepared.policy.extension_keys)
    decision = prepared.policy.evaluate(request)
    explained = prepared.policy.evaluate(request, explain=True) if explain else None
    if not case.scoped:
        return CaseResult(case, decision.effect.value, decision, diags, explained)
    layers: list[tuple[str, Decision]] = [("api", decision)]
    for label, raw in case.scoped:
        text = raw if isinstance(raw, str) else json.dumps(raw)
        layer = prepare(text, api=api, max_chars=max_chars, source_name=f"{label}_policy")
        diags = (*diags, *(d for d in layer.diagnostics if not guessed or d.code != OTHER_API))
        if layer.policy is None:
            return CaseResult(case, "Invalid", None, diags)
        asked = with_extension_keys(request, case.request, layer.policy.extension_keys)
        layers.append((label, layer.policy.evaluate(asked)))
    effect, decided_by = combine_policies(layers)
    deciding = dict(layers)[decided_by] if decided_by is not None else decision
    return CaseResult(case, effect.value, deciding, diags, explained, decided_by)
