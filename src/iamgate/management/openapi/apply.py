"""Applying a document to a draft: ``ImportRestApi`` (a new API) and ``PutRestApi``
(``mode=merge``, the default, or ``overwrite``).

The document is read (:mod:`.read`) and its policy checked by the policy engine, each problem at
its place in the document; its routes and authorizers are then put into the draft, each checked
with the rules of core's own operations (CreateResource, PutMethod, PutIntegration,
CreateAuthorizer). Errors refuse the request and nothing is stored; warnings are returned (or,
with ``failonwarnings=true``, refuse it too).
"""

from __future__ import annotations

import json
from typing import Any

from iamgate.management import access
from iamgate.management.authorizers import check_authorizer
from iamgate.management.core import ApiError, Call, Reply, Route, bad_request
from iamgate.management.drafts import KIND, api_not_found, each_method
from iamgate.management.ids import new_id
from iamgate.management.integrations import check_integration
from iamgate.management.methods import check_method
from iamgate.management.models import check_validator, default_models, is_default_model, schema_problem
from iamgate.management.openapi.document import Imported, Problems, fail
from iamgate.management.openapi.read import interpret, read_openapi
from iamgate.management.policies import POLICY_FIELD, store_policy
from iamgate.management.resources import check_path_part
from iamgate.management.restapis import new_draft, rest_api_shape
from iamgate.policy import ApiRef, prepare

__all__ = ["ROUTES", "import_rest_api", "policy_problems", "put_rest_api"]

_ENDPOINT_TYPES = ("EDGE", "REGIONAL", "PRIVATE")


def policy_problems(raw: Any, api: ApiRef, max_chars: int | None) -> list[tuple[str, str, bool]]:
    """Every problem in a policy as (JSON pointer inside the policy, message, is it an error),
    from the same engine and settings as :func:`iamgate.management.policies.store_policy` (which
    then stores it): so an import reports each problem at its place in the OpenAPI document.
    Warnings (a ``Resource`` no request can match...) are the import's warnings."""
    prepared = prepare(raw, api=api, max_chars=max_chars)
    problems = []
    for d in prepared.diagnostics:
        message = f"{d.code}: {d.message}"
        if isinstance(raw, str) and d.location.line is not None:
            message += f" (line {d.location.line}, column {d.location.column} of the policy text)"
        problems.append((d.location.pointer, message + (f" ({d.help})" if d.help else ""), d.is_error))
    return problems


def _ensure(draft: dict[str, Any], by_path: dict[str, str], path: str) -> dict[str, Any]:
    """The resource at ``path``, creating it and its missing parents (checked with core's rules
    for a new path part: ApiError when refused)."""
    resources: dict[str, Any] = draft["resources"]
    if path in by_path:
        found: dict[str, Any] = resources[by_path[path]]
        return found
    parent_path = path.rsplit("/", 1)[0] or "/"
    parent = _ensure(draft, by_path, parent_path)
    part = path.rsplit("/", 1)[1]
    check_path_part(draft, parent, part)
    rid = new_id("resource")
    while rid in resources:
        rid = new_id("resource")
    res = {"id": rid, "parentId": parent["id"], "pathPart": part, "path": path, "resourceMethods": {}}
    resources[rid] = res
    by_path[path] = rid
    return res


def _prefixes(path: str) -> set[str]:
    parts = [s for s in path.split("/") if s]
    return {"/" + "/".join(parts[: i + 1]) for i in range(len(parts))}


def _apply(draft: dict[str, Any], imported: Imported, p: Problems, *, overwrite: bool) -> None:
    """Put ``imported``'s routes and authorizers into ``draft`` (ids given here), each checked
    with the rules of core's own operations (CreateResource, PutMethod, PutIntegration,
    CreateAuthorizer); a refusal is an error at the place in the document that caused it."""
    resources: dict[str, Any] = draft.setdefault("resources", {})
    authorizers: dict[str, Any] = draft.setdefault("authorizers", {})
    by_name = {a["name"]: aid for aid, a in authorizers.items()}
    if overwrite:
        for aid in [a for name, a in by_name.items() if name not in imported.authorizers]:
            del authorizers[aid]
        by_name = {n: a for n, a in by_name.items() if n in imported.authorizers}
    for name, shape in imported.authorizers.items():
        aid = by_name.get(name) or new_id("authorizer")
        authorizers[aid] = {"id": aid, **shape}
        by_name[name] = aid
        try:
            check_authorizer(draft, authorizers[aid])
        except ApiError as exc:
            p.error(imported.pointers.get(("authorizer", name), ""), exc.message)
    validator_ids = _apply_validation(draft, imported, p, overwrite=overwrite)
    root_id = draft["restApi"]["rootResourceId"]
    if overwrite:
        # the old definition's resources that no imported path goes through are removed
        wanted = {"/"}.union(*(_prefixes(path) for path, _ in imported.methods))
        for rid in list(resources):
            if rid != root_id and resources[rid]["path"] not in wanted:
                del resources[rid]
        for res in resources.values():
            res["resourceMethods"] = {}
    by_path = {res["path"]: rid for rid, res in resources.items()}
    for (path, verb), method in sorted(imported.methods.items()):
        where = imported.pointers.get(("method", f"{path} {verb}"), "")
        m = json.loads(json.dumps(method))
        try:
            res = _ensure(draft, by_path, path)
            if m.get("authorizationType") == "__authorizer__":
                auth = authorizers[by_name[m["authorizerId"]]]
                m["authorizerId"] = auth["id"]
                m["authorizationType"] = (
                    "COGNITO_USER_POOLS" if auth["type"] == "COGNITO_USER_POOLS" else "CUSTOM"
                )
            if m.get("requestValidatorId") is not None:
                m["requestValidatorId"] = validator_ids[m["requestValidatorId"]]
            check_method(draft, m)
            integration = m.get("methodIntegration")
            if integration is not None:
                integration.setdefault("cacheNamespace", res["id"])
                integration.setdefault("cacheKeyParameters", [])
                check_integration(res, m, integration)
        except ApiError as exc:
            p.error(where, exc.message)
            continue
        res.setdefault("resourceMethods", {})[verb] = m


