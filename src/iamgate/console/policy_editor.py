"""The policy editor (``/console/apis/{api}/policy``): an API's resource policy, checked as it is
typed, saved to the draft, deployed.

* **Checking** runs the gateway's own engine on the text (read, parse, validate with the API's id
  for the ``execute-api:/`` shorthand, then lint): every diagnostic with its line and column,
  and the text highlighted (Pygments) with the lines at fault marked. Nothing is stored.
* **Saving** patches the draft through the management API as the signed-in caller
  (``UpdateRestApi``: ``replace /policy`` and iamgate's ``replace /policyMode``), so the
  management API's own validation and authorization apply (``apigateway:PATCH`` and
  ``apigateway:UpdateRestApiPolicy``).
* **A stale draft is refused.** The form carries a version of what it was loaded from (a digest
  of the stored policy and mode). If the draft changed meanwhile (another tab, another person),
  nothing is written: the page shows both texts and keeps the one typed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from iamgate.config.model import GatewayConfig
from iamgate.console.calls import call, get
from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.core import ApiError
from iamgate.policy import ApiRef, Diagnostic, read_document
from iamgate.policy.lint import lint_policy

__all__ = ["Check", "StaleDraft", "Stored", "check", "highlight", "read_stored", "save", "version_of"]

MAX_POLICY = 64 * 1024  # the most the editor reads (the gateway's own limit is checked too)


@dataclass(frozen=True, slots=True)
class Finding:
    line: int | None
    column: int | None
    severity: str
    code: str
    message: str
    help: str


@dataclass(frozen=True, slots=True)
class Check:
    findings: tuple[Finding, ...]
    errors: int
    highlighted: str  # HTML from Pygments (its own escaping)


@dataclass(frozen=True, slots=True)
class Stored:
    api_id: str
    name: str
    endpoint_type: str
    text: str  # pretty-printed
    mode: str
    version: str


class StaleDraft(Exception):
    """The draft changed after the form was loaded."""

    def __init__(self, current: Stored) -> None:
        super().__init__("stale draft")
        self.current = current


def version_of(text: str, mode: str) -> str:
    return hashlib.sha256(f"{mode}\n{text}".encode()).hexdigest()[:24]


def _pretty(stored: str | None) -> str:
    if not stored:
        return ""
    try:
        return json.dumps(json.loads(stored), indent=2, ensure_ascii=False)
    except ValueError:
        return stored


async def read_stored(
    config: GatewayConfig, management: ManagementApp | None, caller: access.Caller, api_id: str
) -> Stored:
    """The API's policy as the draft holds it (with a store) or as it is served (without)."""
    if management is None:
        access.authorize(caller, "apigateway:GET", f"/restapis/{api_id}")
        entry = next((a for a in config.apis if a.id == api_id), None)
        if entry is None:
            raise ApiError(404, "NotFoundException", f"Invalid API identifier specified {api_id}")
        text = _pretty(entry.policy_text)
        return Stored(
            api_id,
            entry.name,
            entry.endpoint_type,
            text,
            entry.policy_mode,
            version_of(text, entry.policy_mode),
        )
    api = await get(management, caller, f"/restapis/{api_id}", {})
    text = _pretty(api.get("policy"))
    mode = str(api.get("policyMode") or "enforce")
    endpoint = ((api.get("endpointConfiguration") or {}).get("types") or ["EDGE"])[0]
    return Stored(api_id, str(api.get("name", "")), str(endpoint), text, mode, version_of(text, mode))


def check(text: str, config: GatewayConfig, api_id: str, endpoint_type: str) -> Check:
    """Every problem of ``text`` as a resource policy of ``api_id``, then the lint findings."""
    settings = config.settings
    api = ApiRef(settings.region, settings.account_id, api_id)
    if not text.strip():
        return Check(
            (Finding(None, None, "info", "", "No policy: the API is open to what its methods allow.", ""),),
            0,
            "",
        )
    if len(text) > MAX_POLICY:
        finding = Finding(
            None, None, "error", "", f"The policy is longer than {MAX_POLICY:,} characters.", ""
        )
        return Check((finding,), 1, "")
    policy, diags = read_document(text, api=api, max_chars=settings.max_policy_chars)
    found: list[Diagnostic] = list(diags)
    if policy is not None and not any(d.is_error for d in diags):
        found.extend(lint_policy(policy, endpoint_type=endpoint_type))
    findings = tuple(
        Finding(
            d.location.line,
            d.location.column,
            d.severity.value,
            d.code,
            d.message,
            d.help or "",
        )
        for d in sorted(found, key=lambda d: (d.location.line or 0, d.location.column or 0))
    )
    errors = sum(1 for f in findings if f.severity == "error")
    marked = sorted({f.line for f in findings if f.line is not None and f.severity != "info"})
    return Check(findings, errors, highlight(text, marked))


def highlight(text: str, lines: list[int] | None = None) -> str:
    """``text`` as highlighted HTML (JSON), ``lines`` (1-based) marked. Pygments is imported with
    the first policy shown (memory in every worker whose console nobody opens)."""
    from pygments import highlight as _pygments_highlight  # noqa: PLC0415
    from pygments.formatters import HtmlFormatter  # noqa: PLC0415
    from pygments.lexers import JsonLexer  # noqa: PLC0415

    formatter = HtmlFormatter(nowrap=False, hl_lines=lines or [], linenos="inline", cssclass="code")
    return _pygments_highlight(text, JsonLexer(), formatter)


async def save(
    management: ManagementApp,
    caller: access.Caller,
    config: GatewayConfig,
    api_id: str,
    text: str,
    mode: str,
    version: str,
) -> None:
    """Write the policy and mode to the draft, unless the draft changed since ``version``
    (:class:`StaleDraft`). The management API validates and authorizes as for any client."""
    current = await read_stored(config, management, caller, api_id)
    if current.version != version:
        raise StaleDraft(current)
    ops: list[dict[str, Any]] = []
    if text.strip():
        ops.append({"op": "replace", "path": "/policy", "value": text})
    elif current.text:
        ops.append({"op": "replace", "path": "/policy", "value": ""})
    if mode != current.mode:
        ops.append({"op": "replace", "path": "/policyMode", "value": mode})
    if ops:
        await call(management, caller, "PATCH", f"/restapis/{api_id}", body={"patchOperations": ops})
