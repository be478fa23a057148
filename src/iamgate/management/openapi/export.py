"""``GetExport``: the deployment a stage serves (as AWS exports it), as OpenAPI 3.0.1
(``oas30``) or Swagger 2.0 (``swagger``), in JSON or YAML, with AWS's extensions on request
(``integrations``, ``authorizers``, ``apigateway``: all of them).

The deployment definition goes through ``convert`` (definition -> draft shape), then the draft
shape is written as OpenAPI; the policy's own-API ARNs are written back as the
``execute-api:/`` shorthand so the export imports into any API.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from iamgate.management.convert import definition_to_draft
from iamgate.management.core import Call, Reply, Route, bad_request, not_found
from iamgate.management.drafts import KIND, api_not_found
from iamgate.management.models import DATA_KEYWORDS, is_default_model, referenced_models
from iamgate.management.openapi.document import POLICY_MODE
from iamgate.management.openapi.validation import GATEWAY_RESPONSES, VALIDATOR, VALIDATORS
from iamgate.management.policies import MODE_FIELD, POLICY_FIELD
from iamgate.policy import ApiRef
from iamgate.store.base import Doc

__all__ = ["ROUTES", "draft_to_openapi", "get_export"]

_MODEL_URL = re.compile(r"https://apigateway\.amazonaws\.com/restapis/([^/]+)/models/([^/#]+)(#.*)?")


def _map_resources(policy: Any, fn: Any) -> Any:
    out = json.loads(json.dumps(policy))
    statements = out.get("Statement") if isinstance(out, dict) else None
    for st in (
        statements if isinstance(statements, list) else [statements] if isinstance(statements, dict) else []
    ):
        for key in ("Resource", "NotResource"):
            value = st.get(key)
            if isinstance(value, str):
                st[key] = fn(value)
            elif isinstance(value, list):
                st[key] = [fn(v) if isinstance(v, str) else v for v in value]
    return out


def _shorthand(policy_text: str, api: ApiRef) -> Any:
    """The stored policy with this API's own ARNs written back as ``execute-api:/...``."""
    prefix = api.arn_prefix + "/"
    return _map_resources(
        json.loads(policy_text), lambda r: "execute-api:/" + r[len(prefix) :] if r.startswith(prefix) else r
    )


def _region_account(call: Call) -> tuple[str, str]:
    s = call.gateway.config().settings
    return s.region, s.account_id


