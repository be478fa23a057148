"""Rate limits, quotas and usage plans as typed immutable values (docs/throttling.md).

Read from the configuration file by ``config/read_throttle.py`` and from a store's usage plans
by the management API; used by the snapshot, the throttle stage and the usage reports. Nothing
here imports the configuration: the throttle package sits below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iamgate.throttle.backend import period_bounds

__all__ = [
    "Limit",
    "PlanStage",
    "QuotaSpec",
    "RateLimitRule",
    "ThrottleSettings",
    "UsagePlan",
]


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # tokens per second
    burst: int


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    limit: int
    period: str  # DAY | WEEK | MONTH
    offset: int = 0
    # offset_mode "subtract" (the API reference's reading): offset is a number of requests taken off the
    # limit in the initial period, the one containing ``created`` (epoch seconds)
    subtract: bool = False
    created: int | None = None

    def window(self, now: float) -> tuple[int, int, int]:
        """The period containing ``now`` (start, end) and the limit that applies in it."""
        if not self.subtract:
            start, end = period_bounds(now, self.period, self.offset)
            return start, end, self.limit
        start, end = period_bounds(now, self.period)
        initial = self.created is not None and start <= self.created < end
        return start, end, max(0, self.limit - self.offset) if initial else self.limit


@dataclass(frozen=True, slots=True)
class PlanStage:
    api: str
    stage: str
    methods: dict[str, Limit] = field(default_factory=dict)  # "/pets/GET" -> limit


@dataclass(frozen=True, slots=True)
class UsagePlan:
    id: str
    name: str
    stages: tuple[PlanStage, ...]
    throttle: Limit | None
    quota: QuotaSpec | None
    keys: tuple[str, ...]  # API key ids
    fail_open: bool = True  # on a backend failure: let requests through (API Gateway's behaviour)


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    by: str  # "ip" | "principal" | "context.authorizer.KEY"
    limit: Limit


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    backend: str = "memory"
    redis_url: str | None = None
    redis_timeout: float = 0.05
    redis_prefix: str = "iamgate:"
    fail_open: bool = True  # for limits outside usage plans, when the backend fails
    account: Limit = Limit(10000.0, 5000)
    configured: bool = False  # the file has a throttling section: the account limit applies
