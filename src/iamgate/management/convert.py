"""Drafts (the management API's shape) to API definitions (a configuration file's ``apis``
entry without ``stages``) and back.

:func:`draft_to_definition` is what ``CreateDeployment`` snapshots: resources with methods become
``routes`` (path, method, authorization, authorizer by name, API key, scopes, integration),
authorizers become ``authorizers``, and the policy (as a JSON object), ``policyMode``, the
endpoint type and the API key source come along. A definition is canonical: defaults are left
out and lists are sorted, so equal drafts give byte-equal definitions.
:func:`definition_to_draft` is the reverse, used by ``iamgate apply``: every prefix of a route's
path becomes a resource, and resource and authorizer ids of an earlier draft are kept.

What a draft holds beyond API Gateway's shapes, under the key ``iamgate`` (never shown by the
API): a route's ``rate_limit`` (on the method) and authorizer settings API Gateway has no field
for (``function``, ``timeout``, ``issuer``, ``audiences``, ``jwks_url``, ``jwks_file``,
``algorithms``, ``token_use``, ``leeway``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from iamgate.config.model import GatewaySettings
from iamgate.management.authorizers import cognito_issuer, jwt_issuer
from iamgate.management.core import ApiError, bad_request
from iamgate.management.drafts import each_method, now
from iamgate.management.ids import new_id
from iamgate.management.integrations import mock_status
from iamgate.management.models import default_models, is_default_model, referenced_models
from iamgate.management.policies import MODE_FIELD, POLICY_FIELD, policy_object, store_policy
from iamgate.routing.tree import parse_template
from iamgate.store.base import Doc

__all__ = ["definition_to_draft", "draft_to_definition"]

DEFAULT_SOURCE = "method.request.header.Authorization"
_COGNITO = re.compile(r"https://cognito-idp\.([a-z0-9-]+)\.amazonaws\.com/([\w-]+_[0-9A-Za-z]+)")
_EXTENSION_KEYS = (
    "function",
    "timeout",
    "issuer",
    "audiences",
    "jwks_url",
    "jwks_file",
    "algorithms",
    "token_use",
    "leeway",
)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


# --- draft -> definition -------------------------------------------------------------------------
def _authorizer_entry(authorizer: Doc) -> dict[str, Any]:
    ext = authorizer.get("iamgate") or {}
    kind = authorizer["type"]
    entry: dict[str, Any] = {"name": authorizer["name"], "type": kind}
    source = authorizer.get("identitySource")
    ttl = authorizer.get("authorizerResultTtlInSeconds", 300)
    if kind in ("TOKEN", "REQUEST"):
        if ext.get("function"):
            entry["function"] = ext["function"]
        else:
            entry["url"] = authorizer.get("authorizerUri")
        if source and source != DEFAULT_SOURCE:
            entry["identity_source"] = source
        if authorizer.get("identityValidationExpression"):
            entry["identity_validation_expression"] = authorizer["identityValidationExpression"]
        if ttl != 300:
            entry["result_ttl"] = ttl
        if ext.get("timeout") is not None and ext["timeout"] != 10:
            entry["timeout"] = ext["timeout"]
        return entry
    if kind == "JWT":
        entry["issuer"] = jwt_issuer(authorizer)
        jwt = authorizer.get("jwtConfiguration") or {}
        audiences = ((jwt.get("issuers") or [{}])[0]).get("audiences")
        if audiences and ext.get("audiences") is None:
            entry["audiences"] = list(audiences)
        if jwt.get("defaultAlgorithms") and ext.get("algorithms") is None:
            entry["algorithms"] = list(jwt["defaultAlgorithms"])
    else:
        entry["issuer"] = ext.get("issuer") or cognito_issuer((authorizer.get("providerARNs") or [""])[0])
    for key in ("audiences", "jwks_url", "jwks_file", "algorithms", "token_use", "leeway"):
        if ext.get(key) is not None:
            entry[key] = ext[key]
    if source and source != DEFAULT_SOURCE:
        entry["identity_source"] = source
    if ttl != 300:
        entry["result_ttl"] = ttl
    return entry


def _mock_entry(integration: Doc) -> dict[str, Any]:
    status = mock_status(integration)
    responses: dict[str, Doc] = integration.get("integrationResponses") or {}
    chosen = None
    for _, response in sorted(responses.items()):
        pattern = response.get("selectionPattern")
        if pattern and re.fullmatch(pattern, str(status)):
            chosen = response
            break
    if chosen is None:
        chosen = next((r for _, r in sorted(responses.items()) if not r.get("selectionPattern")), None)
    entry: dict[str, Any] = {"type": "MOCK"}
    served = int(chosen["statusCode"]) if chosen else status
    if served != 200:
        entry["status"] = served
    if chosen:
        headers = {
            key[len("method.response.header.") :]: value[1:-1]
            for key, value in sorted((chosen.get("responseParameters") or {}).items())
            if key.startswith("method.response.header.") and len(value) >= 2 and value[0] == value[-1] == "'"
        }
        if headers:
            entry["headers"] = headers
        templates = chosen.get("responseTemplates") or {}
        body = templates.get("application/json", next(iter(templates.values()), None))
        if body:
            entry["body"] = body
    return entry


def _integration_entry(integration: Doc) -> dict[str, Any]:
    if integration.get("type") == "MOCK":
        return _mock_entry(integration)
    entry: dict[str, Any] = {"type": "HTTP_PROXY", "uri": integration.get("uri")}
    if integration.get("timeoutInMillis") is not None:
        entry["timeout"] = _number(integration["timeoutInMillis"] / 1000)
    headers = {
        target: source
        for target, source in sorted((integration.get("requestParameters") or {}).items())
        if target.startswith("integration.request.header.")
    }
    if headers:
        entry["request_parameters"] = headers
    return entry


def _validation_entries(route: dict[str, Any], method: Doc, path: str, validators: dict[str, Doc]) -> None:
    """A route's request validator (by name), request models and the method request parameters
    (but the required path parameters the integration's uri uses: reading the definition back
    declares those again)."""
    verb = route["method"]
    if method.get("requestValidatorId"):
        validator = validators.get(method["requestValidatorId"])
        if validator is None:
            raise bad_request(
                f"Invalid Request Validator identifier specified: {verb} {path} uses request validator "
                f"{method['requestValidatorId']}, which does not exist"
            )
        route["request_validator"] = validator["name"]
    if method.get("requestModels"):
        route["request_models"] = dict(sorted(method["requestModels"].items()))
    derived = _uri_parameters(method.get("methodIntegration") or {}, path)
    params = {
        key: bool(required)
        for key, required in sorted((method.get("requestParameters") or {}).items())
        if not (required is True and key in derived)
    }
    # written when they can matter (a validator, a required parameter): a definition of an API
    # without request validation stays as it was before validation existed
    if params and (route.get("request_validator") or any(params.values())):
        route["request_parameters"] = params


def _uri_parameters(integration: Doc, path: str) -> set[str]:
    """``method.request.path.X`` for each parameter X of ``path`` that an HTTP_PROXY uri uses
    (what :func:`_integration_doc` declares)."""
    if integration.get("type") != "HTTP_PROXY" or not isinstance(integration.get("uri"), str):
        return set()
    own = {s.value for s in parse_template(path) if s.kind in ("param", "greedy")}
    used = re.findall(r"\{([A-Za-z0-9._-]+)\}", integration["uri"].split("://", 1)[-1])
    return {f"method.request.path.{name}" for name in used if name in own}


def _api_entries(definition: dict[str, Any], draft: Doc, routes: list[dict[str, Any]]) -> None:
    """The API's gateway responses, models and request validators (by name). API Gateway's
    default models (``Empty``, ``Error``) are written only when a route uses them."""
    responses: dict[str, Doc] = draft.get("gatewayResponses") or {}
    if responses:
        out: dict[str, Any] = {}
        for kind, response in sorted(responses.items()):
            entry: dict[str, Any] = {}
            if response.get("statusCode"):
                entry["status_code"] = int(response["statusCode"])
            if response.get("responseParameters"):
                entry["response_parameters"] = dict(sorted(response["responseParameters"].items()))
            if response.get("responseTemplates"):
                entry["response_templates"] = dict(sorted(response["responseTemplates"].items()))
            out[kind] = entry
        definition["gateway_responses"] = out
    used = {name for route in routes for name in (route.get("request_models") or {}).values()}
    models: dict[str, Any] = {}
    by_name = {m["name"]: m for m in (draft.get("models") or {}).values()}
    wanted = set(used)
    api_id = str(draft["restApi"]["id"])
    while wanted:  # the models the used ones refer to are needed too
        name = wanted.pop()
        if name in by_name:
            refs = referenced_models(by_name[name].get("schema") or "", api_id)
            wanted |= refs - used
            used |= refs
    for name, model in sorted(by_name.items()):
        if is_default_model(model) and name not in used:
            continue
        entry = {"schema": model.get("schema") or "{}"}
        if model.get("contentType", "application/json") != "application/json":
            entry["content_type"] = model["contentType"]
        if model.get("description"):
            entry["description"] = model["description"]
        models[name] = entry
    if models:
        definition["models"] = models
    validators: dict[str, Doc] = draft.get("requestValidators") or {}
    if validators:
        definition["request_validators"] = {
            v["name"]: {
                k: True
                for k, key in (
                    ("validate_request_body", "validateRequestBody"),
                    ("validate_request_parameters", "validateRequestParameters"),
                )
                if v.get(key)
            }
            for v in sorted(validators.values(), key=lambda v: v["name"])
        }


def draft_to_definition(draft: Doc, settings: GatewaySettings) -> dict[str, Any]:
    """The API as a configuration ``apis`` entry without stages; BadRequestException (AWS's
    texts) when the draft cannot be deployed: no methods, a method without an integration."""
    api = draft["restApi"]
    authorizers: dict[str, Doc] = draft.get("authorizers") or {}
    definition: dict[str, Any] = {"id": api["id"], "name": api.get("name") or api["id"]}
    definition["endpoint_type"] = ((api.get("endpointConfiguration") or {}).get("types") or ["EDGE"])[0]
    if api.get("policy"):
        definition["policy"] = policy_object(api["policy"])
    if draft.get("policyMode") == "report":
        definition["policy_mode"] = "report"
    if api.get("apiKeySource", "HEADER") != "HEADER":
        definition["api_key_source"] = api["apiKeySource"]
    if api.get("disableExecuteApiEndpoint"):  # as on AWS, it takes effect with a deployment
        definition["disable_execute_api_endpoint"] = True
    used = {a["name"]: a for a in authorizers.values()}
    if used:
        definition["authorizers"] = [_authorizer_entry(a) for _, a in sorted(used.items())]
    validators: dict[str, Doc] = draft.get("requestValidators") or {}
    routes = []
    for path, verb, method in each_method(draft):
        integration = method.get("methodIntegration")
        if integration is None:
            raise bad_request(f"No integration defined for method: {verb} {path}")
        route: dict[str, Any] = {"path": path, "method": verb}
        kind = method.get("authorizationType", "NONE")
        if kind == "JWT":
            kind = "COGNITO_USER_POOLS"  # the configuration's name for any token authorizer
        if kind != "NONE":
            route["authorization"] = kind
        if method.get("authorizerId"):
            authorizer = authorizers.get(method["authorizerId"])
            if authorizer is None:
                raise bad_request(
                    f"Invalid authorizer ID specified: {verb} {path} uses authorizer "
                    f"{method['authorizerId']}, which does not exist"
                )
            route["authorizer"] = authorizer["name"]
        if method.get("authorizationScopes"):
            route["authorization_scopes"] = list(method["authorizationScopes"])
        if method.get("apiKeyRequired"):
            route["api_key_required"] = True
        rate_limit = (method.get("iamgate") or {}).get("rate_limit")
        if rate_limit:
            route["rate_limit"] = rate_limit
        if method.get(POLICY_FIELD):  # iamgate's extension: the method's own policy
            route["policy"] = policy_object(method[POLICY_FIELD])
            if method.get(MODE_FIELD) == "report":
                route["policy_mode"] = "report"
        _validation_entries(route, method, path, validators)
        route["integration"] = _integration_entry(integration)
        routes.append(route)
    if not routes:
        raise bad_request("The REST API doesn't contain any methods")
    definition["routes"] = routes
    _api_entries(definition, draft, routes)
    _ = settings  # the definition is settings-free: shorthand was expanded when the policy was saved
    return definition


# --- definition -> draft -------------------------------------------------------------------------
def _authorizer_doc(entry: dict[str, Any], aid: str, settings: GatewaySettings) -> Doc:
    kind = entry["type"]
    doc: Doc = {
        "id": aid,
        "name": entry["name"],
        "type": kind,
        "identitySource": entry.get("identity_source", DEFAULT_SOURCE),
        "authorizerResultTtlInSeconds": entry.get("result_ttl", 300),
    }
    ext = {k: entry[k] for k in _EXTENSION_KEYS if entry.get(k) is not None}
    if kind in ("TOKEN", "REQUEST"):
        if entry.get("url"):
            doc["authorizerUri"] = entry["url"]
        if entry.get("identity_validation_expression"):
            doc["identityValidationExpression"] = entry["identity_validation_expression"]
    elif kind == "JWT":
        issuer: dict[str, Any] = {"issuer": entry.get("issuer")}
        if entry.get("audiences"):
            issuer["audiences"] = list(entry["audiences"])
        doc["jwtConfiguration"] = {"issuers": [issuer]}
        if entry.get("algorithms"):
            doc["jwtConfiguration"]["defaultAlgorithms"] = list(entry["algorithms"])
    else:
        m = _COGNITO.fullmatch(entry.get("issuer") or "")
        if m:
            doc["providerARNs"] = [
                f"arn:aws:cognito-idp:{m.group(1)}:{settings.account_id}:userpool/{m.group(2)}"
            ]
    if ext:
        doc["iamgate"] = ext
    return doc


def _integration_doc(
    entry: dict[str, Any], resource_id: str, params: set[str]
) -> tuple[Doc, dict[str, bool]]:
    """The integration, and the method request parameters it needs (path parameters in the uri)."""
    if entry["type"] == "MOCK":
        status = int(entry.get("status", 200))
        response: Doc = {"statusCode": str(status)}
        if entry.get("headers"):
            response["responseParameters"] = {
                f"method.response.header.{k}": f"'{v}'" for k, v in sorted(entry["headers"].items())
            }
        if entry.get("body"):
            response["responseTemplates"] = {"application/json": entry["body"]}
        mock: Doc = {
            "type": "MOCK",
            "requestTemplates": {"application/json": json.dumps({"statusCode": status})},
            "passthroughBehavior": "WHEN_NO_MATCH",
            "cacheNamespace": resource_id,
            "cacheKeyParameters": [],
            "integrationResponses": {str(status): response},
        }
        return mock, {}
    uri = entry["uri"]
    mapping: dict[str, str] = {}
    declared: dict[str, bool] = {}
    for name in re.findall(r"\{([A-Za-z0-9._-]+)\}", uri.split("://", 1)[-1]):
        if name in params:
            mapping[f"integration.request.path.{name}"] = f"method.request.path.{name}"
            declared[f"method.request.path.{name}"] = True
    mapping.update(entry.get("request_parameters") or {})
    doc: Doc = {
        "type": "HTTP_PROXY",
        "httpMethod": "ANY",
        "uri": uri,
        "connectionType": "INTERNET",
        "passthroughBehavior": "WHEN_NO_MATCH",
        "cacheNamespace": resource_id,
        "cacheKeyParameters": [],
    }
    if entry.get("timeout") is not None:
        doc["timeoutInMillis"] = round(float(entry["timeout"]) * 1000)
    if mapping:
        doc["requestParameters"] = mapping
    return doc, declared


def _mock_method_responses(integration: Doc) -> dict[str, Doc]:
    """The method responses a MOCK integration's responses need, as API Gateway holds them: each
    status, declaring the headers its integration response sets (an OPTIONS method for CORS:
    the ``Access-Control-Allow-*`` headers)."""
    out: dict[str, Doc] = {}
    for code, response in sorted((integration.get("integrationResponses") or {}).items()):
        entry: Doc = {"statusCode": code}
        headers = sorted(response.get("responseParameters") or {})
        if headers:
            entry["responseParameters"] = dict.fromkeys(headers, False)
        out[code] = entry
    return out


def _gateway_response_docs(definition: dict[str, Any]) -> dict[str, Doc]:
    out: dict[str, Doc] = {}
    for kind, raw in sorted((definition.get("gateway_responses") or {}).items()):
        doc: Doc = {}
        entry = raw or {}
        if entry.get("status_code") is not None:
            doc["statusCode"] = str(entry["status_code"])
        if entry.get("response_parameters"):
            doc["responseParameters"] = {str(k): str(v) for k, v in entry["response_parameters"].items()}
        if entry.get("response_templates"):
            doc["responseTemplates"] = {str(k): str(v) for k, v in entry["response_templates"].items()}
        out[str(kind)] = doc
    return out


def _schema_text(schema: Any) -> str:
    """A model's schema as the JSON text API Gateway stores (a mapping in YAML is written as JSON)."""
    return schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)


