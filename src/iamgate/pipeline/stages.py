"""The first stages: route (which API, stage, resource, method; the method ARN) and context
(who and where the request comes from: the client address and the condition keys).

Each stage takes the exchange and returns None (go on) or a :class:`GatewayResponse` (answer
now); the order is in ``pipeline.chain``. Stages never raise on bad input; the server maps an
unexpected exception to a 500 in one place and still logs the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from iamgate.auth.sigv4 import authorization_header_error
from iamgate.clock import time_keys
from iamgate.config.domains import host_name
from iamgate.pipeline import responses as R
from iamgate.pipeline.exchange import Exchange
from iamgate.policy import Context
from iamgate.policy.values import read_ip
from iamgate.routing.paths import PathError, canonicalize

if TYPE_CHECKING:
    from iamgate.config.domains import DomainRuntime
    from iamgate.config.model import StageConfig
    from iamgate.config.snapshot import ApiRuntime, RouteRuntime, Snapshot, StaticThrottle

__all__ = ["Routed", "canonical_segments", "context", "resolve", "rightmost_untrusted", "route"]

MAX_ARN_BYTES: Final = 1600  # API Gateway quota for a method ARN


# Paths made only of RFC 3986 pchar characters (no '%', ';' or '\\'), without '.'/'..' segments
# or doubled slashes, are already canonical: splitting them gives what paths.canonicalize would
# (tests/pipeline/test_fastpath.py checks the two agree). Most real requests take this path.
_PLAIN_PATH: Final = re.compile(rb"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9\-_~!$&'()*+,=:@.]+)+/?|/")


def canonical_segments(raw: bytes, allow_semicolon: bool) -> tuple[str, ...] | PathError:
    """The canonical path segments of a raw request path (see ``paths.canonicalize``)."""
    if _PLAIN_PATH.fullmatch(raw):
        text = raw.decode("ascii").strip("/")
        return tuple(text.split("/")) if text else ()
    canonical = canonicalize(raw, allow_semicolon=allow_semicolon)
    return canonical if isinstance(canonical, PathError) else canonical.segments


def _unmatched(snap: Snapshot, hmap: dict[bytes, bytes]) -> R.GatewayResponse:
    authorization = hmap.get(b"authorization")
    if authorization is not None:
        # API Gateway parses an Authorization header as SigV4 even on an unknown route, and
        # answers with the parse error (docs/authentication.md)
        has_date = b"x-amz-date" in hmap or b"date" in hmap
        error = authorization_header_error(authorization.decode("latin-1"), has_date=has_date)
        if error is not None:
            return R.GatewayResponse(
                error.status,
                R.json_message("message", error.message),
                (("Content-Type", "application/json"),),
                "INVALID_SIGNATURE",
                error.error_type,
                error.message,
            )
    if snap.settings.unmatched_status == 404:
        return R.gateway_error(R.RESOURCE_NOT_FOUND)
    return R.gateway_error(R.MISSING_AUTHENTICATION_TOKEN)


class Routed:
    """Where a request goes, as a value: the API, stage, route and path parameters, the
    canonical path (``segments`` after the stage; ``path`` is ``/`` + them) and the method ARN;
    or, with ``problem`` set, the answer to a request that goes nowhere (``api`` may be known)."""

    __slots__ = (
        "api",
        "arn",
        "base_path",
        "domain",
        "params",
        "path",
        "problem",
        "route",
        "segments",
        "stage",
        "stage_in_path",
        "throttle",
    )

    def __init__(self, api: ApiRuntime | None, problem: R.GatewayResponse | None = None) -> None:
        self.api = api
        self.problem = problem
        self.stage: StageConfig | None = None
        self.route: RouteRuntime | None = None
        self.params: dict[str, str] | None = None
        self.segments: tuple[str, ...] = ()
        self.path = ""
        self.arn = ""
        # the route's static throttle levels for this stage and method (None: nothing is
        # throttled, or a method the route has none for)
        self.throttle: StaticThrottle | None = None
        # behind a custom domain: the domain and the base path its mapping matched
        self.domain: DomainRuntime | None = None
        self.base_path: str | None = None
        self.stage_in_path = False  # the mapping has no stage: the URL named it


# Routing is a pure function of the snapshot and (raw path, method, Host, x-apigw-api-id): its
# successful results are memoised in the snapshot's route memo (a reload starts a new one), kept
# on second sight and bounded like the policy engine's decisions (policy.memo). Long keys are not
# kept.
_ROUTE_KEY_LIMIT: Final = 512  # bytes of path + Host


def route(ex: Exchange) -> R.GatewayResponse | None:
    """API, stage, resource and method; the canonical path and the method ARN."""
    snap = ex.snapshot
    hmap = ex.hmap
    raw = ex.raw_path
    memo = snap.route_memo
    key = (raw, ex.method, hmap.get(b"host"), hmap.get(b"x-apigw-api-id"))
    routed: Routed | None = memo.found.get(key)
    if routed is None:
        routed = resolve(snap, raw, ex.method, hmap)
        if routed.problem is not None:
            if _refused_mtls(ex, routed):
                return R.gateway_error(R.FORBIDDEN)
            ex.api = routed.api
            ex.stage = routed.stage  # known when only the resource or method is not (metrics, logs)
            if routed.path:
                ex.path = routed.path
            return routed.problem
        if len(raw) + len(key[2] or b"") <= _ROUTE_KEY_LIMIT:
            memo.offer(key, routed)
    if routed.domain is not None:
        if _refused_mtls(ex, routed):
            return R.gateway_error(R.FORBIDDEN)
        ex.base_path = routed.base_path
        ex.stage_in_path = routed.stage_in_path
    ex.api = routed.api
    ex.stage = routed.stage
    ex.route = routed.route
    ex.params = routed.params
    ex.segments = routed.segments
    ex.path = routed.path
    ex.arn = routed.arn
    ex.route_throttle = routed.throttle
    return None


def _refused_mtls(ex: Exchange, routed: Routed) -> bool:
    """Mutual TLS belongs to the connection: a request for an mTLS domain is served only on a
    connection whose handshake verified a certificate against that domain's truststore (not over
    plain HTTP, nor on one made for another name: SNI and Host must agree). Checked before any
    other answer, so that a client without a certificate learns nothing of the API."""
    domain = routed.domain
    return domain is not None and domain.mtls and (ex.tls is None or ex.tls.domain != domain.name)


def resolve(snap: Snapshot, raw: bytes, method: str, hmap: dict[bytes, bytes]) -> Routed:
    """Route a raw request path (still percent-encoded) with the request's method and headers."""
    domains = snap.domains
    if domains is not None:  # a custom domain's Host first: its paths are never another form's
        host = hmap.get(b"host")
        name = host_name(host) if host is not None else None
        domain = domains.find(name) if name is not None else None
        if domain is not None:
            return _on_domain(snap, domain, raw, method, hmap)
    api = None
    if raw.startswith(b"/restapis/"):  # LocalStack: /restapis/{id}/{stage}/_user_request_/{path}
        parts = raw.split(b"/", 5)
        if len(parts) < 5 or parts[4] != b"_user_request_":
            return Routed(None, _unmatched(snap, hmap))
        api = snap.apis.get(parts[2].decode("latin-1").lower())
        raw = b"/" + parts[3] + b"/" + (parts[5] if len(parts) > 5 else b"")
    elif raw.startswith(b"/_aws/execute-api/"):  # LocalStack: /_aws/execute-api/{id}/{stage}/{path}
        parts = raw.split(b"/", 4)
        if len(parts) < 4:
            return Routed(None, _unmatched(snap, hmap))
        api = snap.apis.get(parts[3].decode("latin-1").lower())
        raw = b"/" + (parts[4] if len(parts) > 4 else b"")
    else:
        header_id = hmap.get(b"x-apigw-api-id")
        host = hmap.get(b"host")
        if header_id is not None:
            api = snap.apis.get(header_id.decode("latin-1").strip().lower())
        elif host is not None and b".execute-api." in host:
            label = host.split(b".", 1)[0].decode("latin-1").lower()
            api = snap.apis.get(label.split("-vpce-", 1)[0])
        else:
            api = snap.default_api
    if api is None:
        return Routed(None, _unmatched(snap, hmap))
    if api.config.disable_execute_api_endpoint:
        return Routed(api, R.gateway_error(R.FORBIDDEN))  # only custom domains reach it
    segments = canonical_segments(raw, snap.settings.allow_semicolon_in_path)
    if isinstance(segments, PathError):
        return Routed(api, R.gateway_error(R.BAD_REQUEST, f"Bad Request: {segments.reason}"))
    if not segments:
        return Routed(api, _unmatched(snap, hmap))
    stage = api.stages.get(segments[0])
    if stage is None:
        return Routed(api, _unmatched(snap, hmap))
    if api.by_stage:  # several deployments of this API: the stage's own
        api = api.by_stage[stage.name]
        if api.config.disable_execute_api_endpoint:
            return Routed(api, R.gateway_error(R.FORBIDDEN))
    return _on_stage(snap, api, stage, segments[1:], method, hmap)


