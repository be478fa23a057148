"""Usage reports in the shape of API Gateway's ``GetUsage``.

``{"usagePlanId": "basic", "startDate": "2026-11-01", "endDate": "2026-11-03",
"items": {"k1": [[used, remaining], ...one pair per day]}, "position": null}``

``used`` is the number of requests the key made on that day (UTC) through the plan's stages that
were admitted; ``remaining`` is what was left of the plan's quota at the end of that day (``null``
when the plan has no quota). Both come from the backend's per-day counters, so every worker of a
node, and every gateway sharing one Redis, reports the same numbers.
"""

from __future__ import annotations

import calendar
import inspect
import re
import time
from collections.abc import Mapping
from typing import Any

from iamgate.throttle.backend import Backend
from iamgate.throttle.settings import UsagePlan

__all__ = ["MAX_DAYS", "UsageError", "get_usage"]

MAX_DAYS = 366
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class UsageError(Exception):
    """A usage query that cannot be answered; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _day(text: str | None, name: str) -> int:
    if not text:
        raise UsageError(f"'{name}' is required (a UTC date, YYYY-MM-DD)")
    if not _DATE.fullmatch(text):
        raise UsageError(f"'{name}' must be a date like 2026-11-28, not {text!r}")
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise UsageError(f"'{name}' is not a date: {text!r}") from None


def _name(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _first(query: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if query.get(name):
            return query[name]
    return None


def _only_plan(plans: dict[str, UsagePlan], key_id: str | None) -> str:
    """The plan a query means when it names none: the key's only plan, or the only plan."""
    if key_id is None:
        if len(plans) == 1:
            return next(iter(plans))
        raise UsageError(f"name a usage plan ('plan'): {', '.join(sorted(plans))}")
    having = sorted(p.id for p in plans.values() if key_id in p.keys)
    if not having:
        raise UsageError(f"API key '{key_id}' is in no usage plan", 404)
    if len(having) > 1:
        raise UsageError(
            f"API key '{key_id}' is in several usage plans; name one ('plan'): {', '.join(having)}"
        )
    return having[0]


async def get_usage(snapshot: Any, backend: Backend, query: Mapping[str, str]) -> dict[str, Any]:
    """Answer a usage query: ``from``/``to`` (or ``startDate``/``endDate``), optionally ``key``
    (or ``keyId``) to report one key, and ``plan`` (or ``usagePlanId``), which may be left out
    when the key is in one plan only, or only one plan is configured."""
    plans: dict[str, UsagePlan] = {p.id: p for p in snapshot.config.usage_plans}
    if not plans:
        raise UsageError("no usage plans are configured", 404)
    key_id = _first(query, "key", "keyId")
    plan_id = _first(query, "plan", "usagePlanId") or _only_plan(plans, key_id)
    plan = plans.get(plan_id)
    if plan is None:
        raise UsageError(f"there is no usage plan '{plan_id}' (plans: {', '.join(sorted(plans))})", 404)
    start_name = _first(query, "from", "startDate")
    end_name = _first(query, "to", "endDate")
    start = _day(start_name, "from")
    end = _day(end_name, "to")
    if end < start:
        raise UsageError(f"'to' ({end_name}) is before 'from' ({start_name})")
    days = (end - start) // 86400 + 1
    if days > MAX_DAYS:
        raise UsageError(f"at most {MAX_DAYS} days at a time; asked for {days}")
    keys = list(plan.keys)
    if key_id is not None:
        if key_id not in keys:
            raise UsageError(f"API key '{key_id}' is not in usage plan '{plan.id}'", 404)
        keys = [key_id]
    # the counters needed: the asked days, and before them the rest of the first quota period
    first = start
    if plan.quota is not None:
        first = plan.quota.window(start)[0]
    names = [_name(t) for t in range(first, end + 1, 86400)]
    items: dict[str, list[list[int | None]]] = {}
    for key in keys:
        counts = backend.usage(f"usage:{plan.id}:{key}", names)
        if inspect.isawaitable(counts):
            counts = await counts
        assert isinstance(counts, dict)
        pairs: list[list[int | None]] = []
        used_in_period = 0
        period_end = 0
        limit = 0
        for t, name in zip(range(first, end + 1, 86400), names, strict=True):
            used = int(counts.get(name, 0))
            remaining: int | None = None
            if plan.quota is not None:
                if t >= period_end:
                    _, period_end, limit = plan.quota.window(t)
                    used_in_period = 0
                used_in_period += used
                remaining = max(0, limit - used_in_period)
            if t >= start:
                pairs.append([used, remaining])
        items[key] = pairs
    return {
        "usagePlanId": plan.id,
        "startDate": _name(start),
        "endDate": _name(end),
        "items": items,
        "position": None,
    }
