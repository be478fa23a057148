"""The API screen (``/console/apis/{api}``): the resource tree with its methods, the stages and
deployments, the usage plans that include the API; the diff of the draft against a deployed
stage; and the deploy action.

With a store everything is read through the management API's handlers as the signed-in caller
(:mod:`iamgate.console.calls`); a part the caller may not read is ``None`` (the page says so).
Without a store the screen shows the configuration being served, read-only.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from iamgate.config.model import GatewayConfig, HttpProxyIntegration
from iamgate.console.calls import all_items, call, draft_and_deployed, get, gone_is_empty, may
from iamgate.console.overview import date_text
from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.core import ApiError

__all__ = ["ApiScreen", "Diff", "MethodRow", "ResourceRow", "deploy", "read_api_screen", "read_diff"]


@dataclass(frozen=True, slots=True)
class MethodRow:
    verb: str
    authorization: str
    authorizer: str
    api_key_required: bool
    integration: str  # the type
    target: str  # the backend URI, the MOCK status
    own_policy: str  # "", "enforce" or "report": the method's own policy (iamgate's)


@dataclass(frozen=True, slots=True)
class ResourceRow:
    path: str
    depth: int
    methods: tuple[MethodRow, ...]


@dataclass(frozen=True, slots=True)
class StageRow:
    name: str
    deployment_id: str
    description: str
    own_policy: str


@dataclass(frozen=True, slots=True)
class PlanRow:
    id: str
    name: str
    stages: tuple[str, ...]
    throttle: str
    quota: str


@dataclass(frozen=True, slots=True)
class ApiScreen:
    id: str
    name: str
    description: str
    endpoint_type: str
    has_policy: bool
    policy_mode: str
    resources: tuple[ResourceRow, ...] | None  # None: the caller may not read them
    stages: tuple[StageRow, ...] | None
    deployments: tuple[tuple[str, str, str], ...] | None  # (id, created, description)
    plans: tuple[PlanRow, ...] | None
    may_deploy: bool


@dataclass(frozen=True, slots=True)
class Diff:
    stage: str
    deployment_id: str
    lines: tuple[tuple[str, str], ...]  # (kind: "add" | "del" | "hunk" | "same", text)
    changed: bool
    note: str = ""  # why there is nothing to compare


async def read_api_screen(
    config: GatewayConfig, management: ManagementApp | None, caller: access.Caller, api_id: str
) -> ApiScreen:
    """The screen for ``api_id``; ApiError (404, 403) when it does not exist or may not be read."""
    if management is None:
        return _from_config(config, caller, api_id)
    api = await get(management, caller, f"/restapis/{api_id}", {})
    base = f"/restapis/{api_id}"
    resources: tuple[ResourceRow, ...] | None = None
    if may(caller, f"{base}/resources"):
        items = await gone_is_empty(all_items(management, caller, f"{base}/resources", {"embed": "methods"}))
        authorizers = await _authorizer_names(management, caller, api_id)
        resources = _tree(items, authorizers)
    stages: tuple[StageRow, ...] | None = None
    if may(caller, f"{base}/stages"):
        body = await gone_is_empty(get(management, caller, f"{base}/stages", {}))
        stages = tuple(
            sorted(
                (
                    StageRow(
                        str(s.get("stageName", "")),
                        str(s.get("deploymentId", "")),
                        str(s.get("description", "")),
                        _mode(s),
                    )
                    for s in body.get("item", [])
                ),
                key=lambda s: s.name,
            )
        )
    deployments: tuple[tuple[str, str, str], ...] | None = None
    if may(caller, f"{base}/deployments"):
        found = await gone_is_empty(all_items(management, caller, f"{base}/deployments"))
        deployments = tuple(
            (str(d.get("id", "")), date_text(d.get("createdDate")), str(d.get("description", "")))
            for d in sorted(found or [], key=lambda d: d.get("createdDate") or 0, reverse=True)
        )
    plans: tuple[PlanRow, ...] | None = None
    if may(caller, "/usageplans"):
        plans = tuple(
            _plan(p, api_id)
            for p in await all_items(management, caller, "/usageplans")
            if any(s.get("apiId") == api_id for s in p.get("apiStages") or [])
        )
    endpoint = (api.get("endpointConfiguration") or {}).get("types") or [""]
    return ApiScreen(
        api_id,
        str(api.get("name", "")),
        str(api.get("description", "")),
        str(endpoint[0]),
        bool(api.get("policy")),
        str(api.get("policyMode") or "enforce"),
        resources,
        stages,
        deployments,
        plans,
        may(caller, f"{base}/deployments", "POST"),
    )


async def _authorizer_names(management: ManagementApp, caller: access.Caller, api_id: str) -> dict[str, str]:
    if not may(caller, f"/restapis/{api_id}/authorizers"):
        return {}
    body = await gone_is_empty(get(management, caller, f"/restapis/{api_id}/authorizers", {}))
    return {str(a.get("id")): str(a.get("name")) for a in body.get("item", [])}


def _mode(doc: dict[str, Any]) -> str:
    if not doc.get("x-iamgate-policy"):
        return ""
    return "report" if doc.get("x-iamgate-policyMode") == "report" else "enforce"


def _tree(items: list[dict[str, Any]], authorizers: dict[str, str]) -> tuple[ResourceRow, ...]:
    rows = []
    for item in sorted(items, key=lambda r: str(r.get("path", ""))):
        path = str(item.get("path", ""))
        methods = []
        for verb, m in sorted((item.get("resourceMethods") or {}).items()):
            integration = m.get("methodIntegration") or {}
            kind = str(integration.get("type", "none"))
            target = str(integration.get("uri", "")) if kind != "MOCK" else ""
            methods.append(
                MethodRow(
                    verb,
                    str(m.get("authorizationType", "NONE")),
                    authorizers.get(str(m.get("authorizerId", "")), ""),
                    bool(m.get("apiKeyRequired")),
                    kind,
                    target,
                    _mode(m),
                )
            )
        rows.append(ResourceRow(path, _depth(path), tuple(methods)))
    return tuple(rows)


def _depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


def _plan(plan: dict[str, Any], api_id: str) -> PlanRow:
    throttle = plan.get("throttle") or {}
    quota = plan.get("quota") or {}
    return PlanRow(
        str(plan.get("id", "")),
        str(plan.get("name", "")),
        tuple(sorted(str(s.get("stage")) for s in plan.get("apiStages") or [] if s.get("apiId") == api_id)),
        f"{throttle['rateLimit']}/s, burst {throttle['burstLimit']}" if "rateLimit" in throttle else "",
        f"{quota['limit']} per {quota.get('period', '').lower()}" if "limit" in quota else "",
    )


def _from_config(config: GatewayConfig, caller: access.Caller, api_id: str) -> ApiScreen:
    access.authorize(caller, "apigateway:GET", f"/restapis/{api_id}")
    entries = [a for a in config.apis if a.id == api_id]
    if not entries:
        raise ApiError(404, "NotFoundException", f"Invalid API identifier specified {api_id}")
    first = entries[0]
    resources: tuple[ResourceRow, ...] | None = None
    if may(caller, f"/restapis/{api_id}/resources"):
        by_path: dict[str, list[MethodRow]] = {}
        for route in first.routes:
            integration = route.integration
            target = integration.uri if isinstance(integration, HttpProxyIntegration) else ""
            kind = "HTTP_PROXY" if isinstance(integration, HttpProxyIntegration) else "MOCK"
            own = "" if route.policy is None else route.policy.mode
            row = MethodRow(
                route.method,
                route.authorization,
                route.authorizer or "",
                route.api_key_required,
                kind,
                target,
                own,
            )
            by_path.setdefault(route.path, []).append(row)
        resources = tuple(
            ResourceRow(path, _depth(path), tuple(sorted(rows, key=lambda r: r.verb)))
            for path, rows in sorted(by_path.items())
        )
    stages: tuple[StageRow, ...] | None = None
    if may(caller, f"/restapis/{api_id}/stages"):
        stages = tuple(
            StageRow(name, entry.deployment or "", "", "" if stage.policy is None else stage.policy.mode)
            for entry in entries
            for name, stage in sorted(entry.stages.items())
        )
    plans: tuple[PlanRow, ...] | None = None
    if may(caller, "/usageplans"):
        plans = tuple(
            PlanRow(
                p.id,
                p.name,
                tuple(sorted(s.stage for s in p.stages if s.api == api_id)),
                f"{p.throttle.rate}/s, burst {p.throttle.burst}" if p.throttle is not None else "",
                f"{p.quota.limit} per {p.quota.period.lower()}" if p.quota is not None else "",
            )
            for p in config.usage_plans
            if any(s.api == api_id for s in p.stages)
        )
    return ApiScreen(
        api_id,
        first.name,
        "",
        first.endpoint_type,
        first.policy is not None,
        first.policy_mode,
        resources,
        stages,
        None,
        plans,
        False,
    )


def _text(definition: dict[str, Any] | None) -> list[str]:
    if definition is None:
        return []
    return yaml.safe_dump(
        json.loads(json.dumps(definition)), sort_keys=True, default_flow_style=False, width=100
    ).splitlines()


async def read_diff(management: ManagementApp, caller: access.Caller, api_id: str, stage: str) -> Diff:
    """The draft against what ``stage`` serves, as a unified diff of the two definitions."""
    draft, deployed, deployment_id = await draft_and_deployed(management, caller, api_id, stage)
    if draft is None:
        note = "The draft cannot be deployed yet: it has no method, or a method without an integration."
        return Diff(stage, deployment_id, (), False, note)
    if deployed is None:
        return Diff(stage, deployment_id, (), True, f"Stage {stage} serves no deployment.")
    lines: list[tuple[str, str]] = []
    old, new = _text(deployed), _text(draft)
    for line in difflib.unified_diff(old, new, f"stage {stage}", "draft", lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = "hunk" if line.startswith("@@") else {"+": "add", "-": "del"}.get(line[:1], "same")
        lines.append((kind, line))
    return Diff(stage, deployment_id, tuple(lines), bool(lines))


async def deploy(
    management: ManagementApp, caller: access.Caller, api_id: str, stage: str, description: str
) -> str:
    """CreateDeployment to ``stage``: the new deployment's id (ApiError when refused)."""
    body: dict[str, Any] = {"stageName": stage}
    if description:
        body["description"] = description
    created = await call(management, caller, "POST", f"/restapis/{api_id}/deployments", body=body)
    return str(created.get("id", ""))
