"""The validated configuration, as typed immutable values (see docs/configuration.md)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final

from iamgate.config.auth import AuthorizerConfig, AuthSettings
from iamgate.policy import CompiledPolicy
from iamgate.throttle.settings import Limit, RateLimitRule, ThrottleSettings, UsagePlan
from iamgate.tls.certs import ServerCertificate, Truststore

__all__ = [
    "PATH_OVERRIDE_HEADERS",
    "AccessLogSettings",
    "ApiConfig",
    "BasePathMapping",
    "ClientSettings",
    "DomainConfig",
    "GatewayConfig",
    "GatewayResponseConfig",
    "GatewaySettings",
    "HttpProxyIntegration",
    "ManagementSettings",
    "MockIntegration",
    "ModelConfig",
    "MutualTls",
    "Network",
    "RequestValidatorConfig",
    "RouteConfig",
    "ScopedPolicy",
    "StageConfig",
    "TlsSettings",
    "UpstreamSettings",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Network:
    """Source addresses that arrive through a VPC endpoint (docs/configuration.md, ``networks``)."""

    cidr: IPNetwork
    vpc_id: str | None
    vpce_id: str | None


@dataclass(frozen=True, slots=True)
class AccessLogSettings:
    destination: str | None  # "-" stdout, a file path, or None (off)
    format: str | None  # None: iamgate's JSON line; else an AWS-style $context template


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    connect_timeout: float = 5.0
    timeout: float = 29.0  # API Gateway's default integration timeout
    max_connections: int = 512  # per backend host:port
    max_idle: int = 128
    idle_timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Client connections: how long the gateway waits for them, and how many it keeps."""

    header_timeout: float = 60.0  # a request head must arrive within this (nginx client_header_timeout)
    keepalive_timeout: float = 75.0  # an idle keep-alive connection waits this long for a request
    body_timeout: float = 60.0  # longest pause between two reads of a body the gateway waits for
    # per process; None: as many as the open-file limit leaves room for (two files each)
    max_connections: int | None = None


