"""The throttle stage: usage plans, stage and method limits, the account limit, per-route limits.

The levels, in API Gateway's order (docs/throttling.md), each a token bucket the request must get
a token from (all or nothing, see ``throttle.backend``):

1. the usage plan of the request's API key (only on methods that require a key): the plan's
   per-method limit for this method, or else the plan's own limit, shared by the key across the
   plan's stages; then the plan's quota;
2. the stage's limit for this method (``method_throttling``), or else the stage's default
   (``throttling``), one bucket per method;
3. the account limit (``throttling.account``, API Gateway's default 10,000/s with a burst of 5,000);
4. iamgate's extension, ``rate_limit`` on a route: a bucket per client address, per caller or per
   authorizer context value.

Nothing is counted when ``throttling`` is absent from the configuration and no usage plan or
route limit applies.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Final

from iamgate.config.snapshot import StaticThrottle, static_throttle
from iamgate.pipeline import responses as R
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import Later
from iamgate.pipeline.mapping import authorizer_values
from iamgate.throttle.backend import ALLOWED, Bucket, Quota, Verdict, VerdictSink

__all__ = ["throttle"]

log: Final = logging.getLogger("iamgate.throttle")


def throttle(ex: Exchange) -> R.GatewayResponse | Later | None:
    limits = ex.snapshot.limits
    if limits is None:
        return None
    route = ex.route
    assert route is not None  # route ran first
    # the stage and account buckets depend on the route, stage and method only: built with the
    # snapshot, found by the route stage
    cached = ex.route_throttle
    if cached is None:  # a method outside routing's METHODS, on an ANY route
        cached = static_throttle(
            limits,
            ex.api.id,  # type: ignore[union-attr]
            ex.stage,  # type: ignore[arg-type]
            route.resource_path,
            route.method,
            ex.method,
        )
    buckets, levels = cached
    plan: Any = None
    quota: Quota | None = None
    usage: str | None = None
    fail_open = limits.fail_open
    if ex.api_key is not None or route.rate_limit is not None:  # the common case has neither
        buckets, levels, plan, quota, usage, fail_open = _request_buckets(ex, limits, route, cached)
    if not buckets and quota is None and usage is None:
        return None
    services = ex.services
    assert services is not None  # set before the stages run
    result = services.throttler.submit(buckets, quota, ex.wall, usage)
    if result is ALLOWED:
        return None
    if isinstance(result, Verdict):
        return _answer(ex, result, levels, plan, quota, fail_open)
    # a backend that answers later (Redis): the connection goes on when the verdict arrives
    waiting = _Waiting(ex, levels, plan, quota, fail_open)
    result.then(waiting)
    return waiting


def _request_buckets(
    ex: Exchange, limits: Any, route: Any, cached: StaticThrottle
) -> tuple[tuple[Bucket, ...], tuple[str, ...], Any, Quota | None, str | None, bool]:
    """With an API key (its usage plan) or a per-route limit: the request's buckets and levels,
    its plan, quota, usage counter and fail mode."""
    api, stage = ex.api, ex.stage
    assert api is not None
    assert stage is not None
    buckets, levels = cached
    key = ex.api_key
    quota = None
    usage = None
    plan = None
    fail_open = limits.fail_open
    if key is not None and route.api_key_required:
        plan = limits.plan_for(key.id, api.id, stage.name)
    if plan is not None:
        fail_open = plan.fail_open
        method_key = f"{route.resource_path}/{ex.method}"
        per_method = limits.plan_method_limit(plan, api.id, stage.name, method_key, route.method)
        if per_method is not None:
            bucket = Bucket(
                f"plan:{plan.id}:{key.id}:{api.id}:{stage.name}:{method_key}",  # type: ignore[union-attr]
                per_method.rate,
                per_method.burst,
            )
            buckets, levels = (bucket, *buckets), ("usage-plan-method", *levels)
        elif plan.throttle is not None:
            bucket = Bucket(f"plan:{plan.id}:{key.id}", plan.throttle.rate, plan.throttle.burst)  # type: ignore[union-attr]
            buckets, levels = (bucket, *buckets), ("usage-plan", *levels)
        if plan.quota is not None:
            start, end, limit = plan.quota.window(ex.wall)
            quota = Quota(f"quota:{plan.id}:{key.id}", limit, start, end)  # type: ignore[union-attr]
        usage = f"usage:{plan.id}:{key.id}"  # type: ignore[union-attr]
    rule = route.rate_limit
    if rule is not None:
        value = _rule_value(ex, rule.by)
        if value is not None:
            bucket = Bucket(
                f"route:{api.id}:{stage.name}:{route.resource_path}/{ex.method}:{rule.by}:{value}",
                rule.limit.rate,
                rule.limit.burst,
            )
            buckets, levels = (*buckets, bucket), (*levels, f"route-{rule.by.split('.')[0]}")
    return buckets, levels, plan, quota, usage, fail_open


class _Waiting(Later, VerdictSink):
    """The stage's answer once a backend that answers later (Redis) has answered: hears the
    backend's verdict and answers the connection, in the same call."""

    def __init__(
        self, ex: Exchange, levels: tuple[str, ...], plan: Any, quota: Quota | None, fail_open: bool
    ) -> None:
        super().__init__(ex)
        self.levels = levels
        self.plan = plan
        self.quota = quota
        self.fail_open = fail_open

    def verdict(self, verdict: Verdict) -> None:
        try:
            result = _answer(self.ex, verdict, self.levels, self.plan, self.quota, self.fail_open)
        except Exception:  # a bug must not leave the request waiting, nor let it through
            log.exception("throttle answer failed for request %s", self.ex.request_id)
            result = R.gateway_error(R.API_CONFIGURATION_ERROR)
        self.answer(result)


