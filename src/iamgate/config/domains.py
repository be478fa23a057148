"""Custom domain names at run time: the map from a Host (or a TLS server name) to a domain and
its base path mappings, and the SSL context each handshake is made with (docs/tls.md).

Built with the snapshot; a reload builds new ones, while connections already open keep the
context their handshake was made with (a certificate reload never drops a connection).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from iamgate.config.model import BasePathMapping, DomainConfig, GatewayConfig
from iamgate.tls.contexts import SECURITY_POLICIES, cached_context

__all__ = ["DomainMap", "DomainRuntime", "Edge", "TlsChoice", "build_domains", "build_edge", "host_name"]


class DomainRuntime:
    """One custom domain: its mappings, longest base path first."""

    __slots__ = ("config", "mappings", "mtls", "name")

    def __init__(self, config: DomainConfig) -> None:
        self.config = config
        self.name = config.name
        self.mtls = config.mutual_tls is not None
        self.mappings = sorted(config.mappings, key=lambda m: -len(m.segments))

    def match(self, segments: tuple[str, ...]) -> tuple[BasePathMapping, tuple[str, ...]] | None:
        """The mapping whose base path is the longest whole-segment prefix of the request's
        canonical path segments, and the segments that reach the API; None when none is."""
        for mapping in self.mappings:
            base = mapping.segments
            if segments[: len(base)] == base:
                return mapping, segments[len(base) :]
        return None


def host_name(host: bytes) -> str | None:
    """The name in a Host header (or a TLS server name): lower case, without a port or a
    trailing dot; None for an IP literal or something no domain could be."""
    text = host.decode("latin-1").strip().lower()
    if not text or text.startswith("["):
        return None
    name, colon, port = text.rpartition(":")
    if colon:
        if not port.isdigit():
            return None
        text = name
    return text.removesuffix(".") or None


class DomainMap:
    """Host -> domain: an exact name first, then a wildcard domain (``*.example.com`` covers
    exactly one more label, as its certificate does)."""

    __slots__ = ("exact", "wildcard")

    def __init__(self, domains: tuple[DomainConfig, ...]) -> None:
        self.exact: dict[str, DomainRuntime] = {}
        self.wildcard: dict[str, DomainRuntime] = {}
        for config in domains:
            runtime = DomainRuntime(config)
            if config.name.startswith("*."):
                self.wildcard[config.name[2:]] = runtime
            else:
                self.exact[config.name] = runtime

    def find(self, name: str) -> DomainRuntime | None:
        found = self.exact.get(name)
        if found is None and self.wildcard:
            _, dot, parent = name.partition(".")
            if dot:
                found = self.wildcard.get(parent)
        return found


def build_domains(config: GatewayConfig) -> DomainMap | None:
    return DomainMap(config.domains) if config.domains else None


@dataclass(frozen=True, slots=True)
class TlsChoice:
    """What a handshake is made with: the context, and the domain it serves (None: the
    gateway's own certificate, for execute-api hosts and clients without a server name)."""

    context: ssl.SSLContext
    domain: str | None
    mtls: bool


class Edge:
    """The data port's TLS: one context per domain (its certificate, security policy and
    truststore) and the gateway's own, chosen by the ClientHello's server name (SNI)."""

    __slots__ = ("_by_name", "default", "domains", "handshake_timeout")

    def __init__(
        self,
        default: TlsChoice | None,
        domains: DomainMap | None,
        by_name: dict[str, TlsChoice],
        timeout: float,
    ) -> None:
        self.default = default
        self.domains = domains
        self.handshake_timeout = timeout
        self._by_name = by_name

    def choose(self, server_name: str | None) -> TlsChoice | None:
        """The context for a ClientHello's server name; None: no certificate for that name
        (refused with an ``unrecognized_name`` alert)."""
        if server_name is None or self.domains is None:
            return self.default
        domain = self.domains.find(server_name)
        if domain is None:
            return self.default
        return self._by_name.get(domain.name)


def build_edge(config: GatewayConfig, domains: DomainMap | None) -> Edge | None:
    """The data port's TLS contexts, or None when it speaks plain HTTP. Contexts come from the
    process's cache (``tls.contexts.cached_context``): the configuration reader made them."""
    tls = config.settings.tls
    if tls is None:
        return None
    default = None
    if tls.certificate is not None:
        ctx = cached_context(tls.certificate, SECURITY_POLICIES[tls.security_policy])
        default = TlsChoice(ctx, None, False)
    by_name: dict[str, TlsChoice] = {}
    for domain in config.domains:
        cert = domain.certificate or tls.certificate
        if cert is None:
            continue  # refused by the configuration reader: never served
        mtls = domain.mutual_tls
        ctx = cached_context(
            cert, SECURITY_POLICIES[domain.security_policy], mtls.truststore if mtls else None
        )
        by_name[domain.name] = TlsChoice(ctx, domain.name, mtls is not None)
    return Edge(default, domains, by_name, tls.handshake_timeout)
