"""Per-request state, filled in by the stages and read by the integration and the logs."""

from __future__ import annotations

import itertools
import os
import time
from base64 import b64encode
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iamgate.config.model import StageConfig
    from iamgate.config.snapshot import ApiRuntime, RouteRuntime, Snapshot
    from iamgate.policy import Decision

__all__ = ["Exchange", "new_ids"]

_PREFIX = os.urandom(8).hex()
_counter = itertools.count(1)


def new_ids() -> tuple[str, str]:
    """A UUID-shaped request id and an ``x-amz-apigw-id``-shaped extended id.

    Unique per process (a random 64-bit prefix and a counter) and far cheaper than ``uuid4()``.
    """
    n = next(_counter)
    h = _PREFIX + f"{n:016x}"
    rid = f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
    ext = b64encode(bytes.fromhex(h[10:32])).decode()[:15] + "="
    return rid, ext


class Exchange:
    """One request. Stages write their results here; the access log reads them."""

    __slots__ = (
        "api",
        "arn",
        "context",
        "decision",
        "end",
        "error_message",
        "error_type",
        "extended_id",
        "extra",
        "headers",
        "hmap",
        "http_version",
        "integration_latency",
        "integration_start",
        "integration_status",
        "keep_alive",
        "method",
        "params",
        "path",
        "policy_mode",
        "query",
        "raw_path",
        "request_id",
        "response_length",
        "response_type",
        "route",
        "secure",
        "segments",
        "snapshot",
        "source_ip",
        "stage",
        "start",
        "status",
        "vpc_id",
        "vpce_id",
        "wall",
        "would_deny",
    )

    def __init__(
        self,
        snapshot: Snapshot,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        hmap: dict[bytes, bytes],
        http_version: str,
        keep_alive: bool,
        peer_ip: str,
        secure: bool,
    ) -> None:
        self.snapshot = snapshot
        self.method = method
        self.raw_path = raw_path
        self.query = query
        self.headers = headers
        self.hmap = hmap
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.source_ip = peer_ip
        self.secure = secure
        self.start = time.perf_counter()
        self.end = 0.0
        self.wall = time.time()
        self.request_id, self.extended_id = new_ids()
        self.api: ApiRuntime | None = None
        self.stage: StageConfig | None = None
        self.route: RouteRuntime | None = None
        self.params: dict[str, str] = {}
        self.segments: tuple[str, ...] = ()
        self.path: str | None = None  # the canonical path after the stage
        self.arn: str | None = None
        self.context: Any = None
        self.decision: Decision | None = None
        self.policy_mode: str | None = None
        self.would_deny = False
        self.status = 0
        self.response_length = 0
        self.integration_start = 0.0
        self.integration_latency: float | None = None
        self.integration_status: int | None = None
        self.error_message: str | None = None
        self.error_type: str | None = None
        self.response_type: str | None = None
        self.vpc_id: str | None = None
        self.vpce_id: str | None = None
        self.extra: dict[str, Any] | None = None

    def end_time(self) -> float:
        return self.end or time.perf_counter()

    def header(self, name: bytes) -> str | None:
        """A request header (lower-case name) as text, or None."""
        value = self.hmap.get(name)
        return None if value is None else value.decode("latin-1")