def draft_to_openapi(
    draft: dict[str, Any], *, stage: str, kind: str, extensions: set[str], region: str, account: str
) -> dict[str, Any]:
    """A draft-shaped API as an OpenAPI 3.0.1 (``oas30``) or Swagger 2.0 (``swagger``) document.
    ``extensions``: ``integrations``, ``authorizers``, ``apigateway`` (all of AWS's extensions)."""
    rest = draft["restApi"]
    api_id = str(rest["id"])
    everything = "apigateway" in extensions
    with_integrations = everything or "integrations" in extensions
    with_authorizers = everything or "authorizers" in extensions
    oas3 = kind == "oas30"
    info: dict[str, Any] = {"title": rest.get("name") or api_id, "version": str(rest.get("version") or "1.0")}
    if rest.get("description"):
        info["description"] = rest["description"]
    doc: dict[str, Any] = {"openapi": "3.0.1"} if oas3 else {"swagger": "2.0"}
    doc["info"] = info
    host = f"{api_id}.execute-api.{region}.amazonaws.com"
    if oas3:
        doc["servers"] = [
            {"url": f"https://{host}/{{basePath}}", "variables": {"basePath": {"default": stage}}}
        ]
    else:
        doc |= {"host": host, "basePath": f"/{stage}", "schemes": ["https"]}
    authorizers = draft.get("authorizers") or {}
    validators = draft.get("requestValidators") or {}
    used: set[str] = set()
    schemes: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for res in sorted((draft.get("resources") or {}).values(), key=lambda r: str(r["path"])):
        methods = res.get("resourceMethods") or {}
        if not methods:
            continue
        item: dict[str, Any] = {}
        for verb, m in sorted(methods.items()):
            op: dict[str, Any] = {}
            if m.get("operationName"):
                op["operationId"] = m["operationName"]
            params = []
            for name, required in sorted((m.get("requestParameters") or {}).items()):
                pieces = name.split(".", 3)
                if len(pieces) != 4:
                    continue
                where = {"path": "path", "querystring": "query", "header": "header"}.get(pieces[2])
                if where is None:
                    continue
                param: dict[str, Any] = {
                    "name": pieces[3],
                    "in": where,
                    "required": bool(required) or where == "path",
                }
                param |= {"schema": {"type": "string"}} if oas3 else {"type": "string"}
                params.append(param)
            _request_body(op, m, params, oas3, used)
            if params:
                op["parameters"] = params
            if everything and m.get("requestValidatorId") in validators:
                op[VALIDATOR] = validators[m["requestValidatorId"]]["name"]
            responses: dict[str, Any] = {}
            for code, mr in sorted((m.get("methodResponses") or {}).items()):
                r: dict[str, Any] = {"description": f"{code} response"}
                headers = [
                    k.split(".", 3)[3] for k in (mr.get("responseParameters") or {}) if k.count(".") >= 3
                ]
                if headers:
                    r["headers"] = {
                        h: ({"schema": {"type": "string"}} if oas3 else {"type": "string"}) for h in headers
                    }
                _response_body(r, mr, oas3, used)
                responses[str(code)] = r
            op["responses"] = responses or {"default": {"description": "Default response"}}
            requirement: dict[str, list[str]] = {}
            if m.get("apiKeyRequired"):
                schemes["api_key"] = {"type": "apiKey", "name": "x-api-key", "in": "header"}
                requirement["api_key"] = []
            auth = m.get("authorizationType")
            if auth == "AWS_IAM":
                schemes["sigv4"] = {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
                requirement["sigv4"] = []
            elif auth in ("CUSTOM", "COGNITO_USER_POOLS") and m.get("authorizerId") in authorizers:
                a = authorizers[m["authorizerId"]]
                schemes[a["name"]] = _scheme(a, with_authorizers)
                requirement[a["name"]] = list(m.get("authorizationScopes") or [])
            if requirement:
                op["security"] = [requirement]
            integration = m.get("methodIntegration")
            if with_integrations and integration:
                op["x-amazon-apigateway-integration"] = _integration_out(integration)
            if m.get(POLICY_FIELD):  # iamgate's extension: the method's own policy
                op["x-iamgate-policy"] = _shorthand(m[POLICY_FIELD], ApiRef(region, account, api_id))
                if m.get(MODE_FIELD) == "report":
                    op["x-iamgate-policy-mode"] = "report"
            key = "x-amazon-apigateway-any-method" if verb == "ANY" else verb.lower()
            item[key] = op
        paths[str(res["path"])] = item
    doc["paths"] = paths
    definitions = _schemas(draft, used, oas3)
    if oas3 and (schemes or definitions):
        doc["components"] = {}
        if definitions:
            doc["components"]["schemas"] = definitions
        if schemes:
            doc["components"]["securitySchemes"] = schemes
    elif not oas3:
        if schemes:
            doc["securityDefinitions"] = schemes
        if definitions:
            doc["definitions"] = definitions
    if everything:
        if rest.get("policy"):
            doc["x-amazon-apigateway-policy"] = _shorthand(rest["policy"], ApiRef(region, account, api_id))
        doc["x-amazon-apigateway-api-key-source"] = rest.get("apiKeySource") or "HEADER"
        endpoint: dict[str, Any] = {}
        vpces = (rest.get("endpointConfiguration") or {}).get("vpcEndpointIds")
        if vpces:
            endpoint["vpcEndpointIds"] = vpces
        if rest.get("disableExecuteApiEndpoint"):
            endpoint["disableExecuteApiEndpoint"] = True
        if endpoint:
            doc["x-amazon-apigateway-endpoint-configuration"] = endpoint
        if rest.get("binaryMediaTypes"):
            doc["x-amazon-apigateway-binary-media-types"] = rest["binaryMediaTypes"]
        if draft.get("policyMode") == "report":
            doc[POLICY_MODE] = "report"
        if validators:
            doc[VALIDATORS] = {
                v["name"]: {
                    "validateRequestBody": bool(v.get("validateRequestBody")),
                    "validateRequestParameters": bool(v.get("validateRequestParameters")),
                }
                for v in sorted(validators.values(), key=lambda v: str(v["name"]))
            }
        responses_out = _gateway_responses(draft)
        if responses_out:
            doc[GATEWAY_RESPONSES] = responses_out
    return doc


def _ref(name: str, oas3: bool) -> dict[str, str]:
    return {"$ref": ("#/components/schemas/" if oas3 else "#/definitions/") + name}


def _request_body(
    op: dict[str, Any], method: dict[str, Any], params: list[dict[str, Any]], oas3: bool, used: set[str]
) -> None:
    """The method's request models as an OpenAPI 3 ``requestBody`` or a Swagger 2 body parameter."""
    models: dict[str, str] = method.get("requestModels") or {}
    if not models:
        return
    used.update(models.values())
    if oas3:
        content = {ct: {"schema": _ref(name, oas3)} for ct, name in sorted(models.items())}
        op["requestBody"] = {"content": content, "required": True}
        return
    op["consumes"] = sorted(models)
    name = models.get("application/json") or next(iter(sorted(models.items())))[1]
    params.append({"in": "body", "name": name, "required": True, "schema": _ref(name, oas3)})


def _response_body(out: dict[str, Any], response: dict[str, Any], oas3: bool, used: set[str]) -> None:
    models: dict[str, str] = response.get("responseModels") or {}
    if not models:
        return
    used.update(models.values())
    if oas3:
        out["content"] = {ct: {"schema": _ref(name, oas3)} for ct, name in sorted(models.items())}
    else:
        out["schema"] = _ref(models.get("application/json") or next(iter(sorted(models.items())))[1], oas3)


def _from_model_refs(node: Any, api_id: str, oas3: bool) -> Any:
    """A stored schema with its model URLs written back as references inside the document."""
    if isinstance(node, list):
        return [_from_model_refs(v, api_id, oas3) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        m = _MODEL_URL.fullmatch(value) if key == "$ref" and isinstance(value, str) else None
        if m is not None and m.group(1) == api_id:
            out[key] = _ref(m.group(2), oas3)["$ref"] + (m.group(3) or "#")[1:]
        else:
            out[key] = value if key in DATA_KEYWORDS else _from_model_refs(value, api_id, oas3)
    return out


def _schemas(draft: dict[str, Any], used: set[str], oas3: bool) -> dict[str, Any]:
    """The models the export shows: every one the API defined itself, and API Gateway's default
    ones (``Empty``, ``Error``) when a method or a model uses them."""
    api_id = str(draft["restApi"]["id"])
    by_name = {str(m["name"]): m for m in (draft.get("models") or {}).values()}
    wanted = {n for n, m in by_name.items() if not is_default_model(m)} | (used & set(by_name))
    todo = list(wanted)
    while todo:
        for name in referenced_models(by_name[todo.pop()].get("schema") or "", api_id):
            if name in by_name and name not in wanted:
                wanted.add(name)
                todo.append(name)
    out: dict[str, Any] = {}
    for name in sorted(wanted):
        try:
            schema = json.loads(by_name[name].get("schema") or "{}")
        except ValueError:
            continue
        out[name] = _from_model_refs(schema, api_id, oas3)
    return out


def _gateway_responses(draft: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, response in sorted((draft.get("gatewayResponses") or {}).items()):
        entry: dict[str, Any] = {}
        if response.get("statusCode"):
            entry["statusCode"] = str(response["statusCode"])
        for key in ("responseParameters", "responseTemplates"):
            if response.get(key):
                entry[key] = dict(sorted(response[key].items()))
        out[kind] = entry
    return out


def _scheme(a: dict[str, Any], with_authorizer: bool) -> dict[str, Any]:
    source = str(a.get("identitySource") or "")
    header = (
        source.split("method.request.header.", 1)[1]
        if source.startswith("method.request.header.") and "," not in source
        else "Unused"
    )
    out: dict[str, Any] = {"type": "apiKey", "name": header, "in": "header"}
    out["x-amazon-apigateway-authtype"] = a.get("authType") or (
        "cognito_user_pools" if a["type"] == "COGNITO_USER_POOLS" else "custom"
    )
    if with_authorizer:
        body: dict[str, Any] = {"type": str(a["type"]).lower()}
        for key in ("authorizerUri", "authorizerCredentials", "identityValidationExpression", "providerARNs"):
            if a.get(key):
                body[key] = a[key]
        if a["type"] == "REQUEST" and source:
            body["identitySource"] = source
        if a.get("authorizerResultTtlInSeconds") is not None:
            body["authorizerResultTtlInSeconds"] = a["authorizerResultTtlInSeconds"]
        out["x-amazon-apigateway-authorizer"] = body
    return out


def _integration_out(i: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": str(i["type"]).lower()}
    for key in (
        "httpMethod",
        "uri",
        "connectionType",
        "timeoutInMillis",
        "requestParameters",
        "requestTemplates",
        "cacheNamespace",
        "cacheKeyParameters",
    ):
        if i.get(key) not in (None, {}, []):
            out[key] = i[key]
    if i.get("passthroughBehavior"):
        out["passthroughBehavior"] = str(i["passthroughBehavior"]).lower()
    responses = {}
    for ir in (i.get("integrationResponses") or {}).values():
        r: dict[str, Any] = {"statusCode": str(ir["statusCode"])}
        for key in ("responseParameters", "responseTemplates"):
            if ir.get(key):
                r[key] = ir[key]
        responses[ir.get("selectionPattern") or "default"] = r
    if responses:
        out["responses"] = responses
    return out


async def get_export(call: Call) -> Reply:
    api_id, stage, kind = call.params["restapi_id"], call.params["stage_name"], call.params["export_type"]
    if kind not in ("oas30", "swagger"):
        raise bad_request(f"export type {kind!r} is not supported; oas30 or swagger")
    extensions = {e.strip().lower() for e in (call.arg("extensions") or "").split(",") if e.strip()}
    unknown = extensions - {"integrations", "authorizers", "apigateway"}
    if unknown:
        raise bad_request(
            f"extensions {', '.join(sorted(unknown))} not supported; integrations, authorizers, apigateway"
        )
    accept = (call.headers.get("accept") or "application/json").split(";")[0].strip().lower()
    if accept in ("", "*/*"):
        accept = "application/json"
    if accept not in ("application/json", "application/yaml"):
        raise bad_request(f"Accept must be application/json or application/yaml, not {accept!r}")
    region, account = _region_account(call)

    def read() -> dict[str, Any]:
        with call.store.transaction() as tx:
            draft = tx.get(KIND, "", api_id)
            if draft is None:
                raise api_not_found(call, api_id)
            st = tx.get("stage", api_id, stage)
            if st is None:
                raise not_found(
                    f"Invalid stage identifier specified: REST API '{api_id}' has no stage '{stage}'"
                )
            dep = tx.get("deployment", api_id, str(st.get("deploymentId") or ""))
            if dep is None:
                raise not_found(f"stage '{stage}' of REST API '{api_id}' serves no deployment")
            return _deployed_draft(call, draft, dep)

    deployed = await call.in_store(read)
    doc = draft_to_openapi(
        deployed, stage=stage, kind=kind, extensions=extensions, region=region, account=account
    )
    ext = "yaml" if accept == "application/yaml" else "json"
    body = (
        yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()
        if ext == "yaml"
        else json.dumps(doc, indent=2, ensure_ascii=False).encode()
    )
    name = f"{api_id}-{stage}-{kind}.{ext}"
    return Reply(200, body, [("Content-Disposition", f'attachment; filename="{name}"')], accept)


def _deployed_draft(call: Call, draft: Doc, deployment: Doc) -> dict[str, Any]:
    """The API as the deployment snapshotted it, in the draft's shape (ids kept from the draft)."""
    settings = call.gateway.config().settings
    definition = deployment.get("definition") or {}
    out = definition_to_draft(definition, str(draft["restApi"]["id"]), settings=settings, previous=draft)
    for key in ("version", "binaryMediaTypes", "disableExecuteApiEndpoint"):
        if draft["restApi"].get(key) is not None:
            out["restApi"].setdefault(key, draft["restApi"][key])
    vpces = (draft["restApi"].get("endpointConfiguration") or {}).get("vpcEndpointIds")
    if vpces:
        out["restApi"]["endpointConfiguration"]["vpcEndpointIds"] = vpces
    return out


ROUTES = [
    Route("GET", "/restapis/{restapi_id}/stages/{stage_name}/exports/{export_type}", get_export),
]
