"""Resources: ``GetResources``, ``GetResource``, ``CreateResource``, ``UpdateResource`` and
``DeleteResource``.

A resource is one path segment under its parent: literal text, ``{param}`` or, as the last
segment, ``{greedy+}``. As on API Gateway: one variable path part among the children of a
resource, no children under a greedy one, no two children with one name, and the root (``/``)
cannot be deleted or moved. Deleting a resource deletes everything under it.

``GetResources`` lists every resource with ``resourceMethods`` as ``{"GET": {}}``; with
``embed=methods`` the methods come whole (their integrations included), as ``GetResource``
always gives them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from iamgate.management.core import Call, Reply, Route, bad_request, conflict
from iamgate.management.drafts import edit, find_resource, optional_str, page, read
from iamgate.management.ids import new_id
from iamgate.management.patch import invalid_path, operations
from iamgate.management.shapes import method_shape
from iamgate.routing.tree import TemplateError, parse_template
from iamgate.store.base import Doc, Transaction

__all__ = ["ROUTES", "check_path_part", "child_path", "resource_shape"]

_PATH_PART = re.compile(r"[A-Za-z0-9._:-]+|\{[A-Za-z0-9._-]+\+?\}")
PATH_PART_RULE = (
    "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an "
    "optional plus sign before the closing brace."
)


def resource_shape(resource: Doc, *, embed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {k: resource[k] for k in ("id", "parentId", "pathPart", "path") if k in resource}
    methods = resource.get("resourceMethods") or {}
    if methods:
        out["resourceMethods"] = {
            verb: (method_shape(m) if embed else {}) for verb, m in sorted(methods.items())
        }
    return out


def child_path(parent_path: str, part: str) -> str:
    return f"/{part}" if parent_path == "/" else f"{parent_path}/{part}"


def _variable(part: str) -> bool:
    return part.startswith("{")


def check_path_part(draft: Doc, parent: Doc, part: str, moving: str | None = None) -> None:
    """Refuse ``part`` as a new child of ``parent`` (``moving``: the id of a resource that is
    renamed or moved there, which does not count as its own sibling)."""
    if not _PATH_PART.fullmatch(part):
        raise bad_request(f"{PATH_PART_RULE} Got: '{part}'")
    if parent.get("pathPart", "").endswith("+}"):
        raise bad_request(
            f"Cannot create a child of a resource with a greedy path variable: {parent['pathPart']}"
        )
    try:
        parse_template(child_path(parent["path"], part))
    except TemplateError as exc:
        raise bad_request(f"Invalid resource path {child_path(parent['path'], part)}: {exc}") from None
    for sibling in draft["resources"].values():
        if sibling.get("parentId") != parent["id"] or sibling["id"] == moving:
            continue
        if sibling["pathPart"] == part:
            raise conflict(f"Another resource with the same parent already has this name: {part}")
        if _variable(part) and _variable(sibling["pathPart"]):
            raise bad_request(
                f"A sibling ({sibling['pathPart']}) of this resource already has a variable path part -- "
                "only one is allowed"
            )


async def get_resources(call: Call) -> Reply:
    embed = "methods" in ",".join(call.query.get("embed", [])).split(",")

    def shapes(tx: Transaction, draft: Doc) -> list[dict[str, Any]]:
        resources = sorted(draft["resources"].values(), key=lambda r: r["path"])
        return [resource_shape(r, embed=embed) for r in resources]

    items = await read(call, call.params["restapi_id"], shapes)
    return Reply(200, page(call, items, key="path"))


async def get_resource(call: Call) -> Reply:
    rid = call.params["resource_id"]
    shape = await read(
        call, call.params["restapi_id"], lambda tx, d: resource_shape(find_resource(d, rid), embed=True)
    )
    return Reply(200, shape)


async def create_resource(call: Call) -> Reply:
    body = call.json()
    part = optional_str(body, "pathPart", "CreateResource")
    if not part:
        raise bad_request("CreateResource: 'pathPart' is required")

    def add(tx: Transaction, draft: Doc) -> dict[str, Any]:
        parent = find_resource(draft, call.params["parent_id"])
        check_path_part(draft, parent, part)
        rid = new_id("resource")
        while rid in draft["resources"]:
            rid = new_id("resource")
        resource = {
            "id": rid,
            "parentId": parent["id"],
            "pathPart": part,
            "path": child_path(parent["path"], part),
            "resourceMethods": {},
        }
        draft["resources"][rid] = resource
        return resource_shape(resource, embed=False)

    return Reply(201, await edit(call, call.params["restapi_id"], add))


def _descendants(draft: Doc, rid: str) -> list[str]:
    children: dict[str, list[str]] = {}
    for r in draft["resources"].values():
        if "parentId" in r:
            children.setdefault(r["parentId"], []).append(r["id"])
    out, todo = [], [rid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _repath(draft: Doc, rid: str) -> None:
    """Recompute the paths of ``rid`` and everything under it, parents first."""
    resources = draft["resources"]
    for current in _descendants(draft, rid):
        r = resources[current]
        r["path"] = child_path(resources[r["parentId"]]["path"], r["pathPart"])


async def update_resource(call: Call) -> Reply:
    ops = operations(call.json())
    rid = call.params["resource_id"]

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        work = copy.deepcopy(draft)
        resource = find_resource(work, rid)
        for op in ops:
            if op.op != "replace" or op.path not in ("/pathPart", "/parentId"):
                if op.path in ("/pathPart", "/parentId"):
                    raise bad_request(
                        f"Invalid patch path  '{op.path}' specified for op '{op.op}'. "
                        "Please choose supported operations"
                    )
                raise invalid_path(op, ["/parentId", "/pathPart"])
            if "parentId" not in resource:
                raise bad_request("The root resource cannot be renamed or moved")
            value = op.need_value()
            if op.path == "/pathPart":
                check_path_part(work, work["resources"][resource["parentId"]], value, moving=rid)
                resource["pathPart"] = value
            else:
                parent = find_resource(work, value)
                if value in _descendants(work, rid):
                    raise bad_request("Resources cannot be cyclical.")
                check_path_part(work, parent, resource["pathPart"], moving=rid)
                resource["parentId"] = value
            _repath(work, rid)
        draft.clear()
        draft.update(work)
        return resource_shape(resource, embed=False)

    return Reply(200, await edit(call, call.params["restapi_id"], change))


async def delete_resource(call: Call) -> Reply:
    rid = call.params["resource_id"]

    def remove(tx: Transaction, draft: Doc) -> None:
        resource = find_resource(draft, rid)
        if "parentId" not in resource:
            raise bad_request("Cannot delete root resource")
        for current in _descendants(draft, rid):
            del draft["resources"][current]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(202)


ROUTES = [
    Route("GET", "/restapis/{restapi_id}/resources", get_resources),
    Route("GET", "/restapis/{restapi_id}/resources/{resource_id}", get_resource),
    Route("POST", "/restapis/{restapi_id}/resources/{parent_id}", create_resource),
    Route("PATCH", "/restapis/{restapi_id}/resources/{resource_id}", update_resource),
    Route("DELETE", "/restapis/{restapi_id}/resources/{resource_id}", delete_resource),
]
