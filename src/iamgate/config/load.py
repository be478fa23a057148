"""Load and validate the gateway's YAML configuration (docs/configuration.md).

Every problem is a :class:`~iamgate.policy.Diagnostic` with the file, line and column, what is
wrong and the valid choices; all problems are reported at once; a file with any error yields no
configuration at all (the gateway never starts half-configured, and a reload keeps the old one).

Validation is written by hand rather than with a schema library so that each message can name
the bad value, give a did-you-mean and point at the line of the YAML node (the schema is small).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iamgate.config._reader import Reader as _Reader
from iamgate.config._yaml import UNSTORABLE, load_yaml, unstorable_in
from iamgate.config.auth import (
    AuthorizerConfig,
    AuthSettings,
    read_api_keys,
    read_authorizers,
    read_identities,
)
from iamgate.config.model import (
    AccessLogSettings,
    ApiConfig,
    ClientSettings,
    GatewayConfig,
    GatewaySettings,
    HttpProxyIntegration,
    IPNetwork,
    ManagementSettings,
    MockIntegration,
    Network,
    RouteConfig,
    StageConfig,
    UpstreamSettings,
)
from iamgate.config.read_throttle import (
    read_limit,
    read_method_limits,
    read_rate_limit,
    read_throttling,
    read_usage_plans,
)
from iamgate.pipeline.routing import METHODS, ResourceTree, TemplateError, parse_template
from iamgate.policy import ApiRef, Diagnostic, Location, Severity, prepare
from iamgate.policy.diagnostics import did_you_mean, pointer_join
from iamgate.throttle.settings import Limit

__all__ = ["AUTHORIZATION_TYPES", "load_config", "parse_config"]

AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS")
ENDPOINT_TYPES = ("REGIONAL", "PRIVATE", "EDGE")
POLICY_MODES = ("enforce", "report")
INTEGRATION_TYPES = ("HTTP_PROXY", "MOCK")
_API_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DEPLOYMENT = re.compile(r"[A-Za-z0-9]{1,64}")
_STORE_URL = re.compile(r"(sqlite:///.+|postgres(ql)?://.+)")
_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_STAGE_VAR = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_.-]*)\}")
_URI_PARAM = re.compile(r"\{([A-Za-z0-9._-]+)\}")
_VAR_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def _settings(r: _Reader, raw: object) -> GatewaySettings:
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
        value = m["account_id"]
        if isinstance(value, int) and not isinstance(value, bool):
            r.report(
                "wrong-type",
                f"{ptr}/account_id",
                "account_id must be a quoted string of 12 digits",
                'write account_id: "111122223333" (quoted, so leading zeros survive)',
            )
        else:
            account = (
                r.string(value, f"{ptr}/account_id", "account_id", pattern=_ACCOUNT, help="12 digits, quoted")
                or account
            )

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
        items = r.sequence(m["trusted_proxies"], f"{ptr}/trusted_proxies", "trusted_proxies") or []
        for i, item in enumerate(items):
            net = r.network(item, f"{ptr}/trusted_proxies/{i}", "a trusted proxy")
            if net is not None:
                proxies.append(net)
    networks: list[Network] = []
    if "networks" in m:
        items = r.sequence(m["networks"], f"{ptr}/networks", "networks") or []
        for i, item in enumerate(items):
            p = f"{ptr}/networks/{i}"
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


def _access_log(r: _Reader, raw: object, ptr: str) -> AccessLogSettings:
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
        fmt = _log_format(r, m["format"], f"{ptr}/format")
    return AccessLogSettings(destination, fmt)


def _log_format(r: _Reader, raw: object, ptr: str) -> str | None:
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


def _client(r: _Reader, raw: object, ptr: str) -> ClientSettings:
    d = ClientSettings()
    keys = ("header_timeout", "keepalive_timeout", "body_timeout", "max_connections")
    m = r.mapping(raw, ptr, "client", dict.fromkeys(keys, False))
    if m is None:
        return d

    def num(key: str, default: float, low: float, high: float, integer: bool = False) -> float:
        if key not in m:
            return default
        value = r.number(m[key], f"{ptr}/{key}", key, low=low, high=high, integer=integer)
        return default if value is None else value

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


def _header_names(r: _Reader, raw: object, ptr: str) -> frozenset[bytes]:
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


def _upstream(r: _Reader, raw: object, ptr: str) -> UpstreamSettings:
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
        if key not in m:
            return default
        value = r.number(m[key], f"{ptr}/{key}", key, low=low, high=high, integer=integer)
        return default if value is None else value

    return UpstreamSettings(
        connect_timeout=num("connect_timeout", d.connect_timeout, 0.01, 300),
        timeout=num("timeout", d.timeout, 0.05, 3600),
        max_connections=int(num("max_connections", d.max_connections, 1, 100_000, True)),
        max_idle=int(num("max_idle", d.max_idle, 0, 100_000, True)),
        idle_timeout=num("idle_timeout", d.idle_timeout, 0.1, 3600),
    )


def _unstorable_policy(r: _Reader, text: str, ptr: str, file: str | None) -> bool:
    """Report a policy whose JSON escapes make a character no store can keep (``\\u0000``: the
    text is storable, the document a deployment stores is not); True when there is one."""
    try:
        found = unstorable_in(json.loads(text.removeprefix("\ufeff")))
    except ValueError:  # read as valid by the policy reader: nothing more to say here
        return False
    if found is None:
        return False
    inner, what = found
    where = f" of {file}" if file else ""
    message = f"the policy{where} holds {what} at {inner} (a JSON escape), which no store can keep"
    r.diags.append(Diagnostic(UNSTORABLE, Severity.ERROR, message, r.positions.location(ptr), None, r.source))
    return True


def _policy(
    r: _Reader,
    m: dict[str, Any],
    ptr: str,
    settings: GatewaySettings,
    api_id: str | None,
    watched: list[str],
) -> tuple[Any, str | None, bool]:
    """(compiled policy or None, stored text, ok)."""
    if "policy" in m and "policy_file" in m:
        r.report("conflicting-keys", f"{ptr}/policy_file", "give either policy or policy_file, not both")
        return None, None, False
    api = ApiRef(settings.region, settings.account_id, api_id or "unknown")
    if "policy" in m and m["policy"] is not None:
        raw = m["policy"]
        if not isinstance(raw, dict | str):
            r.report(
                "wrong-type",
                f"{ptr}/policy",
                "policy must be a mapping (the JSON document written as "
                f"YAML) or a JSON string, not {r.kind(raw)}",
            )
            return None, None, False
        prepared = prepare(raw, api=api, max_chars=settings.max_policy_chars)
        base = f"{ptr}/policy"
        for d in prepared.diagnostics:
            message = d.message
            if isinstance(raw, dict):
                location = r.positions.location(base + d.location.pointer)
            else:
                location = r.positions.location(base)
                if d.location.line is not None:
                    message += f" (line {d.location.line}, column {d.location.column} of the policy text)"
            r.diags.append(Diagnostic(d.code, d.severity, message, location, d.help, r.source))
        text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
        if prepared.policy is not None and isinstance(raw, str) and _unstorable_policy(r, text, base, None):
            return None, None, False
        return prepared.policy, text, prepared.policy is not None
    if "policy_file" in m:
        name = r.string(m["policy_file"], f"{ptr}/policy_file", "policy_file")
        if name is None:
            return None, None, False
        path = Path(name)
        if not path.is_absolute():
            path = r.base_dir / path
        watched.append(str(path))  # watched even when unreadable: creating it triggers a reload
        try:
            data = r.read_file(path)
        except OSError as exc:
            r.report(
                "policy-file", f"{ptr}/policy_file", f"cannot read policy_file {path}: {exc.strerror or exc}"
            )
            return None, None, False
        prepared = prepare(data, api=api, max_chars=settings.max_policy_chars, source_name=str(path))
        r.diags.extend(prepared.diagnostics)
        text = data.decode("utf-8", "replace")
        if prepared.policy is not None and _unstorable_policy(r, text, f"{ptr}/policy_file", str(path)):
            return None, None, False
        return prepared.policy, text, prepared.policy is not None
    return None, None, True


def _integration(
    r: _Reader, raw: object, ptr: str, params: set[str], greedy: str | None, stages: dict[str, StageConfig]
) -> HttpProxyIntegration | MockIntegration | None:
    m = r.mapping(
        raw,
        ptr,
        "integration",
        {
            "type": True,
            "uri": False,
            "timeout": False,
            "status": False,
            "headers": False,
            "body": False,
            "request_parameters": False,
        },
    )
    if m is None or "type" not in m:
        return None
    kind = r.string(m["type"], f"{ptr}/type", "integration type", choices=INTEGRATION_TYPES)
    if kind is None:
        return None
    if kind == "MOCK":
        for key in ("uri", "timeout"):
            if key in m:
                r.report("unknown-key", f"{ptr}/{key}", f"a MOCK integration has no {key}")
        status = 200
        if "status" in m:
            n = r.number(m["status"], f"{ptr}/status", "status", low=100, high=599, integer=True)
            status = int(n) if n is not None else 200
        headers: list[tuple[str, str]] = []
        if "headers" in m:
            hm = m["headers"]
            if not isinstance(hm, dict):
                r.report("wrong-type", f"{ptr}/headers", "headers must be a mapping of name: value")
            else:
                for name, value in hm.items():
                    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", str(name)) or not isinstance(
                        value, str | int
                    ):
                        r.report(
                            "invalid-value",
                            pointer_join(f"{ptr}/headers", name),
                            f"header {name!r}: {value!r} is not a valid header name and string value",
                        )
                    elif any(c in str(value) for c in "\r\n\x00"):
                        r.report(
                            "invalid-value",
                            pointer_join(f"{ptr}/headers", name),
                            f"header {name!r} has a line break or NUL in its value",
                        )
                    else:
                        headers.append((str(name), str(value)))
        body = b""
        if "body" in m:
            text = r.string(m["body"], f"{ptr}/body", "body")
            body = (text or "").encode()
        return MockIntegration(status, tuple(headers), body)
    for key in ("status", "headers", "body"):
        if key in m:
            r.report(
                "unknown-key",
                f"{ptr}/{key}",
                f"an HTTP_PROXY integration has no {key}",
                "status, headers and body belong to MOCK integrations",
            )
    if "uri" not in m:
        r.report("missing-key", ptr, "an HTTP_PROXY integration needs 'uri'")
        return None
    uri = r.string(m["uri"], f"{ptr}/uri", "uri")
    if uri is None:
        return None
    probe = _STAGE_VAR.sub("stagevar", uri)
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        r.report(
            "invalid-value",
            f"{ptr}/uri",
            f"uri '{uri}' is not an http:// or https:// URL with a host",
            "for example http://127.0.0.1:9000/pets/{id} or http://${stageVariables.backend}/pets",
        )
        return None
    try:
        _ = parts.port
    except ValueError:
        r.report("invalid-value", f"{ptr}/uri", f"uri '{uri}' has an invalid port")
        return None
    if parts.query or parts.fragment:
        r.report(
            "invalid-value",
            f"{ptr}/uri",
            f"uri '{uri}' has a query or fragment",
            "the request's query string is passed through to the backend",
        )
        return None
    for name in _URI_PARAM.findall(parts.path):
        if name not in params and name != greedy:
            r.report(
                "invalid-value",
                f"{ptr}/uri",
                f"uri uses {{{name}}} but the route path has no such parameter",
                f"route parameters: {', '.join(sorted(params | ({greedy} if greedy else set()))) or 'none'}",
            )
    for var in _STAGE_VAR.findall(uri):
        missing = [s for s, st in stages.items() if var not in st.variables]
        if missing:
            r.warn(
                "undefined-stage-variable",
                f"{ptr}/uri",
                f"uri uses ${{stageVariables.{var}}} but stage(s) {', '.join(missing)} do not define it; "
                "requests there get 500 Internal server error",
            )
    timeout = None
    if "timeout" in m:
        timeout = r.number(m["timeout"], f"{ptr}/timeout", "timeout", low=0.05, high=3600)
    return HttpProxyIntegration(
        uri,
        timeout,
        _request_parameters(
            r, m.get("request_parameters"), f"{ptr}/request_parameters", params | {greedy or ""}
        ),
    )


_PARAM_TARGET = re.compile(r"integration\.request\.header\.([!#$%&'*+.^_`|~0-9A-Za-z-]+)")
_PARAM_SOURCE = re.compile(
    r"'[^'\r\n]*'|context\.authorizer\.[A-Za-z0-9_.:-]+|context\.(requestId|identity\.sourceIp|stage|apiId"
    r"|httpMethod|resourcePath|identity\.apiKey)|method\.request\.(header|querystring|path)\.[A-Za-z0-9_.-]+"
    r"|stageVariables\.[A-Za-z0-9_]+"
)


def _request_parameters(r: _Reader, raw: object, ptr: str, params: set[str]) -> tuple[tuple[str, str], ...]:
    """API Gateway's request-parameter mappings to backend headers, e.g.
    ``integration.request.header.X-User: context.authorizer.principalId``."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, "request_parameters must be a mapping of target: source")
        return ()
    out = []
    for target, source in raw.items():
        p = pointer_join(ptr, target)
        tm = _PARAM_TARGET.fullmatch(str(target))
        if tm is None:
            r.report(
                "invalid-value",
                p,
                f"'{target}' is not a request-parameter target",
                "integration.request.header.NAME",
            )
            continue
        if not isinstance(source, str) or not _PARAM_SOURCE.fullmatch(source):
            r.report(
                "invalid-value",
                p,
                f"'{source}' is not a request-parameter source",
                "a quoted literal 'value', context.authorizer.KEY, context.authorizer.claims.NAME, "
                "context.requestId, context.identity.sourceIp, method.request.header.NAME, "
                "method.request.querystring.NAME, method.request.path.NAME or stageVariables.NAME",
            )
            continue
        if source.startswith("method.request.path.") and source.split(".", 3)[3] not in params:
            r.report("invalid-value", p, f"'{source}' names a path parameter the route does not have")
            continue
        out.append((tm.group(1), source))
    return tuple(out)


