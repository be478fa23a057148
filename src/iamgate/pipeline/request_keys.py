"""iamgate's own condition keys, filled from the request for the policies that read them.

A policy names the ``iamgate:`` keys it reads (``CompiledPolicy.extension_keys``, found when it
is compiled); only those are computed, so a policy that reads none costs nothing here. Values:

* ``RequestHeader/NAME``, ``QueryString/NAME``: every value the request carries under NAME (names
  compared without regard to case, as condition keys are), one value as text, several as a
  multivalued key. A key the policy reads as **one** value (a plain operator, a variable) that
  the request carries several times is ambiguous (an attacker repeating a header to slip past a
  Deny): the request is refused with 400 before any decision, never decided on one of the values.
* ``PathParameter/NAME``: the route's path parameter.
* ``JwtClaim/NAME``: a claim of the token the JWT/Cognito authorizer verified. A top-level claim
  named NAME wins; else NAME is a path of object members separated by ``.``
  (``realm_access.roles``). Text as is, numbers and booleans as JSON writes them, an array as a
  multivalued key (its elements as text; objects inside as JSON), an object as JSON text, null
  as absent.
* ``AuthorizerContext/NAME``: the ``context`` a Lambda-style authorizer returned.
* ``ApiKeyId``: the id of the API key the request presents (header, or the authorizer's
  ``usageIdentifierKey`` for an API whose key source is AUTHORIZER), when it is a known, enabled
  key; absent otherwise.
* ``ClientCert/SubjectDN``, ``IssuerDN``, ``SerialNumber``, ``SAN`` (each subject alternative
  name's value, multivalued): the client certificate the TLS handshake verified (mutual TLS).
* ``Stage``, ``HttpMethod``, ``ResourcePath``: what the request was routed to.

Every value comes from what the gateway verified or routed; nothing is trusted beyond that.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from iamgate.auth.jwt import JwtClaims
from iamgate.pipeline import responses as R
from iamgate.pipeline.exchange import Exchange, presented_api_key
from iamgate.policy.extension_keys import claim_values, condition_text

__all__ = ["fill"]

_HEADER: Final = "iamgate:requestheader/"
_QUERY: Final = "iamgate:querystring/"
_PATH: Final = "iamgate:pathparameter/"
_CLAIM: Final = "iamgate:jwtclaim/"
_AUTHORIZER: Final = "iamgate:authorizercontext/"
_CERT: Final = {
    "iamgate:clientcert/subjectdn": "subjectDN",
    "iamgate:clientcert/issuerdn": "issuerDN",
    "iamgate:clientcert/serialnumber": "serialNumber",
}


def fill(ex: Exchange, keys: tuple[str, ...], single: tuple[str, ...]) -> R.GatewayResponse | None:
    """Put the value of each of ``keys`` the request has into its condition keys (absent ones
    stay absent). A 400 answer when one of ``single`` comes from the client several times."""
    context = ex.context
    for key in keys:
        if key in context:
            continue  # filled for another policy of the same request
        value = _value(ex, key)
        if value is None:
            continue
        if isinstance(value, tuple) and key in single and key.startswith((_HEADER, _QUERY)):
            where = "header" if key.startswith(_HEADER) else "query string parameter"
            name = key[len(_HEADER) :] if key.startswith(_HEADER) else key[len(_QUERY) :]
            return R.gateway_error(
                R.BAD_REQUEST,
                f"Bad Request: the {where} '{name}' is sent more than once, and the resource "
                "policy reads it as one value",
            )
        context[key] = value
    return None


def _value(ex: Exchange, key: str) -> str | tuple[str, ...] | None:
    if key.startswith(_HEADER):
        return _several(_header_values(ex, key[len(_HEADER) :].encode("latin-1")))
    if key.startswith(_QUERY):
        name = key[len(_QUERY) :]
        pairs = parse_qsl(ex.query.decode("utf-8", "replace"), keep_blank_values=True)
        return _several([v for k, v in pairs if k.lower() == name])
    if key.startswith(_PATH):
        name = key[len(_PATH) :]
        return next((v for k, v in (ex.params or {}).items() if k.lower() == name), None)
    if key.startswith(_CLAIM):
        verified = ex.claims
        return claim_values(verified.claims, key[len(_CLAIM) :]) if isinstance(verified, JwtClaims) else None
    if key.startswith(_AUTHORIZER):
        if ex.authorizer is None:
            return None
        name = key[len(_AUTHORIZER) :]
        found = next((v for k, v in ex.authorizer.context.items() if k.lower() == name), None)
        return None if found is None else condition_text(found)
    if key == "iamgate:apikeyid":
        return _api_key_id(ex)
    if key == "iamgate:stage":
        return ex.stage.name if ex.stage is not None else None
    if key == "iamgate:httpmethod":
        return ex.method
    if key == "iamgate:resourcepath":
        return ex.route.resource_path if ex.route is not None else None
    if ex.tls is None or ex.tls.peer_der is None:
        return None
    if key == "iamgate:clientcert/san":
        return _several(list(ex.tls.subject_alt_names()))
    field = _CERT.get(key)
    cert = ex.tls.client_cert()
    if field is None or cert is None:
        return None
    value = cert.get(field)
    return value if isinstance(value, str) else None


def _several(values: list[str]) -> str | tuple[str, ...] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def _header_values(ex: Exchange, name: bytes) -> list[str]:
    return [
        line[len(lname) + 2 : -2].decode("utf-8", "replace").strip()
        for lname, line in ex.headers
        if lname == name
    ]


def _api_key_id(ex: Exchange) -> str | None:
    key = presented_api_key(ex)
    return key.id if key is not None and key.enabled else None
