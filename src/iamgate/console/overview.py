"""What the overview screen shows: the gateway (version, compiled or not, the store's kind) and
the APIs with their stages and deployments.

With a store, the APIs are read through the management API's own handlers (GetRestApis,
GetStages, GetDeployments), each authorized first for the signed-in caller exactly as a signed
request would be (:func:`iamgate.management.access.authorize`): the console is one more client of
the management API. Without a store (a YAML configuration only) they are read from the
configuration being served, with the same authorization on the same operations.

A part the caller may not read is ``None`` (the page says so): never its data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import iamgate
from iamgate import _compiled
from iamgate.config.model import GatewayConfig
from iamgate.console.calls import all_items, get, gone_is_empty, may
from iamgate.management import access
from iamgate.management.app import ManagementApp

__all__ = ["ApiRow", "DeploymentRow", "Overview", "StageRow", "date_text", "read_overview", "store_kind"]


@dataclass(frozen=True, slots=True)
class StageRow:
    name: str
    deployment_id: str | None
    description: str = ""


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    id: str
    description: str = ""
    created: str = ""


@dataclass(frozen=True, slots=True)
class ApiRow:
    id: str
    name: str
    description: str
    endpoint_type: str
    stages: tuple[StageRow, ...] | None  # None: the caller may not read them
    deployments: tuple[DeploymentRow, ...] | None  # None: may not read them (or no store)


@dataclass(frozen=True, slots=True)
class Overview:
    version: str
    compiled: str
    store: str | None  # the store's kind ("SQLite", "PostgreSQL"), never its URL
    read_only: bool
    apis: tuple[ApiRow, ...]


def store_kind(url: str | None) -> str | None:
    """The kind of store a URL names, without anything else of it (paths, users, passwords)."""
    if not url:
        return None
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        return "SQLite"
    if scheme.startswith("postgres"):
        return "PostgreSQL"
    return "other"


async def read_overview(
    config: GatewayConfig, management: ManagementApp | None, caller: access.Caller
) -> Overview:
    """The overview for ``caller``; :class:`ApiError` (403) when it may not list the APIs."""
    access.authorize(caller, "apigateway:GET", "/restapis")
    if management is not None:
        apis = await _from_store(management, caller)
    else:
        apis = _from_config(config, caller)
    return Overview(
        version=iamgate.__version__,
        compiled=_compiled.state(),
        store=store_kind(management.store.url if management is not None else config.store),
        read_only=management is None,
        apis=apis,
    )


def date_text(value: object) -> str:
    """A deployment's ``createdDate`` (epoch seconds on the wire) as UTC text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    return "" if value is None else str(value)


async def _from_store(management: ManagementApp, caller: access.Caller) -> tuple[ApiRow, ...]:
    rows: list[ApiRow] = []
    for api in await all_items(management, caller, "/restapis"):
        api_id = str(api.get("id", ""))
        stages: tuple[StageRow, ...] | None = None
        deployments: tuple[DeploymentRow, ...] | None = None
        if may(caller, f"/restapis/{api_id}/stages"):
            body = await gone_is_empty(get(management, caller, f"/restapis/{api_id}/stages", {}))
            stages = tuple(
                sorted(
                    (
                        StageRow(
                            str(s.get("stageName", "")), s.get("deploymentId"), str(s.get("description", ""))
                        )
                        for s in body.get("item", [])
                    ),
                    key=lambda s: s.name,
                )
            )
        if may(caller, f"/restapis/{api_id}/deployments"):
            deployments = tuple(
                DeploymentRow(
                    str(d.get("id", "")), str(d.get("description", "")), date_text(d.get("createdDate"))
                )
                for d in await gone_is_empty(all_items(management, caller, f"/restapis/{api_id}/deployments"))
            )
        endpoint = api.get("endpointConfiguration", {}).get("types", [""])
        rows.append(
            ApiRow(
                api_id,
                str(api.get("name", "")),
                str(api.get("description", "")),
                str(endpoint[0] if endpoint else ""),
                stages,
                deployments,
            )
        )
    return tuple(rows)


def _from_config(config: GatewayConfig, caller: access.Caller) -> tuple[ApiRow, ...]:
    """The APIs being served (a YAML configuration has no deployments: each API is served as
    written)."""
    by_id: dict[str, ApiRow] = {}
    for api in config.apis:
        may_stages = may(caller, f"/restapis/{api.id}/stages")
        stages = tuple(StageRow(name, api.deployment) for name in sorted(api.stages)) if may_stages else None
        known = by_id.get(api.id)
        if known is not None and known.stages is not None and stages is not None:
            stages = tuple(sorted((*known.stages, *stages), key=lambda s: s.name))
        by_id[api.id] = ApiRow(api.id, api.name, "", api.endpoint_type, stages, None)
    return tuple(by_id[k] for k in sorted(by_id))
