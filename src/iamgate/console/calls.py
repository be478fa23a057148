"""The console's way into the management API: one operation, as the signed-in caller.

Every screen reads and changes through these functions, never through the store directly: the
operation is authorized for the caller first, exactly as a signed request would be
(:func:`iamgate.management.access.authorize`, action ``apigateway:<METHOD>`` on the path), then
routed and handled by the management API's own router and handler. The console is one more client
of the management API, not a second way in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.convert import draft_to_definition
from iamgate.management.core import ApiError, Call
from iamgate.management.drafts import read
from iamgate.management.router import Matched
from iamgate.store.base import Doc, Transaction

__all__ = ["PAGE", "all_items", "call", "draft_and_deployed", "get", "gone_is_empty", "may"]

PAGE = "500"  # the largest page the management API serves


def may(caller: access.Caller, path: str, method: str = "GET") -> bool:
    """Whether ``caller``'s identity policies allow ``apigateway:<method>`` on ``path``."""
    try:
        access.authorize(caller, f"apigateway:{method}", path)
    except ApiError:
        return False
    return True


async def call(
    management: ManagementApp,
    caller: access.Caller,
    method: str,
    path: str,
    query: Mapping[str, str] | None = None,
    body: object = None,
) -> Any:
    """One management operation by ``caller``: authorized, routed, handled; the reply's JSON body
    (``{}`` for an empty one). A refusal (an authorization or a validation error, a missing
    object) is the :class:`ApiError` the management API would answer."""
    access.authorize(caller, f"apigateway:{method}", path)
    raw = "/".join(_quote(part) for part in path.split("/"))
    params = {k: [v] for k, v in (query or {}).items()}
    found = management.router.match(method, raw, params)
    if not isinstance(found, Matched):
        raise ApiError(404, "NotFoundException", f"no management operation {method} {path}")
    request = Call(
        method=method,
        path=path,
        params=found.params,
        query=params,
        headers={"content-type": "application/json"} if body is not None else {},
        body=b"" if body is None else orjson.dumps(body),
        store=management.store,
        gateway=management.context,
        caller=caller.arn,
    )
    undo = access.serve_as(caller)
    try:
        reply = await found.route.handler(request)
    finally:
        undo()
    if reply.status >= 400:
        message = reply.body.get("message", "") if isinstance(reply.body, dict) else ""
        raise ApiError(reply.status, "ConsoleCallError", str(message))
    return reply.body if isinstance(reply.body, dict) else {}


def _quote(part: str) -> str:
    return quote(part, safe="")


async def get(management: ManagementApp, caller: access.Caller, path: str, query: Mapping[str, str]) -> Any:
    """One GET of the management API by ``caller``: its JSON body."""
    return await call(management, caller, "GET", path, query)


async def all_items(
    management: ManagementApp, caller: access.Caller, path: str, query: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every item of a paged list, following ``position``; ``query``: more parameters for each
    page (``embed=methods``)."""
    items: list[dict[str, Any]] = []
    asked = {**(query or {}), "limit": PAGE}
    for _ in range(1000):  # bounded: a position that never ends the list cannot loop forever
        body = await get(management, caller, path, asked)
        items.extend(body.get("item", []))
        position = body.get("position")
        if not position:
            break
        asked = {**asked, "position": position}
    return items


async def gone_is_empty(read: Awaitable[Any]) -> Any:
    """What ``read`` returns; an empty answer when the object was deleted since it was listed."""
    try:
        return await read
    except ApiError as exc:
        if exc.status != 404:
            raise
        return {}


async def draft_and_deployed(
    management: ManagementApp, caller: access.Caller, api_id: str, stage: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    """The API's draft and the deployment ``stage`` serves, each as a configuration entry (what
    a deployment stores), and that deployment's id; read as ``GetRestApi`` and ``GetStage`` would
    be, after the same authorization. A draft that cannot be deployed yet is None."""
    access.authorize(caller, "apigateway:GET", f"/restapis/{api_id}")
    access.authorize(caller, "apigateway:GET", f"/restapis/{api_id}/stages/{stage}")
    request = Call(
        method="GET",
        path=f"/restapis/{api_id}",
        params={"restapi_id": api_id},
        query={},
        headers={},
        body=b"",
        store=management.store,
        gateway=management.context,
        caller=caller.arn,
    )
    settings = management.context.config().settings

    def run(tx: Transaction, draft: Doc) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
        try:
            drafted: dict[str, Any] | None = draft_to_definition(draft, settings)
        except ApiError:
            drafted = None
        found = tx.get("stage", api_id, stage)
        if found is None:
            raise ApiError(404, "NotFoundException", f"Invalid stage identifier specified: {stage}")
        deployment_id = str(found.get("deploymentId") or "")
        deployment = tx.get("deployment", api_id, deployment_id) if deployment_id else None
        return drafted, (deployment or {}).get("definition"), deployment_id

    undo = access.serve_as(caller)
    try:
        return await read(request, api_id, run)
    finally:
        undo()
