"""The runtime snapshot: everything a request needs, built once per configuration version.

A request captures the snapshot current when it starts and uses only that one, so a reload
(an atomic swap of one reference) never mixes two configurations in one request.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from iamgate.config.model import (
    ApiConfig,
    GatewayConfig,
    GatewaySettings,
    HttpProxyIntegration,
    MockIntegration,
    Network,
    StageConfig,
)
from iamgate.pipeline.paths import encode_segment
from iamgate.pipeline.routing import ResourceTree
from iamgate.policy import ApiRef, CompiledPolicy

__all__ = ["ApiRuntime", "ProxyTarget", "RouteRuntime", "Snapshot", "build_snapshot"]

_STAGE_VAR = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_.-]*)\}")
_URI_PARAM = re.compile(r"\{([A-Za-z0-9._-]+)\}")
_versions = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    """An HTTP_PROXY integration resolved for one stage."""

    scheme: str
    host: str
    port: int
    host_header: str
    pieces: tuple[str | tuple[str], ...]  # literal text, or (param name,)
    error: str | None = None  # a configuration problem: the request gets 500

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


@dataclass(slots=True)
class RouteRuntime:
    resource_path: str
    method: str
    authorization: str
    integration: HttpProxyIntegration | MockIntegration
    greedy: str | None
    timeout: float
    _targets: dict[str, ProxyTarget] = field(default_factory=dict)

    def target(self, stage: StageConfig) -> ProxyTarget:
        found = self._targets.get(stage.name)
        if found is None:
            assert isinstance(self.integration, HttpProxyIntegration)
            found = _resolve(self.integration.uri, stage)
            self._targets[stage.name] = found
        return found


def _resolve(uri: str, stage: StageConfig) -> ProxyTarget:
    missing = [v for v in _STAGE_VAR.findall(uri) if v not in stage.variables]
    if missing:
        return ProxyTarget("http", "", 0, "", (), f"stage variable(s) {', '.join(missing)} are not defined")
    text = _STAGE_VAR.sub(lambda m: stage.variables[m.group(1)], uri)
    parts = urlsplit(text)
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
    return ProxyTarget(parts.scheme, host, port, host_header, tuple(pieces))


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


class _NetworkMap:
    def __init__(
        self,
        networks: tuple[Network, ...],
        trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    ):
        self.networks = networks
        self.trusted = trusted
        self._trusted_cache: dict[str, bool] = {}
        self._network_cache: dict[str, Network | None] = {}

    def is_trusted(self, ip: str) -> bool:
        found = self._trusted_cache.get(ip)
        if found is None:
            found = _contains(self.trusted, ip)
            if len(self._trusted_cache) > 4096:
                self._trusted_cache.clear()
            self._trusted_cache[ip] = found
        return found

    def network_of(self, ip: str) -> Network | None:
        if not self.networks:
            return None
        if ip in self._network_cache:
            return self._network_cache[ip]
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
        if len(self._network_cache) > 4096:
            self._network_cache.clear()
        self._network_cache[ip] = found
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


@dataclass(slots=True)
class Snapshot:
    settings: GatewaySettings
    apis: dict[str, ApiRuntime]
    default_api: ApiRuntime | None
    network_map: _NetworkMap
    config: GatewayConfig
    version: int
    loaded_at: float


def build_snapshot(config: GatewayConfig) -> Snapshot:
    settings = config.settings
    apis: dict[str, ApiRuntime] = {}
    for api in config.apis:
        tree: ResourceTree[RouteRuntime] = ResourceTree()
        for route in api.routes:
            greedy = next((seg[1:-2] for seg in route.path.split("/") if seg.endswith("+}")), None)
            timeout = settings.upstream.timeout
            if isinstance(route.integration, HttpProxyIntegration) and route.integration.timeout:
                timeout = route.integration.timeout
            tree.add(
                route.path,
                route.method,
                RouteRuntime(
                    route.path, route.method, route.authorization, route.integration, greedy, timeout
                ),
            )
        ref = ApiRef(settings.region, settings.account_id, api.id)
        apis[api.id] = ApiRuntime(
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
        )
    default = next(iter(apis.values())) if len(apis) == 1 else None
    return Snapshot(
        settings,
        apis,
        default,
        _NetworkMap(settings.networks, settings.trusted_proxies),
        config,
        next(_versions),
        time.time(),
    )
