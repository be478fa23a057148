"""The console's decision stream at its source: per process, what each finished request was
(its kind: Allow, explicit deny, implicit deny, throttled, 5xx, other) counted always, and the
last :data:`KEPT` requests kept in a ring with only what re-evaluating their resource policy
needs (docs/console.md, "Live decisions").

Cost on the request path (:meth:`DecisionLog.add`, called by ``GatewayState.record``): one
classification, one counter, and (when the stream is on) one tuple appended to a bounded deque:
no copy of the request, no explanation, no work per viewer. A viewer reads the ring later,
from its own cursor (:meth:`DecisionLog.since`); what the ring dropped before a viewer read it
is reported as missed. The explanation of one event is computed on demand
(:meth:`DecisionLog.explain`) with the policy that decided the request (the very object while
its API is served, compiled again from its text once a reload has replaced the API), by the
engine's explain walk (``evaluate(..., explain=True)``), the trace ``iamgate policy simulate
--explain`` prints.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from iamgate.pipeline.exchange import context_path_of
from iamgate.policy import Request
from iamgate.policy.explain import render_decision

if TYPE_CHECKING:
    from iamgate.auth.custom import AuthorizerResult
    from iamgate.auth.identities import Identity
    from iamgate.config.model import ScopedPolicy, StageConfig
    from iamgate.config.snapshot import DecidingPolicy
    from iamgate.pipeline.exchange import Exchange

__all__ = [
    "ACTION",
    "KEPT",
    "KINDS",
    "LABELS",
    "DecisionLog",
    "explain_policy",
]

ACTION: Final = "execute-api:Invoke"
KEPT: Final = 1000  # requests kept per process
RATE: Final = 1000  # requests kept per second per process at most (a token bucket of KEPT)
KINDS: Final = ("allow", "explicit-deny", "implicit-deny", "throttled", "5xx", "other")
LABELS: Final = {
    "allow": "Allow",
    "explicit-deny": "Explicit deny",
    "implicit-deny": "Implicit deny",
    "throttled": "Throttled",
    "5xx": "5xx",
    "other": "Other",
}
# the fields of a kept event: a tuple of the exchange's own attributes, nothing computed (the
# cheapest thing to build on the request path); what is shown is derived when it is read
_WALL: Final = 0
_METHOD: Final = 1
_RAW_PATH: Final = 2
_PATH: Final = 3
_STAGE: Final = 4
_BASE: Final = 5
_STAGE_IN_PATH: Final = 6
_IDENTITY: Final = 7
_AUTHORIZER: Final = 8
_CLAIMS: Final = 9
_SOURCE: Final = 10
_STATUS: Final = 11
_KIND: Final = 12
_API: Final = 13  # the API's DecidingPolicy (not its runtime: see DecidingPolicy)
_RID: Final = 14
_ARN: Final = 15
_CONTEXT: Final = 16
_ROUTE: Final = 17  # the route's own policy (ScopedPolicy), not the route
_DENIED_BY: Final = 18


def _caller(kept: tuple[Any, ...]) -> str:
    identity: Identity | None = kept[_IDENTITY]
    if identity is not None:
        return identity.caller_arn
    authorizer: AuthorizerResult | None = kept[_AUTHORIZER]
    if authorizer is not None:
        return authorizer.principal_id
    claims = kept[_CLAIMS]
    if isinstance(claims, dict):
        sub = claims.get("sub")
        if isinstance(sub, str):
            return sub
    return "anonymous"


def _path(kept: tuple[Any, ...]) -> str:
    if kept[_PATH] is None:
        raw: bytes = kept[_RAW_PATH]
        return raw.decode("latin-1")
    return context_path_of(kept[_PATH], kept[_BASE], kept[_STAGE_IN_PATH], kept[_STAGE])


class DecisionLog:
    """One process's counts per kind and (``keep``) ring of recent requests."""

    def __init__(self, *, keep: bool = True, size: int = KEPT) -> None:
        self.counts = [0, 0, 0, 0, 0, 0]
        self.keep = keep
        self.ring: deque[tuple[Any, ...]] = deque(maxlen=size)
        self.seq = 0  # the last event's number (events are numbered from 1)
        # requests that may still be kept (refilled at RATE a second, up to KEPT): the console
        # reads at most 1,000 a second per process, so keeping more would cost for nothing
        self.budget = KEPT
        self.skipped = 0  # requests not kept for want of budget, not yet reported as missed
        self.pid = os.getpid()
        self.started = time.time()

    def add(self, ex: Exchange) -> None:
        """Count a finished request by kind (:data:`KINDS`: what its answer says happened) and,
        when the stream is on, keep what explains it. On every request's path: no call, no copy."""
        status = ex.status
        if status < 400:
            kind = 0
        elif status >= 500:
            kind = 4
        elif ex.throttled_by is not None:
            kind = 3
        elif ex.response_type == "ACCESS_DENIED":
            message = ex.error_message
            kind = 1 if message is not None and "explicit deny" in message else 2
        else:
            kind = 5
        self.counts[kind] += 1
        if self.keep:
            budget = self.budget
            if budget <= 0:
                self.skipped += 1
                return
            self.budget = budget - 1
            api = ex.api
            route = ex.route
            self.seq += 1  # the event's number: the ring's last (find derives the others)
            self.ring.append(
                (
                    ex.wall,
                    ex.method,
                    ex.raw_path,
                    ex.path,
                    ex.stage,
                    ex.base_path,
                    ex.stage_in_path,
                    ex.identity,
                    ex.authorizer,
                    ex.claims,
                    ex.source_ip,
                    status,
                    kind,
                    api.deciding if api is not None else None,
                    ex.request_id,
                    ex.arn,
                    ex.context,
                    route.policy if route is not None else None,
                    ex.denied_by,
                )
            )

    def refill(self, seconds: float) -> None:
        """``seconds`` have passed: that many more requests may be kept (the process's timer)."""
        budget = self.budget + int(RATE * seconds)
        self.budget = budget if budget < KEPT else KEPT

    def set_keep(self, keep: bool) -> None:
        """Turn the keeping on or off (off: what was kept is let go)."""
        self.keep = keep
        if not keep:
            self.ring.clear()

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
        new cursor; how many requests since the last call are not among them (the ring dropped
        them before they were read, they were beyond ``limit``, or they were not kept: beyond
        :data:`RATE`)."""
        seq = self.seq
        if limit <= 0:
            return [], seq, 0
        skipped, self.skipped = self.skipped, 0  # one reader: the console
        if cursor >= seq:
            return [], seq, skipped
        ring = self.ring
        wanted = min(seq - max(cursor, 0), len(ring), limit)
        start = len(ring) - wanted
        last = len(ring) - 1
        events = [self.event(ring[i], seq - (last - i)) for i in range(start, len(ring))]
        missed = (seq - max(cursor, 0)) - wanted + skipped
        return events, seq, missed

    def event(self, kept: tuple[Any, ...], seq: int) -> dict[str, Any]:
        """A kept request (numbered ``seq``) as the console shows it."""
        deciding: DecidingPolicy | None = kept[_API]
        stage: StageConfig | None = kept[_STAGE]
        return {
            "id": f"{self.pid}-{seq}",
            "time": kept[_WALL],
            "method": kept[_METHOD],
            "path": _path(kept),
            "caller": _caller(kept),
            "source": kept[_SOURCE],
            "status": kept[_STATUS],
            "decision": KINDS[kept[_KIND]],
            "api": deciding.api_id if deciding is not None else None,
            "stage": stage.name if stage is not None else None,
            "requestId": kept[_RID],
            "explainable": deciding is not None and kept[_ARN] is not None,
        }

    def find(self, seq: int) -> tuple[Any, ...] | None:
        """The kept event numbered ``seq``, if the ring still holds it."""
        ring = self.ring
        first = self.seq - len(ring) + 1  # the ring holds the numbers first..seq, in order
        if not ring or seq < first or seq > self.seq:
            return None
        return ring[seq - first]

    def explain(self, seq: int) -> dict[str, Any] | None:
        """The explanation of the kept event ``seq`` (None when the ring no longer holds it):
        ``explanations``, one per policy that applies to the request (the API's resource policy,
        then the stage's and the route's own), each labelled; ``deniedBy`` names the stage or
        route policy that refused, when one did."""
        kept = self.find(seq)
        if kept is None:
            return None
        deciding: DecidingPolicy | None = kept[_API]
        identity: Identity | None = kept[_IDENTITY]
        stage: StageConfig | None = kept[_STAGE]
        route_policy: ScopedPolicy | None = kept[_ROUTE]
        arn: str | None = kept[_ARN]
        explanations: list[dict[str, Any]] = []
        if deciding is not None and arn is not None:
            principal = identity.caller_arn if identity is not None else None  # as authorize asks
            context = dict(kept[_CONTEXT] or {})
            policy = deciding.compiled()
            if policy is not None:
                found = explain_policy(policy, deciding.text, deciding.mode, principal, arn, context)
                explanations.append({"label": "API resource policy", **found})
            for scoped in (stage.policy if stage is not None else None, route_policy):
                if scoped is not None:
                    found = explain_policy(scoped.policy, scoped.text, scoped.mode, principal, arn, context)
                    explanations.append({"label": f"{scoped.label} policy", **found})
        return {"event": self.event(kept, seq), "explanations": explanations, "deniedBy": kept[_DENIED_BY]}


def explain_policy(
    policy: Any, text: str | None, mode: str, principal: str | None, arn: str, context: dict[str, Any]
) -> dict[str, Any]:
    """A resource policy's decision for one request with its trace: what ``iamgate policy
    simulate`` prints (``text``) and the same as values (``--json``)."""
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
