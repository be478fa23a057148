"""The usage screen (``/console/usage``): usage plans, API keys (their values hidden until asked,
one key at a time), requests per key per day (a uPlot chart per plan), and the requests the
gateway refused with 429, by throttle level.

Plans, keys and usage are read through the management API as the signed-in caller
(``GetUsagePlans``, ``GetApiKeys``, ``GetUsage``, ``GetApiKey`` with ``includeValue``); a part
the caller may not read is ``None``. Without a store they come from the configuration being
served, and the usage from the gateway's own counters (the same ``GetUsage`` answer).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from iamgate.config.model import GatewayConfig
from iamgate.console.calls import all_items, get, may
from iamgate.console.overview import date_text
from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.core import ApiError
from iamgate.throttle.usage import UsageError

__all__ = ["KeyRow", "PlanUsage", "UsageScreen", "read_key_value", "read_usage", "throttled_counts"]

DAYS = 7
_THROTTLED = re.compile(r"^iamgate_throttled_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$", re.M)
_LEVEL = re.compile(r'level="([^"]*)"')


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    name: str
    enabled: bool
    created: str


@dataclass(frozen=True, slots=True)
class PlanUsage:
    id: str
    name: str
    stages: tuple[str, ...]
    throttle: str
    quota: str
    days: tuple[str, ...]  # YYYY-MM-DD, oldest first
    series: tuple[tuple[str, tuple[int, ...]], ...]  # (key id, requests per day)
    note: str = ""  # why there is no usage to show


@dataclass(frozen=True, slots=True)
class UsageScreen:
    plans: tuple[PlanUsage, ...] | None
    keys: tuple[KeyRow, ...] | None
    throttled: tuple[tuple[str, int], ...]  # (level, 429s since start)


def _days(today: dt.date) -> list[dt.date]:
    return [today - dt.timedelta(days=n) for n in range(DAYS - 1, -1, -1)]


def _plan_text(throttle: dict[str, Any], quota: dict[str, Any]) -> tuple[str, str]:
    rate = (
        f"{throttle['rateLimit']}/s, burst {throttle.get('burstLimit', 0)}" if "rateLimit" in throttle else ""
    )
    limit = f"{quota['limit']} per {str(quota.get('period', '')).lower()}" if "limit" in quota else ""
    return rate, limit


async def read_usage(
    config: GatewayConfig,
    management: ManagementApp | None,
    caller: access.Caller,
    usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]] | None,
    today: dt.date,
) -> UsageScreen:
    days = _days(today)
    start, end = days[0].isoformat(), days[-1].isoformat()
    plans: tuple[PlanUsage, ...] | None = None
    if may(caller, "/usageplans"):
        raw = (
            await all_items(management, caller, "/usageplans")
            if management is not None
            else _config_plans(config)
        )
        found = []
        for plan in raw:
            plan_id = str(plan.get("id", ""))
            series: tuple[tuple[str, tuple[int, ...]], ...] = ()
            note = ""
            if not may(caller, f"/usageplans/{plan_id}/usage"):
                note = "You are not authorized to read this plan's usage."
            else:
                query = {"startDate": start, "endDate": end}
                body: dict[str, Any] = {}
                try:
                    if management is not None:
                        body = await get(management, caller, f"/usageplans/{plan_id}/usage", query)
                    elif usage is not None:
                        body = await usage({"plan": plan_id, "from": start, "to": end})
                except ApiError as exc:
                    if exc.status == 403:
                        raise
                    note = f"The usage cannot be read: {exc.message}"
                except UsageError as exc:
                    note = f"The usage cannot be read: {exc}"
                series = tuple(
                    (str(key), tuple(int(day[0]) if day else 0 for day in per_day))
                    # GetUsage's wire member is "values" (boto3 calls it items); /usage says "items"
                    for key, per_day in sorted((body.get("values") or body.get("items") or {}).items())
                )
            rate, limit = _plan_text(plan.get("throttle") or {}, plan.get("quota") or {})
            stages = tuple(sorted(f"{s.get('apiId')}/{s.get('stage')}" for s in plan.get("apiStages") or []))
            found.append(
                PlanUsage(
                    plan_id,
                    str(plan.get("name", "")),
                    stages,
                    rate,
                    limit,
                    tuple(d.isoformat() for d in days),
                    series,
                    note,
                )
            )
        plans = tuple(found)
    keys: tuple[KeyRow, ...] | None = None
    if may(caller, "/apikeys"):
        if management is not None:
            items = await all_items(management, caller, "/apikeys")
            keys = tuple(
                KeyRow(
                    str(k.get("id", "")), str(k.get("name", "")), bool(k.get("enabled", True)), _created(k)
                )
                for k in items
            )
        else:
            keys = tuple(KeyRow(k.id, k.name, k.enabled, "") for k in config.auth.api_keys)
    return UsageScreen(plans, keys, ())


def _created(key: dict[str, Any]) -> str:
    return date_text(key.get("createdDate"))


def _config_plans(config: GatewayConfig) -> list[dict[str, Any]]:
    """The configuration's usage plans in GetUsagePlans' shape."""
    out = []
    for p in config.usage_plans:
        plan: dict[str, Any] = {
            "id": p.id,
            "name": p.name,
            "apiStages": [{"apiId": s.api, "stage": s.stage} for s in p.stages],
        }
        if p.throttle is not None:
            plan["throttle"] = {"rateLimit": p.throttle.rate, "burstLimit": p.throttle.burst}
        if p.quota is not None:
            plan["quota"] = {"limit": p.quota.limit, "period": p.quota.period}
        out.append(plan)
    return out


async def read_key_value(
    config: GatewayConfig, management: ManagementApp | None, caller: access.Caller, key_id: str
) -> tuple[KeyRow, str]:
    """One API key with its value (``GetApiKey`` with ``includeValue=true``: the caller's
    policies must allow ``apigateway:GET`` on it)."""
    if management is None:
        access.authorize(caller, "apigateway:GET", f"/apikeys/{key_id}")
        found = next((k for k in config.auth.api_keys if k.id == key_id), None)
        if found is None:
            raise ApiError(404, "NotFoundException", f"Invalid API Key identifier specified {key_id}")
        return KeyRow(found.id, found.name, found.enabled, ""), found.value
    key = await get(management, caller, f"/apikeys/{key_id}", {"includeValue": "true"})
    row = KeyRow(
        str(key.get("id", "")), str(key.get("name", "")), bool(key.get("enabled", True)), _created(key)
    )
    return row, str(key.get("value", ""))


def throttled_counts(metrics_text: str) -> tuple[tuple[str, int], ...]:
    """``iamgate_throttled_total`` by level, from the gateway's Prometheus text."""
    counts: dict[str, int] = {}
    for m in _THROTTLED.finditer(metrics_text):
        level = _LEVEL.search(m.group("labels"))
        name = level.group(1) if level else "all"
        counts[name] = counts.get(name, 0) + int(float(m.group("value")))
    return tuple(sorted(counts.items()))
