"""Prometheus metrics: counters and histograms kept as plain dictionaries.

Written by hand rather than with prometheus_client because the request path pays for every
metric update: a dictionary increment costs about a tenth of a microsecond, a labelled
prometheus_client update several microseconds behind a lock. Values from several worker
processes are merged by the supervisor (:func:`merge`) before rendering.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["BUCKETS", "Metrics", "bucket", "merge", "render"]

# the bounds as a list: compiled, a fixed-size tuple of floats is unpacked into C doubles on every
# read of the global (and mypyc 2.4 leaves a Final tuple literal of floats unset at import)
_BOUNDS: Final[list[float]] = [
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
]
BUCKETS: Final = tuple(_BOUNDS)
_LAST: Final = len(_BOUNDS)


def bucket(seconds: float) -> int:
    """The index of the first bound >= ``seconds`` (``len(BUCKETS)``: +Inf), as
    ``bisect.bisect_left(BUCKETS, seconds)`` says. Written out because, compiled, this loop over
    the list is a few dozen machine instructions; calling ``bisect`` from compiled code is a
    module attribute lookup, a boxed float and a generic call (about 600)."""
    lo = 0
    hi = _LAST
    while lo < hi:
        mid = (lo + hi) >> 1
        if _BOUNDS[mid] < seconds:
            lo = mid + 1
        else:
            hi = mid
    return lo


_HELP: Final = {
    "iamgate_requests_total": ("counter", "Requests by API, stage, status and policy decision."),
    "iamgate_policy_would_deny_total": ("counter", "Requests a report-only policy would have denied."),
    "iamgate_request_duration_seconds": ("histogram", "Time from request head to response end."),
    "iamgate_upstream_duration_seconds": ("histogram", "Time from sending to a backend to its response end."),
    "iamgate_upstream_errors_total": ("counter", "Backend failures by kind (timeout, connect, reset...)."),
    "iamgate_upstream_retries_total": ("counter", "Requests retried once on a fresh connection."),
    "iamgate_config_reloads_total": ("counter", "Configuration reloads by result."),
    "iamgate_config_version": ("gauge", "Version number of the configuration being served."),
    "iamgate_connections": ("gauge", "Open client connections."),
    "iamgate_client_connections_closed_total": (
        "counter",
        "Client connections closed with no request to answer (timeouts, the connection limit).",
    ),
    "iamgate_requests_in_flight": ("gauge", "Requests being served."),
    "iamgate_tls_certificate_expiry_timestamp_seconds": (
        "gauge",
        "When each certificate served expires (Unix time), by port and domain.",
    ),
    "iamgate_tls_handshakes_total": (
        "counter",
        "TLS connections by port and result (ok, or why refused: plain_http, unknown_name, timeout...).",
    ),
    "iamgate_throttled_total": ("counter", "Requests refused (429) by a rate limit, by level."),
    "iamgate_quota_exceeded_total": ("counter", "Requests refused (429): a usage plan quota ran out."),
    "iamgate_log_lines_dropped_total": (
        "counter",
        "Log lines dropped because their reader stopped reading (a full pipe on stdout or stderr, "
        "a stalled file): the access log (log=access) or the process log (log=process).",
    ),
    "iamgate_console_decisions_dropped_total": (
        "counter",
        "Decision-stream events not sent to a console viewer: its queue was full (viewer), or the "
        "ring dropped them before they were read (missed).",
    ),
    "iamgate_throttle_backend_fallbacks_total": (
        "counter",
        "Requests decided by the fail mode (open or closed) because the throttle backend failed.",
    ),
}


class _Histogram:
    """One per-request histogram: bucket counts (the last one +Inf), sum and count."""

    __slots__ = ("counts", "n", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def add(self, seconds: float) -> None:
        self.counts[bucket(seconds)] += 1
        self.total += seconds
        self.n += 1

    def values(self) -> list[float]:
        """In the labelled tables' layout: buckets, +Inf, sum, count."""
        return [float(c) for c in self.counts] + [self.total, float(self.n)]


class _Stage:
    """The per-request numbers of one API stage: requests by status and decision, durations."""

    __slots__ = ("durations", "requests", "upstream")

    def __init__(self) -> None:
        self.requests: dict[int, dict[str, int]] = {}
        self.durations = _Histogram()
        self.upstream = _Histogram()


