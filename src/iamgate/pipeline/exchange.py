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
    from iamgate.pipeline.services import Services
    from iamgate.policy import Decision
    from iamgate.tls.session import TlsSession

__all__ = ["Exchange", "IdSource", "context_path_of", "new_ids", "presented_api_key"]

_PREFIX: Final = os.urandom(8).hex()
# a random UUID-shaped head (version 4, variant a) for this process, then 12 digits of a counter
_RID_HEAD: Final = f"{_PREFIX[0:8]}-{_PREFIX[8:12]}-4{_PREFIX[13:16]}-a{os.urandom(2).hex()[:3]}-"
# two random base64 characters for this process, then the same 12 digits (digits are base64
# characters) and "A=": 16 characters that decode as base64, as an x-amz-apigw-id does
_EXT_HEAD: Final = b2a_base64(os.urandom(3), newline=False).decode()[:2]
# the counter runs from 10**11, so str() gives its 12 decimal digits (decimal digits are hex
# digits too) with no padding: a formatting call costs about 7,000 instructions, str() 300
_FIRST: Final = 10**11


class IdSource:
    """Request ids from a counter: a UUID-shaped request id and an ``x-amz-apigw-id``-shaped
    extended id (16 base64 characters, the last one ``=``), both unique per process (random
    heads, then the counter's 12 digits: 900 billion ids), far cheaper than ``uuid4()``."""

    __slots__ = ("counter",)

    def __init__(self, start: int = 1) -> None:
        self.counter = _FIRST + start

    def next(self) -> tuple[str, str]:
        n = self.counter
        self.counter = n + 1
        digits = str(n)
        return f"{_RID_HEAD}{digits}", f"{_EXT_HEAD}{digits}A="


_IDS: Final = IdSource()


def new_ids() -> tuple[str, str]:
    """The next request id and extended id of this process (see :class:`IdSource`)."""
    return _IDS.next()


def context_path_of(
    path: str | None, base: str | None, stage_in_path: bool, stage: StageConfig | None
) -> str:
    """``$context.path``: ``/{stage}/...`` on the default endpoint; behind a custom domain, the
    path as the client sent it (base path, then the API's path). ``path`` is the canonical path
    after the stage, ``base`` the custom domain's base path mapping matched (None: none)."""
    path = path or "/"
    if base is None or stage_in_path:
        path = path if stage is None else f"/{stage.name}{path}"
        if base is None:
            return path
    if not base:
        return path
    return f"/{base}" if path == "/" else f"/{base}{path}"


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
    # the stage's and route's own policies, as evaluated: (label, decision, mode) each; None when
    # neither has one (iamgate's extension, docs/policy-semantics.md)
    scoped: tuple[tuple[str, Decision, str], ...] | None = None
    denied_by: str | None = None  # the label of the policy that refused, when one did
    would_deny = False
    status = 0
    response_length = 0
    end = 0.0
    integration_start = 0.0
    integration_latency: float | None = None
    integration_status: int | None = None
    error_message: str | None = None
    validation_error: str | None = None  # $context.error.validationErrorString (request validation)
    body_model: Any = None  # the model the validate stage chose, while it waits for the body
    error_type: str | None = None
    response_type: str | None = None
    vpc_id: str | None = None
    vpce_id: str | None = None
    tls: TlsSession | None = None  # the connection's TLS (None: plain HTTP)
    base_path: str | None = None  # the custom domain's base path mapping matched ("" for (none))
    stage_in_path = False  # behind a domain whose mapping has no stage: the URL named it
    extra: dict[str, Any] | None = None
    body: bytes | None = None  # the whole request body, when a stage needed it (SigV4)
    services: Services | None = None  # the process's: pools, throttle backend, metrics
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

    @property
    def context_path(self) -> str:
        """``$context.path`` (:func:`context_path_of`)."""
        return context_path_of(self.path, self.base_path, self.stage_in_path, self.stage)

    def header(self, name: bytes) -> str | None:
        """A request header (lower-case name) as text, or None."""
        value = self.hmap.get(name)
        return None if value is None else value.decode("latin-1")


def presented_api_key(ex: Exchange) -> ApiKey | None:
    """The known API key the request presents (the ``x-api-key`` header, or the authorizer's
    ``usageIdentifierKey`` for an API whose key source is AUTHORIZER), enabled or not."""
    api = ex.api
    if api is not None and api.api_key_source == "AUTHORIZER":
        value = ex.authorizer.usage_identifier_key if ex.authorizer is not None else None
    else:
        value = ex.header(b"x-api-key")
    return ex.snapshot.api_keys.get(value) if value else None
