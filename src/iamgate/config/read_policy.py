"""Reading an API's resource policy: inline (``policy``, a YAML mapping or JSON text) or from a
file (``policy_file``), prepared by the policy engine, its diagnostics placed in the YAML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iamgate.config._reader import Reader
from iamgate.config._yaml import UNSTORABLE, unstorable_in
from iamgate.config.model import GatewaySettings, ScopedPolicy
from iamgate.policy import ApiRef, Diagnostic, Prepared, Severity, prepare

__all__ = ["POLICY_MODES", "read_policy", "read_scoped_policy"]

POLICY_MODES = ("enforce", "report")


def _prepare(
    r: Reader, source: str | bytes, api: ApiRef, max_chars: int | None, source_name: str | None
) -> Prepared:
    """The policy compiled for the API, once per configuration read: the same text on many
    routes or stages of an API (a policy file they share) is compiled once, and a serving
    process's reload takes what its last read compiled (``r.earlier``: a policy file that did
    not change). Only the last read's policies are kept: a process-wide cache (as this was,
    4,096 entries) kept every redeploy's superseded policy until it filled, and a serving
    process's memory grew with each redeploy."""
    text = source if isinstance(source, str) else source.decode("utf-8", "surrogateescape")
    named = text if source_name is None else f"{source_name}\0{text}"
    key = (named, api.region, api.account, api.api_id, max_chars)
    found = r.compiled.get(key) or r.earlier.get(key)
    if found is None:
        found = prepare(source, api=api, max_chars=max_chars, source_name=source_name)
    r.compiled[key] = found
    return found


def _unstorable_policy(r: Reader, text: str, ptr: str, file: str | None) -> bool:
    """Report a policy whose JSON escapes make a character no store can keep (``\\u0000``: the
    text is storable, the document a deployment stores is not); True when there is one."""
    try:
        found = unstorable_in(json.loads(text.removeprefix("\ufeff")))
    except ValueError:  # read as valid by the policy reader: nothing more to say here
        return False
    if found is None:
        return False
    inner, what = found
    where = f" of {file}" if file else ""
    message = f"the policy{where} holds {what} at {inner} (a JSON escape), which no store can keep"
    r.diags.append(Diagnostic(UNSTORABLE, Severity.ERROR, message, r.positions.location(ptr), None, r.source))
    return True


def read_policy(
    r: Reader,
    m: dict[str, Any],
    ptr: str,
    settings: GatewaySettings,
    api_id: str | None,
    watched: list[str],
) -> tuple[Any, str | None, bool]:
    """An API's ``policy`` (a mapping or JSON text) or ``policy_file``, compiled for the API:
    (compiled policy or None, stored text, ok). A policy file is added to ``watched``."""
    if "policy" in m and "policy_file" in m:
        r.report("conflicting-keys", f"{ptr}/policy_file", "give either policy or policy_file, not both")
        return None, None, False
    api = ApiRef(settings.region, settings.account_id, api_id or "unknown")
    if "policy" in m and m["policy"] is not None:
        raw = m["policy"]
        if not isinstance(raw, dict | str):
            r.report(
                "wrong-type",
                f"{ptr}/policy",
                "policy must be a mapping (the JSON document written as "
                f"YAML) or a JSON string, not {r.kind(raw)}",
            )
            return None, None, False
        if isinstance(raw, str):
            prepared = _prepare(r, raw, api, settings.max_policy_chars, None)
        else:  # a mapping: compiled from the line numbers of the YAML file, not cached
            prepared = prepare(raw, api=api, max_chars=settings.max_policy_chars)
        base = f"{ptr}/policy"
        for d in prepared.diagnostics:
            message = d.message
            if isinstance(raw, dict):
                location = r.positions.location(base + d.location.pointer)
            else:
                location = r.positions.location(base)
                if d.location.line is not None:
                    message += f" (line {d.location.line}, column {d.location.column} of the policy text)"
            r.diags.append(Diagnostic(d.code, d.severity, message, location, d.help, r.source))
        text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
        if prepared.policy is not None and isinstance(raw, str) and _unstorable_policy(r, text, base, None):
            return None, None, False
        return prepared.policy, text, prepared.policy is not None
    if "policy_file" in m:
        name = r.string(m["policy_file"], f"{ptr}/policy_file", "policy_file")
        if name is None:
            return None, None, False
        path = Path(name)
        if not path.is_absolute():
            path = r.base_dir / path
        watched.append(str(path))  # watched even when unreadable: creating it triggers a reload
        try:
            data = r.read_file(path)
        except OSError as exc:
            r.report(
                "policy-file", f"{ptr}/policy_file", f"cannot read policy_file {path}: {exc.strerror or exc}"
            )
            return None, None, False
        prepared = _prepare(r, data, api, settings.max_policy_chars, str(path))
        r.diags.extend(prepared.diagnostics)
        text = data.decode("utf-8", "replace")
        if prepared.policy is not None and _unstorable_policy(r, text, f"{ptr}/policy_file", str(path)):
            return None, None, False
        return prepared.policy, text, prepared.policy is not None
    return None, None, True


def read_scoped_policy(
    r: Reader,
    m: dict[str, Any],
    ptr: str,
    settings: GatewaySettings,
    api_id: str | None,
    watched: list[str],
    label: str,
) -> ScopedPolicy | None:
    """A stage's or a route's own ``policy`` / ``policy_file`` and ``policy_mode`` (iamgate's
    extension, docs/policy-semantics.md): compiled for the API as its resource policy is; None
    when there is none or it has errors (reported)."""
    mode = "enforce"
    if "policy_mode" in m:
        mode = r.string(m["policy_mode"], f"{ptr}/policy_mode", "policy_mode", choices=POLICY_MODES) or mode
        if "policy" not in m and "policy_file" not in m:
            r.report("invalid-value", f"{ptr}/policy_mode", "policy_mode without a policy or policy_file")
    policy, text, _ = read_policy(r, m, ptr, settings, api_id, watched)
    if policy is None or text is None:
        return None
    return ScopedPolicy(label, policy, text, mode)
