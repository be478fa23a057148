"""Security policies (API Gateway's names) and the server SSL contexts built from them.

A security policy names a minimum TLS version and the TLS 1.2 cipher suites offered. iamgate
speaks TLS 1.2 and 1.3 only: ``TLS_1_0`` keeps API Gateway's wider list of TLS 1.2 suites (CBC
and RSA key exchange included) but not TLS 1.0 and 1.1 themselves (docs/tls.md says why).
TLS 1.3's suites are OpenSSL's defaults (AES-GCM and ChaCha20-Poly1305), as in every policy.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from iamgate.tls.certs import ServerCertificate, Truststore

__all__ = ["DEFAULT_POLICY", "SECURITY_POLICIES", "SecurityPolicy", "cached_context", "server_context"]


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    name: str
    minimum: ssl.TLSVersion
    maximum: ssl.TLSVersion
    ciphers: str  # TLS 1.2 suites, OpenSSL names ("" when TLS 1.2 is not offered)


_TLS12_GCM_ECDHE: Final = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
)
_TLS12_AWS: Final = (  # API Gateway's TLS_1_2 policy, in its order
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:"
    "AES128-GCM-SHA256:AES128-SHA256:AES256-GCM-SHA384:AES256-SHA256"
)
_TLS10_AWS: Final = (  # API Gateway's TLS_1_0 policy: the above plus the SHA-1 CBC suites
    _TLS12_AWS + ":ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
    "ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA"
)

SECURITY_POLICIES: Final[dict[str, SecurityPolicy]] = {
    p.name: p
    for p in (
        SecurityPolicy("TLS_1_0", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, _TLS10_AWS),
        SecurityPolicy("TLS_1_2", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, _TLS12_AWS),
        SecurityPolicy(
            "SecurityPolicy_TLS13_1_2_2021_06",
            ssl.TLSVersion.TLSv1_2,
            ssl.TLSVersion.TLSv1_3,
            _TLS12_GCM_ECDHE,
        ),
        SecurityPolicy(
            "SecurityPolicy_TLS13_1_3_2025_09", ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3, ""
        ),
    )
}
DEFAULT_POLICY: Final = "TLS_1_2"


@contextlib.contextmanager
def _pem_file(data: bytes) -> Iterator[str]:
    """A path that reads ``data``: the standard library's SSLContext loads a certificate and key
    only from files. On Linux an anonymous memory file (memfd) holds them, so a private key
    never touches a disk; elsewhere a private temporary file, removed at once."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("iamgate-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    handle, path = tempfile.mkstemp(prefix="iamgate-tls-")  # mode 0600
    try:
        os.write(handle, data)
        os.close(handle)
        yield path
    finally:
        os.unlink(path)


class _DirectSSLObject(ssl.SSLObject):
    """``ssl.SSLObject`` whose ``read``, ``write`` and ``pending`` are the C object's own
    methods. The event loop's TLS transport calls them for every TLS record; ``ssl.py``'s versions
    only pass the call on, and that Python frame measured about a quarter of what TLS adds to a
    keep-alive request (docs/benchmarks.md, "Where the TLS CPU goes"). Same arguments, same
    results: the standard library's methods are one-line forwards to these."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super()._create(*args, **kwargs)  # type: ignore[misc]
        native = obj._sslobj
        obj.read = native.read
        obj.write = native.write
        obj.pending = native.pending
        return obj


def server_context(
    cert: ServerCertificate, policy: SecurityPolicy, truststore: Truststore | None = None
) -> ssl.SSLContext:
    """A server context: the certificate chain and key, the policy's versions and suites, ALPN
    ``http/1.1``, session tickets for resumption; with a truststore, client certificates are
    required and verified against it (chain, dates, clientAuth usage) during the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = policy.minimum
    ctx.maximum_version = policy.maximum
    if policy.ciphers:
        ctx.set_ciphers(policy.ciphers)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.sslobject_class = _DirectSSLObject
    with _pem_file(cert.chain_pem + cert.key_pem) as path:
        ctx.load_cert_chain(path)
    if truststore is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=truststore.pem.decode("ascii"))
    return ctx


_CACHE_SIZE: Final = 256
_cache: dict[tuple[bytes, bytes, str, bytes | None], ssl.SSLContext] = {}


def cached_context(
    cert: ServerCertificate, policy: SecurityPolicy, truststore: Truststore | None = None
) -> ssl.SSLContext:
    """:func:`server_context`, made once per process for the same certificate, key, policy and
    truststore: a reload that changes something else keeps the contexts, so session tickets
    issued before it still resume after it. Raises ``ssl.SSLError`` if OpenSSL refuses."""
    key = (cert.chain_pem, cert.key_pem, policy.name, truststore.pem if truststore else None)
    ctx = _cache.get(key)
    if ctx is None:
        ctx = server_context(cert, policy, truststore)
        if len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]  # the oldest: a context still used stays referenced
        _cache[key] = ctx
    return ctx
