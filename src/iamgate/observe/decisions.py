"""The console's decision stream at its source: per process, what each finished request was
(its kind: Allow, explicit deny, implicit deny, throttled, 5xx, other) counted always, and the
last :data:`KEPT` requests kept in a ring with only what re-evaluating their resource policy
needs (docs/console.md, "Live decisions").

Cost on the request path (:meth:`DecisionLog.add`, called by ``GatewayState.record``): one
classification, one counter, and (when the stream is on) one tuple appended to a bounded deque:
no copy of the request, no explanation, no work per viewer. A viewer reads the ring later,
from its own cursor (:meth:`DecisionLog.since`); what the ring dropped before a viewer read it
is reported as missed. The explanation of one event is computed on demand
(:meth:`DecisionLog.explain`) with the very policy object that decided the request, by the
engine's explain walk (``evaluate(..., explain=True)``), the trace ``iamgate policy simulate
--explain`` prints.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from iamgate.policy import Request
from iamgate.policy.explain import render_decision

if TYPE_CHECKING:
    from iamgate.config.snapshot import ApiRuntime
    from iamgate.pipeline.exchange import Exchange

__all__ = [
    "ACTION",
    "KEPT",
    "KINDS",
    "LABELS",
    "DecisionLog",
    "explain_policy",
    "kind_of",
]

ACTION: Final = "execute-api:Invoke"
KEPT: Final = 1000  # requests kept per process
KINDS: Final = ("allow", "explicit-deny", "implicit-deny", "throttled", "5xx", "other")
LABELS: Final = {
    "allow": "Allow",
    "explicit-deny": "Explicit deny",
    "implicit-deny": "Implicit deny",
    "throttled": "Throttled",
    "5xx": "5xx",
    "other": "Other",
}
_ALLOW: Final = 0
_EXPLICIT: Final = 1
_IMPLICIT: Final = 2
_THROTTLED: Final = 3
_SERVER_ERROR: Final = 4
_OTHER: Final = 5

# the fields of a kept event (a tuple: the cheapest thing to build on the request path)
_SEQ, _WALL, _METHOD, _PATH, _CALLER, _SOURCE, _STATUS, _KIND, _API, _STAGE, _RID, _PRINCIPAL, _ARN = range(
    13
)
_CONTEXT, _RUNTIME = 13, 14


def kind_of(ex: Exchange) -> int:
    """The index in :data:`KINDS` of a finished request: what its answer says happened."""
    status = ex.status
    if status >= 500:
        return _SERVER_ERROR
    if ex.throttled_by is not None:
        return _THROTTLED
    if status < 400:
        return _ALLOW
    if ex.response_type == "ACCESS_DENIED":
        message = ex.error_message
        return _EXPLICIT if message is not None and "explicit deny" in message else _IMPLICIT
    return _OTHER


def _caller(ex: Exchange) -> str:
    identity = ex.identity
    if identity is not None:
        return identity.caller_arn
    authorizer = ex.authorizer
    if authorizer is not None:
        return authorizer.principal_id
    claims = ex.claims
    if isinstance(claims, dict):
        sub = claims.get("sub")
        if isinstance(sub, str):
            return sub
    return "anonymous"


class DecisionLog:
    """One process's counts per kind and (``keep``) ring of recent requests."""

    def __init__(self, *, keep: bool = True, size: int = KEPT) -> None:
        self.counts = [0, 0, 0, 0, 0, 0]
        self.keep = keep
        self.ring: deque[tuple[Any, ...]] = deque(maxlen=size)
        self.seq = 0  # the last event's number (events are numbered from 1)
        self.pid = os.getpid()
        self.started = time.time()

    def add(self, ex: Exchange) -> None:
        """Count a finished request and, when the stream is on, keep what explains it."""
        kind = kind_of(ex)
        self.counts[kind] += 1
        if not self.keep:
            return
        self.seq = seq = self.seq + 1
        api = ex.api
        stage = ex.stage
        identity = ex.identity
        self.ring.append(
            (
                seq,
                ex.wall,
                ex.method,
                ex.context_path if ex.path is not None else ex.raw_path.decode("latin-1"),
                _caller(ex),
                ex.source_ip,
                ex.status,
                kind,
                api.id if api is not None else None,
                stage.name if stage is not None else None,
                ex.request_id,
                identity.caller_arn if identity is not None else None,
                ex.arn,
                ex.context,
                api,
            )
        )

    def totals(self) -> dict[str, int]:
        return dict(zip(KINDS, self.counts, strict=True))

    def batch(self, cursor: int, limit: int) -> dict[str, Any]:
        """What a console asks of this process (JSON-ready): who it is, its totals per kind, and
        the events after ``cursor`` (at most ``limit``; :meth:`since`)."""
        events, after, missed = self.since(cursor, limit)
        return {
            "pid": self.pid,
            "started": self.started,
            "keep": self.keep,
            "totals": self.totals(),
            "events": events,
            "cursor": after,
            "missed": missed,
        }

    def since(self, cursor: int, limit: int) -> tuple[list[dict[str, Any]], int, int]:
        """The events after ``cursor`` (at most ``limit``, the latest), as JSON-ready values; the
        new cursor; how many events after ``cursor`` are not among them (the ring dropped them
        before they were read, or they were beyond ``limit``)."""
        seq = self.seq
        if cursor >= seq or limit <= 0:
            return [], seq, 0
        ring = self.ring
        wanted = min(seq - max(cursor, 0), len(ring), limit)
        start = len(ring) - wanted
        events = [self.event(ring[i]) for i in range(start, len(ring))]
        missed = (seq - max(cursor, 0)) - wanted
        return events, seq, missed

    def event(self, kept: tuple[Any, ...]) -> dict[str, Any]:
        runtime: ApiRuntime | None = kept[_RUNTIME]
        return {
            "id": f"{self.pid}-{kept[_SEQ]}",
            "time": kept[_WALL],
            "method": kept[_METHOD],
            "path": kept[_PATH],
            "caller": kept[_CALLER],
            "source": kept[_SOURCE],
            "status": kept[_STATUS],
            "decision": KINDS[kept[_KIND]],
            "api": kept[_API],
            "stage": kept[_STAGE],
            "requestId": kept[_RID],
            "explainable": runtime is not None and runtime.policy is not None and kept[_ARN] is not None,
        }

    def find(self, seq: int) -> tuple[Any, ...] | None:
        """The kept event numbered ``seq``, if the ring still holds it."""
        ring = self.ring
        if not ring:
            return None
        first = ring[0][_SEQ]
        if seq < first or seq > ring[-1][_SEQ]:
            return None
        found = ring[seq - first]
        return found if found[_SEQ] == seq else None

    def explain(self, seq: int) -> dict[str, Any] | None:
        """The explanation of the kept event ``seq`` (None when the ring no longer holds it)."""
        kept = self.find(seq)
        if kept is None:
            return None
        out: dict[str, Any] = {"event": self.event(kept)}
        runtime: ApiRuntime | None = kept[_RUNTIME]
        if runtime is None or runtime.policy is None or kept[_ARN] is None:
            out["explanation"] = None
            return out
        out["explanation"] = explain_policy(
            runtime.policy,
            runtime.config.policy_text,
            runtime.policy_mode,
            kept[_PRINCIPAL],
            kept[_ARN],
            dict(kept[_CONTEXT] or {}),
        )
        return out


def explain_policy(
    policy: Any, text: str | None, mode: str, principal: str | None, arn: str, context: dict[str, Any]
) -> dict[str, Any]:
    """A resource policy's decision for one request with its trace: what ``iamgate policy
    simulate --explain`` prints (``text``) and the same as values (``--json``)."""
    request = Request(principal, ACTION, arn, context)
    decision = policy.evaluate(request, explain=True)
    context_values = {k: v if isinstance(v, str) else list(v) for k, v in request.context.items()}
    return {
        "request": {
            "principal": principal,
            "action": ACTION,
            "resource": request.resource,
            "context": context_values,
        },
        "policy": text,
        "mode": mode,
        **decision.to_dict(),
        "text": f"Request: {principal or 'anonymous'} {ACTION} {request.resource}\n"
        + render_decision(decision),
    }