def _api(
    r: _Reader, raw: object, ptr: str, settings: GatewaySettings, watched: list[str]
) -> ApiConfig | None:
    m = r.mapping(
        raw,
        ptr,
        "an API",
        {
            "id": True,
            "name": False,
            "endpoint_type": False,
            "policy": False,
            "policy_file": False,
            "policy_mode": False,
            "stages": True,
            "routes": True,
            "authorizers": False,
            "api_key_source": False,
            "deployment": False,
        },
    )
    if m is None:
        return None
    before = len([d for d in r.diags if d.is_error])
    deployment = None
    if "deployment" in m:
        deployment = r.string(
            m["deployment"],
            f"{ptr}/deployment",
            "deployment",
            pattern=_DEPLOYMENT,
            help="letters and digits, as API Gateway's deployment ids (e.g. a1b2c3)",
        )
    api_id = (
        r.string(
            m["id"],
            f"{ptr}/id",
            "API id",
            pattern=_API_ID,
            help="lower-case letters, digits and '-', e.g. a1b2c3d4e5",
        )
        if "id" in m
        else None
    )
    name = r.string(m["name"], f"{ptr}/name", "name") if "name" in m else api_id
    endpoint = "REGIONAL"
    if "endpoint_type" in m:
        endpoint = (
            r.string(m["endpoint_type"], f"{ptr}/endpoint_type", "endpoint_type", choices=ENDPOINT_TYPES)
            or endpoint
        )
    mode = "enforce"
    if "policy_mode" in m:
        mode = r.string(m["policy_mode"], f"{ptr}/policy_mode", "policy_mode", choices=POLICY_MODES) or mode
    policy, policy_text, _ = _policy(r, m, ptr, settings, api_id, watched)
    authorizers = read_authorizers(
        r,
        m.get("authorizers"),
        f"{ptr}/authorizers",
        ApiRef(settings.region, settings.account_id, api_id or "api"),
    )
    key_source = "HEADER"
    if "api_key_source" in m:
        key_source = (
            r.string(
                m["api_key_source"],
                f"{ptr}/api_key_source",
                "api_key_source",
                choices=("HEADER", "AUTHORIZER"),
            )
            or key_source
        )
    if endpoint == "PRIVATE" and policy_text is None:
        r.report(
            "missing-key",
            ptr,
            "a PRIVATE API needs a resource policy",
            "API Gateway refuses to deploy a private API without one; add policy or policy_file",
        )
    stages: dict[str, StageConfig] = {}
    if "stages" in m:
        sm = m["stages"]
        if not isinstance(sm, dict) or not sm:
            r.report(
                "wrong-type",
                f"{ptr}/stages",
                "stages must be a non-empty mapping of stage name to settings",
                "for example stages: {prod: {variables: {backend: 127.0.0.1:9000}}}",
            )
        else:
            for sname, sraw in sm.items():
                sp = pointer_join(f"{ptr}/stages", sname)
                if (
                    r.string(
                        sname,
                        sp,
                        "stage name",
                        pattern=_STAGE,
                        help="letters, digits, '-' and '_' (at most 128)",
                    )
                    is None
                ):
                    continue
                variables: dict[str, str] = {}
                log_format = None
                if sraw is not None:
                    smap = r.mapping(
                        sraw,
                        sp,
                        f"stage {sname}",
                        {
                            "variables": False,
                            "access_log_format": False,
                            "throttling": False,
                            "method_throttling": False,
                        },
                    )
                    if smap is None:
                        continue
                    vraw = smap.get("variables") or {}
                    if not isinstance(vraw, dict):
                        r.report(
                            "wrong-type", f"{sp}/variables", "variables must be a mapping of name: value"
                        )
                    else:
                        for vname, vvalue in vraw.items():
                            vp = pointer_join(f"{sp}/variables", vname)
                            if not _VAR_NAME.fullmatch(str(vname)):
                                r.report(
                                    "invalid-value",
                                    vp,
                                    f"stage variable name '{vname}' is not valid",
                                    "letters, digits and '_'",
                                )
                            elif not isinstance(vvalue, str | int | float) or isinstance(vvalue, bool):
                                r.report("wrong-type", vp, f"stage variable {vname} must be a string")
                            else:
                                variables[str(vname)] = str(vvalue)
                    if smap.get("access_log_format") is not None:
                        log_format = _log_format(r, smap["access_log_format"], f"{sp}/access_log_format")
                throttle_default = None
                method_limits: dict[str, Limit] = {}
                if sraw is not None and smap is not None:
                    if "throttling" in smap:
                        throttle_default = read_limit(r, smap["throttling"], f"{sp}/throttling", "throttling")
                    method_limits = read_method_limits(
                        r, smap.get("method_throttling"), f"{sp}/method_throttling"
                    )
                stages[sname] = StageConfig(sname, variables, log_format, throttle_default, method_limits)
    routes: list[RouteConfig] = []
    seen: dict[tuple[str, str], str] = {}
    tree: ResourceTree[None] = ResourceTree()  # the snapshot's tree: what it refuses is an error here
    if "routes" in m:
        items = r.sequence(m["routes"], f"{ptr}/routes", "routes") or []
        for i, item in enumerate(items):
            rp = f"{ptr}/routes/{i}"
            rm = r.mapping(
                item,
                rp,
                "a route",
                {
                    "path": True,
                    "method": True,
                    "integration": True,
                    "authorization": False,
                    "authorizer": False,
                    "api_key_required": False,
                    "authorization_scopes": False,
                    "rate_limit": False,
                },
            )
            if rm is None or not {"path", "method", "integration"} <= set(rm):
                continue
            path = r.string(rm["path"], f"{rp}/path", "path")
            method = r.string(rm["method"], f"{rp}/method", "method")
            if method is not None:
                method = method.upper()
                if method not in (*METHODS, "ANY"):
                    hint = did_you_mean(method, (*METHODS, "ANY"))
                    r.report(
                        "invalid-value",
                        f"{rp}/method",
                        f"method '{rm['method']}' is not valid",
                        (hint + " " if hint else "") + "one of: " + ", ".join((*METHODS, "ANY")),
                    )
                    method = None
            params: set[str] = set()
            greedy = None
            if path is not None:
                try:
                    for seg in parse_template(path):
                        if seg.kind == "param":
                            params.add(seg.value)
                        elif seg.kind == "greedy":
                            greedy = seg.value
                except TemplateError as exc:
                    r.report(
                        "invalid-value",
                        f"{rp}/path",
                        f"path '{path}': {exc}",
                        "for example /pets, /pets/{id} or /{proxy+}",
                    )
                    path = None
            auth = "NONE"
            if "authorization" in rm:
                auth = (
                    r.string(
                        rm["authorization"],
                        f"{rp}/authorization",
                        "authorization",
                        choices=AUTHORIZATION_TYPES,
                    )
                    or auth
                )
            authorizer, scopes, key_required = _route_auth(r, rm, rp, auth, authorizers)
            integration = _integration(r, rm["integration"], f"{rp}/integration", params, greedy, stages)
            if path is None or method is None or integration is None:
                continue
            key = (
                "/" + "/".join(s.value if s.kind == "literal" else "{}" for s in parse_template(path)),
                method,
            )
            if key in seen:
                r.report("duplicate-route", rp, f"{method} {path} is already defined by {seen[key]}")
                continue
            seen[key] = rp
            try:
                tree.add(path, method, None)
            except TemplateError as exc:
                r.report(
                    "conflicting-route",
                    f"{rp}/path",
                    str(exc),
                    "API Gateway allows one {parameter} (and one {greedy+}) name among the children "
                    "of a resource; use the same name in every route through it",
                )
                continue
            rate_limit = (
                read_rate_limit(r, rm["rate_limit"], f"{rp}/rate_limit") if "rate_limit" in rm else None
            )
            routes.append(
                RouteConfig(path, method, integration, auth, authorizer, key_required, scopes, rate_limit)
            )
    if len([d for d in r.diags if d.is_error]) > before or api_id is None:
        return None
    return ApiConfig(
        api_id,
        name or api_id,
        endpoint,
        policy,
        policy_text,
        mode,
        stages,
        tuple(routes),
        authorizers,
        key_source,
        deployment,
    )


