"""Certificates made in the test (trustme, cryptography) and TLS clients for the gateway tests.

Nothing here is checked in: every CA, server and client certificate is generated per test.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_server_cert(ca: trustme.CA, directory: Path, stem: str, *names: str) -> tuple[str, str]:
    """A server certificate for ``names`` signed by ``ca``: (chain file, key file)."""
    leaf = ca.issue_cert(*names)
    chain, key = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return str(chain), str(key)


def dated_cert(
    ca: trustme.CA, name: str, days: tuple[int, int] = (-1, 30), *, password: bytes | None = None
) -> tuple[bytes, bytes]:
    """A server certificate for ``name`` issued by ``ca``, valid from ``days[0]`` to ``days[1]``
    days from now (trustme's all run to the year 3000), and its key (PKCS#8, encrypted with
    ``password`` when given): (certificate PEM, key PEM)."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_dated_server_cert(
    ca: trustme.CA, directory: Path, stem: str, name: str, days: int
) -> tuple[str, str]:
    """:func:`dated_cert` expiring ``days`` from now, written out: (chain file, key file)."""
    cert, key = dated_cert(ca, name, (-1, days))
    chain, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    chain.write_bytes(cert)
    key_path.write_bytes(key)
    return str(chain), str(key_path)


def write_ca(ca: trustme.CA, directory: Path, stem: str) -> str:
    path = directory / f"{stem}.pem"
    path.write_bytes(ca.cert_pem.bytes())
    return str(path)


def client_cert(
    ca: trustme.CA,
    directory: Path,
    stem: str,
    *,
    cn: str = "client-1",
    days: tuple[int, int] = (-1, 30),
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    sans: tuple[x509.GeneralName, ...] = (),
) -> tuple[str, str, x509.Certificate]:
    """A client certificate signed by ``ca`` (through its private key): (cert file, key file,
    certificate). ``days`` gives its validity relative to now; ``usage`` its extendedKeyUsage;
    ``sans`` its subject alternative names (none by default)."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tests"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path), cert


def client_context(
    ca_file: str,
    *,
    cert: tuple[str, str] | None = None,
    maximum: ssl.TLSVersion | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if maximum is not None:
        ctx.maximum_version = maximum
    if cert is not None:
        ctx.load_cert_chain(*cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_socket(port: int, ctx: ssl.SSLContext, server_name: str | None, timeout: float = 10) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise


class HostConnection(http.client.HTTPSConnection):
    """An HTTPS connection to 127.0.0.1 that names ``host`` in SNI and in Host (as DNS would)."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, timeout: float = 10) -> None:
        super().__init__(host, port, context=ctx, timeout=timeout)
        self._server_name = host

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self._server_name)  # type: ignore[attr-defined]


def get(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
) -> tuple[int, dict[str, str], bytes]:
    conn = HostConnection(host, port, ctx)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
