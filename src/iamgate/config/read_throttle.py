"""Reading the configuration of rate limits, quotas and usage plans (docs/throttling.md).

::

    throttling:
      backend: memory                      # or redis
      redis: {url: redis://127.0.0.1:6379/0, timeout: 0.05, prefix: "iamgate:", on_error: open}
      account: {rate: 10000, burst: 5000}  # API Gateway's default account-level limit
    usage_plans:
      - id: basic
        api_stages: [{api: a1b2c3d4e5, stage: prod, throttle: {"/pets/GET": {rate: 1, burst: 1}}}]
        throttle: {rate: 10, burst: 20}
        quota: {limit: 1000, period: WEEK, offset: 1}  # weeks start on Monday
        # or: {limit: 1000, period: MONTH, offset: 200, offset_mode: subtract, created: 2026-11-01}
        keys: [k1]
        on_backend_error: open             # or closed

Per stage: ``throttling: {rate, burst}`` and ``method_throttling: {"/pets/GET": {rate, burst}}``.
Per route (iamgate's extension): ``rate_limit: {by: ip | principal | context.authorizer.KEY, rate,
burst}``.

The values it builds are :mod:`iamgate.throttle.settings`'s.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Any

from iamgate.config._reader import Reader
from iamgate.policy.diagnostics import pointer_join
from iamgate.throttle.settings import Limit, PlanStage, QuotaSpec, RateLimitRule, ThrottleSettings, UsagePlan

__all__ = [
    "read_limit",
    "read_method_limits",
    "read_rate_limit",
    "read_throttling",
    "read_usage_plans",
]

PERIODS = ("DAY", "WEEK", "MONTH")
OFFSET_MODES = ("start-day", "subtract")
_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
_METHOD_KEY = re.compile(r"(/[^\s]*)/(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|ANY|\*)")
_BY = re.compile(r"ip|principal|context\.authorizer\.[A-Za-z0-9_.:-]+")


def read_limit(r: Reader, raw: object, ptr: str, what: str) -> Limit | None:
    m = r.mapping(raw, ptr, what, {"rate": True, "burst": True})
    if m is None or not {"rate", "burst"} <= set(m):
        return None
    rate = r.number(m["rate"], f"{ptr}/rate", "rate", low=0, high=1e9)
    burst = r.number(m["burst"], f"{ptr}/burst", "burst", low=0, high=1e9, integer=True)
    if rate is None or burst is None:
        return None
    return Limit(float(rate), int(burst))


def read_method_limits(r: Reader, raw: object, ptr: str) -> dict[str, Limit]:
    """``{"/pets/GET": {rate, burst}}``: a resource path and a verb (or ANY / *)."""
    out: dict[str, Limit] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, 'method limits must be a mapping of "/path/METHOD": {rate, burst}')
        return out
    for key, value in raw.items():
        p = pointer_join(ptr, key)
        if not _METHOD_KEY.fullmatch(str(key)):
            r.report(
                "invalid-value",
                p,
                f"'{key}' is not a resource path and method",
                "for example /pets/GET, /pets/{id}/DELETE, //GET for the root, /*/* for every method",
            )
            continue
        limit = read_limit(r, value, p, f"the limit of {key}")
        if limit is not None:
            out[str(key)] = limit
    return out


def read_rate_limit(r: Reader, raw: object, ptr: str) -> RateLimitRule | None:
    m = r.mapping(raw, ptr, "rate_limit", {"by": True, "rate": True, "burst": True})
    if m is None or not {"by", "rate", "burst"} <= set(m):
        return None
    by = r.string(m["by"], f"{ptr}/by", "by", pattern=_BY, help="ip, principal or context.authorizer.KEY")
    limit = read_limit(r, {"rate": m["rate"], "burst": m["burst"]}, ptr, "rate_limit")
    if by is None or limit is None:
        return None
    return RateLimitRule(by, limit)


def _on_error(r: Reader, m: dict[str, Any], key: str, ptr: str) -> bool:
    if key not in m:
        return True
    value = r.string(m[key], f"{ptr}/{key}", key, choices=("open", "closed"))
    return value != "closed"


def read_throttling(r: Reader, raw: object) -> ThrottleSettings:
    defaults = ThrottleSettings()
    if raw is None:
        return defaults
    ptr = "/throttling"
    m = r.mapping(raw, ptr, "throttling", {"backend": False, "redis": False, "account": False})
    if m is None:
        return defaults
    backend = r.string(m.get("backend", "memory"), f"{ptr}/backend", "backend", choices=("memory", "redis"))
    account = read_limit(r, m["account"], f"{ptr}/account", "account") if "account" in m else None
    url, timeout, prefix, fail_open = None, defaults.redis_timeout, defaults.redis_prefix, True
    if "redis" in m:
        rm = r.mapping(
            m["redis"],
            f"{ptr}/redis",
            "redis",
            {"url": True, "timeout": False, "prefix": False, "on_error": False},
        )
        if rm is not None:
            url = r.string(
                rm.get("url"),
                f"{ptr}/redis/url",
                "url",
                pattern=re.compile(r"rediss?://.+"),
                help="redis://HOST:PORT/DB",
            )
            if "timeout" in rm:
                timeout = (
                    r.number(rm["timeout"], f"{ptr}/redis/timeout", "timeout", low=0.001, high=5) or timeout
                )
            if "prefix" in rm:
                prefix = r.string(rm["prefix"], f"{ptr}/redis/prefix", "prefix") or prefix
            fail_open = _on_error(r, rm, "on_error", f"{ptr}/redis")
    if backend == "redis" and url is None:
        r.report("missing-key", ptr, "the redis backend needs redis: {url: redis://HOST:PORT/DB}")
    return ThrottleSettings(
        backend or "memory", url, float(timeout), prefix, fail_open, account or defaults.account, True
    )


def _quota(r: Reader, raw: object, p: str) -> QuotaSpec | None:
    qm = r.mapping(
        raw,
        p,
        "quota",
        {"limit": True, "period": True, "offset": False, "offset_mode": False, "created": False},
    )
    if qm is None or not {"limit", "period"} <= set(qm):
        return None
    limit = r.number(qm["limit"], f"{p}/limit", "limit", low=0, high=1e15, integer=True)
    period = r.string(qm["period"], f"{p}/period", "period", choices=PERIODS)
    mode = "start-day"
    if "offset_mode" in qm:
        mode = r.string(qm["offset_mode"], f"{p}/offset_mode", "offset_mode", choices=OFFSET_MODES) or mode
    offset = 0
    if "offset" in qm:
        high = {"DAY": 0, "WEEK": 6, "MONTH": 27}.get(period or "DAY", 0) if mode == "start-day" else 1e15
        # start-day: the first day of a WEEK (0 = Sunday) or MONTH (0 = the 1st); DAY takes none
        n = r.number(qm["offset"], f"{p}/offset", "offset", low=0, high=high, integer=True)
        offset = int(n) if n is not None else 0
    created = None
    if mode == "subtract":
        if "created" not in qm:
            r.report(
                "missing-key",
                p,
                "offset_mode subtract takes 'offset' off the limit in the plan's first period: "
                "give the day it starts from as created: YYYY-MM-DD",
            )
        else:
            text = r.string(str(qm["created"]), f"{p}/created", "created", pattern=_DATE, help="YYYY-MM-DD")
            if text is not None:
                created = calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    elif "created" in qm:
        r.report("invalid-value", f"{p}/created", "'created' only matters with offset_mode: subtract")
    if limit is None or period is None:
        return None
    return QuotaSpec(int(limit), period, offset, mode == "subtract", created)


def read_usage_plans(r: Reader, raw: object, api_keys: set[str]) -> tuple[UsagePlan, ...]:
    if raw is None:
        return ()
    plans: list[UsagePlan] = []
    ids: set[str] = set()
    plan_of_stage: dict[tuple[str, str, str], str] = {}
    for i, item in enumerate(r.sequence(raw, "/usage_plans", "usage_plans") or []):
        p = f"/usage_plans/{i}"
        m = r.mapping(
            item,
            p,
            "a usage plan",
            {
                "id": True,
                "name": False,
                "api_stages": True,
                "throttle": False,
                "quota": False,
                "keys": False,
                "on_backend_error": False,
            },
        )
        if m is None or "id" not in m:
            continue
        plan_id = r.string(
            m["id"],
            f"{p}/id",
            "id",
            pattern=re.compile(r"[A-Za-z0-9_-]{1,64}"),
            help="letters, digits, '-' and '_'",
        )
        if plan_id is None:
            continue
        if plan_id in ids:
            r.report("duplicate-id", f"{p}/id", f"usage plan '{plan_id}' is defined twice")
            continue
        ids.add(plan_id)
        stages: list[PlanStage] = []
        for j, st in enumerate(r.sequence(m.get("api_stages", []), f"{p}/api_stages", "api_stages") or []):
            sp = f"{p}/api_stages/{j}"
            sm = r.mapping(st, sp, "an API stage", {"api": True, "stage": True, "throttle": False})
            if sm is None or not {"api", "stage"} <= set(sm):
                continue
            stages.append(
                PlanStage(
                    str(sm["api"]),
                    str(sm["stage"]),
                    read_method_limits(r, sm.get("throttle"), f"{sp}/throttle"),
                )
            )
        throttle = read_limit(r, m["throttle"], f"{p}/throttle", "throttle") if "throttle" in m else None
        quota = None
        quota = _quota(r, m["quota"], f"{p}/quota") if "quota" in m else None
        keys: list[str] = []
        for j, key in enumerate(r.sequence(m.get("keys", []), f"{p}/keys", "keys") or []):
            if str(key) not in api_keys:
                r.report("invalid-value", f"{p}/keys/{j}", f"API key '{key}' is not defined under api_keys")
                continue
            for st in stages:
                other = plan_of_stage.get((str(key), st.api, st.stage))
                if other is not None:
                    r.report(
                        "invalid-value",
                        f"{p}/keys/{j}",
                        f"API key '{key}' is already in usage plan '{other}' for {st.api}/{st.stage}",
                        "a key may be in one usage plan per API stage, as on API Gateway",
                    )
                plan_of_stage[(str(key), st.api, st.stage)] = plan_id
            keys.append(str(key))
        fail_open = _on_error(r, m, "on_backend_error", p)
        plans.append(
            UsagePlan(
                plan_id, str(m.get("name") or plan_id), tuple(stages), throttle, quota, tuple(keys), fail_open
            )
        )
    return tuple(plans)
