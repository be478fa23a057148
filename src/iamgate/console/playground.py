"""The playground (``/console/playground``): a request described by hand, decided against an API's
draft or a deployed stage, explained, and turned into a policy test case.

The request is built as ``iamgate policy simulate`` builds one (:func:`iamgate.cases.simulated_request`):
the method ARN from the API, stage, method and path; ``aws:SourceIp``, the current time and
``aws:SecureTransport=true``; the principal's keys derived from its ARN; headers as iamgate's
``iamgate:RequestHeader/...`` keys. The API's resource policy decides it, with the route's and
the stage's own policies (iamgate's extension) when they have one; the caller's side (identity
policies, authorizers) is not part of it, as in the CLI. The explanation is the engine's trace,
rendered as ``iamgate policy simulate`` prints it. The case line is what ``iamgate policy test``
reads, with the decision just made as its expectation.

All of it is read through the management API as the signed-in caller (the draft as
``GetRestApi`` and ``GetStage`` would return it); nothing is stored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from iamgate.cases import method_arn, with_gateway_defaults
from iamgate.config.model import GatewayConfig
from iamgate.console.calls import draft_and_deployed, get
from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.core import ApiError
from iamgate.management.entries import api_definition, stage_entry
from iamgate.policy import ApiRef, Decision, Request, prepare
from iamgate.policy.decision import combine_policies
from iamgate.policy.explain import render_decision, summary
from iamgate.policy.extension_keys import extension_context
from iamgate.policy.names import HTTP_METHODS
from iamgate.routing.tree import ResourceTree, TemplateError

__all__ = ["Asked", "Outcome", "decide", "read_asked"]

MAX_HEADERS = 50


@dataclass(frozen=True, slots=True)
class Asked:
    api_id: str
    target: str  # "draft" or a stage name
    stage: str  # the stage in the method ARN
    method: str
    path: str
    source_ip: str
    principal: str
    headers: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return bool(self.api_id and self.method and self.path) and not self.problems


@dataclass(frozen=True, slots=True)
class Layer:
    label: str
    decision: Decision
    text: str  # the rendered explanation


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: str
    decided_by: str | None
    summary: str
    layers: tuple[Layer, ...]
    resource: str
    case_line: str
    note: str


def read_asked(query: dict[str, str]) -> Asked:
    """The request the form describes (its fields in the query string, so it can be bookmarked)."""
    problems: list[str] = []
    method = query.get("method", "GET").upper()
    if method not in HTTP_METHODS:
        problems.append(f"Method {method!r} is not one of {', '.join(HTTP_METHODS)}.")
    path = query.get("path", "")
    if path and (not path.startswith("/") or "?" in path or "#" in path or len(path) > 2048):
        problems.append("The path starts with / and has no query string or fragment.")
    stage = query.get("stage", "prod") or "prod"
    if not stage.replace("-", "").replace("_", "").isalnum() or len(stage) > 128:
        problems.append("A stage name is letters, digits, - and _.")
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(query.get("headers", "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            problems.append(f"Header line {number} is not 'Name: value'.")
            continue
        headers.append((name.strip(), value.strip()))
    if len(headers) > MAX_HEADERS:
        problems.append(f"At most {MAX_HEADERS} headers.")
    target = query.get("target", "draft") or "draft"
    return Asked(
        query.get("api", ""),
        target,
        stage,
        method,
        path,
        query.get("source_ip", "203.0.113.10").strip(),
        query.get("principal", "").strip(),
        tuple(headers),
        tuple(problems),
    )


def _route_policy(definition: dict[str, Any], method: str, path: str) -> tuple[str, Any] | None:
    """The route's own policy for this method and path (the routing tree's own matching)."""
    tree: ResourceTree[dict[str, Any]] = ResourceTree()
    for route in definition.get("routes") or []:
        try:
            tree.add(route["path"], route["method"], route)
        except (TemplateError, KeyError):
            continue
    segments = tuple(s for s in path.split("/") if s)
    found = tree.match(segments, method)
    if found is None or found.target is None or found.target.get("policy") is None:
        return None
    route = found.target
    return f"route:{route['method']} {route['path']}", route["policy"]


async def decide(
    config: GatewayConfig, management: ManagementApp | None, caller: access.Caller, asked: Asked
) -> Outcome:
    """The decision for ``asked`` against the draft or the stage it names."""
    definition, stage_policy, note = await _definition(config, management, caller, asked)
    settings = config.settings
    api = ApiRef(settings.region, settings.account_id, asked.api_id)
    context: dict[str, object] = {"aws:SourceIp": asked.source_ip} if asked.source_ip else {}
    context = with_gateway_defaults(context, time.time())
    headers: dict[str, object] = {}
    for name, value in asked.headers:  # a header given twice has several values
        prev = headers.get(name)
        headers[name] = value if prev is None else [*(prev if isinstance(prev, list) else [prev]), value]
    extra = extension_context((), headers=headers, stage=asked.stage, http_method=asked.method)
    context.update({k: list(v) if isinstance(v, tuple) else v for k, v in extra.items()})
    resource = method_arn(api, asked.stage, asked.method, asked.path)
    request = Request.build(asked.principal or None, "execute-api:Invoke", resource, context)
    layers: list[tuple[str, Any]] = []
    if definition.get("policy") is not None:
        layers.append(("api", definition["policy"]))
    if stage_policy is not None:
        layers.append((f"stage:{asked.stage}", stage_policy))
    own = _route_policy(definition, asked.method, asked.path)
    if own is not None:
        layers.append(own)
    if not layers:
        return Outcome(
            "Allow",
            None,
            "No resource policy: nothing here refuses the request.",
            (),
            request.resource,
            "",
            note,
        )
    decided: list[Layer] = []
    for label, raw in layers:
        prepared = prepare(json.dumps(raw), api=api, max_chars=None)
        if prepared.policy is None:
            raise ApiError(400, "BadRequestException", f"the {label} policy is not valid")
        decision = prepared.policy.evaluate(request, explain=True)
        decided.append(Layer(label, decision, render_decision(decision)))
    effect, decided_by = combine_policies([(x.label, x.decision) for x in decided])
    deciding = next((x.decision for x in decided if x.label == decided_by), decided[0].decision)
    case = _case_line(asked, layers, request, effect.value)
    return Outcome(effect.value, decided_by, summary(deciding), tuple(decided), request.resource, case, note)


async def _definition(
    config: GatewayConfig, management: ManagementApp | None, caller: access.Caller, asked: Asked
) -> tuple[dict[str, Any], Any, str]:
    """The API as a configuration entry (the draft's or the stage's deployment), the stage's own
    policy, and a note on what was used."""
    if management is None:
        access.authorize(caller, "apigateway:GET", f"/restapis/{asked.api_id}")
        entry = next((a for a in config.apis if a.id == asked.api_id and asked.stage in a.stages), None)
        entry = entry or next((a for a in config.apis if a.id == asked.api_id), None)
        if entry is None:
            raise ApiError(404, "NotFoundException", f"Invalid API identifier specified {asked.api_id}")
        stage = entry.stages.get(asked.stage)
        stage_policy = stage_entry(stage).get("policy") if stage is not None else None
        return api_definition(entry), stage_policy, "As served from the configuration file."
    stage_name = asked.stage if asked.target == "draft" else asked.target
    draft, deployed, deployment_id = await draft_and_deployed(management, caller, asked.api_id, stage_name)
    stage_policy = await _stage_policy(management, caller, asked.api_id, stage_name)
    if asked.target == "draft":
        if draft is None:
            raise ApiError(
                400, "BadRequestException", "The draft cannot be decided yet: a method has no integration."
            )
        return draft, stage_policy, "Against the draft (what the next deployment would serve)."
    if deployed is None:
        raise ApiError(404, "NotFoundException", f"Stage {stage_name} serves no deployment.")
    return deployed, stage_policy, f"Against stage {stage_name} (deployment {deployment_id})."


async def _stage_policy(management: ManagementApp, caller: access.Caller, api_id: str, stage: str) -> Any:
    found = await get(management, caller, f"/restapis/{api_id}/stages/{stage}", {})
    text = found.get("x-iamgate-policy")
    return json.loads(text) if isinstance(text, str) and text else None


def _case_line(asked: Asked, layers: list[tuple[str, Any]], request: Any, expect: str) -> str:
    """The request and policies as one line of a case file (``iamgate policy test``)."""
    case: dict[str, Any] = {"name": f"{asked.method} {asked.path} from {asked.source_ip or 'anywhere'}"}
    for label, raw in layers:
        key = "policy" if label == "api" else f"{label.split(':', 1)[0]}_policy"
        case[key] = raw
    if "policy" not in case:
        case["policy"] = {"Version": "2012-10-17", "Statement": []}
    shown: dict[str, Any] = {
        "principal": asked.principal or None,
        "action": "execute-api:Invoke",
        "resource": request.resource,
        "context": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in sorted(request.context.items())
            if not k.startswith("iamgate:")
        },
    }
    if asked.headers:
        shown["headers"] = dict(asked.headers)
    case["request"] = shown
    case["expect"] = expect
    case["why"] = "made in the iamgate console's playground"
    return json.dumps(case, separators=(", ", ": "), ensure_ascii=False)
