"""iamgate's own condition keys: values taken from the request itself (docs/policy-semantics.md).

AWS puts a fixed set of keys in an API Gateway request's context (``aws:SourceIp``,
``aws:PrincipalArn``...). iamgate adds keys under its own ``iamgate:`` prefix, so that they can
never collide with a key AWS defines:

=================================  ==========================================  ==============
key                                value                                       who chooses it
=================================  ==========================================  ==============
``iamgate:RequestHeader/NAME``     each value of header NAME                   the client
``iamgate:QueryString/NAME``       each value of query parameter NAME          the client
``iamgate:PathParameter/NAME``     the route's path parameter NAME             the client
``iamgate:JwtClaim/NAME``          a claim of a verified JWT (arrays: each)    the token's issuer
``iamgate:AuthorizerContext/NAME`` a Lambda-style authorizer's context value   the authorizer
``iamgate:ApiKeyId``               the id of a known, enabled API key sent     the gateway
``iamgate:ClientCert/SubjectDN``   of a verified client certificate (mTLS)     the CA
``iamgate:ClientCert/IssuerDN``    ''                                          the CA
``iamgate:ClientCert/SerialNumber`` ''                                         the CA
``iamgate:ClientCert/SAN``         each subject alternative name               the CA
``iamgate:Stage``                  the stage the request is served by          the gateway
``iamgate:HttpMethod``             the request's method                        the gateway
``iamgate:ResourcePath``           the route's resource path (``/pets/{id}``)  the gateway
=================================  ==========================================  ==============

The engine treats them as any other key (every operator, modifiers, policy variables); this
module only names them, classifies them, and lists which ones a policy reads, so that the gateway
fills only those. A policy that names none is decided exactly as before.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .ast import Policy
from .diagnostics import did_you_mean
from .variables import Var, read_template

__all__ = [
    "PREFIX",
    "Source",
    "canonical",
    "claim_values",
    "condition_text",
    "extension_context",
    "is_extension_key",
    "key_problem",
    "referenced_keys",
    "source_of",
]

PREFIX: Final = "iamgate:"


class Source(enum.Enum):
    """Who decides a key's value, which is what an Allow resting on it is worth."""

    CLIENT = "client"  # anything the client sends: headers, query, path
    VERIFIED = "verified"  # vouched for by a signature or a trusted component
    GATEWAY = "gateway"  # what the gateway itself routed the request to


# lower-cased key (or family, ending in "/") -> (spelling as documented, source)
_FAMILIES: Final = {
    "iamgate:requestheader/": ("iamgate:RequestHeader/", Source.CLIENT),
    "iamgate:querystring/": ("iamgate:QueryString/", Source.CLIENT),
    "iamgate:pathparameter/": ("iamgate:PathParameter/", Source.CLIENT),
    "iamgate:jwtclaim/": ("iamgate:JwtClaim/", Source.VERIFIED),
    "iamgate:authorizercontext/": ("iamgate:AuthorizerContext/", Source.VERIFIED),
}
_SINGLE: Final = {
    "iamgate:apikeyid": ("iamgate:ApiKeyId", Source.VERIFIED),
    "iamgate:clientcert/subjectdn": ("iamgate:ClientCert/SubjectDN", Source.VERIFIED),
    "iamgate:clientcert/issuerdn": ("iamgate:ClientCert/IssuerDN", Source.VERIFIED),
    "iamgate:clientcert/serialnumber": ("iamgate:ClientCert/SerialNumber", Source.VERIFIED),
    "iamgate:clientcert/san": ("iamgate:ClientCert/SAN", Source.VERIFIED),
    "iamgate:stage": ("iamgate:Stage", Source.GATEWAY),
    "iamgate:httpmethod": ("iamgate:HttpMethod", Source.GATEWAY),
    "iamgate:resourcepath": ("iamgate:ResourcePath", Source.GATEWAY),
}
_SPELLINGS: Final = tuple(
    [spelling + "NAME" for spelling, _ in _FAMILIES.values()] + [s for s, _ in _SINGLE.values()]
)


def is_extension_key(key: str) -> bool:
    """Whether ``key`` (any case) is in iamgate's namespace."""
    return key[: len(PREFIX)].lower() == PREFIX


def _family(lowered: str) -> str | None:
    for family in _FAMILIES:
        if lowered.startswith(family):
            return family
    return None


def key_problem(key: str) -> tuple[str, str | None] | None:
    """For a key in iamgate's namespace that iamgate does not define: the message and a
    did-you-mean; None for a known key (or one outside the namespace)."""
    if not is_extension_key(key):
        return None
    lowered = key.lower()
    if lowered in _SINGLE:
        return None
    family = _family(lowered)
    if family is not None:
        if len(lowered) > len(family):
            return None
        return f"'{key}' names no {_FAMILIES[family][0]}NAME: the name after '/' is missing", None
    return f"'{key}' is not a condition key iamgate defines", did_you_mean(key, _SPELLINGS)


def source_of(key: str) -> Source | None:
    """Who decides the value of a known ``iamgate:`` key (None for any other key)."""
    lowered = key.lower()
    single = _SINGLE.get(lowered)
    if single is not None:
        return single[1]
    family = _family(lowered)
    if family is not None and len(lowered) > len(family):
        return _FAMILIES[family][1]
    return None


