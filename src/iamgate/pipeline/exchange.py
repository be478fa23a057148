"""Per-request state, filled in by the stages and read by the integration and the logs."""

from __future__ import annotations

import os
from binascii import b2a_base64
from typing import TYPE_CHECKING, Any, Final

from iamgate.clock import perf_counter, wall_time

if TYPE_CHECKING:
    from iamgate.auth.custom import AuthorizerResult
    from iamgate.auth.identities import Identity
    from iamgate.config.auth import ApiKey
    from iamgate.config.model import StageConfig
    from iamgate.config.snapshot import ApiRuntime, RouteRuntime, Snapshot, StaticThrottle
    from iamgate.policy import Decision
    from iamgate.server import GatewayState

__all__ = ["Exchange", "IdSource", "new_ids"]

_PREFIX: Final = os.urandom(8).hex()
_RID_PREFIX: Final = f"{_PREFIX[0:8]}-{_PREFIX[8:12]}-4{_PREFIX[13:16]}-a{os.urandom(2).hex()[:3]}-"
_EXT_PREFIX: Final = os.urandom(3)
# base64 works in groups of 3 bytes: the 3-byte prefix's 4 characters, then those of the counter
_EXT_TEXT: Final = b2a_base64(_EXT_PREFIX, newline=False).decode()
_HEX2: Final = tuple(f"{i:02x}" for i in range(256))
_BASE64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# the last three characters of the extended id by (the low 2 bits of byte 6, byte 7): base64's
# second and third characters of the final two bytes, and the padding
_LAST3: Final = tuple(
    f"{_BASE64[((i >> 8) << 4) | ((i & 255) >> 4)]}{_BASE64[(i & 15) << 2]}=" for i in range(1024)
)


class IdSource:
    """Request ids from a counter: a UUID-shaped request id and an ``x-amz-apigw-id``-shaped
    extended id (the base64 of the 3 random bytes and the 8-byte counter: 16 characters, the
    last one ``=``).

    Unique per process (a random 64-bit prefix and a counter) and far cheaper than ``uuid4()``:
    the text of all but the counter's low 8 bits is kept and redone once every 256 ids (the high
    48 bits once every 65,536); each id adds two table entries to it."""

    __slots__ = ("_block", "_ext_head", "_ext_mid", "_high", "_low_bits", "_rid_head", "_rid_mid", "counter")

    def __init__(self, start: int = 1) -> None:
        self.counter = start
        self._high = -1
        self._block = -1
        self._rid_head = ""
        self._ext_head = ""
        self._rid_mid = ""
        self._ext_mid = ""
        self._low_bits = 0

    def next(self) -> tuple[str, str]:
        n = self.counter
        self.counter = n + 1
        block = n >> 8
        if block != self._block:
            self._block = block
            high = n >> 16
            if high != self._high:
                self._high = high
                self._rid_head = f"{_RID_PREFIX}{high:08x}"
                self._ext_head = _EXT_TEXT + b2a_base64(high.to_bytes(6, "big"), newline=False).decode()
            b6 = block & 255
            self._rid_mid = self._rid_head + _HEX2[b6]
            # base64 of the last two bytes: the first character is b6's top six bits alone
            self._ext_mid = self._ext_head + _BASE64[b6 >> 2]
            self._low_bits = (b6 & 3) << 8
        b7 = n & 255
        return self._rid_mid + _HEX2[b7], self._ext_mid + _LAST3[self._low_bits | b7]


_IDS: Final = IdSource()


def new_ids() -> tuple[str, str]:
    """The next request id and extended id of this process (see :class:`IdSource`)."""
    return _IDS.next()


class Exchange:
    """One request. Stages write their results here; the access log reads them.

    Attributes a request may never set are class-level defaults, so creating an exchange costs
    only the handful of assignments in ``__init__`` (this is on every request's path).
    """

    api: ApiRuntime | None = None
    stage: StageConfig | None = None
    route: RouteRuntime | None = None
    params: dict[str, str] | None = None
    segments: tuple[str, ...] = ()
    path: str | None = None  # the canonical path after the stage
    arn: str | None = None
    route_throttle: StaticThrottle | None = None  # the route's static throttle levels (route stage)
    context: Any = None
    decision: Decision | None = None
    policy_mode: str | None = None
    would_deny = False
    status = 0
    response_length = 0
    end = 0.0
    integration_start = 0.0
    integration_latency: float | None = None
    integration_status: int | None = None
    error_message: str | None = None
    error_type: str | None = None
    response_type: str | None = None
    vpc_id: str | None = None
    vpce_id: str | None = None
    extra: dict[str, Any] | None = None
    body: bytes | None = None  # the whole request body, when a stage needed it (SigV4)
    gateway: GatewayState | None = None  # the process's: pools, throttle backend, metrics
    throttled_by: str | None = None
    identity: Identity | None = None  # the SigV4-authenticated caller
    identity_decision: Decision | None = None  # its identity policies, or the authorizer's policy
    authorizer: AuthorizerResult | None = None  # a Lambda-style authorizer's answer
    claims: Any = None  # a JWT authorizer's claims
    authorizer_error: str | None = None
    api_key: ApiKey | None = None
    access_key_id: str | None = None  # of a verified SigV4 signature

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
        self.start = perf_counter()
        self.wall = wall_time()
        self.request_id, self.extended_id = new_ids()

    def end_time(self) -> float:
        return self.end or perf_counter()

    def header(self, name: bytes) -> str | None:
        """A request header (lower-case name) as text, or None."""
        value = self.hmap.get(name)
        return None if value is None else value.decode("latin-1")
