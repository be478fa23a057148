"""Authorizers: ``CreateAuthorizer``, ``GetAuthorizers``, ``GetAuthorizer``,
``UpdateAuthorizer``, ``DeleteAuthorizer``.

* ``TOKEN`` and ``REQUEST`` (Lambda-style): iamgate calls them **over HTTP**, so
  ``authorizerUri`` is the ``http(s)://`` URL that receives the event by POST
  (docs/authentication.md); Lambda function ARNs and ``authorizerCredentials`` are refused.
  In-process Python authorizers (``function:``) can only come from a configuration file through
  ``iamgate apply``: the management API never makes the gateway import code.
* ``JWT`` (API Gateway's native JWT authorizer): ``jwtConfiguration`` with one issuer, its
  audiences and ``defaultAlgorithms``; keys come from ``ISSUER/.well-known/jwks.json``.
* ``COGNITO_USER_POOLS``: one user pool in ``providerARNs``
  (``arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID``); tokens are checked against
  ``https://cognito-idp.REGION.amazonaws.com/POOL_ID`` and its JWKS.

Names are letters, digits, ``-`` and ``_`` and unique within an API (methods name authorizers by
id, configuration files by name). An authorizer a method uses cannot be deleted.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

from iamgate.auth.custom import parse_identity_sources
from iamgate.management.core import Call, Reply, Route, bad_request, conflict, not_found
from iamgate.management.drafts import each_method, edit, optional_str, page, read, string_list
from iamgate.management.ids import new_id
from iamgate.management.patch import PatchOp, invalid_path, operations
from iamgate.store.base import Doc, Transaction

__all__ = ["ROUTES", "authorizer_shape", "check_authorizer", "cognito_issuer", "jwt_issuer"]

TYPES = ("TOKEN", "REQUEST", "COGNITO_USER_POOLS", "JWT")
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
SHAPE_FIELDS = (
    "id",
    "name",
    "type",
    "providerARNs",
    "authType",
    "authorizerUri",
    "identitySource",
    "identityValidationExpression",
    "authorizerResultTtlInSeconds",
    "jwtConfiguration",
)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_HEADER_SOURCE = re.compile(r"method\.request\.header\.[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_POOL_ARN = re.compile(r"arn:aws[a-z-]*:cognito-idp:([a-z0-9-]+):([0-9]{12}):userpool/([\w-]+_[0-9A-Za-z]+)")
DEFAULT_SOURCE = "method.request.header.Authorization"
UPDATABLE = [
    "/name",
    "/authorizerUri",
    "/identitySource",
    "/identityValidationExpression",
    "/authorizerResultTtlInSeconds",
    "/providerARNs",
    "/authType",
]


def authorizer_shape(authorizer: Doc) -> dict[str, Any]:
    """The ``Authorizer`` answer (iamgate's own settings, under ``iamgate``, are left out)."""
    return {k: authorizer[k] for k in SHAPE_FIELDS if authorizer.get(k) is not None}


def jwt_issuer(authorizer: Doc) -> str | None:
    """A JWT authorizer's one issuer (iamgate's own setting, or ``jwtConfiguration``'s)."""
    ext = authorizer.get("iamgate") or {}
    if ext.get("issuer"):
        return str(ext["issuer"])
    issuers = (authorizer.get("jwtConfiguration") or {}).get("issuers") or [{}]
    issuer = issuers[0].get("issuer")
    return issuer if isinstance(issuer, str) else None


def _jwt_configuration(raw: object) -> dict[str, Any]:
    """``jwtConfiguration`` of CreateAuthorizer, checked: one issuer (an https URL) with its
    audiences, and the signing algorithms."""
    if not isinstance(raw, dict):
        raise bad_request("A JWT authorizer needs 'jwtConfiguration': {issuers: [{issuer, audiences}], ...}")
    issuers = raw.get("issuers")
    if not isinstance(issuers, list) or len(issuers) != 1 or not isinstance(issuers[0], dict):
        raise bad_request(
            "iamgate's JWT authorizers trust exactly one issuer: jwtConfiguration.issuers has one entry"
        )
    entry = issuers[0]
    issuer = entry.get("issuer")
    if not isinstance(issuer, str) or urlsplit(issuer).scheme != "https" or not urlsplit(issuer).hostname:
        raise bad_request(f"Invalid JWT issuer {issuer!r}: the https:// URL tokens carry in 'iss'")
    if entry.get("additionalClaims"):
        raise bad_request("iamgate does not support additionalClaims in JWT authorizers")
    audiences = string_list(entry, "audiences", "CreateAuthorizer: jwtConfiguration.issuers[0]")
    out_issuer: dict[str, Any] = {"issuer": issuer}
    if audiences:
        out_issuer["audiences"] = audiences
    out: dict[str, Any] = {"issuers": [out_issuer]}
    algorithms = string_list(raw, "defaultAlgorithms", "CreateAuthorizer: jwtConfiguration")
    if algorithms:
        bad = [a for a in algorithms if a not in ALGORITHMS]
        if bad:
            raise bad_request(f"Invalid JWT signing algorithm(s) {bad}: {', '.join(ALGORITHMS)}")
        out["defaultAlgorithms"] = algorithms
    return out


def cognito_issuer(provider_arn: str) -> str | None:
    m = _POOL_ARN.fullmatch(provider_arn)
    return None if m is None else f"https://cognito-idp.{m.group(1)}.amazonaws.com/{m.group(3)}"


def check_authorizer(draft: Doc, authorizer: Doc) -> None:
    """The rules an authorizer keeps whatever set it."""
    name, kind = authorizer.get("name"), authorizer.get("type")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise bad_request(f"Invalid authorizer name {name!r}: letters, digits, '-' and '_' (at most 128)")
    for other in draft["authorizers"].values():
        if other["id"] != authorizer["id"] and other["name"] == name:
            raise conflict(f"An authorizer named '{name}' already exists for this API ({other['id']})")
    ttl = authorizer.get("authorizerResultTtlInSeconds", 300)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 3600:
        raise bad_request(f"Invalid authorizerResultTtlInSeconds {ttl!r}: between 0 and 3600")
    expression = authorizer.get("identityValidationExpression")
    if expression:
        try:
            re.compile(expression)
        except re.error as exc:
            raise bad_request(f"Invalid identityValidationExpression '{expression}': {exc}") from None
    source = authorizer.get("identitySource")
    extension = authorizer.get("iamgate") or {}
    if kind in ("TOKEN", "REQUEST"):
        uri = authorizer.get("authorizerUri")
        if uri is None and extension.get("function"):
            pass  # an in-process authorizer from a configuration file (iamgate apply)
        elif not isinstance(uri, str) or not uri:
            raise bad_request(
                f"A {kind} authorizer needs 'authorizerUri': the http(s) URL iamgate POSTs the event to"
            )
        else:
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise bad_request(
                    f"Invalid authorizer URI '{uri}': iamgate calls Lambda-style authorizers over HTTP, so "
                    "authorizerUri must be the http(s) URL that receives the event (docs/authentication.md); "
                    "Lambda function ARNs are not supported"
                )
        if kind == "TOKEN" and not _HEADER_SOURCE.fullmatch(source or ""):
            raise bad_request(
                f"Invalid identity source '{source}': a TOKEN authorizer reads one header, "
                "method.request.header.NAME"
            )
        if kind == "REQUEST" and source:
            try:
                parse_identity_sources(source)
            except ValueError as exc:
                raise bad_request(f"Invalid identity source: {exc}") from None
    elif kind in ("COGNITO_USER_POOLS", "JWT"):
        arns = authorizer.get("providerARNs") or []
        if kind == "JWT" and jwt_issuer(authorizer) is None:
            raise bad_request("A JWT authorizer needs one issuer in jwtConfiguration.issuers")
        if (
            kind == "COGNITO_USER_POOLS"
            and not extension.get("issuer")
            and (len(arns) != 1 or cognito_issuer(arns[0]) is None)
        ):
            raise bad_request(
                "A COGNITO_USER_POOLS authorizer needs exactly one user pool in providerARNs: "
                f"arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID (got {arns})"
            )
        if not _HEADER_SOURCE.fullmatch(source or ""):
            raise bad_request(
                f"Invalid identity source '{source}': a COGNITO_USER_POOLS authorizer reads the token from "
                "one header, method.request.header.NAME"
            )
    else:
        raise bad_request(f"Invalid authorizer type '{kind}': one of {', '.join(TYPES)}")


async def create_authorizer(call: Call) -> Reply:
    body = call.json()
    where = "CreateAuthorizer"
    kind = optional_str(body, "type", where)
    if kind not in TYPES:
        raise bad_request(f"Invalid authorizer type {kind!r}: one of {', '.join(TYPES)}")
    if body.get("authorizerCredentials"):
        raise bad_request("iamgate calls authorizers by URL itself: leave 'authorizerCredentials' out")
    ttl = body.get("authorizerResultTtlInSeconds", 300)
    authorizer: Doc = {
        "name": optional_str(body, "name", where),
        "type": kind,
        "authorizerUri": optional_str(body, "authorizerUri", where),
        "identitySource": optional_str(body, "identitySource", where)
        or (DEFAULT_SOURCE if kind != "REQUEST" else None),
        "identityValidationExpression": optional_str(body, "identityValidationExpression", where),
        "authorizerResultTtlInSeconds": ttl,
        "providerARNs": string_list(body, "providerARNs", where),
        "authType": optional_str(body, "authType", where),
    }
    if kind in ("COGNITO_USER_POOLS", "JWT"):
        authorizer["authorizerUri"] = None
    if kind == "JWT":
        authorizer["jwtConfiguration"] = _jwt_configuration(body.get("jwtConfiguration"))
    authorizer = {k: v for k, v in authorizer.items() if v is not None}

    def add(tx: Transaction, draft: Doc) -> dict[str, Any]:
        aid = new_id("authorizer")
        while aid in draft["authorizers"]:
            aid = new_id("authorizer")
        authorizer["id"] = aid
        check_authorizer(draft, authorizer)
        draft["authorizers"][aid] = authorizer
        return authorizer_shape(authorizer)

    return Reply(201, await edit(call, call.params["restapi_id"], add))


def _find(draft: Doc, aid: str) -> Doc:
    authorizer = draft["authorizers"].get(aid)
    if authorizer is None:
        raise not_found("Invalid Authorizer identifier specified")
    return authorizer  # type: ignore[no-any-return]


async def get_authorizers(call: Call) -> Reply:
    def shapes(tx: Transaction, draft: Doc) -> list[dict[str, Any]]:
        return [authorizer_shape(a) for _, a in sorted(draft["authorizers"].items())]

    return Reply(200, page(call, await read(call, call.params["restapi_id"], shapes)))


async def get_authorizer(call: Call) -> Reply:
    aid = call.params["authorizer_id"]
    return Reply(
        200, await read(call, call.params["restapi_id"], lambda tx, d: authorizer_shape(_find(d, aid)))
    )


def _apply(authorizer: Doc, op: PatchOp) -> None:
    key = op.path[1:]
    if op.path == "/authorizerResultTtlInSeconds" and op.op == "replace":
        authorizer[key] = op.integer(0, 3600)
    elif op.path == "/providerARNs" and op.op in ("add", "remove", "replace"):
        arns: list[str] = list(authorizer.get("providerARNs") or [])
        value = op.need_value()
        if op.op == "add":
            arns.append(value)
        elif op.op == "remove":
            arns = [a for a in arns if a != value]
        else:
            arns = [value]
        authorizer["providerARNs"] = arns
    elif op.path in UPDATABLE and op.op in ("replace", "remove"):
        if op.op == "remove" or not op.value:
            authorizer.pop(key, None)
        else:
            authorizer[key] = op.value
    else:
        raise invalid_path(op, UPDATABLE)


async def update_authorizer(call: Call) -> Reply:
    ops = operations(call.json())
    aid = call.params["authorizer_id"]

    def change(tx: Transaction, draft: Doc) -> dict[str, Any]:
        work = copy.deepcopy(draft)
        authorizer = _find(work, aid)
        for op in ops:
            _apply(authorizer, op)
        check_authorizer(work, authorizer)
        draft.clear()
        draft.update(work)
        return authorizer_shape(authorizer)

    return Reply(200, await edit(call, call.params["restapi_id"], change))


async def delete_authorizer(call: Call) -> Reply:
    aid = call.params["authorizer_id"]

    def remove(tx: Transaction, draft: Doc) -> None:
        authorizer = _find(draft, aid)
        for path, verb, method in each_method(draft):
            if method.get("authorizerId") == aid:
                raise conflict(
                    f"Cannot delete authorizer '{authorizer['name']}', is referenced in method: {verb} {path}"
                )
        del draft["authorizers"][aid]

    await edit(call, call.params["restapi_id"], remove)
    return Reply(202)


_BASE = "/restapis/{restapi_id}/authorizers"
ROUTES = [
    Route("POST", _BASE, create_authorizer),
    Route("GET", _BASE, get_authorizers),
    Route("GET", _BASE + "/{authorizer_id}", get_authorizer),
    Route("PATCH", _BASE + "/{authorizer_id}", update_authorizer),
    Route("DELETE", _BASE + "/{authorizer_id}", delete_authorizer),
]