def canonical(key: str) -> str:
    """The documented spelling of a known key's prefix, with the name as written
    (``iamgate:jwtclaim/Tenant`` -> ``iamgate:JwtClaim/Tenant``); other keys unchanged."""
    lowered = key.lower()
    single = _SINGLE.get(lowered)
    if single is not None:
        return single[0]
    family = _family(lowered)
    if family is not None:
        return _FAMILIES[family][0] + key[len(family) :]
    return key


def referenced_keys(policy: Policy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The known ``iamgate:`` keys (lower-cased, sorted) that ``policy`` reads, in condition keys
    and in policy variables of its resources and condition values; and those of them it reads as
    one value (with an operator without ``ForAnyValue:``/``ForAllValues:``, or as a variable),
    for which a request carrying several values is ambiguous."""
    found: set[str] = set()
    single: set[str] = set()

    def add(key: str, one: bool = True) -> None:
        if is_extension_key(key) and source_of(key) is not None:
            found.add(key.lower())
            if one:
                single.add(key.lower())

    def variables_of(text: str) -> None:
        if "${" not in text:
            return
        items, _ = read_template(text, variables=True)
        for item in items:
            if isinstance(item, Var):
                add(item.key)

    for st in policy.statements:
        for resource in st.resources:
            variables_of(resource.value)
        for clause in st.conditions:
            spec = clause.operator
            add(clause.key, spec.set_op is None and spec.base != "Null")
            for value in clause.values:
                variables_of(value.value)
    return tuple(sorted(found)), tuple(sorted(single))


# --- values -------------------------------------------------------------------------------
def condition_text(value: object) -> str | None:
    """A JSON value as a condition value: text as is, numbers and booleans as JSON writes them,
    anything else as compact JSON text; None (absent) for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _member(node: Mapping[str, Any], name: str) -> Any:
    """The member named ``name`` (condition keys are lower-cased: the exact spelling first, then
    the first member equal to it without regard to case)."""
    if name in node:
        return node[name]
    lowered = name.lower()
    return next((v for k, v in node.items() if isinstance(k, str) and k.lower() == lowered), None)


def claim_values(claims: object, name: str) -> str | tuple[str, ...] | None:
    """``iamgate:JwtClaim/NAME`` from a token's claims: a top-level claim named NAME wins; else
    NAME is a path of object members separated by ``.``. An array is multivalued (its elements
    as condition text), an empty array or null absent."""
    if not isinstance(claims, Mapping):
        return None
    found = _member(claims, name)
    if found is None and "." in name:
        node: Any = claims
        for part in name.split("."):
            node = _member(node, part) if isinstance(node, Mapping) else None
            if node is None:
                break
        found = node
    if isinstance(found, list):
        items = tuple(t for t in (condition_text(v) for v in found) if t is not None)
        return items or None
    return condition_text(found)


def extension_context(
    keys: Sequence[str],
    *,
    headers: Mapping[str, object] | None = None,
    query: Mapping[str, object] | None = None,
    path_parameters: Mapping[str, object] | None = None,
    claims: Mapping[str, object] | None = None,
    authorizer_context: Mapping[str, object] | None = None,
    api_key_id: str | None = None,
    client_cert: Mapping[str, object] | None = None,
    stage: str | None = None,
    http_method: str | None = None,
    resource_path: str | None = None,
) -> dict[str, str | tuple[str, ...]]:
    """Condition keys from a request described by its parts (the CLI, test cases): what the
    gateway fills from a real request. Headers, query and path parameters, authorizer context
    and certificate fields are given by name (a list: several values); claims as the token's
    JSON object, read for the ``iamgate:JwtClaim/...`` keys in ``keys`` (a policy's
    ``extension_keys``). ``client_cert`` takes ``subjectDN``, ``issuerDN``, ``serialNumber`` and
    ``SAN`` (a list)."""
    out: dict[str, str | tuple[str, ...]] = {}

    def put(key: str, value: object) -> None:
        if isinstance(value, list | tuple):
            items = tuple(t for t in (condition_text(v) for v in value) if t is not None)
            if items:  # one value is text, as the gateway gives one header; several a multivalued key
                out[key.lower()] = items[0] if len(items) == 1 else items
            return
        text = condition_text(value)
        if text is not None:
            out[key.lower()] = text

    for family, given in (
        ("iamgate:RequestHeader/", headers),
        ("iamgate:QueryString/", query),
        ("iamgate:PathParameter/", path_parameters),
        ("iamgate:AuthorizerContext/", authorizer_context),
    ):
        for name, value in (given or {}).items():
            put(family + name, value)
    if claims is not None:
        for key in keys:
            if key.lower().startswith("iamgate:jwtclaim/"):
                found = claim_values(claims, key[len("iamgate:jwtclaim/") :])
                if found is not None:
                    out[key.lower()] = found
    for field_name, value in (client_cert or {}).items():
        put(f"iamgate:ClientCert/{field_name}", value)
    for key, value in (
        ("iamgate:ApiKeyId", api_key_id),
        ("iamgate:Stage", stage),
        ("iamgate:HttpMethod", http_method),
        ("iamgate:ResourcePath", resource_path),
    ):
        if value is not None:
            out[key.lower()] = value
    return out