def _apply_validation(
    draft: dict[str, Any], imported: Imported, p: Problems, *, overwrite: bool
) -> dict[str, str]:
    """Put ``imported``'s gateway responses, models and request validators into ``draft`` (by
    type and name: ids of the draft's own are kept; ``overwrite``: what the document does not
    define goes, but API Gateway's ``Empty`` and ``Error`` models stay), each checked with the
    rules of core's own operations. The request validators' ids by name."""
    responses: dict[str, Any] = draft.setdefault("gatewayResponses", {})
    models: dict[str, Any] = draft.setdefault("models", {})
    validators: dict[str, Any] = draft.setdefault("requestValidators", {})
    if overwrite:
        responses.clear()
        validators.clear()
        for mid in [mid for mid, m in models.items() if not is_default_model(m)]:
            del models[mid]
    responses.update(json.loads(json.dumps(imported.gateway_responses)))
    model_ids = {m["name"]: mid for mid, m in models.items()}
    for name, shape in imported.models.items():
        mid = model_ids.get(name) or new_id("model")
        while mid in models and models[mid]["name"] != name:
            mid = new_id("model")
        models[mid] = {"id": mid, **shape}
        model_ids[name] = mid
    if overwrite:  # API Gateway's own models stay (or come back)
        for mid, model in default_models(set(models)).items():
            if model["name"] not in model_ids:
                models[mid] = model
                model_ids[model["name"]] = mid
    api_id = str(draft["restApi"]["id"])
    texts = {m["name"]: m.get("schema") or "{}" for m in models.values()}
    for name in imported.models:
        problem = schema_problem(texts[name], api_id, texts, own=name)
        if problem is not None:
            p.error(imported.pointers.get(("model", name), ""), f"Invalid model schema specified: {problem}")
    validator_ids = {v["name"]: vid for vid, v in validators.items()}
    for name, shape in imported.validators.items():
        vid = validator_ids.get(name) or new_id("requestvalidator")
        while vid in validators and validators[vid]["name"] != name:
            vid = new_id("requestvalidator")
        validators[vid] = {"id": vid, **shape}
        validator_ids[name] = vid
        try:
            check_validator(draft, validators[vid])
        except ApiError as exc:
            p.error(imported.pointers.get(("validator", name), ""), exc.message)
    return validator_ids


def _set_rest(draft: dict[str, Any], imported: Imported, *, overwrite: bool) -> None:
    rest = draft["restApi"]
    fields = (
        "name",
        "description",
        "version",
        "apiKeySource",
        "binaryMediaTypes",
        "disableExecuteApiEndpoint",
    )
    if overwrite:
        for key in ("description", "version", "policy"):
            rest.pop(key, None)
        rest["apiKeySource"] = "HEADER"
        rest["binaryMediaTypes"] = []
        rest["disableExecuteApiEndpoint"] = False
        draft.pop("policyMode", None)
    for key in fields:
        if key in imported.rest:
            rest[key] = imported.rest[key]
    if "vpcEndpointIds" in imported.rest:
        rest.setdefault("endpointConfiguration", {"types": ["EDGE"]})["vpcEndpointIds"] = imported.rest[
            "vpcEndpointIds"
        ]
    if "tags" in imported.rest:
        rest["tags"] = {**(rest.get("tags") or {}), **imported.rest["tags"]}
    if imported.policy_mode is not None:
        draft["policyMode"] = imported.policy_mode


def _flag(call: Call, name: str) -> bool:
    value = (call.arg(name) or "false").lower()
    if value not in ("true", "false"):
        raise bad_request(f"query parameter '{name}' must be true or false, not {call.arg(name)!r}")
    return value == "true"