# Request headers some backends read as the request's path, method or prefix instead of the
# request line (IIS URL Rewrite, nginx auth_request, Traefik, Envoy, Spring, old frameworks): a
# request judged as one path would run as another. Dropped by default (gateway.drop_request_headers).
PATH_OVERRIDE_HEADERS: Final[tuple[str, ...]] = (
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-rewrite-path",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-envoy-original-path",
    "x-original-path",
    "x-forwarded-method",
    "x-original-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS on a listening port (``gateway.tls``, ``gateway.admin_tls``; docs/tls.md)."""

    certificate: ServerCertificate | None  # None: only custom domains' certificates (SNI)
    security_policy: str = "TLS_1_2"
    handshake_timeout: float = 10.0  # seconds from accept to a finished handshake
    source: str = ""  # the certificate's file, for messages


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    region: str = "us-east-1"
    account_id: str = "123456789012"
    max_policy_chars: int | None = 8192
    trusted_proxies: tuple[IPNetwork, ...] = ()
    networks: tuple[Network, ...] = ()
    unmatched_status: int = 403  # 403 Missing Authentication Token as AWS; or 404
    denial_messages: str = "legacy"  # or "policy-type"
    allow_semicolon_in_path: bool = False
    max_request_body: int | None = None
    max_header_bytes: int = 10240  # header lines in total (names + values); 431 beyond
    max_url_bytes: int = 10240  # the request target; 414 beyond
    max_header_count: int = 100  # header lines; 431 beyond
    access_log: AccessLogSettings = field(default_factory=lambda: AccessLogSettings("-", None))
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    # who may call (docs/authentication.md)
    unknown_access_key_error: str = "AccessDeniedException"  # or UnrecognizedClientException
    cross_account_without_policy: str = "deny"  # or "identity": see auth.combine.aws_iam
    cognito_mode: str = "prose"  # or "table": see auth.combine.cognito
    max_buffered_body: int = 10 * 1024 * 1024  # bodies SigV4 must hash are buffered, up to this
    forwarded_header: str = "x-forwarded-for"  # or "forwarded" (RFC 7239): the one trusted proxies write
    # principal condition keys of callers the resource policy sees as anonymous (every method
    # that is not AWS_IAM): "omit" (API Gateway's key table) or "iam" (IAM's documented values)
    anonymous_principal_keys: str = "omit"
    client: ClientSettings = field(default_factory=ClientSettings)
    # lower-case names of request headers never forwarded, besides the hop-by-hop ones
    drop_request_headers: frozenset[bytes] = frozenset(n.encode() for n in PATH_OVERRIDE_HEADERS)
    # 502/504 answers carry x-iamgate-integration-error: why (a debugging aid, off by default)
    expose_integration_errors: bool = False
    # the data port speaks TLS when set (else plain HTTP), and the admin port when admin_tls is
    tls: TlsSettings | None = None
    admin_tls: TlsSettings | None = None


@dataclass(frozen=True, slots=True)
class HttpProxyIntegration:
    uri: str  # may hold ${stageVariables.x}, {param} and {proxy}
    timeout: float | None  # None: the gateway's upstream.timeout
    # integration.request.header.NAME -> a source ('literal', context.authorizer.KEY, ...)
    request_parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MockIntegration:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class GatewayResponseConfig:
    """A customised gateway response of an API (API Gateway's ``GatewayResponse``;
    docs/gateway-responses.md): what replaces the default answer of one response type."""

    response_type: str  # ACCESS_DENIED, DEFAULT_4XX, ...
    status_code: int | None = None  # None: the type's own status (or DEFAULT_xXX's)
    # ("gatewayresponse.header.NAME", source): a quoted literal ("'*'"), method.request.header.X,
    # method.request.querystring.X, method.request.path.X, stageVariables.X or context.X
    response_parameters: tuple[tuple[str, str], ...] = ()
    response_templates: tuple[tuple[str, str], ...] = ()  # (content type, template)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A model of an API (API Gateway's ``Model``): a JSON Schema draft 4 document
    (docs/request-validation.md)."""

    name: str
    schema: str  # the schema as JSON text, as API Gateway stores it
    content_type: str = "application/json"
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RequestValidatorConfig:
    """A request validator of an API (API Gateway's ``RequestValidator``)."""

    name: str
    validate_request_body: bool = False
    validate_request_parameters: bool = False


@dataclass(frozen=True, slots=True)
class ScopedPolicy:
    """A policy of a stage or of a route (iamgate's extension, docs/policy-semantics.md): a further
    gate that must allow, beside the API's resource policy."""

    label: str  # "stage:prod", "route:GET /pets/{id}": names it in logs and traces
    policy: CompiledPolicy
    text: str  # as written (JSON), for export and the store
    mode: str = "enforce"  # or report: evaluated and logged, never refusing


@dataclass(frozen=True, slots=True)
class RouteConfig:
    path: str
    method: str  # an HTTP verb or ANY
    integration: HttpProxyIntegration | MockIntegration
    authorization: str = "NONE"  # NONE | AWS_IAM | CUSTOM | COGNITO_USER_POOLS
    authorizer: str | None = None  # the name of one of the API's authorizers
    api_key_required: bool = False
    authorization_scopes: tuple[str, ...] = ()
    rate_limit: RateLimitRule | None = (
        None  # iamgate's extension: a limit per client, caller or context value
    )
    # request validation (docs/request-validation.md): the API's validator by name, the model
    # for each content type ("$default" for any), and the method request parameters
    # ("method.request.querystring.x", "...header.x", "...path.x") with whether each is required
    request_validator: str | None = None
    request_models: tuple[tuple[str, str], ...] = ()
    request_parameters: tuple[tuple[str, bool], ...] = ()
    policy: ScopedPolicy | None = None  # the route's own policy (iamgate's extension)


@dataclass(frozen=True, slots=True)
class StageConfig:
    name: str
    variables: dict[str, str]
    access_log_format: str | None = None
    throttle: Limit | None = None  # every method's default limit (API Gateway's methodSettings */*)
    method_throttle: dict[str, Limit] = field(default_factory=dict)  # "/pets/GET" -> limit
    policy: ScopedPolicy | None = None  # the stage's own policy (iamgate's extension)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    id: str
    name: str
    endpoint_type: str  # REGIONAL | PRIVATE | EDGE
    policy: CompiledPolicy | None
    policy_text: str | None  # the policy as stored (JSON), for export and the admin API
    policy_mode: str  # enforce | report
    stages: dict[str, StageConfig]
    routes: tuple[RouteConfig, ...]
    authorizers: dict[str, AuthorizerConfig] = field(default_factory=dict)
    api_key_source: str = "HEADER"  # or AUTHORIZER
    # the deployment this entry is (stores: one entry per deployment that a stage serves; an API
    # id appears once per deployment, each with its own stages)
    deployment: str | None = None
    # requests on the default endpoint ({id}.execute-api..., x-apigw-api-id, the path forms)
    # are answered 403 Forbidden: only custom domains reach the API
    disable_execute_api_endpoint: bool = False
    # customised gateway responses by type (docs/gateway-responses.md)
    gateway_responses: dict[str, GatewayResponseConfig] = field(default_factory=dict)
    models: dict[str, ModelConfig] = field(default_factory=dict)  # by name
    request_validators: dict[str, RequestValidatorConfig] = field(default_factory=dict)  # by name


@dataclass(frozen=True, slots=True)
class MutualTls:
    truststore: Truststore
    version: str | None
    source: str  # the truststore's file (or "inline")


@dataclass(frozen=True, slots=True)
class BasePathMapping:
    """Domain + base path -> API + stage. ``base_path`` is "" for API Gateway's ``(none)``;
    ``stage`` is "" for its ``(none)``: the first segment after the base path names the stage."""

    base_path: str
    api: str
    stage: str

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.base_path.split("/")) if self.base_path else ()


@dataclass(frozen=True, slots=True)
class DomainConfig:
    """A custom domain name (docs/tls.md): its certificate (chosen by SNI), security policy,
    mutual TLS and base path mappings."""

    name: str  # lower case; "*.example.com" for a wildcard domain
    certificate: ServerCertificate | None  # None: the gateway's default certificate covers it
    security_policy: str
    endpoint_type: str  # REGIONAL | EDGE
    mutual_tls: MutualTls | None
    mappings: tuple[BasePathMapping, ...]


@dataclass(frozen=True, slots=True)
class ManagementSettings:
    """The management API (docs/management.md), served on the admin port when a store is set."""

    enabled: bool = True
    authentication: str = "sigv4"  # or "none": only when the admin port listens on loopback
    decisions: bool = True  # console.decisions: keep recent requests for the live decision stream


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    settings: GatewaySettings
    apis: tuple[ApiConfig, ...]
    source: str | None = None  # the file it came from
    watched: tuple[str, ...] = ()  # files whose change triggers a reload (config + policy files)
    auth: AuthSettings = field(default_factory=AuthSettings)
    throttling: ThrottleSettings = field(default_factory=ThrottleSettings)
    usage_plans: tuple[UsagePlan, ...] = ()
    store: str | None = None  # the store URL (sqlite:///FILE, postgresql://...), as written
    management: ManagementSettings = field(default_factory=ManagementSettings)
    domains: tuple[DomainConfig, ...] = ()