def _management(r: _Reader, raw: object) -> ManagementSettings:
    if raw is None:
        return ManagementSettings()
    m = r.mapping(raw, "/management", "management", {"enabled": False, "authentication": False})
    if m is None:
        return ManagementSettings()
    enabled = r.boolean(m["enabled"], "/management/enabled", "enabled") if "enabled" in m else True
    authentication = "sigv4"
    if "authentication" in m:
        authentication = (
            r.string(
                m["authentication"], "/management/authentication", "authentication", choices=("sigv4", "none")
            )
            or authentication
        )
    return ManagementSettings(enabled is not False, authentication)


def _deployment_clash(api: ApiConfig, others: list[ApiConfig]) -> str | None:
    """Why ``api`` cannot be served beside the earlier entries of its id, or None."""
    for other in others:
        if api.deployment is None or other.deployment is None:
            return ""
        if other.deployment == api.deployment:
            return f" as deployment '{api.deployment}'"
        shared = sorted(set(other.stages) & set(api.stages))
        if shared:
            return f", whose deployment '{other.deployment}' also serves stage(s) {', '.join(shared)}"
    return None


def _route_auth(
    r: _Reader, rm: dict[str, Any], rp: str, auth: str, authorizers: dict[str, AuthorizerConfig]
) -> tuple[str | None, tuple[str, ...], bool]:
    """A route's authorizer, scopes and API-key requirement, checked against its type."""
    name = r.string(rm["authorizer"], f"{rp}/authorizer", "authorizer") if "authorizer" in rm else None
    wanted = {"CUSTOM": ("TOKEN", "REQUEST"), "COGNITO_USER_POOLS": ("COGNITO_USER_POOLS", "JWT")}.get(auth)
    if wanted is not None:
        if name is None:
            r.report(
                "missing-key",
                rp,
                f"a route with authorization {auth} needs 'authorizer'",
                "the name of one of the API's authorizers of type " + " or ".join(wanted),
            )
        elif name not in authorizers:
            r.report(
                "invalid-value",
                f"{rp}/authorizer",
                f"authorizer '{name}' is not defined for this API",
                "defined: " + (", ".join(authorizers) or "none"),
            )
        elif authorizers[name].type not in wanted:
            r.report(
                "invalid-value",
                f"{rp}/authorizer",
                f"authorizer '{name}' is a {authorizers[name].type} authorizer; {auth} needs "
                + " or ".join(wanted),
            )
    elif name is not None:
        r.report(
            "invalid-value",
            f"{rp}/authorizer",
            f"authorization {auth} takes no authorizer",
            "use authorization: CUSTOM or COGNITO_USER_POOLS",
        )
    scopes: tuple[str, ...] = ()
    if "authorization_scopes" in rm:
        items = (
            r.sequence(rm["authorization_scopes"], f"{rp}/authorization_scopes", "authorization_scopes") or []
        )
        scopes = tuple(str(s) for s in items)
        if auth != "COGNITO_USER_POOLS":
            r.report(
                "invalid-value",
                f"{rp}/authorization_scopes",
                "authorization_scopes apply to COGNITO_USER_POOLS routes only",
            )
    key_required = False
    if "api_key_required" in rm:
        key_required = bool(r.boolean(rm["api_key_required"], f"{rp}/api_key_required", "api_key_required"))
    return name, scopes, key_required


