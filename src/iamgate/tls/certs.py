"""What a checked certificate, key or truststore is, and the rules that need no parsing.

The reading and checking of PEM is in :mod:`iamgate.tls.pem`, which loads the ``cryptography``
package; it is imported by what reads a certificate (the configuration's TLS sections, the
management API's domain names, a client certificate's fields), so that a gateway without TLS
never loads it (about 10 MB of RSS in every process).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_CHAIN",
    "MIN_RSA_BITS",
    "CertError",
    "ServerCertificate",
    "Truststore",
    "covers",
    "serial_text",
]

MIN_RSA_BITS: Final = 2048  # ACM's and API Gateway's floor for RSA keys (truststores too)
MAX_CHAIN: Final = 8  # certificates in a server chain; more is a mistake (a truststore pasted in)


@dataclass(frozen=True, slots=True)
class CertError:
    """Why a certificate, key or truststore cannot be used (one sentence, for a person)."""

    message: str


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A server certificate chain with its key, checked; ``chain_pem`` and ``key_pem`` are
    normalised PEM (the key unencrypted: it lives only in memory and in the SSL context)."""

    chain_pem: bytes
    key_pem: bytes
    names: tuple[str, ...]  # the leaf's DNS names (subjectAltName, else the subject's CN)
    not_before: dt.datetime
    not_after: dt.datetime
    subject: str
    issuer: str
    serial: str
    fingerprint: str  # SHA-256 of the leaf, hex


@dataclass(frozen=True, slots=True)
class Truststore:
    """The CAs that client certificates must chain to (mutual TLS), with API Gateway's
    truststore warnings: usable, but a CA expired, not a CA, or too weak is named."""

    pem: bytes
    count: int
    warnings: tuple[str, ...]
    subjects: tuple[str, ...]


def serial_text(serial: int) -> str:
    """A serial number as API Gateway shows it: hexadecimal bytes joined by colons."""
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{b:02x}" for b in raw)


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate for ``names`` is valid for ``host`` (a wildcard covers exactly one
    left-most label, as RFC 6125 says)."""
    host = host.lower().rstrip(".")
    for name in names:
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:]:
                return True
    return False