class Metrics:
    __slots__ = ("_stages", "counters", "gauges", "histograms")

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        # the per-request metrics, by api then stage (labels are built only when exported)
        self._stages: dict[str, dict[str, _Stage]] = {}

    def request(
        self, api: str, stage: str, status: int, decision: str, seconds: float, upstream_seconds: float | None
    ) -> None:
        """Count one finished request: the hot path's only metrics call (plain dictionary
        lookups by the request's own strings, no tuple built)."""
        stages = self._stages.get(api)
        if stages is None:
            stages = self._stages[api] = {}
        totals = stages.get(stage)
        if totals is None:
            totals = stages[stage] = _Stage()
        by_decision = totals.requests.get(status)
        if by_decision is None:
            by_decision = totals.requests[status] = {}
        by_decision[decision] = by_decision.get(decision, 0) + 1
        totals.durations.add(seconds)
        if upstream_seconds is not None:
            totals.upstream.add(upstream_seconds)

    def _fold(self) -> None:
        """Move the per-request tables into the labelled ones (before reading them)."""
        stages, self._stages = self._stages, {}
        for api, by_stage in stages.items():
            for stage, totals in by_stage.items():
                for status, by_decision in totals.requests.items():
                    for decision, n in by_decision.items():
                        labels = (("api", api), ("stage", stage), ("status", str(status)))
                        self.inc("iamgate_requests_total", (*labels, ("decision", decision)), n)
                for name, histogram in (
                    ("iamgate_request_duration_seconds", totals.durations),
                    ("iamgate_upstream_duration_seconds", totals.upstream),
                ):
                    if not histogram.n:
                        continue
                    mine = self.histograms.setdefault(
                        (name, (("api", api), ("stage", stage))), [0.0] * (len(BUCKETS) + 3)
                    )
                    for i, c in enumerate(histogram.values()):
                        mine[i] += c

    def inc(self, name: str, labels: tuple[tuple[str, str], ...] = (), value: float = 1.0) -> None:
        key = (name, labels)
        self.counters[key] = self.counters.get(key, 0.0) + value

    def set(self, name: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> None:
        self.gauges[(name, labels)] = value

    def export(self) -> dict[str, Any]:
        self._fold()
        return {
            "counters": [[n, list(map(list, labels)), v] for (n, labels), v in self.counters.items()],
            "gauges": [[n, list(map(list, labels)), v] for (n, labels), v in self.gauges.items()],
            "histograms": [[n, list(map(list, labels)), c] for (n, labels), c in self.histograms.items()],
        }


_SAME_IN_EVERY_PROCESS: Final = frozenset(
    ("iamgate_config_version", "iamgate_tls_certificate_expiry_timestamp_seconds")
)


def merge(exports: list[dict[str, Any]]) -> Metrics:
    """Sum counters, histograms and gauges of several processes into one view."""
    total = Metrics()
    for data in exports:
        for name, labels, value in data.get("counters", []):
            total.inc(name, tuple(tuple(x) for x in labels), value)
        for name, labels, value in data.get("gauges", []):
            key = (name, tuple(tuple(x) for x in labels))
            if name in _SAME_IN_EVERY_PROCESS:  # a value, not a count: not summed
                total.gauges[key] = max(total.gauges.get(key, 0.0), value)
            else:
                total.gauges[key] = total.gauges.get(key, 0.0) + value
        for name, labels, counts in data.get("histograms", []):
            key = (name, tuple(tuple(x) for x in labels))
            mine = total.histograms.setdefault(key, [0.0] * len(counts))
            for i, c in enumerate(counts):
                mine[i] += c
    return total


def _labels(labels: tuple[tuple[str, str], ...], extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def render(metrics: Metrics) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    metrics._fold()
    lines: list[str] = []
    names = sorted(
        {n for n, _ in metrics.counters}
        | {n for n, _ in metrics.gauges}
        | {n for n, _ in metrics.histograms}
        | set(_HELP)
    )
    for name in names:
        kind, text = _HELP.get(name, ("untyped", name))
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for (n, labels), value in sorted(metrics.counters.items()):
            if n == name:
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        for (n, labels), value in sorted(metrics.gauges.items()):
            if n == name:
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        for (n, labels), counts in sorted(metrics.histograms.items()):
            if n != name:
                continue
            cumulative = 0.0
            for bound, count in zip(BUCKETS, counts, strict=False):
                cumulative += count
                le = 'le="' + str(bound) + '"'
                lines.append(f"{name}_bucket{_labels(labels, le)} {_number(cumulative)}")
            cumulative += counts[len(BUCKETS)]
            le = 'le="+Inf"'
            lines.append(f"{name}_bucket{_labels(labels, le)} {_number(cumulative)}")
            lines.append(f"{name}_sum{_labels(labels)} {counts[-2]!r}")
            lines.append(f"{name}_count{_labels(labels)} {_number(counts[-1])}")
    return "\n".join(lines) + "\n"