class ExtendError(Exception):
    """An ``extend`` step could not supply its part (e.g. the store is unreachable). ``source``
    names what is to blame when it is not the configuration file (``--store``)."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


# document -> (the document with more in it, pointer prefix -> where that part came from)
Extend = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    reader: Callable[[Path], bytes] | None = None,
    extend: Extend | None = None,
) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    """Validate configuration text. The config is None when there is any error.

    Relative file names (``policy_file``, the access log) are relative to ``base_dir`` (default:
    the working directory); ``reader`` reads policy files (default: from disk). ``extend`` adds to
    the document before validation (a store's APIs, keys and plans, appended after the file's own
    so that the file's parts keep their positions); diagnostics about what it added name where it
    came from instead of a line."""
    origins: dict[str, str] = {}
    config, diags = _parse_document(text, source, base_dir, reader, extend, origins)
    if origins:
        diags = _relocate(diags, origins)
    return config, diags


def _relocate(diags: list[Diagnostic], origins: dict[str, str]) -> list[Diagnostic]:
    out = []
    for d in diags:
        pointer = d.location.pointer
        prefix = next((p for p in origins if pointer == p or pointer.startswith(p + "/")), None)
        if prefix is None:
            out.append(d)
            continue
        inner = pointer[len(prefix) :] or "/"
        message = f"{origins[prefix]}: {d.message}"
        out.append(Diagnostic(d.code, d.severity, message, Location(inner), d.help, "store"))
    return out


def _parse_document(
    text: str,
    source: str,
    base_dir: Path | None,
    reader: Callable[[Path], bytes] | None,
    extend: Extend | None,
    origins: dict[str, str],
) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    doc = load_yaml(text)
    diags = [d.with_source(source) for d in doc.diagnostics]
    if doc.data is None:
        if not diags:
            diags.append(
                Diagnostic(
                    "config.empty",
                    Severity.ERROR,
                    "the configuration file is empty",
                    Location(""),
                    "start from examples/quickstart.yaml",
                    source,
                )
            )
        return None, diags
    data = doc.data
    if extend is not None and isinstance(data, dict):
        try:
            data, added = extend(data)
        except ExtendError as exc:
            # blamed on the file's store: line, or on what the step names (a command-line flag)
            pointer = "" if exc.source else "/store"
            blamed = exc.source or source
            failed = Diagnostic("config.store", Severity.ERROR, str(exc), Location(pointer), None, blamed)
            return None, [*diags, failed]
        origins.update(added)
    r = _Reader(doc.positions, source, base_dir or Path.cwd(), reader or Path.read_bytes)
    top = r.mapping(
        data,
        "",
        "the configuration",
        {
            "gateway": False,
            "apis": False,  # required unless a store serves the APIs (checked below)
            "identities": False,
            "api_keys": False,
            "throttling": False,
            "usage_plans": False,
            "store": False,
            "management": False,
        },
    )
    if top is None:
        return None, diags + r.diags
    settings = _settings(r, top.get("gateway"))
    identities = read_identities(r, top.get("identities"), r.base_dir, settings.max_policy_chars)
    api_keys = read_api_keys(r, top.get("api_keys"), r.base_dir)
    throttling = read_throttling(r, top.get("throttling"))
    store = None
    if top.get("store") is not None:
        store = r.string(
            top["store"],
            "/store",
            "store",
            pattern=_STORE_URL,
            help="sqlite:///FILE (relative to this file), sqlite:////ABSOLUTE/FILE or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        )
    management = _management(r, top.get("management"))
    plans = read_usage_plans(r, top.get("usage_plans"), {k.id for k in api_keys})
    watched: list[str] = []
    apis: list[ApiConfig] = []
    ids: dict[str, int] = {}
    items = r.sequence(top.get("apis", []), "/apis", "apis") or []
    if "apis" not in top and top.get("store") is None:
        r.report(
            "missing-key",
            "",
            "the configuration is missing 'apis'",
            "list the APIs to serve, or name a store (store: sqlite:///iamgate.db) that holds them",
        )
    elif top.get("apis") == [] and top.get("store") is None:
        r.warn("no-apis", "/apis", "no API is configured: every request will be answered 403")
    for i, raw in enumerate(items):
        api = _api(r, raw, f"/apis/{i}", settings, watched)
        if api is None:
            continue
        if api.id in ids:
            clash = _deployment_clash(api, [a for a in apis if a.id == api.id])
            if clash is not None:
                r.report(
                    "duplicate-id",
                    f"/apis/{i}/id",
                    f"API id '{api.id}' is already used by API {ids[api.id]}{clash}",
                    "an API appears more than once only as several deployments: give each entry a "
                    "different 'deployment' and stages of its own",
                )
                continue
        else:
            ids[api.id] = i
        apis.append(api)
    stage_names = {(api.id, stage) for api in apis for stage in api.stages}
    for i, plan in enumerate(plans):
        for j, st in enumerate(plan.stages):
            if (st.api, st.stage) not in stage_names:
                r.report(
                    "invalid-value",
                    f"/usage_plans/{i}/api_stages/{j}",
                    f"usage plan '{plan.id}' names {st.api}/{st.stage}, which is not a configured API stage",
                )
    diags += r.diags
    if any(d.is_error for d in diags):
        return None, diags
    uses_iam = any(route.authorization == "AWS_IAM" for api in apis for route in api.routes)
    if uses_iam and not len(identities):
        diags.append(
            Diagnostic(
                "config.no-identities",
                Severity.WARNING,
                "routes use AWS_IAM but no access key is configured: every call will be refused",
                Location("/identities"),
                "describe callers under identities",
                source,
            )
        )
    config = GatewayConfig(
        settings,
        tuple(apis),
        source,
        (source, *watched),
        AuthSettings(identities, api_keys),
        throttling,
        plans,
        store,
        management,
    )
    return config, diags


def load_config(
    path: str | Path, reader: Callable[[Path], bytes] | None = None, extend: Extend | None = None
) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    """Read and validate a configuration file; ``reader`` reads it and the policy files it names,
    ``extend`` adds a store's objects (see :func:`parse_config`)."""
    p = Path(path)
    try:
        data = (reader or Path.read_bytes)(p)
    except OSError as exc:
        return None, [
            Diagnostic(
                "config.unreadable",
                Severity.ERROR,
                f"cannot read {p}: {exc.strerror or exc}",
                Location(""),
                None,
                str(p),
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Diagnostic(
                "config.invalid-utf8",
                Severity.ERROR,
                f"{p} is not UTF-8 (byte offset {exc.start})",
                Location(""),
                None,
                str(p),
            )
        ]
    return parse_config(text, source=str(p), base_dir=p.parent, reader=reader, extend=extend)
