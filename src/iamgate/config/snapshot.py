"""The runtime snapshot: everything a request needs, built once per configuration version.

A request captures the snapshot current when it starts and uses only that one, so a reload
(an atomic swap of one reference) never mixes two configurations in one request.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from iamgate.auth.custom import CustomAuthorizer, load_callable, parse_identity_sources
from iamgate.auth.jwt import JwtAuthorizerSettings, JwtClaims, JwtValidator, extract_bearer
from iamgate.config.auth import ApiKey, AuthorizerConfig, AuthSettings
from iamgate.config.domains import DomainMap, Edge, build_domains, build_edge
from iamgate.config.gateway_responses import ResponseTable
from iamgate.config.model import (
    ApiConfig,
    GatewayConfig,
    GatewaySettings,
    HttpProxyIntegration,
    MockIntegration,
    Network,
    RouteConfig,
    ScopedPolicy,
    StageConfig,
)
from iamgate.config.schemas import compile_model, models_registry, parse_schema
from iamgate.policy import ApiRef, CompiledPolicy, prepare
from iamgate.policy.memo import SecondSight
from iamgate.routing.paths import encode_segment
from iamgate.routing.tree import METHODS, ResourceTree
from iamgate.throttle.backend import Bucket
from iamgate.throttle.settings import Limit, RateLimitRule, ThrottleSettings, UsagePlan
from iamgate.upstream.headers import REQUEST_DROP
from iamgate.upstream.pool import origin

__all__ = [
    "ApiRuntime",
    "DecidingPolicy",
    "ProxyTarget",
    "RequestCheck",
    "Reuse",
    "RouteRuntime",
    "Snapshot",
    "StaticThrottle",
    "build_snapshot",
    "release_superseded",
    "static_throttle",
]

_STAGE_VAR: Final = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_.-]*)\}")
_URI_PARAM: Final = re.compile(r"\{([A-Za-z0-9._-]+)\}")
_versions: Final = itertools.count(1)
_NETWORK_MEMO_LIMIT: Final = 4096  # client addresses whose network and trust are kept
# the decisions and client addresses all policies of a process remember, shared among them
MEMO_BUDGET: Final = 131_072
MEMO_MIN: Final = 128
MEMO_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    """An HTTP_PROXY integration resolved for one stage."""

    scheme: str
    host: str
    port: int
    host_header: str
    pieces: tuple[str | tuple[str], ...]  # literal text, or (param name,)
    error: str | None = None  # a configuration problem: the request gets 500
    origin: str = ""  # the key of the backend's connection pool (upstream.pool.origin)

    def path(self, params: dict[str, str], greedy: str | None) -> str:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            name = piece[0]
            value = params.get(name, "")
            if name == greedy:
                out.append("/".join(encode_segment(s) for s in value.split("/")))
            else:
                out.append(encode_segment(value))
        text = "".join(out)
        return text if text.startswith("/") else "/" + text


@dataclass(frozen=True, slots=True)
class RequestCheck:
    """A route's request validation (docs/request-validation.md), compiled with the snapshot:
    the required parameters to look for and, for each content type, the model's compiled
    validator. Absent (None on the route) when the route's validator checks nothing."""

    # (where: "querystring" | "header" | "path", name, a header's lower-case name as bytes for
    # the header map), in the order of their expressions (the order of API Gateway's message)
    parameters: tuple[tuple[str, str, bytes], ...] = ()
    # lower-case media type -> jsonschema_rs validator; "$default" for any other
    models: dict[str, Any] = field(default_factory=dict)
    model_names: dict[str, str] = field(default_factory=dict)  # media type -> model name (logs)


