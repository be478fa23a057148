"""Certificates, keys and truststores read from PEM, checked before anything serves them.

Everything here is a pure function of bytes (and the time): a problem is returned as a
:class:`~iamgate.tls.certs.CertError` with a sentence that says what is wrong and how to fix it,
never raised, so the configuration reader and the management API can each put it where it
belongs (a located diagnostic, a ``BadRequestException``). The parsing is the ``cryptography``
package's; what is written here is only the checks API Gateway (and ACM) make before accepting a
certificate: the key matches, the chain is in order and signed, the dates hold, the name is
covered.

Import this module where a certificate is read, not at the top of a module every process loads:
it loads ``cryptography`` (:mod:`iamgate.tls.certs` has the types, without it).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iamgate.tls.certs import (
    MAX_CHAIN,
    MIN_RSA_BITS,
    CertError,
    ServerCertificate,
    Truststore,
    covers,
    serial_text,
)

__all__ = [
    "client_cert_context",
    "dn",
    "has_client_auth",
    "read_server_certificate",
    "read_truststore",
    "subject_alt_names",
]


def _pem_blocks(data: bytes, label: bytes) -> int:
    return data.count(b"-----BEGIN " + label + b"-----")


# what cryptography raises for a damaged certificate (several are not ValueErrors)
_UNREADABLE: Final = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def _certificates(data: bytes, what: str) -> list[x509.Certificate] | CertError:
    if b"-----BEGIN" not in data:
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
            return CertError(f"{what} is DER, not PEM: convert it with `openssl x509 -inform der -in FILE`")
        return CertError(f"{what} holds no PEM block ('-----BEGIN CERTIFICATE-----')")
    if _pem_blocks(data, b"CERTIFICATE") == 0:
        return CertError(f"{what} holds no certificate ('-----BEGIN CERTIFICATE-----'); is it a key?")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except _UNREADABLE as exc:
        return CertError(f"{what} is not readable PEM: {_reason(exc)}")
    if len(certs) != _pem_blocks(data, b"CERTIFICATE"):
        return CertError(f"{what}: some certificate blocks could not be read")
    for i, cert in enumerate(certs, start=1):
        # cryptography reads these parts only when asked: asked here, so that a damaged one is
        # this sentence rather than an exception from a later check
        try:
            cert.public_key()
            _ = (cert.extensions, cert.signature_hash_algorithm)
            _ = (dn(cert.subject), dn(cert.issuer))
        except _UNREADABLE as exc:
            return CertError(f"{what}: certificate {i} cannot be read: {_reason(exc)}")
    return certs


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.split("\n", 1)[0][:200]


def dn(name: x509.Name) -> str:
    """A distinguished name in RFC 4514 form (``CN=client,O=Example,C=US``), as API Gateway's
    ``subjectDN`` and ``issuerDN`` give it."""
    return name.rfc4514_string()


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(a.value).lower() for a in cns)
    return tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))


def _key_problem(key: object, what: str) -> CertError | None:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return CertError(
                f"{what} is an RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are needed"
            )
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            return CertError(f"{what} uses the curve {key.curve.name}; use P-256, P-384 or P-521")
        return None
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return CertError(f"{what} is a {type(key).__name__}: use an RSA (2048 bits or more) or ECDSA key")


def _public_der(key: PrivateKeyTypes | CertificatePublicKeyTypes) -> bytes:
    public = key.public_key() if hasattr(key, "public_key") else key
    return bytes(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def read_server_certificate(
    chain_pem: bytes,
    key_pem: bytes,
    password: bytes | None = None,
    *,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> ServerCertificate | CertError:
    """A server certificate chain (the leaf first, then each issuer) and its private key,
    checked: readable, key matching the leaf, chain in order and signed, within its dates, and
    valid for ``name`` when one is given (a custom domain's name)."""
    now = now or dt.datetime.now(dt.UTC)
    # one file may hold both (a bundle, as HAProxy's): take each part from where it is
    if b"PRIVATE KEY-----" in chain_pem and b"CERTIFICATE-----" in chain_pem:
        chain_pem = _only(chain_pem, keys=False)
    if b"CERTIFICATE-----" in key_pem and b"PRIVATE KEY-----" in key_pem:
        key_pem = _only(key_pem, keys=True)
    certs = _certificates(chain_pem, "the certificate")
    if isinstance(certs, CertError):
        return certs
    if len(certs) > MAX_CHAIN:
        return CertError(
            f"the certificate chain has {len(certs)} certificates; at most {MAX_CHAIN} are served"
        )
    if b"-----BEGIN" not in key_pem:
        return CertError("the key holds no PEM block ('-----BEGIN PRIVATE KEY-----')")
    if b"PRIVATE KEY-----" not in key_pem:
        return CertError("the key holds no private key ('-----BEGIN PRIVATE KEY-----'); is it a certificate?")
    encrypted = b"ENCRYPTED" in key_pem
    try:
        key = serialization.load_pem_private_key(key_pem, password=password if encrypted else None)
    except TypeError:
        if encrypted:
            return CertError("the key is encrypted: give its password (key_password_env)")
        return CertError("the key is not encrypted, but a password was given")
    except ValueError as exc:
        if encrypted:
            return CertError("the key's password is wrong (or the key is damaged)")
        return CertError(f"the key is not a readable private key: {_reason(exc)}")
    except UnsupportedAlgorithm as exc:
        return CertError(f"the key's algorithm is not supported: {_reason(exc)}")
    problem = _key_problem(key, "the key")
    if problem is not None:
        return problem
    leaf = certs[0]
    if _public_der(key) != _public_der(leaf.public_key()):
        # the most common mistake: the chain's order reversed, or another certificate's key
        for i, other in enumerate(certs[1:], start=2):
            if _public_der(key) == _public_der(other.public_key()):
                return CertError(
                    f"the key matches certificate {i} of the chain, not the first: put the server's "
                    "own certificate first, then each issuer"
                )
        return CertError(f"the key does not match the certificate ({dn(leaf.subject)})")
    for i in range(len(certs) - 1):
        child, parent = certs[i], certs[i + 1]
        if child.issuer != parent.subject or not _issued_by(child, parent):
            return CertError(
                f"certificate {i + 2} of the chain ({dn(parent.subject)}) did not issue certificate "
                f"{i + 1} ({dn(child.subject)}): give the server's certificate first, then each "
                "issuer in order"
            )
    for i, cert in enumerate(certs, start=1):
        which = "the certificate" if i == 1 else f"certificate {i} of the chain"
        if cert.not_valid_after_utc <= now:
            return CertError(f"{which} ({dn(cert.subject)}) expired on {_when(cert.not_valid_after_utc)}")
        if cert.not_valid_before_utc > now:
            return CertError(
                f"{which} ({dn(cert.subject)}) is not valid before {_when(cert.not_valid_before_utc)}"
            )
    names = _names(leaf)
    if name is not None and not covers(names, name):
        shown = ", ".join(names) or "no DNS name"
        return CertError(f"the certificate is for {shown}, not for {name}")
    key_out = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain_out = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    return ServerCertificate(
        chain_out,
        key_out,
        names,
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
        dn(leaf.subject),
        dn(leaf.issuer),
        serial_text(leaf.serial_number),
        leaf.fingerprint(hashes.SHA256()).hex(),
    )


_BLOCK: Final = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----\s*", re.DOTALL)


def _only(data: bytes, *, keys: bool) -> bytes:
    """The private-key blocks of a PEM bundle (``keys``), or every other block."""
    return b"".join(m.group(0) for m in _BLOCK.finditer(data) if (b"PRIVATE KEY" in m.group(1)) == keys)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def read_truststore(pem: bytes, *, now: dt.datetime | None = None) -> Truststore | CertError:
    """A mutual-TLS truststore: a PEM bundle of CA certificates. Garbage is an error; a CA that
    is expired, not a CA or has a weak key is a warning (API Gateway's ``truststoreWarnings``:
    the domain still serves, without that CA being of use)."""
    now = now or dt.datetime.now(dt.UTC)
    certs = _certificates(pem, "the truststore")
    if isinstance(certs, CertError):
        return certs
    stripped = pem
    for label in (b"CERTIFICATE",):
        while b"-----BEGIN " + label + b"-----" in stripped:
            start = stripped.index(b"-----BEGIN " + label + b"-----")
            end = stripped.find(b"-----END " + label + b"-----", start)
            if end < 0:
                return CertError("the truststore has a certificate block without its END line")
            stripped = stripped[:start] + stripped[end + len(label) + 14 :]
    if b"-----BEGIN" in stripped:
        return CertError(
            "the truststore holds something other than certificates (a key?); give CA certificates only"
        )
    warnings = []
    for i, cert in enumerate(certs, start=1):
        who = f"certificate {i} ({dn(cert.subject)})"
        if cert.not_valid_after_utc <= now:
            warnings.append(f"{who} expired on {_when(cert.not_valid_after_utc)}")
        elif cert.not_valid_before_utc > now:
            warnings.append(f"{who} is not valid before {_when(cert.not_valid_before_utc)}")
        if not _is_ca(cert):
            warnings.append(f"{who} is not a CA certificate (basicConstraints CA:TRUE is missing)")
        problem = _key_problem(cert.public_key(), f"{who}'s key")
        if problem is not None:
            warnings.append(problem.message)
        if isinstance(cert.signature_hash_algorithm, hashes.SHA1 | hashes.MD5):
            warnings.append(
                f"{who} is signed with {cert.signature_hash_algorithm.name}; SHA-256 or better is needed"
            )
    out = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    return Truststore(out, len(certs), tuple(warnings), tuple(dn(c.subject) for c in certs))


def _openssl_time(t: dt.datetime) -> str:
    # OpenSSL's ASN1_TIME_print format, which API Gateway shows: "May 28 12:30:02 2019 GMT"
    return f"{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S %Y')} GMT"


def client_cert_context(der: bytes) -> dict[str, object]:
    """``$context.identity.clientCert`` of a verified client certificate, in API Gateway's shape
    (``clientCertPem``, ``subjectDN``, ``issuerDN``, ``serialNumber``, ``validity``)."""
    cert = x509.load_der_x509_certificate(der)
    return {
        "clientCertPem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "subjectDN": dn(cert.subject),
        "issuerDN": dn(cert.issuer),
        "serialNumber": serial_text(cert.serial_number),
        "validity": {
            "notBefore": _openssl_time(cert.not_valid_before_utc),
            "notAfter": _openssl_time(cert.not_valid_after_utc),
        },
    }


def subject_alt_names(der: bytes) -> tuple[str, ...]:
    """Every subject alternative name of a certificate, as text, in the certificate's order: DNS
    names, e-mail addresses, URIs (``spiffe://...``) and IP addresses (``iamgate:ClientCert/SAN``)."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    out: list[str] = []
    for name in san:
        if isinstance(name, x509.DNSName | x509.RFC822Name | x509.UniformResourceIdentifier):
            out.append(name.value)
        elif isinstance(name, x509.IPAddress):
            out.append(str(name.value))
    return tuple(out)


def has_client_auth(cert: x509.Certificate) -> bool:
    """Whether a certificate may be used by a TLS client (no extendedKeyUsage, or one with
    clientAuth): what OpenSSL checks during the handshake, used by tests and the linting."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku
