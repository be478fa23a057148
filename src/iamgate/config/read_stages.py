"""Reading an API's stages: each stage's variables, access-log format and default and per-method
limits (API Gateway's stage variables and methodSettings)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from iamgate.config._reader import Reader
from iamgate.config.model import ScopedPolicy, StageConfig
from iamgate.config.read_gateway import read_log_format
from iamgate.config.read_throttle import read_limit, read_method_limits
from iamgate.policy.diagnostics import pointer_join

__all__ = ["read_stages"]

_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VAR_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


# reads a stage's or route's own policy: (its mapping, its pointer, its label) -> the policy
ScopedReader = Callable[[dict[str, Any], str, str], ScopedPolicy | None]


def read_stages(
    r: Reader, raw: object, ptr: str, scoped: ScopedReader | None = None
) -> dict[str, StageConfig]:
    """An API's ``stages``: a non-empty mapping of stage name to its settings (or nothing);
    ``scoped`` reads a stage's own ``policy`` (without it, one is an unknown key)."""
    stages: dict[str, StageConfig] = {}
    if not isinstance(raw, dict) or not raw:
        r.report(
            "wrong-type",
            ptr,
            "stages must be a non-empty mapping of stage name to settings",
            "for example stages: {prod: {variables: {backend: 127.0.0.1:9000}}}",
        )
        return stages
    for key, value in raw.items():
        sp = pointer_join(ptr, key)
        name = r.string(
            key, sp, "stage name", pattern=_STAGE, help="letters, digits, '-' and '_' (at most 128)"
        )
        if name is None:
            continue
        stage = _stage(r, name, value, sp, scoped)
        if stage is not None:
            stages[name] = stage
    return stages


def _stage(r: Reader, name: str, raw: object, ptr: str, scoped: ScopedReader | None) -> StageConfig | None:
    """One stage's settings; None when they are not a mapping (reported)."""
    if raw is None:
        return StageConfig(name, {}, None, None, {})
    keys = {
        "variables": False,
        "access_log_format": False,
        "throttling": False,
        "method_throttling": False,
    }
    if scoped is not None:
        keys.update({"policy": False, "policy_file": False, "policy_mode": False})
    m = r.mapping(raw, ptr, f"stage {name}", keys)
    if m is None:
        return None
    variables = _variables(r, m.get("variables") or {}, f"{ptr}/variables")
    log_format = None
    if m.get("access_log_format") is not None:
        log_format = read_log_format(r, m["access_log_format"], f"{ptr}/access_log_format")
    throttle_default = None
    if "throttling" in m:
        throttle_default = read_limit(r, m["throttling"], f"{ptr}/throttling", "throttling")
    method_limits = read_method_limits(r, m.get("method_throttling"), f"{ptr}/method_throttling")
    policy = scoped(m, ptr, f"stage:{name}") if scoped is not None else None
    return StageConfig(name, variables, log_format, throttle_default, method_limits, policy)


def _variables(r: Reader, raw: object, ptr: str) -> dict[str, str]:
    """A stage's ``variables``: names of letters, digits and '_', values written as strings."""
    variables: dict[str, str] = {}
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, "variables must be a mapping of name: value")
        return variables
    for vname, vvalue in raw.items():
        vp = pointer_join(ptr, vname)
        if not _VAR_NAME.fullmatch(str(vname)):
            r.report(
                "invalid-value",
                vp,
                f"stage variable name '{vname}' is not valid",
                "letters, digits and '_'",
            )
        elif not isinstance(vvalue, str | int | float) or isinstance(vvalue, bool):
            r.report("wrong-type", vp, f"stage variable {vname} must be a string")
        else:
            variables[str(vname)] = str(vvalue)
    return variables
