"""``iamgate export --redact``: an export without its secrets, to share for review.

What a store holds that is secret, and what takes its place:

* **API key values** (``api_keys[].value``) become ``value_env: IAMGATE_API_KEY_<ID>`` (the id
  upper-cased, other characters ``_``): the configuration's own way to keep a key out of the
  file. The file applies once those variables hold the values; until then ``config validate``
  and ``apply`` refuse it (``config.missing-secret``), so no placeholder is ever stored as a key.
* **Passwords in URLs** (``user:PASSWORD@`` in an integration ``uri``, an authorizer's ``url``
  or ``jwks_url``) and **literal credentials sent to backends** (a request parameter mapping a
  quoted literal to a header whose name says it carries one: ``Authorization``,
  ``Proxy-Authorization``, ``Cookie``, or a name containing ``token``, ``secret``,
  ``password``, ``passwd``, ``key``, ``auth``, ``credential`` or ``session``) become
  :data:`REDACTED`, which the loader refuses wherever it appears (``config.redacted-secret``):
  put the real value back to apply such a file.

Stage variables, MOCK bodies and headers, policies and names are configuration, not secrets, and
are written as they are. Identities (access keys) are never in a store, so never in an export.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from iamgate.config._yaml import REDACTED

__all__ = ["REDACTED", "Redacted", "redact"]

_HEADER_TARGET = re.compile(r"integration\.request\.header\.(.+)", re.IGNORECASE)
_CREDENTIAL_HEADER = re.compile(
    r"authorization|proxy-authorization|cookie|.*(token|secret|password|passwd|key|auth|credential|session).*",
    re.IGNORECASE,
)


class Redacted:
    """What :func:`redact` replaced: the environment variables API key values now come from
    (key id -> variable name) and the places of the other secrets (JSON pointers)."""

    def __init__(self) -> None:
        self.key_variables: dict[str, str] = {}
        self.places: list[str] = []


def _variable(key_id: str, taken: set[str]) -> str:
    base = "IAMGATE_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", key_id.upper())
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _url(value: object) -> str | None:
    """``value`` with the secret of its userinfo redacted; None when it has no userinfo."""
    if not isinstance(value, str) or "@" not in value:
        return None
    parts = urlsplit(value)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return None
    user, colon, _ = userinfo.partition(":")
    # user:password loses the password; userinfo without one may itself be the credential (a token)
    kept = f"{user}:{REDACTED}" if colon else REDACTED
    return urlunsplit(parts._replace(netloc=f"{kept}@{host}"))


def _route(route: dict[str, Any], at: str, out: Redacted) -> None:
    integration = route.get("integration")
    if not isinstance(integration, dict):
        return
    uri = _url(integration.get("uri"))
    if uri is not None:
        integration["uri"] = uri
        out.places.append(f"{at}/integration/uri")
    params = integration.get("request_parameters")
    if isinstance(params, dict):
        for target, source in params.items():
            header = _HEADER_TARGET.fullmatch(str(target))
            literal = isinstance(source, str) and source.startswith("'")
            if header and literal and _CREDENTIAL_HEADER.fullmatch(header.group(1)):
                params[target] = f"'{REDACTED}'"
                out.places.append(f"{at}/integration/request_parameters/{target}")


def redact(document: dict[str, Any]) -> tuple[dict[str, Any], Redacted]:
    """A copy of an export ``document`` without its secrets, and what was replaced."""
    doc = copy.deepcopy(document)
    out = Redacted()
    for i, api in enumerate(doc.get("apis") or []):
        for j, authorizer in enumerate(api.get("authorizers") or []):
            for field in ("url", "jwks_url"):
                url = _url(authorizer.get(field))
                if url is not None:
                    authorizer[field] = url
                    out.places.append(f"/apis/{i}/authorizers/{j}/{field}")
        for j, route in enumerate(api.get("routes") or []):
            _route(route, f"/apis/{i}/routes/{j}", out)
    taken: set[str] = set()
    keys = []
    for key in doc.get("api_keys") or []:
        entry = key
        if "value" in key:
            variable = _variable(str(key["id"]), taken)
            out.key_variables[str(key["id"])] = variable
            # value_env takes value's place, so the entry reads as it did
            entry = {
                "value_env" if k == "value" else k: variable if k == "value" else v for k, v in key.items()
            }
        keys.append(entry)
    if keys:
        doc["api_keys"] = keys
    return doc, out
