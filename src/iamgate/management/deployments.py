"""Deployments: ``CreateDeployment``, ``GetDeployments``, ``GetDeployment``,
``UpdateDeployment``, ``DeleteDeployment``.

``CreateDeployment`` snapshots the draft: it is converted to an API definition
(:func:`iamgate.management.convert.draft_to_definition`), validated exactly as the gateway
validates a configuration file (a one-API configuration with the gateway's settings, through
:func:`iamgate.config.load.parse_config`), and stored, immutable, as
``{"id", "description", "createdDate", "definition"}``. With ``stageName`` the stage is created or
pointed at the new deployment in the same transaction, so the gateway sees both at once or
neither. A definition the gateway would refuse is refused here with ``BadRequestException``
naming each problem by method and path. A deployment a stage serves cannot be deleted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from iamgate.config.load import parse_config
from iamgate.config.model import GatewaySettings
from iamgate.management.convert import draft_to_definition
from iamgate.management.core import Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import load, now, optional_str, page, string_map
from iamgate.management.ids import new_id
from iamgate.management.patch import invalid_path, operations
from iamgate.management.stages import check_stage_name, check_variables, config_of, new_stage
from iamgate.policy import Diagnostic
from iamgate.store.base import Doc, Transaction

__all__ = ["ROUTES", "api_summary", "definition_problems", "deployment_shape"]

PLACEHOLDER_STAGE = "deployment"
_POINTER = re.compile(r"/apis/0(?:/(routes|authorizers)/(\d+))?(.*)")


def _describe(pointer: str, definition: dict[str, Any]) -> str:
    m = _POINTER.fullmatch(pointer)
    if m is None:
        return pointer or "the API"
    kind, index, rest = m.group(1), m.group(2), m.group(3).lstrip("/")
    if kind == "routes" and index is not None and int(index) < len(definition.get("routes", [])):
        route = definition["routes"][int(index)]
        where = f"method {route['method']} {route['path']}"
    elif kind == "authorizers" and index is not None and int(index) < len(definition.get("authorizers", [])):
        where = f"authorizer {definition['authorizers'][int(index)]['name']}"
    else:
        where = "the API"
    return f"{where}{' (' + rest + ')' if rest else ''}"


def definition_problems(
    definition: dict[str, Any], settings: GatewaySettings, stages: dict[str, Any] | None = None
) -> list[str]:
    """Why the gateway would refuse to serve ``definition`` (with ``stages``), one sentence each;
    empty when it would serve it."""
    gateway: dict[str, Any] = {"region": settings.region, "account_id": settings.account_id}
    gateway["max_policy_chars"] = settings.max_policy_chars
    api = dict(definition)
    api["stages"] = stages or {PLACEHOLDER_STAGE: {}}
    config, diagnostics = parse_config(json.dumps({"gateway": gateway, "apis": [api]}), source="<deployment>")
    errors: list[Diagnostic] = [d for d in diagnostics if d.is_error]
    if config is not None and not errors:
        return []
    return [
        f"{_describe(d.location.pointer, definition)}: {d.message}" + (f" ({d.help})" if d.help else "")
        for d in errors
    ]


def api_summary(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for route in definition.get("routes", []):
        summary.setdefault(route["path"], {})[route["method"]] = {
            "authorizationType": route.get("authorization", "NONE"),
            "apiKeyRequired": bool(route.get("api_key_required", False)),
        }
    return summary


def deployment_shape(doc: Doc, *, summary: bool = False) -> dict[str, Any]:
    out = {"id": doc["id"], "createdDate": doc["createdDate"]}
    if doc.get("description"):
        out["description"] = doc["description"]
    if summary:
        out["apiSummary"] = api_summary(doc.get("definition") or {})
    return out


async def create_deployment(call: Call) -> Reply:
    api_id = call.params["restapi_id"]
    body = call.json()
    where = "CreateDeployment"
    stage = body.get("stageName")
    if stage is not None:
        check_stage_name(stage)
    variables = string_map(body, "variables", where)
    if variables:
        check_variables(variables)
        if stage is None:
            raise bad_request("CreateDeployment: 'variables' are a stage's; give 'stageName' too")
    if body.get("canarySettings"):
        raise bad_request("iamgate does not support canary deployments: leave 'canarySettings' out")
    description = optional_str(body, "description", where)
    stage_description = optional_str(body, "stageDescription", where)
    settings = call.gateway.config().settings

    def run() -> Doc:
        with call.store.transaction() as tx:
            draft = load(tx, call, api_id)
            definition = draft_to_definition(draft, settings)
            existing = tx.get("stage", api_id, stage) if stage else None
            stage_doc = None
            if stage:
                if existing is not None:
                    stage_doc = dict(existing)
                    if variables is not None:
                        stage_doc["variables"] = dict(variables)
                    stage_doc["lastUpdatedDate"] = now()
                else:
                    stage_doc = new_stage(stage, "", description=stage_description, variables=variables)
                stage_doc["config"] = config_of(stage_doc)
            problems = definition_problems(
                definition, settings, {stage: stage_doc["config"]} if stage and stage_doc else None
            )
            if problems:
                raise bad_request("The API cannot be deployed: " + "; ".join(problems))
            deployment_id = new_id("deployment")
            while tx.get("deployment", api_id, deployment_id) is not None:
                deployment_id = new_id("deployment")
            doc: Doc = {"id": deployment_id, "createdDate": now(), "definition": definition}
            if description:
                doc["description"] = description
            tx.insert("deployment", api_id, deployment_id, doc)
            if stage and stage_doc is not None:
                stage_doc["deploymentId"] = deployment_id
                tx.put("stage", api_id, stage, stage_doc)
            return doc

    return Reply(201, deployment_shape(await call.in_store(run)))


def _api(tx: Transaction, call: Call) -> str:
    api_id = call.params["restapi_id"]
    load(tx, call, api_id)
    return api_id


async def get_deployments(call: Call) -> Reply:
    def run() -> list[dict[str, Any]]:
        with call.store.transaction() as tx:
            api_id = _api(tx, call)
            return [deployment_shape(d) for _, _, d in tx.list("deployment", api_id)]

    return Reply(200, page(call, await call.in_store(run)))


def _find(tx: Transaction, call: Call) -> Doc:
    doc = tx.get("deployment", _api(tx, call), call.params["deployment_id"])
    if doc is None:
        raise not_found("Invalid Deployment identifier specified")
    return doc


async def get_deployment(call: Call) -> Reply:
    summary = "apisummary" in ",".join(call.query.get("embed", [])).lower().split(",")

    def run() -> Doc:
        with call.store.transaction() as tx:
            return _find(tx, call)

    return Reply(200, deployment_shape(await call.in_store(run), summary=summary))


async def update_deployment(call: Call) -> Reply:
    ops = operations(call.json())

    def run() -> Doc:
        with call.store.transaction() as tx:
            doc = dict(_find(tx, call))
            for op in ops:
                if op.path != "/description" or op.op != "replace":
                    raise invalid_path(op, ["/description"])
                if op.value:
                    doc["description"] = op.value
                else:
                    doc.pop("description", None)
            tx.put("deployment", call.params["restapi_id"], doc["id"], doc)
            return doc

    return Reply(200, deployment_shape(await call.in_store(run)))


async def delete_deployment(call: Call) -> Reply:
    def run() -> None:
        with call.store.transaction() as tx:
            doc = _find(tx, call)
            api_id = call.params["restapi_id"]
            if any(s.get("deploymentId") == doc["id"] for _, _, s in tx.list("stage", api_id)):
                raise bad_request("Active stages pointing to this deployment must be moved or deleted")
            tx.delete("deployment", api_id, doc["id"])

    await call.in_store(run)
    return Reply(202)


_BASE = "/restapis/{restapi_id}/deployments"
ROUTES = [
    Route("POST", _BASE, create_deployment),
    Route("GET", _BASE, get_deployments),
    Route("GET", _BASE + "/{deployment_id}", get_deployment),
    Route("PATCH", _BASE + "/{deployment_id}", update_deployment),
    Route("DELETE", _BASE + "/{deployment_id}", delete_deployment),
]