def _model_docs(
    definition: dict[str, Any], api_id: str, previous: Doc | None
) -> tuple[dict[str, Doc], dict[str, Doc]]:
    """The models (API Gateway's ``Empty`` and ``Error`` when the definition does not define
    them) and request validators of a definition, keeping the ids of ``previous`` by name."""
    old_models = {m["name"]: m["id"] for m in ((previous or {}).get("models") or {}).values()}
    old_validators = {v["name"]: v["id"] for v in ((previous or {}).get("requestValidators") or {}).values()}
    models: dict[str, Doc] = {}
    for name, raw in sorted((definition.get("models") or {}).items()):
        entry = raw or {}
        mid = old_models.get(str(name)) or new_id("model")
        while mid in models:
            mid = new_id("model")
        doc: Doc = {"id": mid, "name": str(name)}
        doc["contentType"] = entry.get("content_type", "application/json")
        if entry.get("description"):
            doc["description"] = entry["description"]
        doc["schema"] = _schema_text(entry.get("schema", {}))
        models[mid] = doc
    defined = {m["name"] for m in models.values()}
    for mid, model in default_models(set(models)).items():
        if model["name"] not in defined:
            model_id = old_models.get(model["name"]) or mid
            models[model_id] = {**model, "id": model_id}
    validators: dict[str, Doc] = {}
    for name, raw in sorted((definition.get("request_validators") or {}).items()):
        entry = raw or {}
        vid = old_validators.get(str(name)) or new_id("requestvalidator")
        while vid in validators:
            vid = new_id("requestvalidator")
        validators[vid] = {
            "id": vid,
            "name": str(name),
            "validateRequestBody": bool(entry.get("validate_request_body", False)),
            "validateRequestParameters": bool(entry.get("validate_request_parameters", False)),
        }
    return models, validators