def _on_domain(
    snap: Snapshot, domain: DomainRuntime, raw: bytes, method: str, hmap: dict[bytes, bytes]
) -> Routed:
    """Behind a custom domain: the longest base path mapping that is a whole-segment prefix of
    the canonical path picks the API and stage (the stage is not in the URL); what follows the
    base path is the API's path. A path no mapping covers, or a mapping whose API stage is not
    served, is answered 403 Forbidden, as API Gateway does."""
    segments = canonical_segments(raw, snap.settings.allow_semicolon_in_path)
    if isinstance(segments, PathError):
        return Routed(None, R.gateway_error(R.BAD_REQUEST, f"Bad Request: {segments.reason}"))
    found = domain.match(segments)
    api = stage = None
    rest: tuple[str, ...] = ()
    if found is not None:
        mapping, rest = found
        api = snap.apis.get(mapping.api)
        if api is not None and mapping.stage:
            stage = api.stages.get(mapping.stage)
        elif api is not None and rest:  # a mapping without a stage: the URL names it next
            stage = api.stages.get(rest[0])
            rest = rest[1:]
    if found is None or api is None or stage is None:
        routed = Routed(api, R.gateway_error(R.FORBIDDEN))
        routed.domain = domain
        return routed
    if api.by_stage:
        api = api.by_stage[stage.name]
    routed = _on_stage(snap, api, stage, rest, method, hmap)
    routed.domain = domain
    routed.base_path = found[0].base_path
    routed.stage_in_path = not found[0].stage
    return routed


