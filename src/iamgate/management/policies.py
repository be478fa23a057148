"""Resource policies as the management API stores and returns them (as AWS's GetRestApi does).

A policy is validated with the project's engine when it is saved (never at deployment only), and
refused with ``BadRequestException`` whose message gives every problem with its place (line,
column and JSON pointer in the text that was sent). A valid policy is stored as API Gateway
returns it from ``GetRestApi``: compact JSON, the ``execute-api:/...`` shorthand expanded to the
API's ARN (``arn:aws:execute-api:REGION:ACCOUNT:API_ID/...``), and every ``/`` written ``\\/``
(AWS's serialiser escapes forward slashes; still the same JSON, so any JSON parser reads it).

A valid policy may still have warnings (a ``Resource`` no request can match: an account id of
11 digits, a region like ``useast1``, a method ``GETT``, another API's id). They do not refuse the
policy; :func:`save_policy` returns them as text, and the operations that save a policy answer
them in the ``RestApi``'s ``warnings`` list (a member of API Gateway's ``RestApi`` shape, which
AWS fills on imports: boto3 and the AWS CLI show it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from iamgate.config.model import GatewaySettings
from iamgate.management.core import ApiError, bad_request
from iamgate.management.patch import PatchOp
from iamgate.policy import ApiRef, Diagnostic, expand_shorthand, prepare

__all__ = [
    "INVALID_POLICY",
    "MODE_FIELD",
    "POLICY_FIELD",
    "SCOPED_PATHS",
    "patch_scoped_policy",
    "policy_object",
    "policy_warnings",
    "save_policy",
    "store_policy",
]

# A stage's or a method's own policy (iamgate's extension, docs/policy-semantics.md): kept in
# these fields of the stage or method, set with these patch paths of UpdateStage and
# UpdateMethod. AWS has no such paths; its clients send them as any patch operation.
POLICY_FIELD = "x-iamgate-policy"
MODE_FIELD = "x-iamgate-policyMode"
SCOPED_PATHS = ("/" + POLICY_FIELD, "/" + MODE_FIELD)

INVALID_POLICY = (
    "Invalid policy document. Please check the policy syntax and ensure that Principals are valid."
)
MAX_SHOWN = 8  # diagnostics quoted in one error message


def _where(d: Diagnostic) -> str:
    place = []
    if d.location.line is not None:
        place.append(f"line {d.location.line}, column {d.location.column}")
    if d.location.pointer:
        place.append(f"at {d.location.pointer}")
    return ", ".join(place) or "in the document"


def diagnostics_message(prefix: str, diagnostics: list[Diagnostic]) -> str:
    errors = [d for d in diagnostics if d.is_error]
    parts = [f"{_where(d)}: {d.code}: {d.message}" + (f" ({d.help})" if d.help else "") for d in errors]
    shown = parts[:MAX_SHOWN]
    if len(parts) > MAX_SHOWN:
        shown.append(f"and {len(parts) - MAX_SHOWN} more")
    return f"{prefix} " + "; ".join(shown)


def policy_warnings(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> list[str]:
    """The warnings of a valid policy, one text each: place, code, message and help."""
    return [
        f"policy: {_where(d)}: {d.code}: {d.message}" + (f" ({d.help})" if d.help else "")
        for d in diagnostics
        if not d.is_error
    ]


def store_policy(raw: str | Mapping[str, Any], settings: GatewaySettings, api_id: str) -> str:
    """The stored form of a policy given as JSON text (or a decoded object); BadRequest if invalid."""
    return save_policy(raw, settings, api_id)[0]


def save_policy(
    raw: str | Mapping[str, Any], settings: GatewaySettings, api_id: str
) -> tuple[str, list[str]]:
    """:func:`store_policy`, and the policy's warnings (:func:`policy_warnings`)."""
    if isinstance(raw, str) and not raw.strip():
        raise bad_request(f"{INVALID_POLICY} The policy is empty.")
    api = ApiRef(settings.region, settings.account_id, api_id)
    prepared = prepare(raw, api=api, max_chars=settings.max_policy_chars)
    if not prepared.ok:
        raise ApiError(
            400, "BadRequestException", diagnostics_message(INVALID_POLICY, list(prepared.diagnostics))
        )
    document = json.loads(raw) if isinstance(raw, str) else json.loads(json.dumps(raw))
    statements = document.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict):
            continue
        for key in ("Resource", "NotResource"):
            value = statement.get(key)
            if isinstance(value, str):
                statement[key] = expand_shorthand(value, api)
            elif isinstance(value, list):
                statement[key] = [expand_shorthand(v, api) if isinstance(v, str) else v for v in value]
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return text.replace("/", "\\/"), policy_warnings(prepared.diagnostics)


def policy_object(stored: str) -> dict[str, Any]:
    """A stored policy as a JSON object (for configuration files and exports)."""
    value = json.loads(stored)
    if not isinstance(value, dict):
        raise ValueError("a stored policy is a JSON object")
    return value


def patch_scoped_policy(doc: dict[str, Any], op: PatchOp, settings: GatewaySettings, api_id: str) -> None:
    """``replace /x-iamgate-policy`` (a policy as JSON text: validated, stored as the API's
    policy is), ``remove`` it; ``replace /x-iamgate-policyMode`` (enforce or report)."""
    if op.path == SCOPED_PATHS[0]:
        if op.op == "remove" or (op.op == "replace" and not (op.value or "").strip()):
            doc.pop(POLICY_FIELD, None)
            doc.pop(MODE_FIELD, None)
        elif op.op in ("replace", "add"):
            doc[POLICY_FIELD] = store_policy(op.need_value(), settings, api_id)
        else:
            raise bad_request(f"Invalid patch operation {op.op} on {op.path}: replace or remove")
        return
    if op.op == "remove" or (op.op == "replace" and op.value == "enforce"):
        doc.pop(MODE_FIELD, None)
    elif op.op == "replace" and op.value == "report":
        if not doc.get(POLICY_FIELD):
            raise bad_request(f"{op.path} needs a policy: set /{POLICY_FIELD} first")
        doc[MODE_FIELD] = "report"
    else:
        raise bad_request(f"Invalid value for {op.path}: '{op.value}' (enforce or report)")
