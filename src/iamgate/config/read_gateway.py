"""Reading the ``gateway`` section: region and account, limits on requests, trusted proxies and
VPC endpoint networks, the access log, client connections, the upstream pool, dropped request
headers and the behaviour choices (docs/configuration.md)."""

from __future__ import annotations

import re

from iamgate.config._reader import Reader
from iamgate.config.model import (
    AccessLogSettings,
    ClientSettings,
    GatewaySettings,
    IPNetwork,
    Network,
    UpstreamSettings,
)

__all__ = ["read_gateway", "read_log_format"]

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def read_gateway(r: Reader, raw: object) -> GatewaySettings:
    """The ``gateway`` section; its defaults when absent."""
    defaults = GatewaySettings()
    if raw is None:
        return defaults
    ptr = "/gateway"
    m = r.mapping(
        raw,
        ptr,
        "gateway",
        {
            "region": False,
            "account_id": False,
            "max_policy_chars": False,
            "trusted_proxies": False,
            "networks": False,
            "unmatched_status": False,
            "denial_messages": False,
            "allow_semicolon_in_path": False,
            "max_request_body": False,
            "max_header_bytes": False,
            "access_log": False,
            "upstream": False,
            "unknown_access_key_error": False,
            "forwarded_header": False,
            "cross_account_without_policy": False,
            "cognito_mode": False,
            "max_buffered_body": False,
            "anonymous_principal_keys": False,
            "max_url_bytes": False,
            "max_header_count": False,
            "client": False,
            "drop_request_headers": False,
            "expose_integration_errors": False,
            "tls": False,  # read by config.read_tls
            "admin_tls": False,
        },
    )
    if m is None:
        return defaults
    region = defaults.region
    if "region" in m:
        region = (
            r.string(
                m["region"],
                f"{ptr}/region",
                "region",
                pattern=_REGION,
                help="an AWS-style region such as us-east-1",
            )
            or region
        )
    account = defaults.account_id
    if "account_id" in m:
        account = _account_id(r, m["account_id"], f"{ptr}/account_id") or account

    def integer(key: str, low: int, high: int) -> int | None:
        """``m[key]``, an integer from ``low`` to ``high``; None when absent or wrong (reported)."""
        if key not in m:
            return None
        n = r.number(m[key], f"{ptr}/{key}", key, low=low, high=high, integer=True)
        return None if n is None else int(n)

    max_chars = defaults.max_policy_chars
    if "max_policy_chars" in m and m["max_policy_chars"] is None:
        max_chars = None
    elif (n := integer("max_policy_chars", 1, 1 << 20)) is not None:
        max_chars = n
    proxies: list[IPNetwork] = []
    if "trusted_proxies" in m:
        proxies = _trusted_proxies(r, m["trusted_proxies"], f"{ptr}/trusted_proxies")
    networks: list[Network] = []
    if "networks" in m:
        networks = _networks(r, m["networks"], f"{ptr}/networks")
    unmatched = defaults.unmatched_status
    if "unmatched_status" in m:
        value = m["unmatched_status"]
        if value not in (403, 404) or isinstance(value, bool):
            r.report(
                "invalid-value",
                f"{ptr}/unmatched_status",
                f"unmatched_status {value!r} is not valid",
                "403 (Missing Authentication Token, as API Gateway) or 404",
            )
        else:
            unmatched = int(value)
    semicolon = defaults.allow_semicolon_in_path
    if "allow_semicolon_in_path" in m:
        b = r.boolean(
            m["allow_semicolon_in_path"], f"{ptr}/allow_semicolon_in_path", "allow_semicolon_in_path"
        )
        semicolon = semicolon if b is None else b
    max_body = defaults.max_request_body
    if m.get("max_request_body") is not None:
        max_body = integer("max_request_body", 0, 1 << 50)
    n = integer("max_header_bytes", 256, 1 << 20)
    max_header = defaults.max_header_bytes if n is None else n
    access_log = defaults.access_log
    if "access_log" in m:
        access_log = _access_log(r, m["access_log"], f"{ptr}/access_log")
    upstream = defaults.upstream
    if "upstream" in m:
        upstream = _upstream(r, m["upstream"], f"{ptr}/upstream")
    choice = {
        "denial_messages": ("legacy", "policy-type"),
        "unknown_access_key_error": ("AccessDeniedException", "UnrecognizedClientException"),
        "cross_account_without_policy": ("deny", "identity"),
        "cognito_mode": ("prose", "table"),
        "forwarded_header": ("x-forwarded-for", "forwarded"),
        "anonymous_principal_keys": ("omit", "iam"),
    }
    picked = {
        key: (r.string(m[key], f"{ptr}/{key}", key, choices=options) if key in m else None)
        or getattr(defaults, key)
        for key, options in choice.items()
    }
    n = integer("max_buffered_body", 1024, 1 << 30)
    max_buffered = defaults.max_buffered_body if n is None else n
    n = integer("max_url_bytes", 256, 1 << 20)
    max_url = defaults.max_url_bytes if n is None else n
    n = integer("max_header_count", 8, 10_000)
    max_count = defaults.max_header_count if n is None else n
    client = defaults.client
    if "client" in m:
        client = _client(r, m["client"], f"{ptr}/client")
    dropped = defaults.drop_request_headers
    if "drop_request_headers" in m:
        dropped = _header_names(r, m["drop_request_headers"], f"{ptr}/drop_request_headers")
    expose = defaults.expose_integration_errors
    if "expose_integration_errors" in m:
        b = r.boolean(
            m["expose_integration_errors"], f"{ptr}/expose_integration_errors", "expose_integration_errors"
        )
        expose = expose if b is None else b
    return GatewaySettings(
        region=region,
        account_id=account,
        max_policy_chars=max_chars,
        trusted_proxies=tuple(proxies),
        networks=tuple(networks),
        unmatched_status=unmatched,
        denial_messages=picked["denial_messages"],
        allow_semicolon_in_path=semicolon,
        max_request_body=max_body,
        max_header_bytes=max_header,
        max_url_bytes=max_url,
        max_header_count=max_count,
        access_log=access_log,
        upstream=upstream,
        unknown_access_key_error=picked["unknown_access_key_error"],
        cross_account_without_policy=picked["cross_account_without_policy"],
        cognito_mode=picked["cognito_mode"],
        max_buffered_body=max_buffered,
        forwarded_header=picked["forwarded_header"],
        anonymous_principal_keys=picked["anonymous_principal_keys"],
        client=client,
        drop_request_headers=dropped,
        expose_integration_errors=expose,
    )