def _on_stage(
    snap: Snapshot,
    api: ApiRuntime,
    stage: StageConfig,
    rest: tuple[str, ...],
    method: str,
    hmap: dict[bytes, bytes],
) -> Routed:
    """The route of ``rest`` (the canonical segments after the stage) on an API stage."""
    match = api.tree.match(rest, method)
    routed = Routed(api)
    routed.stage = stage
    if match is None or match.target is None:
        routed.problem = _unmatched(snap, hmap)
        routed.path = "/" + "/".join(rest)  # ($context.path of the answer and the access log)
        return routed
    routed.route = match.target
    per_method = match.target.throttle.get(stage.name)
    if per_method is not None:
        routed.throttle = per_method.get(method)
    routed.params = match.params
    routed.segments = rest
    tail = "/".join(rest)
    routed.path = "/" + tail
    routed.arn = f"{api.arn_prefix}/{stage.name}/{method}/{tail}"
    if len(routed.arn) > MAX_ARN_BYTES and len(routed.arn.encode()) > MAX_ARN_BYTES:
        routed.problem = R.gateway_error(R.URI_TOO_LONG)
    return routed


def rightmost_untrusted(forwarded_for: bytes, is_trusted: Callable[[str], bool], peer: str) -> str:
    """The client address behind trusted proxies: walk X-Forwarded-For from the right and take
    the first hop that is not a trusted proxy; an unreadable hop stops the walk at the nearest
    address that was vouched for. The left-most entry is never believed on its own."""
    client = peer
    for hop in reversed(forwarded_for.split(b",")):
        text = hop.strip().decode("latin-1")
        if text.startswith("[") and "]" in text:  # [v6]:port
            text = text[1 : text.index("]")]
        elif text.count(":") == 1:  # v4:port
            text = text.split(":", 1)[0]
        if not _is_ip(text):
            return client
        client = text
        if not is_trusted(text):
            return client
    return client


