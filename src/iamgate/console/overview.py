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
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import iamgate
from iamgate import _compiled
from iamgate.config.model import GatewayConfig
from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.core import ApiError, Call
from iamgate.management.router import Matched

__all__ = ["ApiRow", "DeploymentRow", "Overview", "StageRow", "read_overview", "store_kind"]

PAGE = "500"  # the largest page the management API serves


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


def _date(value: object) -> str:
    """A deployment's ``createdDate`` (epoch seconds on the wire) as UTC text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    return "" if value is None else str(value)


def _may(caller: access.Caller, path: str) -> bool:
    try:
        access.authorize(caller, "apigateway:GET", path)
    except ApiError:
        return False
    return True


async def _get(management: ManagementApp, caller: access.Caller, path: str, query: Mapping[str, str]) -> Any:
    """One GET of the management API by ``caller`` (authorized already), through its router and
    handler; the reply's JSON body."""
    raw = "/".join(quote(part, safe="") for part in path.split("/"))
    params = {k: [v] for k, v in query.items()}
    found = management.router.match("GET", raw, params)
    if not isinstance(found, Matched):
        raise ApiError(404, "NotFoundException", f"no management operation GET {path}")
    call = Call(
        method="GET",
        path=path,
        params=found.params,
        query=params,
        headers={},
        body=b"",
        store=management.store,
        gateway=management.context,
        caller=caller.arn,
    )
    undo = access.serve_as(caller)
    try:
        reply = await found.route.handler(call)
    finally:
        undo()
    if reply.status >= 400 or not isinstance(reply.body, dict):
        message = reply.body.get("message", "") if isinstance(reply.body, dict) else ""
        raise ApiError(reply.status if reply.status >= 400 else 500, "ConsoleReadError", str(message))
    return reply.body


async def _all(management: ManagementApp, caller: access.Caller, path: str) -> list[dict[str, Any]]:
    """Every item of a paged list, following ``position``."""
    items: list[dict[str, Any]] = []
    query = {"limit": PAGE}
    for _ in range(1000):  # bounded: a position that never ends the list cannot loop forever
        body = await _get(management, caller, path, query)
        items.extend(body.get("item", []))
        position = body.get("position")
        if not position:
            break
        query = {"limit": PAGE, "position": position}
    return items


async def _gone_is_empty(read: Awaitable[Any]) -> Any:
    """What ``read`` returns; an empty answer when the API was deleted since it was listed."""
    try:
        return await read
    except ApiError as exc:
        if exc.status != 404:
            raise
        return {}


async def _from_store(management: ManagementApp, caller: access.Caller) -> tuple[ApiRow, ...]:
    rows: list[ApiRow] = []
    for api in await _all(management, caller, "/restapis"):
        api_id = str(api.get("id", ""))
        stages: tuple[StageRow, ...] | None = None
        deployments: tuple[DeploymentRow, ...] | None = None
        if _may(caller, f"/restapis/{api_id}/stages"):
            body = await _gone_is_empty(_get(management, caller, f"/restapis/{api_id}/stages", {}))
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
        if _may(caller, f"/restapis/{api_id}/deployments"):
            deployments = tuple(
                DeploymentRow(
                    str(d.get("id", "")), str(d.get("description", "")), _date(d.get("createdDate"))
                )
                for d in (await _gone_is_empty(_all(management, caller, f"/restapis/{api_id}/deployments")))
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
        may_stages = _may(caller, f"/restapis/{api.id}/stages")
        stages = tuple(StageRow(name, api.deployment) for name in sorted(api.stages)) if may_stages else None
        known = by_id.get(api.id)
        if known is not None and known.stages is not None and stages is not None:
            stages = tuple(sorted((*known.stages, *stages), key=lambda s: s.name))
        by_id[api.id] = ApiRow(api.id, api.name, "", api.endpoint_type, stages, None)
    return tuple(by_id[k] for k in sorted(by_id))