# the static throttle levels of a route on one stage for one method: the buckets (the stage's
# limit for the method, the account's) and their level names
StaticThrottle = tuple[tuple[Bucket, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RouteRuntime:
    """One method of one resource, complete when built: what the stages read, and what depends
    on the route and the stage only, resolved for each stage of the route's deployment."""

    resource_path: str
    method: str
    authorization: str
    integration: HttpProxyIntegration | MockIntegration
    greedy: str | None
    timeout: float
    authorizer: str | None = None
    api_key_required: bool = False
    scopes: tuple[str, ...] = ()
    rate_limit: RateLimitRule | None = None
    # stage name -> the HTTP_PROXY integration resolved for the stage (none for MOCK)
    targets: dict[str, ProxyTarget] = field(default_factory=dict)
    # stage name -> request method -> the static throttle levels (none when nothing is
    # throttled); an ANY route has an entry for each of routing's METHODS
    throttle: dict[str, dict[str, StaticThrottle]] = field(default_factory=dict)
    check: RequestCheck | None = None  # request validation (None: nothing to check)
    policy: ScopedPolicy | None = None  # the route's own policy (iamgate's extension)

    def target(self, stage: StageConfig) -> ProxyTarget:
        found = self.targets.get(stage.name)
        if found is None:  # a stage the route was not built with (a hand-built exchange)
            assert isinstance(self.integration, HttpProxyIntegration)
            found = _resolve(self.integration.uri, stage)
        return found


def _resolve(uri: str, stage: StageConfig) -> ProxyTarget:
    missing = [v for v in _STAGE_VAR.findall(uri) if v not in stage.variables]
    if missing:
        return ProxyTarget("http", "", 0, "", (), f"stage variable(s) {', '.join(missing)} are not defined")
    text = _STAGE_VAR.sub(lambda m: stage.variables[m.group(1)], uri)
    try:  # resolved when the snapshot is built: a bad value fails the requests, not the build
        parts = urlsplit(text)
    except ValueError:  # an unclosed IPv6 bracket that a stage variable brought
        return ProxyTarget("http", "", 0, "", (), f"{text} is not a valid URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ProxyTarget("http", "", 0, "", (), f"invalid port in {text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ProxyTarget("http", "", 0, "", (), f"{text} is not an http(s) URL with a host")
    pieces: list[str | tuple[str]] = []
    last = 0
    for m in _URI_PARAM.finditer(parts.path):
        if m.start() > last:
            pieces.append(parts.path[last : m.start()])
        pieces.append((m.group(1),))
        last = m.end()
    if last < len(parts.path):
        pieces.append(parts.path[last:])
    default = (parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if default else f"{shown}:{port}"
    return ProxyTarget(
        parts.scheme, host, port, host_header, tuple(pieces), origin=origin(parts.scheme, host, port)
    )


class DecidingPolicy:
    """An API's resource policy as it decided requests, for explaining them later (the console's
    live decisions keep this for each request, not the API's runtime: a request kept after a
    redeploy would otherwise keep the whole superseded API, its routes and their integrations).
    While the API is served it holds the compiled policy; once a reload has replaced the API
    (:func:`release_superseded`), only its text, compiled again when an explanation is asked."""

    def __init__(self, api_id: str, policy: CompiledPolicy | None, text: str | None, mode: str, ref: ApiRef):
        self.api_id = api_id
        self.text = text
        self.mode = mode
        self.ref = ref
        self._policy = policy

    def compiled(self) -> CompiledPolicy | None:
        """The policy (None: the API has none)."""
        policy = self._policy
        if policy is None and self.text is not None:
            policy = prepare(self.text.encode("utf-8", "surrogatepass"), api=self.ref).policy
        return policy

    def release(self) -> None:
        """Let go of the compiled policy (its API is no longer served); the text stays."""
        if self.text is not None:
            self._policy = None


def release_superseded(old: Snapshot, new: Snapshot) -> None:
    """After a reload: the runtimes of ``old`` that ``new`` does not serve let go of their compiled
    policies (requests the console still keeps name them; explained from the text if asked)."""
    for api in old.apis.values():
        for runtime in (api, *api.by_stage.values()):
            if new.apis.get(runtime.id) is not runtime and runtime.deciding is not None:
                runtime.deciding.release()


@dataclass(slots=True)
class ApiRuntime:
    id: str
    name: str
    endpoint_type: str
    private: bool
    policy: CompiledPolicy | None
    policy_mode: str
    stages: dict[str, StageConfig]
    tree: ResourceTree[RouteRuntime]
    arn_prefix: str
    config: ApiConfig
    authorizers: dict[str, Any] = field(default_factory=dict)  # name -> CustomAuthorizer | JwtAuthorizer
    api_key_source: str = "HEADER"
    # stage name -> the deployment serving it, when the API has several (an API id's first entry
    # answers for all of its stages; routing then switches to the stage's deployment)
    by_stage: dict[str, ApiRuntime] = field(default_factory=dict)
    # the API's customised gateway responses (None: it customises none, every answer is AWS's default)
    responses: ResponseTable | None = None
    deciding: DecidingPolicy | None = None  # set by build_snapshot


class _NetworkMap:
    def __init__(
        self,
        networks: tuple[Network, ...],
        trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    ):
        self.networks = networks
        self.trusted = trusted
        self._trusted_memo: SecondSight[str, bool] = SecondSight(_NETWORK_MEMO_LIMIT)
        self._network_memo: SecondSight[str, Network | None] = SecondSight(_NETWORK_MEMO_LIMIT)

    def is_trusted(self, ip: str) -> bool:
        found = self._trusted_memo.found.get(ip)
        if found is None:
            found = _contains(self.trusted, ip)
            self._trusted_memo.keep(ip, found)
        return found

    def network_of(self, ip: str) -> Network | None:
        if not self.networks:
            return None
        known = self._network_memo.found
        if ip in known:
            return known[ip]
        found = None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        if addr is not None:
            for net in self.networks:
                if addr.version == net.cidr.version and addr in net.cidr:
                    found = net
                    break
        self._network_memo.keep(ip, found)
        return found


def _contains(nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], ip: str) -> bool:
    if not nets:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == n.version and addr in n for n in nets)


@dataclass(frozen=True, slots=True)
class Snapshot:
    settings: GatewaySettings
    apis: dict[str, ApiRuntime]
    default_api: ApiRuntime | None
    network_map: _NetworkMap
    config: GatewayConfig
    version: int
    loaded_at: float
    auth: AuthSettings = field(default_factory=AuthSettings)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)  # by value
    limits: Limits | None = None  # None: nothing is throttled
    # request headers never forwarded to a backend: the hop-by-hop and replaced ones, and
    # gateway.drop_request_headers
    request_drop: frozenset[bytes] = REQUEST_DROP
    # the route stage's memo of its successful results (a pipeline.stages.Routed each, a type of
    # the layer above, hence Any), keyed by (raw path, method, Host, x-apigw-api-id): created
    # with the snapshot, so a reload starts an empty one
    # custom domain names by Host (None: none configured), and the data port's TLS (None: plain)
    domains: DomainMap | None = None
    edge: Edge | None = None
    route_memo: SecondSight[tuple[bytes, str, bytes | None, bytes | None], Any] = field(
        default_factory=SecondSight, init=False, repr=False, compare=False
    )

    def key_allowed(self, key: ApiKey, api_id: str, stage: str) -> bool:
        """Whether an API key may be used on this API stage: once usage plans are configured, only
        keys of a plan that covers the stage are (as API Gateway's usage plans)."""
        if self.limits is None or not self.limits.plans:
            return True
        return self.limits.plan_for(key.id, api_id, stage) is not None


class Limits:
    """The throttling configuration, indexed for the throttle stage."""

    def __init__(self, settings: ThrottleSettings, plans: tuple[UsagePlan, ...], enabled: bool) -> None:
        self.settings = settings
        self.fail_open = settings.fail_open
        self.plans = plans
        self.account = Bucket("account", settings.account.rate, settings.account.burst) if enabled else None
        self._by_key: dict[tuple[str, str, str], UsagePlan] = {}
        self._methods: dict[tuple[str, str, str], dict[str, Limit]] = {}
        for plan in plans:
            for st in plan.stages:
                self._methods[(plan.id, st.api, st.stage)] = st.methods
                for key in plan.keys:
                    self._by_key[(key, st.api, st.stage)] = plan

    def plan_for(self, key_id: str, api_id: str, stage: str) -> UsagePlan | None:
        return self._by_key.get((key_id, api_id, stage))

    def plan_method_limit(
        self, plan: UsagePlan, api_id: str, stage: str, method_key: str, route_method: str
    ) -> Limit | None:
        methods = self._methods.get((plan.id, api_id, stage))
        if not methods:
            return None
        resource = method_key.rsplit("/", 1)[0]
        return methods.get(method_key) or methods.get(f"{resource}/{route_method}")


class JwtAuthorizer:
    """A COGNITO_USER_POOLS / JWT authorizer: where the token is and how it is validated.

    For ``COGNITO_USER_POOLS`` without a configured ``token_use``, API Gateway reads the token as
    an ID token when the method has no scopes and as an access token when it has some
    (docs/authentication.md): two validators sharing one key cache.
    """

    def __init__(self, config: AuthorizerConfig) -> None:
        self.config = config
        source = config.identity_source.split(",")[0].strip()
        self.header = source.removeprefix("method.request.header.").lower().encode()

        def settings(token_use: str | None) -> JwtAuthorizerSettings:
            return JwtAuthorizerSettings(
                issuer=config.issuer or "",
                audiences=config.audiences,
                jwks_url=config.jwks_url,
                jwks_file=config.jwks_file,
                algorithms=config.algorithms,
                leeway=config.leeway,
                token_use=token_use,
            )

        if config.type == "COGNITO_USER_POOLS" and config.token_use is None:
            self.plain = JwtValidator(settings("id"))
            self.scoped = JwtValidator(settings("access"), jwks=self.plain.jwks)
        else:
            self.plain = self.scoped = JwtValidator(settings(config.token_use))

    def token(self, ex: Any) -> str | None:
        value = ex.hmap.get(self.header)
        return extract_bearer(value.decode("latin-1")) if value is not None else None

    async def validate(self, token: str, *, required_scopes: tuple[str, ...] = ()) -> JwtClaims:
        validator = self.scoped if required_scopes else self.plain
        return await validator.validate(token, required_scopes=required_scopes)


def build_authorizer(config: AuthorizerConfig, previous: dict[tuple[str, ...], Any] | None = None) -> Any:
    """The runtime object of an authorizer. Raises ValueError for what validation could not catch
    (a Python function that cannot be imported)."""
    if config.type in ("COGNITO_USER_POOLS", "JWT"):
        return JwtAuthorizer(config)
    function = load_callable(config.function) if config.function else None
    return CustomAuthorizer(
        config.name,
        config.type,
        parse_identity_sources(config.identity_source),
        ttl=config.ttl,
        validation=re.compile(config.validation) if config.validation else None,
        url=config.url,
        function=function,
        timeout=config.timeout,
    )


class Reuse:
    """The runtime objects of the last snapshot built in this process, by the API configuration
    object each was built from. The configuration reader hands back the very same object for an
    API entry that did not change (``read_api.ApiMemo``), so a reload that changed one API builds one
    API; the others keep their routing trees, compiled checks and authorizers (with their key
    caches). Only when what every API's build reads besides its own entry is unchanged: the
    gateway settings (upstream timeout) and throttling (account limit, usage plans). Used by the
    serving process's reloads only."""

    def __init__(self) -> None:
        self.runtimes: dict[int, tuple[ApiConfig, ApiRuntime]] = {}
        self.context: tuple[object, ...] | None = None
        self.reused = 0  # APIs the last build reused (for tests and benchmarks)


def build_snapshot(config: GatewayConfig, reuse: Reuse | None = None) -> Snapshot:
    """The runtime form of a configuration; with ``reuse``, the last build's APIs that did not
    change are taken as they are."""
    settings = config.settings
    limits = _limits(config)
    apis: dict[str, ApiRuntime] = {}
    context = (settings, config.throttling, config.usage_plans)
    previous = reuse.runtimes if reuse is not None and reuse.context == context else {}
    built: dict[int, tuple[ApiConfig, ApiRuntime]] = {}
    counts = Counter(api.id for api in config.apis)
    reused = 0
    for api in config.apis:
        found = previous.get(id(api))
        if found is not None and found[0] is api and counts[api.id] == 1:
            built[id(api)] = found
            apis[api.id] = found[1]
            reused += 1
            continue
        tree: ResourceTree[RouteRuntime] = ResourceTree()
        models = _Models(api)
        for route in api.routes:
            tree.add(route.path, route.method, _route_runtime(route, api, settings, limits, models))
        ref = ApiRef(settings.region, settings.account_id, api.id)
        runtime = ApiRuntime(
            api.id,
            api.name,
            api.endpoint_type,
            api.endpoint_type == "PRIVATE",
            api.policy,
            api.policy_mode,
            api.stages,
            tree,
            ref.arn_prefix,
            api,
            {name: build_authorizer(cfg, None) for name, cfg in api.authorizers.items()},
            api.api_key_source,
            responses=ResponseTable.build(api.gateway_responses),
            deciding=DecidingPolicy(api.id, api.policy, api.policy_text, api.policy_mode, ref),
        )
        front = apis.get(api.id)
        if counts[api.id] == 1:  # an API with several deployments is built again every time
            built[id(api)] = (api, runtime)
        if front is None:
            apis[api.id] = runtime
        else:  # another deployment of the same API: its stages route to it
            if not front.by_stage:
                front.stages = dict(front.stages)
                front.by_stage = dict.fromkeys(front.stages, front)
            for name in api.stages:
                front.stages[name] = api.stages[name]
                front.by_stage[name] = runtime
    if reuse is not None:
        reuse.runtimes, reuse.context, reuse.reused = built, context, reused
    _share_memo_budget(config)
    default = next(iter(apis.values())) if len(apis) == 1 else None
    domains = build_domains(config)
    return Snapshot(
        settings,
        apis,
        default,
        _NetworkMap(settings.networks, settings.trusted_proxies),
        config,
        next(_versions),
        time.time(),
        config.auth,
        {key.value: key for key in config.auth.api_keys},
        limits,
        REQUEST_DROP | settings.drop_request_headers,
        domains,
        build_edge(config, domains),
    )


def _share_memo_budget(config: GatewayConfig) -> None:
    """Each policy's share of :data:`MEMO_BUDGET` (between :data:`MEMO_MIN` and
    :data:`MEMO_MAX` entries per memo): what a policy remembers of the requests it decided is
    bounded per process, however many APIs, stages, routes and callers have a policy."""
    policies: dict[int, CompiledPolicy] = {}
    for api in config.apis:
        if api.policy is not None:
            policies[id(api.policy)] = api.policy
        for stage in api.stages.values():
            if stage.policy is not None:
                policies[id(stage.policy.policy)] = stage.policy.policy
        for route in api.routes:
            if route.policy is not None:
                policies[id(route.policy.policy)] = route.policy.policy
    for policy in config.auth.store.policies():  # the callers' identity policies (AWS_IAM)
        policies[id(policy)] = policy
    if not policies:
        return
    share = max(MEMO_MIN, min(MEMO_MAX, MEMO_BUDGET // len(policies)))
    for policy in policies.values():
        policy.limit_memos(share)


class _Models:
    """An API's models, each compiled on first use by a route (once per snapshot)."""

    def __init__(self, api: ApiConfig) -> None:
        self.api = api
        self.parsed: dict[str, Any] | None = None
        self.registry: Any = None
        self.compiled: dict[str, Any] = {}

    def validator(self, name: str) -> Any:
        found = self.compiled.get(name)
        if found is None:
            if self.parsed is None:
                self.parsed = {n: parse_schema(m.schema)[0] for n, m in self.api.models.items()}
                self.registry = models_registry(self.api.id, self.parsed)
            # the configuration reader checked every model: a failure here is a bug, and fails
            # the build (the previous snapshot stays in service)
            found = self.compiled[name] = compile_model(self.api.id, name, self.parsed, self.registry)
        return found


def _request_check(route: RouteConfig, api: ApiConfig, models: _Models) -> RequestCheck | None:
    """What the route's validator checks, compiled; None when it checks nothing."""
    validator = api.request_validators.get(route.request_validator) if route.request_validator else None
    if validator is None:
        return None
    parameters: list[tuple[str, str, bytes]] = []
    if validator.validate_request_parameters:
        for expression, required in sorted(route.request_parameters):
            if not required:
                continue
            _, _, rest = expression.partition("method.request.")
            where, _, name = rest.partition(".")
            where = where.removeprefix("multivalue")  # required: present at least once, as the single form
            parameters.append((where, name, name.lower().encode("latin-1", "replace")))
    compiled: dict[str, Any] = {}
    names: dict[str, str] = {}
    if validator.validate_request_body:
        for content_type, model in route.request_models:
            compiled[content_type.lower()] = models.validator(model)
            names[content_type.lower()] = model
    if not parameters and not compiled:
        return None
    return RequestCheck(tuple(parameters), compiled, names)


def _route_runtime(
    route: RouteConfig, api: ApiConfig, settings: GatewaySettings, limits: Limits | None, models: _Models
) -> RouteRuntime:
    """A route with what it needs on each stage of its deployment: the resolved integration
    target and the static throttle levels of each method it can be asked for."""
    greedy = next((seg[1:-2] for seg in route.path.split("/") if seg.endswith("+}")), None)
    timeout = settings.upstream.timeout
    targets: dict[str, ProxyTarget] = {}
    if isinstance(route.integration, HttpProxyIntegration):
        if route.integration.timeout:
            timeout = route.integration.timeout
        targets = {name: _resolve(route.integration.uri, stage) for name, stage in api.stages.items()}
    throttle: dict[str, dict[str, StaticThrottle]] = {}
    if limits is not None:
        methods = METHODS if route.method == "ANY" else (route.method,)
        throttle = {
            name: {m: static_throttle(limits, api.id, stage, route.path, route.method, m) for m in methods}
            for name, stage in api.stages.items()
        }
    return RouteRuntime(
        route.path,
        route.method,
        route.authorization,
        route.integration,
        greedy,
        timeout,
        route.authorizer,
        route.api_key_required,
        route.authorization_scopes,
        route.rate_limit,
        targets,
        throttle,
        _request_check(route, api, models),
        route.policy,
    )


def static_throttle(
    limits: Limits, api_id: str, stage: StageConfig, resource_path: str, route_method: str, method: str
) -> StaticThrottle:
    """The levels that depend on the route, stage and method only: the stage level (the method's
    setting, else the stage default) and the account level."""
    method_key = f"{resource_path}/{method}"
    stage_limit = (
        stage.method_throttle.get(method_key)
        or stage.method_throttle.get(f"{resource_path}/{route_method}")
        or stage.method_throttle.get("/*/*")
        or stage.throttle
    )
    buckets: list[Bucket] = []
    levels: list[str] = []
    if stage_limit is not None:
        buckets.append(
            Bucket(f"stage:{api_id}:{stage.name}:{method_key}", stage_limit.rate, stage_limit.burst)
        )
        levels.append("stage")
    if limits.account is not None:
        buckets.append(limits.account)
        levels.append("account")
    return tuple(buckets), tuple(levels)


def _limits(config: GatewayConfig) -> Limits | None:
    """Throttling applies when configured: a ``throttling`` section, usage plans, stage or route limits."""
    explicit = config.throttling.configured
    staged = any(st.throttle or st.method_throttle for api in config.apis for st in api.stages.values())
    routed = any(route.rate_limit for api in config.apis for route in api.routes)
    if not (explicit or config.usage_plans or staged or routed):
        return None
    return Limits(config.throttling, config.usage_plans, explicit)