def forwarded_for(value: bytes) -> bytes:
    """The ``for=`` addresses of an RFC 7239 ``Forwarded`` header, as an X-Forwarded-For list
    (quotes, brackets and ports are handled by :func:`rightmost_untrusted`)."""
    hops = []
    for element in value.split(b","):
        for pair in element.split(b";"):
            name, _, hop = pair.strip().partition(b"=")
            if name.lower() == b"for":
                hops.append(hop.strip().strip(b'"'))
    return b", ".join(hops)


def _is_ip(text: str) -> bool:
    return read_ip(text) is not None


def context(ex: Exchange) -> R.GatewayResponse | None:
    """Who and where the request comes from: the client address and the condition keys."""
    snap = ex.snapshot
    network_map = snap.network_map
    hmap = ex.hmap
    if network_map.trusted and network_map.is_trusted(ex.source_ip):
        if snap.settings.forwarded_header == "forwarded":
            forwarded = hmap.get(b"forwarded")
            hops = forwarded_for(forwarded) if forwarded else None
        else:
            hops = hmap.get(b"x-forwarded-for")
        if hops:
            ex.source_ip = rightmost_untrusted(hops, network_map.is_trusted, ex.source_ip)
        proto = hmap.get(b"x-forwarded-proto")
        if proto is not None:
            ex.secure = proto.strip().lower() == b"https"
    client = ex.source_ip
    api = ex.api
    assert api is not None
    ctx = Context()
    network = network_map.network_of(client)
    if network is not None and network.vpce_id is not None:
        if not api.private:
            ex.vpce_id = network.vpce_id
            return R.gateway_error(R.FORBIDDEN)  # a public API is not reachable through a VPC endpoint
        ex.vpce_id = network.vpce_id
        ctx["aws:sourcevpce"] = network.vpce_id
        if network.vpc_id is not None:
            ex.vpc_id = network.vpc_id
            ctx["aws:sourcevpc"] = network.vpc_id
        ctx["aws:vpcsourceip"] = client
    else:
        if api.private:
            return R.gateway_error(R.FORBIDDEN)  # a private API is only reachable through a VPC endpoint
        ctx["aws:sourceip"] = client
    iso, epoch, _ = time_keys(ex.wall)
    ctx["aws:currenttime"] = iso
    ctx["aws:epochtime"] = epoch
    ctx["aws:securetransport"] = "true" if ex.secure else "false"
    agent = hmap.get(b"user-agent")
    if agent is not None:
        ctx["aws:useragent"] = agent.decode("utf-8", "replace")
    referer = hmap.get(b"referer")
    if referer is not None:
        ctx["aws:referer"] = referer.decode("utf-8", "replace")
    if snap.settings.anonymous_principal_keys == "iam":
        # IAM's values for an anonymous caller (docs/authentication.md); an AWS_IAM caller's
        # own keys replace all three once its signature is verified (authenticate)
        ctx["aws:principaltype"] = "Anonymous"
        ctx["aws:userid"] = "anonymous"
        ctx["aws:principalaccount"] = "anonymous"
    ex.context = ctx
    return None