def definition_to_draft(
    definition: dict[str, Any],
    api_id: str,
    *,
    settings: GatewaySettings | None = None,
    previous: Doc | None = None,
) -> Doc:
    """The draft of ``definition`` (a configuration ``apis`` entry; ``stages`` and ``deployment``
    are ignored). The policy is stored as the management API stores it, expanded with
    ``settings`` (region, account; default: the defaults). ``previous``: the API's current
    draft, whose resource ids (by path), authorizer ids (by name), creation date and description
    are kept."""
    settings = settings or GatewaySettings()
    old_resources = {r["path"]: r["id"] for r in ((previous or {}).get("resources") or {}).values()}
    old_authorizers = {a["name"]: a["id"] for a in ((previous or {}).get("authorizers") or {}).values()}
    old_api = (previous or {}).get("restApi") or {}
    taken = set(old_resources.values())

    def fresh() -> str:
        rid = new_id("resource")
        while rid in taken:
            rid = new_id("resource")
        taken.add(rid)
        return rid

    root = old_resources.get("/") or fresh()
    rest_api: Doc = {
        "id": api_id,
        "name": definition.get("name") or api_id,
        "createdDate": old_api.get("createdDate") or now(),
        "apiKeySource": definition.get("api_key_source", "HEADER"),
        "endpointConfiguration": {"types": [definition.get("endpoint_type", "REGIONAL")]},
        "disableExecuteApiEndpoint": bool(definition.get("disable_execute_api_endpoint")),
        "rootResourceId": root,
        "tags": old_api.get("tags") or {},
    }
    if old_api.get("description"):
        rest_api["description"] = old_api["description"]
    if definition.get("policy") is not None:
        try:
            rest_api["policy"] = store_policy(definition["policy"], settings, api_id)
        except ApiError as exc:
            raise ValueError(f"API {api_id}: {exc.message}") from None
    authorizers: dict[str, Doc] = {}
    ids_by_name: dict[str, str] = {}
    for entry in definition.get("authorizers") or []:
        aid = old_authorizers.get(entry["name"]) or new_id("authorizer")
        while aid in authorizers:
            aid = new_id("authorizer")
        ids_by_name[entry["name"]] = aid
        authorizers[aid] = _authorizer_doc(entry, aid, settings)
    models, validators = _model_docs(definition, api_id, previous)
    validator_ids = {v["name"]: vid for vid, v in validators.items()}
    resources: dict[str, Doc] = {root: {"id": root, "path": "/", "resourceMethods": {}}}
    by_path = {"/": root}
    for route in definition.get("routes") or []:
        path = route["path"].rstrip("/") or "/"
        parent_path = "/"
        for segment in [s for s in path.split("/") if s]:
            here = f"/{segment}" if parent_path == "/" else f"{parent_path}/{segment}"
            if here not in by_path:
                rid = old_resources.get(here) or fresh()
                by_path[here] = rid
                resources[rid] = {
                    "id": rid,
                    "parentId": by_path[parent_path],
                    "pathPart": segment,
                    "path": here,
                    "resourceMethods": {},
                }
            parent_path = here
        resource = resources[by_path[path]]
        params = {s.value for s in parse_template(path) if s.kind in ("param", "greedy")}
        integration, declared = _integration_doc(route["integration"], resource["id"], params)
        method: Doc = {
            "httpMethod": route["method"].upper(),
            "authorizationType": route.get("authorization", "NONE"),
            "apiKeyRequired": bool(route.get("api_key_required", False)),
            "methodIntegration": integration,
        }
        if integration["type"] == "MOCK":
            method["methodResponses"] = _mock_method_responses(integration)
        if route.get("authorizer"):
            method["authorizerId"] = ids_by_name[route["authorizer"]]
            if authorizers[method["authorizerId"]]["type"] == "JWT":
                method["authorizationType"] = "JWT"  # API Gateway's type for a JWT authorizer
        if route.get("authorization_scopes"):
            method["authorizationScopes"] = list(route["authorization_scopes"])
        if declared:
            method["requestParameters"] = declared
        if route.get("rate_limit"):
            method["iamgate"] = {"rate_limit": dict(route["rate_limit"])}
        if route.get("policy") is not None:  # iamgate's extension, stored as the API's policy is
            method[POLICY_FIELD] = store_policy(route["policy"], settings, api_id)
            if route.get("policy_mode") == "report":
                method[MODE_FIELD] = "report"
        if route.get("request_parameters"):
            declared = {**declared, **{k: bool(v) for k, v in route["request_parameters"].items()}}
            method["requestParameters"] = declared
        if route.get("request_validator"):
            method["requestValidatorId"] = validator_ids[route["request_validator"]]
        if route.get("request_models"):
            method["requestModels"] = dict(route["request_models"])
        resource["resourceMethods"][method["httpMethod"]] = method
    draft: Doc = {
        "restApi": rest_api,
        "resources": resources,
        "authorizers": authorizers,
        "models": models,
        "requestValidators": validators,
        "gatewayResponses": _gateway_response_docs(definition),
    }
    if definition.get("policy_mode") == "report":
        draft["policyMode"] = "report"
    return draft