def _read(call: Call, api_id: str) -> tuple[Imported, Problems]:
    """Read and interpret the body (BadRequest only when it cannot be read at all)."""
    base_path = (call.arg("basepath") or call.arg("basePath") or "ignore").lower()
    if base_path not in ("ignore", "prepend", "split"):
        raise bad_request(f"basepath must be ignore, prepend or split, not {base_path!r}")
    data, p = read_openapi(call.body)
    imported = interpret(data, p, base_path, api_id)
    settings = call.gateway.config().settings
    api = ApiRef(settings.region, settings.account_id, api_id)
    for (path, verb), method in imported.methods.items():  # iamgate's x-iamgate-policy
        own = method.get(POLICY_FIELD)
        if own is None:
            continue
        at = imported.pointers.get(("method", f"{path} {verb}"), "") + "/x-iamgate-policy"
        for pointer, message, error in policy_problems(own, api, settings.max_policy_chars):
            inner = pointer if isinstance(own, dict) else ""
            if error:
                p.error(at + inner, f"invalid policy: {message}")
            else:
                p.warn(at + inner, f"policy: {message}")
    if imported.policy is not None:
        for pointer, message, error in policy_problems(imported.policy, api, settings.max_policy_chars):
            inner = pointer if isinstance(imported.policy, dict) else ""
            if error:
                p.error(imported.policy_pointer + inner, f"invalid policy: {message}")
            else:
                p.warn(imported.policy_pointer + inner, f"policy: {message}")
    return imported, p


def _finish(call: Call, draft: dict[str, Any], imported: Imported, p: Problems) -> list[str]:
    """Refuse the import if it has errors (or warnings with failonwarnings=true); else store the
    policy as core stores it and return the warnings."""
    types = (draft["restApi"].get("endpointConfiguration") or {}).get("types") or ["EDGE"]
    if draft["restApi"].get("endpointConfiguration", {}).get("vpcEndpointIds") and types[0] != "PRIVATE":
        p.error(
            "/x-amazon-apigateway-endpoint-configuration/vpcEndpointIds",
            "vpcEndpointIds can only be given for a PRIVATE API "
            "(parameters endpointConfigurationTypes=PRIVATE)",
        )
    if p.errors:
        raise fail("Errors found during import", p.errors)
    if p.warnings and _flag(call, "failonwarnings"):
        raise fail("Warnings found during import (failonwarnings=true)", p.warnings)
    api_id = str(draft["restApi"]["id"])
    if imported.policy is not None:
        access.require("apigateway:UpdateRestApiPolicy", f"/restapis/{api_id}")
        draft["restApi"]["policy"] = store_policy(imported.policy, call.gateway.config().settings, api_id)
    for _, _, method in each_method(draft):  # methods' own policies, stored as the API's is
        own = method.get(POLICY_FIELD)
        if own is not None:
            method[POLICY_FIELD] = store_policy(own, call.gateway.config().settings, api_id)
    return p.warnings


def _types(call: Call) -> list[str] | None:
    raw = call.arg("endpointConfigurationTypes")
    if raw is None:
        return None
    if raw.upper() not in _ENDPOINT_TYPES:
        raise bad_request(f"endpointConfigurationTypes must be EDGE, REGIONAL or PRIVATE, not {raw!r}")
    return [raw.upper()]


def _rest_shape(draft: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    out = rest_api_shape(draft)
    if warnings:
        out["warnings"] = warnings
    return out


async def import_rest_api(call: Call) -> Reply:
    types = _types(call) or ["EDGE"]
    api_id = new_id("restapi")
    imported, p = _read(call, api_id)
    draft = new_draft(api_id, {"name": api_id, "endpointConfiguration": {"types": types}, "tags": {}})
    _set_rest(draft, imported, overwrite=True)
    _apply(draft, imported, p, overwrite=True)
    warnings = _finish(call, draft, imported, p)

    def write() -> None:
        with call.store.transaction() as tx:
            tx.insert(KIND, "", api_id, draft)

    await call.in_store(write)
    return Reply(201, _rest_shape(draft, warnings))


async def put_rest_api(call: Call) -> Reply:
    api_id = call.params["restapi_id"]
    mode = (call.arg("mode") or "merge").lower()
    if mode not in ("merge", "overwrite"):
        raise bad_request(f"mode must be merge or overwrite, not {call.arg('mode')!r}")
    types = _types(call)
    imported, p = _read(call, api_id)

    def write() -> tuple[dict[str, Any], list[str]]:
        with call.store.transaction() as tx:
            draft = tx.get(KIND, "", api_id)
            if draft is None:
                raise api_not_found(call, api_id)
            _set_rest(draft, imported, overwrite=mode == "overwrite")
            if types is not None:
                draft["restApi"].setdefault("endpointConfiguration", {})["types"] = types
            _apply(draft, imported, p, overwrite=mode == "overwrite")
            warnings = _finish(call, draft, imported, p)
            tx.put(KIND, "", api_id, draft)
            return draft, warnings

    draft, warnings = await call.in_store(write)
    return Reply(200, _rest_shape(draft, warnings))


ROUTES = [
    Route("POST", "/restapis?mode=import", import_rest_api),
    Route("PUT", "/restapis/{restapi_id}", put_rest_api),
]
