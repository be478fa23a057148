"""What a request knows of its connection's TLS: the domain whose context made the handshake,
and the verified client certificate (mutual TLS), read into API Gateway's shape on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["TlsSession"]


class TlsSession:
    __slots__ = ("_cert", "_sans", "domain", "peer_der")

    def __init__(self, domain: str | None, peer_der: bytes | None) -> None:
        self.domain = domain  # None: the gateway's own certificate
        self.peer_der = peer_der  # the client certificate (DER), verified in the handshake
        self._cert: dict[str, Any] | None = None
        self._sans: tuple[str, ...] | None = None

    def client_cert(self) -> dict[str, Any] | None:
        """``$context.identity.clientCert`` (None without a client certificate)."""
        if self.peer_der is None:
            return None
        if self._cert is None:
            from iamgate.tls.pem import client_cert_context  # noqa: PLC0415 - cryptography, when first needed

            self._cert = client_cert_context(self.peer_der)
        return self._cert

    def subject_alt_names(self) -> tuple[str, ...]:
        """The client certificate's subject alternative names (empty without one)."""
        if self.peer_der is None:
            return ()
        if self._sans is None:
            from iamgate.tls.pem import subject_alt_names  # noqa: PLC0415 - cryptography, when first needed

            self._sans = subject_alt_names(self.peer_der)
        return self._sans