def _rule_value(ex: Exchange, by: str) -> str | None:
    if by == "ip":
        return ex.source_ip
    if by == "principal":
        if ex.identity is not None:
            return ex.identity.caller_arn
        if ex.authorizer is not None:
            return ex.authorizer.principal_id
        if ex.claims is not None:
            sub = ex.claims.claims.get("sub")
            return str(sub) if sub is not None else None
        return "anonymous"
    return authorizer_values(ex).get(by[len("context.authorizer.") :])


def _answer(
    ex: Exchange, verdict: Verdict, levels: tuple[str, ...], plan: Any, quota: Quota | None, fail_open: bool
) -> R.GatewayResponse | None:
    if verdict.allowed:
        return None
    assert ex.services is not None
    metrics = ex.services.metrics
    api = ex.api.id if ex.api is not None else "-"
    stage = ex.stage.name if ex.stage is not None else "-"
    if verdict.failed == "backend":
        mode = "open" if fail_open else "closed"
        metrics.inc("iamgate_throttle_backend_fallbacks_total", (("api", api), ("mode", mode)))
        if fail_open:
            return None
        ex.throttled_by = "backend-unavailable"
        return _with_retry(R.gateway_error(R.THROTTLED), "1")
    if verdict.failed == "quota":
        metrics.inc(
            "iamgate_quota_exceeded_total",
            (("api", api), ("stage", stage), ("plan", plan.id if plan is not None else "-")),
        )
        ex.throttled_by = "quota"
        wait = quota.end - ex.wall if quota is not None else verdict.retry_after
        return _with_retry(R.gateway_error(R.QUOTA_EXCEEDED), str(max(1, math.ceil(wait))))
    retry = str(max(1, math.ceil(verdict.retry_after))) if math.isfinite(verdict.retry_after) else "3600"
    level = levels[verdict.index] if 0 <= verdict.index < len(levels) else "unknown"
    metrics.inc("iamgate_throttled_total", (("api", api), ("stage", stage), ("level", level)))
    ex.throttled_by = level
    return _with_retry(R.gateway_error(R.THROTTLED), retry)


def _with_retry(response: R.GatewayResponse, seconds: str) -> R.GatewayResponse:
    return R.GatewayResponse(
        response.status,
        response.body,
        (*response.headers, ("Retry-After", seconds)),
        response.response_type,
        response.error_type,
        response.message,
    )