def _account_id(r: Reader, value: object, ptr: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        r.report(
            "wrong-type",
            ptr,
            "account_id must be a quoted string of 12 digits",
            'write account_id: "111122223333" (quoted, so leading zeros survive)',
        )
        return None
    return r.string(value, ptr, "account_id", pattern=_ACCOUNT, help="12 digits, quoted")


def _trusted_proxies(r: Reader, raw: object, ptr: str) -> list[IPNetwork]:
    proxies: list[IPNetwork] = []
    for i, item in enumerate(r.sequence(raw, ptr, "trusted_proxies") or []):
        net = r.network(item, f"{ptr}/{i}", "a trusted proxy")
        if net is not None:
            proxies.append(net)
    return proxies


def _networks(r: Reader, raw: object, ptr: str) -> list[Network]:
    """Source addresses that arrive through a VPC endpoint, each with the endpoint's id."""
    networks: list[Network] = []
    for i, item in enumerate(r.sequence(raw, ptr, "networks") or []):
        p = f"{ptr}/{i}"
        nm = r.mapping(item, p, "a network", {"cidr": True, "vpc_id": False, "vpce_id": False})
        if nm is None or "cidr" not in nm:
            continue
        net = r.network(nm["cidr"], f"{p}/cidr", "cidr")
        vpc = (
            r.string(
                nm["vpc_id"],
                f"{p}/vpc_id",
                "vpc_id",
                pattern=re.compile(r"vpc-[0-9a-zA-Z]+"),
                help="for example vpc-0a1b2c3d",
            )
            if "vpc_id" in nm
            else None
        )
        vpce = (
            r.string(
                nm["vpce_id"],
                f"{p}/vpce_id",
                "vpce_id",
                pattern=re.compile(r"vpce-[0-9a-zA-Z]+"),
                help="for example vpce-0123456789abcdef0",
            )
            if "vpce_id" in nm
            else None
        )
        if "vpce_id" not in nm:
            r.report(
                "missing-key",
                p,
                "a network needs 'vpce_id'",
                "a source address counts as arriving through a VPC endpoint (aws:SourceVpce, "
                "aws:SourceVpc, aws:VpcSourceIp) only with the endpoint's id; without one the "
                "entry would have no effect",
            )
        if net is not None:
            networks.append(Network(net, vpc, vpce))
    return networks


def _access_log(r: Reader, raw: object, ptr: str) -> AccessLogSettings:
    if raw is None or raw is False:
        return AccessLogSettings(None, None)
    m = r.mapping(raw, ptr, "access_log", {"destination": False, "format": False})
    if m is None:
        return AccessLogSettings("-", None)
    destination: str | None = "-"
    if "destination" in m:
        destination = (
            None
            if m["destination"] is None
            else r.string(m["destination"], f"{ptr}/destination", "destination")
        )
        if destination is not None and destination != "-":
            if not destination:
                r.report("invalid-value", f"{ptr}/destination", "destination is empty", 'a file path or "-"')
            destination = str(r.base_dir / destination)  # relative: to the configuration file
    fmt = None
    if m.get("format") is not None:
        fmt = read_log_format(r, m["format"], f"{ptr}/format")
    return AccessLogSettings(destination, fmt)


def read_log_format(r: Reader, raw: object, ptr: str) -> str | None:
    """An AWS-style access-log format (the gateway's, or a stage's ``access_log_format``)."""
    text = r.string(raw, ptr, "an access-log format")
    if text is None:
        return None
    if "$context.requestId" not in text and "$context.extendedRequestId" not in text:
        r.report(
            "invalid-value",
            ptr,
            "an access-log format must contain $context.requestId or $context.extendedRequestId",
            "as API Gateway requires, so lines can be traced",
        )
        return None
    return text


def _number(
    r: Reader,
    m: dict[str, object],
    ptr: str,
    key: str,
    default: float,
    low: float,
    high: float,
    integer: bool,
) -> float:
    """Setting ``key`` of mapping ``m`` as a number within [low, high], else ``default`` (absent,
    or invalid: then the reader has reported where and why)."""
    if key not in m:
        return default
    value = r.number(m[key], f"{ptr}/{key}", key, low=low, high=high, integer=integer)
    return default if value is None else value


def _client(r: Reader, raw: object, ptr: str) -> ClientSettings:
    d = ClientSettings()
    keys = ("header_timeout", "keepalive_timeout", "body_timeout", "max_connections")
    m = r.mapping(raw, ptr, "client", dict.fromkeys(keys, False))
    if m is None:
        return d

    def num(key: str, default: float, low: float, high: float, integer: bool = False) -> float:
        return _number(r, m, ptr, key, default, low, high, integer)

    return ClientSettings(
        header_timeout=num("header_timeout", d.header_timeout, 0.1, 3600),
        keepalive_timeout=num("keepalive_timeout", d.keepalive_timeout, 0.1, 3600),
        body_timeout=num("body_timeout", d.body_timeout, 0.1, 3600),
        max_connections=None
        if m.get("max_connections") is None
        else int(num("max_connections", 0, 1, 1_000_000, True)) or None,
    )


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_NEVER_FORWARDED = ("connection", "content-length", "host", "transfer-encoding", "x-forwarded-for")


def _header_names(r: Reader, raw: object, ptr: str) -> frozenset[bytes]:
    names: set[bytes] = set()
    for i, item in enumerate(r.sequence(raw, ptr, "drop_request_headers") or []):
        name = r.string(item, f"{ptr}/{i}", "a header name", pattern=_HEADER_NAME, help="a header name")
        if name is None:
            continue
        if name.lower() in _NEVER_FORWARDED:
            r.warn(
                "invalid-value",
                f"{ptr}/{i}",
                f"{name} is always replaced by the gateway; listing it has no effect",
                "list only headers a client sends that the backend should not see",
            )
        names.add(name.lower().encode("ascii"))
    return frozenset(names)


def _upstream(r: Reader, raw: object, ptr: str) -> UpstreamSettings:
    d = UpstreamSettings()
    m = r.mapping(
        raw,
        ptr,
        "upstream",
        {
            "connect_timeout": False,
            "timeout": False,
            "max_connections": False,
            "max_idle": False,
            "idle_timeout": False,
        },
    )
    if m is None:
        return d

    def num(key: str, default: float, low: float, high: float, integer: bool = False) -> float:
        return _number(r, m, ptr, key, default, low, high, integer)

    return UpstreamSettings(
        connect_timeout=num("connect_timeout", d.connect_timeout, 0.01, 300),
        timeout=num("timeout", d.timeout, 0.05, 3600),
        max_connections=int(num("max_connections", d.max_connections, 1, 100_000, True)),
        max_idle=int(num("max_idle", d.max_idle, 0, 100_000, True)),
        idle_timeout=num("idle_timeout", d.idle_timeout, 0.1, 3600),
    )
