"""Certificates, keys and truststores (iamgate.tls.pem): every bad input a person (or an
attacker) can give, with the sentence they read; the chain a good certificate serves in a real
handshake; API Gateway's ``$context.identity.clientCert``; and which names a certificate covers.

Every certificate is made here: with trustme, or with cryptography's CertificateBuilder when a
test needs a particular date, name, key or flag. Messages that name a date are tested with a
fixed ``now`` and fixed validity, so they are compared whole."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import warnings
from dataclasses import dataclass

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.tls.certs import CertError, ServerCertificate, Truststore, covers
from iamgate.tls.contexts import SECURITY_POLICIES, server_context
from iamgate.tls.pem import client_cert_context, read_server_certificate, read_truststore

NAME = "api.example.test"
UTC = dt.UTC
# fixed dates for the messages that show one
NOW = dt.datetime(2031, 6, 15, 12, 0, 0, tzinfo=UTC)
START = dt.datetime(2031, 1, 1, 0, 0, 0, tzinfo=UTC)
END = dt.datetime(2032, 1, 1, 0, 0, 0, tzinfo=UTC)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def name(cn: str, org: str = "iamgate tests") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Made:
    """A certificate with its key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def make(
    cn: str,
    issuer: Made | None = None,
    *,
    dns: tuple[str, ...] | None = (),
    ca: bool | None = False,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    not_before: dt.datetime = START,
    not_after: dt.datetime = END,
    serial: int = 0x1A2B3C,
    subject: x509.Name | None = None,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> Made:
    """A certificate for ``cn`` (and ``dns``: None for no subjectAltName, () for ``cn`` as the one
    DNS name), signed by ``issuer`` (self-signed without one); ``ca`` None: no basicConstraints."""
    key = key or ec_key()
    subject = subject or name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if dns is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns or (cn,)]), critical=False
        )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return Made(builder.sign((issuer or Made(None, key)).key, hashes.SHA256()), key)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def root() -> Made:
    return make(
        "Test Root CA",
        ca=True,
        dns=None,
        not_before=START.replace(year=2020),
        not_after=END.replace(year=2050),
    )


@pytest.fixture(scope="module")
def issuing(root: Made) -> Made:
    return make(
        "Test Issuing CA",
        root,
        ca=True,
        dns=None,
        not_before=START.replace(year=2020),
        not_after=END.replace(year=2050),
    )


@pytest.fixture(scope="module")
def leaf(issuing: Made) -> Made:
    return make(NAME, issuing)


def error(found: object) -> str:
    assert isinstance(found, CertError), found
    return found.message


def good(found: object) -> ServerCertificate:
    assert isinstance(found, ServerCertificate), found
    return found


def store(found: object) -> Truststore:
    assert isinstance(found, Truststore), found
    return found


# --- a good certificate --------------------------------------------------------------------------


def test_a_leaf_and_its_issuer_in_order(root: Made, issuing: Made, leaf: Made) -> None:
    read = good(read_server_certificate(leaf.pem + issuing.pem, leaf.key_pem, name=NAME, now=NOW))
    assert read.names == (NAME,)
    assert read.subject == "CN=api.example.test,O=iamgate tests,C=US"
    assert read.issuer == "CN=Test Issuing CA,O=iamgate tests,C=US"
    assert read.serial == "1a:2b:3c"
    assert (read.not_before, read.not_after) == (START, END)
    assert read.fingerprint == leaf.cert.fingerprint(hashes.SHA256()).hex()
    assert x509.load_pem_x509_certificates(read.chain_pem) == [leaf.cert, issuing.cert]
    # the root as well (some people paste it): each certificate issued by the next
    with_root = good(read_server_certificate(leaf.pem + issuing.pem + root.pem, leaf.key_pem, now=NOW))
    assert with_root.chain_pem.count(b"BEGIN CERTIFICATE") == 3


def test_pem_text_around_the_blocks_is_dropped(issuing: Made, leaf: Made) -> None:
    noisy = b"subject=CN = api.example.test\n" + leaf.pem + b"\r\n# issuer\n" + issuing.pem + b"\n\n"
    read = good(read_server_certificate(noisy, b"Bag Attributes\n" + leaf.key_pem, now=NOW))
    assert read.chain_pem == leaf.pem + issuing.pem
    assert read.key_pem == leaf.key_pem


def test_one_bundle_holds_the_chain_and_the_key(issuing: Made, leaf: Made) -> None:
    for bundle in (leaf.pem + issuing.pem + leaf.key_pem, leaf.key_pem + leaf.pem + issuing.pem):
        read = good(read_server_certificate(bundle, bundle, now=NOW))
        assert read.chain_pem == leaf.pem + issuing.pem
        assert b"CERTIFICATE" not in read.key_pem


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP384R1())],
    ids=["rsa-2048", "p-384"],
)
def test_accepted_key_types(issuing: Made, key: CertificateIssuerPrivateKeyTypes) -> None:
    made = make(NAME, issuing, key=key)
    assert good(read_server_certificate(made.pem, made.key_pem, now=NOW)).names == (NAME,)


# --- what cannot be read -------------------------------------------------------------------------


def test_a_der_certificate(leaf: Made) -> None:
    assert error(read_server_certificate(leaf.der, leaf.key_pem, now=NOW)) == (
        "the certificate is DER, not PEM: convert it with `openssl x509 -inform der -in FILE`"
    )


@pytest.mark.parametrize("garbage", [b"", b"hello world", b"\x00\x01\x02", "é".encode()])
def test_garbage_as_the_certificate(leaf: Made, garbage: bytes) -> None:
    assert error(read_server_certificate(garbage, leaf.key_pem, now=NOW)) == (
        "the certificate holds no PEM block ('-----BEGIN CERTIFICATE-----')"
    )


def test_a_damaged_certificate_block(leaf: Made) -> None:
    lines = leaf.pem.split(b"\n")
    lines[2] = b"!!!! not base64 !!!!"
    message = error(read_server_certificate(b"\n".join(lines), leaf.key_pem, now=NOW))
    assert message.startswith("the certificate is not readable PEM: ")
    # base64 that decodes, but not to a certificate
    junk = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(b"x" * 90) + b"-----END CERTIFICATE-----\n"
    assert error(read_server_certificate(junk, leaf.key_pem, now=NOW)).startswith(
        "the certificate is not readable PEM: "
    )


def test_a_key_given_as_the_certificate(leaf: Made) -> None:
    assert error(read_server_certificate(leaf.key_pem, leaf.key_pem, now=NOW)) == (
        "the certificate holds no certificate ('-----BEGIN CERTIFICATE-----'); is it a key?"
    )


def test_a_certificate_given_as_the_key(leaf: Made) -> None:
    assert error(read_server_certificate(leaf.pem, leaf.pem, now=NOW)) == (
        "the key holds no private key ('-----BEGIN PRIVATE KEY-----'); is it a certificate?"
    )


@pytest.mark.parametrize("garbage", [b"", b"secret", b"\x30\x82\x01\x00"])
def test_garbage_as_the_key(leaf: Made, garbage: bytes) -> None:
    assert error(read_server_certificate(leaf.pem, garbage, now=NOW)) == (
        "the key holds no PEM block ('-----BEGIN PRIVATE KEY-----')"
    )


def test_a_damaged_key_block(leaf: Made) -> None:
    damaged = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert error(read_server_certificate(leaf.pem, damaged, now=NOW)).startswith(
        "the key is not a readable private key: "
    )


@pytest.mark.parametrize(
    "form", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_an_encrypted_key(leaf: Made, form: serialization.PrivateFormat) -> None:
    locked = leaf.key.private_bytes(
        serialization.Encoding.PEM, form, serialization.BestAvailableEncryption(b"open sesame")
    )
    assert b"ENCRYPTED" in locked
    assert error(read_server_certificate(leaf.pem, locked, now=NOW)) == (
        "the key is encrypted: give its password (key_password_env)"
    )
    for wrong in (b"open sesame!", b"OPEN SESAME", b"open"):
        assert error(read_server_certificate(leaf.pem, locked, wrong, now=NOW)) == (
            "the key's password is wrong (or the key is damaged)"
        )
    # an empty password (key_password_env naming an empty variable) is no password
    assert error(read_server_certificate(leaf.pem, locked, b"", now=NOW)) == (
        "the key is encrypted: give its password (key_password_env)"
    )
    read = good(read_server_certificate(leaf.pem, locked, b"open sesame", now=NOW))
    # kept decrypted (in memory, for OpenSSL), as the same key
    assert b"ENCRYPTED" not in read.key_pem
    assert read.key_pem == leaf.key_pem


# --- what does not fit together ------------------------------------------------------------------


def test_a_key_that_matches_another_certificate(issuing: Made, leaf: Made) -> None:
    other = make(NAME, issuing)
    assert error(read_server_certificate(leaf.pem, other.key_pem, now=NOW)) == (
        "the key does not match the certificate (CN=api.example.test,O=iamgate tests,C=US)"
    )
    # the issuer's key: the chain is taken to be in the wrong order
    assert error(read_server_certificate(leaf.pem + issuing.pem, issuing.key_pem, now=NOW)) == (
        "the key matches certificate 2 of the chain, not the first: put the server's own "
        "certificate first, then each issuer"
    )


def test_the_chain_in_the_wrong_order_with_trustme() -> None:
    ca = trustme.CA()
    intermediate = ca.create_child_ca()
    server = intermediate.issue_cert(NAME)
    first, second = (blob.bytes() for blob in server.cert_chain_pems)
    key = server.private_key_pem.bytes()
    assert isinstance(read_server_certificate(first + second, key, name=NAME), ServerCertificate)
    assert error(read_server_certificate(second + first, key, name=NAME)) == (
        "the key matches certificate 2 of the chain, not the first: put the server's own "
        "certificate first, then each issuer"
    )


def test_a_certificate_the_next_did_not_issue(root: Made, issuing: Made, leaf: Made) -> None:
    # the root is not the leaf's issuer: the intermediate is missing
    assert error(read_server_certificate(leaf.pem + root.pem, leaf.key_pem, now=NOW)) == (
        "certificate 2 of the chain (CN=Test Root CA,O=iamgate tests,C=US) did not issue certificate 1 "
        "(CN=api.example.test,O=iamgate tests,C=US): give the server's certificate first, then each "
        "issuer in order"
    )
    # leaf, intermediate, another root: the second pair is wrong
    other = make("Other Root CA", ca=True, dns=None)
    assert error(read_server_certificate(leaf.pem + issuing.pem + other.pem, leaf.key_pem, now=NOW)) == (
        "certificate 3 of the chain (CN=Other Root CA,O=iamgate tests,C=US) did not issue certificate 2 "
        "(CN=Test Issuing CA,O=iamgate tests,C=US): give the server's certificate first, then each "
        "issuer in order"
    )


def test_an_impostor_issuer_with_the_same_name(issuing: Made, leaf: Made) -> None:
    # same subject as the real issuer, another key: the names match, the signature does not
    impostor = make("Test Issuing CA", ca=True, dns=None, subject=issuing.cert.subject)
    assert impostor.cert.subject == leaf.cert.issuer
    assert error(read_server_certificate(leaf.pem + impostor.pem, leaf.key_pem, now=NOW)).startswith(
        "certificate 2 of the chain (CN=Test Issuing CA,O=iamgate tests,C=US) did not issue certificate 1"
    )


def test_too_long_a_chain(leaf: Made) -> None:
    assert error(read_server_certificate(leaf.pem * 9, leaf.key_pem, now=NOW)) == (
        "the certificate chain has 9 certificates; at most 8 are served"
    )


# --- dates, names, keys --------------------------------------------------------------------------


def test_an_expired_certificate(leaf: Made) -> None:
    assert error(read_server_certificate(leaf.pem, leaf.key_pem, now=END)) == (
        "the certificate (CN=api.example.test,O=iamgate tests,C=US) expired on 2032-01-01 00:00:00 UTC"
    )
    later = END + dt.timedelta(days=400)
    assert "expired on 2032-01-01 00:00:00 UTC" in error(
        read_server_certificate(leaf.pem, leaf.key_pem, now=later)
    )
    # the last second of its validity still serves
    good(read_server_certificate(leaf.pem, leaf.key_pem, now=END - dt.timedelta(seconds=1)))


def test_a_certificate_not_yet_valid(leaf: Made) -> None:
    assert error(read_server_certificate(leaf.pem, leaf.key_pem, now=START - dt.timedelta(seconds=1))) == (
        "the certificate (CN=api.example.test,O=iamgate tests,C=US) is not valid before "
        "2031-01-01 00:00:00 UTC"
    )
    good(read_server_certificate(leaf.pem, leaf.key_pem, now=START))


def test_the_dates_are_checked_against_the_clock_by_default(issuing: Made) -> None:
    now = dt.datetime.now(UTC)
    expired = make(
        NAME, issuing, not_before=now - dt.timedelta(days=90), not_after=now - dt.timedelta(days=1)
    )
    assert " expired on " in error(read_server_certificate(expired.pem, expired.key_pem))
    early = make(NAME, issuing, not_before=now + dt.timedelta(days=1), not_after=now + dt.timedelta(days=90))
    assert " is not valid before " in error(read_server_certificate(early.pem, early.key_pem))


def test_an_expired_intermediate(root: Made) -> None:
    old = make("Old Issuing CA", root, ca=True, dns=None, not_before=START, not_after=NOW)
    server = make(NAME, old)
    assert error(read_server_certificate(server.pem + old.pem, server.key_pem, now=NOW)) == (
        "certificate 2 of the chain (CN=Old Issuing CA,O=iamgate tests,C=US) expired on "
        "2031-06-15 12:00:00 UTC"
    )


@pytest.mark.parametrize(
    ("dns", "message"),
    [
        (("other.example.test",), "the certificate is for other.example.test, not for api.example.test"),
        (
            ("www.example.test", "example.test"),
            "the certificate is for www.example.test, example.test, not for api.example.test",
        ),
        (("*.other.test",), "the certificate is for *.other.test, not for api.example.test"),
        (("*.api.example.test",), "the certificate is for *.api.example.test, not for api.example.test"),
        (("*.*.test",), "the certificate is for *.*.test, not for api.example.test"),
    ],
)
def test_a_certificate_for_another_name(issuing: Made, dns: tuple[str, ...], message: str) -> None:
    made = make(NAME, issuing, dns=dns)  # CN=api.example.test, which counts only without a SAN
    assert error(read_server_certificate(made.pem, made.key_pem, name=NAME, now=NOW)) == message


def test_names_from_the_subject_alternative_name_else_the_common_name(issuing: Made) -> None:
    only_cn = make("API.Example.Test", issuing, dns=None)
    assert good(read_server_certificate(only_cn.pem, only_cn.key_pem, name=NAME, now=NOW)).names == (NAME,)
    ip_san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("192.0.2.1"))])
    ip_only = make(NAME, issuing, dns=None, extensions=(ip_san,))
    assert error(read_server_certificate(ip_only.pem, ip_only.key_pem, name=NAME, now=NOW)) == (
        "the certificate is for no DNS name, not for api.example.test"
    )
    wildcard = make("*.example.test", issuing, dns=("*.example.test",))
    assert good(read_server_certificate(wildcard.pem, wildcard.key_pem, name="orders.example.test", now=NOW))
    assert good(read_server_certificate(wildcard.pem, wildcard.key_pem, name="*.example.test", now=NOW))
    assert "not for a.b.example.test" in error(
        read_server_certificate(wildcard.pem, wildcard.key_pem, name="a.b.example.test", now=NOW)
    )
    assert "not for example.test" in error(
        read_server_certificate(wildcard.pem, wildcard.key_pem, name="example.test", now=NOW)
    )


def test_weak_and_unusual_keys(issuing: Made) -> None:
    weak = make(NAME, issuing, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    assert error(read_server_certificate(weak.pem, weak.key_pem, now=NOW)) == (
        "the key is an RSA key of 1024 bits; at least 2048 are needed"
    )
    k1 = make(NAME, issuing, key=ec.generate_private_key(ec.SECP256K1()))
    assert error(read_server_certificate(k1.pem, k1.key_pem, now=NOW)) == (
        "the key uses the curve secp256k1; use P-256, P-384 or P-521"
    )
    dsa_key = dsa.generate_private_key(2048)
    assert error(read_server_certificate(weak.pem, key_pem(dsa_key), now=NOW)) == (
        "the key is a DSAPrivateKey: use an RSA (2048 bits or more) or ECDSA key"
    )


# --- damaged certificates: a sentence, never an exception ----------------------------------------


def _swap(der: bytes, old: str, new: str) -> bytes:
    old_bytes, new_bytes = bytes.fromhex(old), bytes.fromhex(new)
    assert old_bytes in der
    return der.replace(old_bytes, new_bytes)


def _pem(der: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


ECDSA_SHA256 = "2a8648ce3d040302"  # 1.2.840.10045.4.3.2
EC_PUBLIC_KEY = "2a8648ce3d0201"  # 1.2.840.10045.2.1


def _damaged(issuing: Made, part: str) -> tuple[bytes, Made]:
    """A certificate for NAME with one part cryptography reads lazily, or at load, made unreadable
    (the signature is not redone: nothing gets that far)."""
    made = make(NAME, issuing)
    if part == "extension":
        junk = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03junk")
        made = make(NAME, issuing, dns=None, extensions=(junk,))
        return made.pem, made
    if part == "general-name-type":  # an x400Address in the subjectAltName
        x400 = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x04\xa3\x02\x30\x00")
        made = make(NAME, issuing, dns=None, extensions=(x400,))
        return made.pem, made
    if part == "duplicate-extension":  # an issuerAltName renamed subjectAltName: two of them
        twin = x509.UnrecognizedExtension(
            ExtensionOID.ISSUER_ALTERNATIVE_NAME,
            x509.SubjectAlternativeName([x509.DNSName(NAME)]).public_bytes(),
        )
        made = make(NAME, issuing, extensions=(twin,))
        return _pem(_swap(made.der, "551d12", "551d11")), made
    if part == "subject-attribute":  # a common name typed as a BIT STRING
        unique = x509.NameAttribute(
            NameOID.X500_UNIQUE_IDENTIFIER, b"\x00", _type=x509.name._ASN1Type.BitString
        )
        made = make(NAME, issuing, subject=x509.Name([unique]))
        return _pem(_swap(made.der, "55042d", "550403")), made
    if part == "key-algorithm":
        return _pem(_swap(made.der, EC_PUBLIC_KEY, "2a8648ce3d027f")), made
    if part == "signature-algorithm":
        return _pem(_swap(made.der, ECDSA_SHA256, "2a8648ce3d04037f")), made
    assert part == "version"  # v3 (2) -> 5
    return _pem(_swap(made.der, "a003020102", "a003020105")), made


@pytest.mark.parametrize(
    ("part", "problem"),
    [
        ("extension", "cannot be read: error parsing asn1 value"),
        ("general-name-type", "cannot be read: x400Address/EDIPartyName are not supported types"),
        ("duplicate-extension", "cannot be read: Duplicate 2.5.29.17 extension found"),
        ("subject-attribute", "cannot be read: "),
        ("key-algorithm", "cannot be read: Unknown key type: 1.2.840.10045.2.127"),
        (
            "signature-algorithm",
            "cannot be read: Signature algorithm OID: 1.2.840.10045.4.3.127 not recognized",
        ),
        ("version", "is not readable PEM: "),
    ],
)
def test_a_certificate_with_a_part_that_cannot_be_read(issuing: Made, part: str, problem: str) -> None:
    # a sentence, never an exception: the management API would answer 500, a reload would fail
    pem, made = _damaged(issuing, part)
    certificate = error(read_server_certificate(pem, made.key_pem, now=NOW))
    truststore = error(read_truststore(issuing.pem + pem, now=NOW))
    if problem.startswith("cannot be read"):
        assert certificate.startswith("the certificate: certificate 1 " + problem), certificate
        assert truststore.startswith("the truststore: certificate 2 " + problem), truststore
    else:
        assert certificate.startswith("the certificate " + problem), certificate
        assert truststore.startswith("the truststore " + problem), truststore


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mutated_certificate_never_raises(data: st.DataObject) -> None:
    der = bytearray(MUTABLE.der)
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    pem = _pem(bytes(der))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography warns of some oddities (a negative serial)
        found = read_server_certificate(pem + MUTABLE_ISSUER.pem, MUTABLE.key_pem, now=NOW)
        assert isinstance(found, ServerCertificate | CertError)
        assert isinstance(read_truststore(pem, now=NOW), Truststore | CertError)


MUTABLE_ISSUER = make("Mutable CA", ca=True, dns=None)
MUTABLE = make(
    NAME,
    MUTABLE_ISSUER,
    dns=(NAME, "*.example.test"),
    extensions=(
        x509.KeyUsage(True, False, True, False, False, False, False, False, False),
        x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.SubjectKeyIdentifier.from_public_key(ec_key().public_key()),
        x509.AuthorityKeyIdentifier.from_issuer_public_key(MUTABLE_ISSUER.key.public_key()),
    ),
)


# --- truststores ---------------------------------------------------------------------------------


def test_a_good_truststore(root: Made, issuing: Made) -> None:
    read = store(read_truststore(b"# our CAs\n" + root.pem + b"\n" + issuing.pem, now=NOW))
    assert (read.count, read.warnings) == (2, ())
    assert read.subjects == (
        "CN=Test Root CA,O=iamgate tests,C=US",
        "CN=Test Issuing CA,O=iamgate tests,C=US",
    )
    assert read.pem == root.pem + issuing.pem


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"", "the truststore holds no PEM block ('-----BEGIN CERTIFICATE-----')"),
        (b"garbage", "the truststore holds no PEM block ('-----BEGIN CERTIFICATE-----')"),
        ("DER", "the truststore is DER, not PEM: convert it with `openssl x509 -inform der -in FILE`"),
        ("KEY", "the truststore holds no certificate ('-----BEGIN CERTIFICATE-----'); is it a key?"),
        (
            "CA+KEY",
            "the truststore holds something other than certificates (a key?); give CA certificates only",
        ),
        (
            "KEY+CA",
            "the truststore holds something other than certificates (a key?); give CA certificates only",
        ),
    ],
)
def test_a_bad_truststore(root: Made, pem: bytes | str, message: str) -> None:
    given_pem = {
        "DER": root.der,
        "KEY": root.key_pem,
        "CA+KEY": root.pem + root.key_pem,
        "KEY+CA": root.key_pem + root.pem,
    }
    assert error(read_truststore(given_pem[pem] if isinstance(pem, str) else pem, now=NOW)) == message


def test_a_truststore_with_a_damaged_block(root: Made) -> None:
    damaged = root.pem.replace(root.pem[60:70], b"**********")
    assert error(read_truststore(damaged, now=NOW)).startswith("the truststore is not readable PEM: ")
    unterminated = root.pem + b"-----BEGIN CERTIFICATE-----\nMIIB\n"
    assert error(read_truststore(unterminated, now=NOW)) == (
        "the truststore: some certificate blocks could not be read"
    )
    crl = root.pem + b"-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n"
    assert error(read_truststore(crl, now=NOW)) == (
        "the truststore holds something other than certificates (a key?); give CA certificates only"
    )


def test_a_leaf_in_the_truststore_is_a_warning(root: Made, leaf: Made) -> None:
    read = store(read_truststore(root.pem + leaf.pem, now=NOW))
    assert read.count == 2
    assert read.warnings == (
        "certificate 2 (CN=api.example.test,O=iamgate tests,C=US) is not a CA certificate "
        "(basicConstraints CA:TRUE is missing)",
    )
    no_constraints = make("Unmarked CA", ca=None, dns=None)
    assert store(read_truststore(no_constraints.pem, now=NOW)).warnings == (
        "certificate 1 (CN=Unmarked CA,O=iamgate tests,C=US) is not a CA certificate "
        "(basicConstraints CA:TRUE is missing)",
    )


def test_an_expired_or_early_ca_is_a_warning(root: Made) -> None:
    old = make("Old CA", ca=True, dns=None, not_before=START.replace(year=2020), not_after=START)
    read = store(read_truststore(root.pem + old.pem, now=NOW))
    assert read.count == 2  # still a truststore: the other CA serves
    assert read.warnings == (
        "certificate 2 (CN=Old CA,O=iamgate tests,C=US) expired on 2031-01-01 00:00:00 UTC",
    )
    early = make("Early CA", ca=True, dns=None, not_before=END, not_after=END.replace(year=2040))
    assert store(read_truststore(early.pem, now=NOW)).warnings == (
        "certificate 1 (CN=Early CA,O=iamgate tests,C=US) is not valid before 2032-01-01 00:00:00 UTC",
    )


def test_a_weak_ca_is_a_warning() -> None:
    weak = make(
        "Weak CA", ca=True, dns=None, key=rsa.generate_private_key(public_exponent=65537, key_size=1024)
    )
    assert store(read_truststore(weak.pem, now=NOW)).warnings == (
        "certificate 1 (CN=Weak CA,O=iamgate tests,C=US)'s key is an RSA key of 1024 bits; "
        "at least 2048 are needed",
    )


def test_a_sha1_signed_ca_is_a_warning() -> None:
    # cryptography no longer signs with SHA-1: an RSA CA's algorithm identifiers are rewritten
    # (sha256WithRSAEncryption -> sha1WithRSAEncryption, the same length), which is all the check reads
    ca = make(
        "Old Hash CA", ca=True, dns=None, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    sha1 = _pem(_swap(ca.der, "2a864886f70d01010b", "2a864886f70d010105"))
    assert store(read_truststore(sha1, now=NOW)).warnings == (
        "certificate 1 (CN=Old Hash CA,O=iamgate tests,C=US) is signed with sha1; "
        "SHA-256 or better is needed",
    )


def test_several_warnings_for_one_ca() -> None:
    bad = make("Bad CA", ca=False, dns=None, not_before=START.replace(year=2020), not_after=START)
    assert store(read_truststore(bad.pem, now=NOW)).warnings == (
        "certificate 1 (CN=Bad CA,O=iamgate tests,C=US) expired on 2031-01-01 00:00:00 UTC",
        "certificate 1 (CN=Bad CA,O=iamgate tests,C=US) is not a CA certificate "
        "(basicConstraints CA:TRUE is missing)",
    )


# --- served for real: OpenSSL agrees with what was read ------------------------------------------


def _handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, name: str
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = client.wrap_bio(c_in, c_out, server_hostname=name)
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    finished: set[int] = set()
    for _ in range(10):
        for i, side in enumerate((tls_client, tls_server)):
            try:
                side.do_handshake()
                finished.add(i)
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if len(finished) == 2:
            return tls_client, tls_server
    raise AssertionError("the handshake did not finish")


@pytest.fixture(scope="module")
def pki() -> tuple[trustme.CA, trustme.CA]:
    root_ca = trustme.CA()
    return root_ca, root_ca.create_child_ca()


def _client(root_ca: trustme.CA, maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    root_ca.configure_trust(ctx)
    ctx.maximum_version = maximum
    return ctx


def _served(intermediate: trustme.CA) -> ServerCertificate:
    server = intermediate.issue_cert(NAME)
    chain = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    return good(read_server_certificate(chain, server.private_key_pem.bytes(), name=NAME))


def test_the_whole_chain_is_served(pki: tuple[trustme.CA, trustme.CA]) -> None:
    # the client trusts only the root: it verifies only if the intermediate is served as well
    root_ca, intermediate = pki
    cert = _served(intermediate)
    alpn = _client(root_ca)
    alpn.set_alpn_protocols(["h2", "http/1.1"])
    client, _ = _handshake(server_context(cert, SECURITY_POLICIES["TLS_1_2"]), alpn, NAME)
    assert client.version() == "TLSv1.3"
    assert client.selected_alpn_protocol() == "http/1.1"  # HTTP/1.1 only, as the gateway speaks
    seen = client.getpeercert()
    assert seen is not None
    assert ("DNS", NAME) in seen["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_context(cert, SECURITY_POLICIES["TLS_1_2"]), _client(root_ca), "other.example.test")


def test_the_tls13_only_policy_refuses_a_tls12_client(pki: tuple[trustme.CA, trustme.CA]) -> None:
    root_ca, intermediate = pki
    cert = _served(intermediate)
    old_client = _client(root_ca, ssl.TLSVersion.TLSv1_2)
    client, _ = _handshake(server_context(cert, SECURITY_POLICIES["TLS_1_2"]), old_client, NAME)
    assert client.version() == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        _handshake(
            server_context(cert, SECURITY_POLICIES["SecurityPolicy_TLS13_1_3_2025_09"]), old_client, NAME
        )


def test_mutual_tls_with_the_read_truststore(pki: tuple[trustme.CA, trustme.CA]) -> None:
    root_ca, intermediate = pki
    cert = _served(intermediate)
    clients_ca = trustme.CA()
    trust = store(read_truststore(clients_ca.cert_pem.bytes()))
    server = server_context(cert, SECURITY_POLICIES["TLS_1_2"], trust)
    # a client certificate from the truststore's CA: accepted, and shown as API Gateway shows it
    with_cert = _client(root_ca)
    clients_ca.issue_cert("client@example.test", common_name="client one").configure_cert(with_cert)
    _, tls_server = _handshake(server, with_cert, NAME)
    der = tls_server.getpeercert(binary_form=True)
    assert der is not None
    shown = client_cert_context(der)
    assert str(shown["subjectDN"]).startswith("CN=client one,")
    assert (
        shown["issuerDN"]
        == x509.load_pem_x509_certificate(clients_ca.cert_pem.bytes()).subject.rfc4514_string()
    )
    # without a certificate, or with one from another CA (the server's own!): refused
    without = _client(root_ca)
    with pytest.raises(ssl.SSLError):
        _handshake(server, without, NAME)
    stranger = _client(root_ca)
    intermediate.issue_cert("client@example.test").configure_cert(stranger)
    with pytest.raises(ssl.SSLError):
        _handshake(server, stranger, NAME)


# --- $context.identity.clientCert ----------------------------------------------------------------


def test_client_cert_context_is_api_gateways_shape(issuing: Made) -> None:
    client = make(
        "client.example",
        issuing,
        subject=name("client.example", "Example Corp"),
        serial=0x1A2B3C,
        not_before=dt.datetime(2024, 5, 8, 12, 30, 2, tzinfo=UTC),
        not_after=dt.datetime(2034, 11, 28, 3, 4, 5, tzinfo=UTC),
    )
    assert client_cert_context(client.der) == {
        "clientCertPem": client.pem.decode(),
        "subjectDN": "CN=client.example,O=Example Corp,C=US",
        "issuerDN": "CN=Test Issuing CA,O=iamgate tests,C=US",
        "serialNumber": "1a:2b:3c",
        "validity": {"notBefore": "May  8 12:30:02 2024 GMT", "notAfter": "Nov 28 03:04:05 2034 GMT"},
    }


@pytest.mark.parametrize(
    ("serial", "shown"),
    [
        (1, "01"),
        (0x80, "80"),
        (0xFF00, "ff:00"),
        (0x0100, "01:00"),
        (2**158 + 5, "40" + ":00" * 18 + ":05"),  # 159 bits: RFC 5280's 20 octets
    ],
)
def test_serial_numbers_are_hex_bytes_joined_by_colons(issuing: Made, serial: int, shown: str) -> None:
    assert client_cert_context(make("c", issuing, serial=serial).der)["serialNumber"] == shown


@pytest.mark.parametrize(
    ("when", "shown"),
    [
        (dt.datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC), "Jan  1 00:00:00 2030 GMT"),
        (dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC), "Dec 31 23:59:59 2030 GMT"),
        (dt.datetime(2030, 9, 10, 7, 8, 9, tzinfo=UTC), "Sep 10 07:08:09 2030 GMT"),
    ],
)
def test_validity_in_openssls_form(issuing: Made, when: dt.datetime, shown: str) -> None:
    made = make("c", issuing, not_before=when, not_after=when + dt.timedelta(days=1))
    assert client_cert_context(made.der)["validity"]["notBefore"] == shown  # type: ignore[index]
    # the form strptime reads back (%e is strptime's %d with a space)
    assert dt.datetime.strptime(shown, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC) == when


def test_distinguished_names_escape_what_could_forge_another_part(issuing: Made) -> None:
    # a client naming itself "x,O=Admins" must not read as a member of O=Admins: the comma and
    # the plus are escaped (RFC 4514 leaves '=' as it is)
    forged = make("c", issuing, subject=name('x,O=Admins+OU="a"', "Example; Corp"))
    assert (
        client_cert_context(forged.der)["subjectDN"] == 'CN=x\\,O=Admins\\+OU=\\"a\\",O=Example\\; Corp,C=US'
    )


# --- covers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "host", "covered"),
    [
        (("api.example.test",), "api.example.test", True),
        (("api.example.test",), "API.Example.Test", True),
        (("api.example.test",), "api.example.test.", True),
        (("api.example.test",), "www.example.test", False),
        (("api.example.test",), "example.test", False),
        (("api.example.test",), "xapi.example.test", False),
        (("*.example.test",), "api.example.test", True),
        (("*.example.test",), "API.EXAMPLE.TEST.", True),
        (("*.example.test",), "example.test", False),  # not the apex
        (("*.example.test",), "a.b.example.test", False),  # one label only
        (("*.example.test",), ".example.test", False),  # an empty label
        (("*.example.test",), "evilexample.test", False),
        (("*.example.test",), "api.example.test.evil", False),
        (("*.example.test",), "*.example.test", True),  # a wildcard domain, same certificate
        (("*.example.test",), "*.a.example.test", False),
        (("a*.example.test",), "ab.example.test", False),  # partial wildcards are not honoured
        (("api.*.test",), "api.example.test", False),
        (("*.*.test",), "a.b.test", False),
        (("www.example.test", "*.example.test"), "api.example.test", True),
        ((), "api.example.test", False),
    ],
)
def test_covers(names: tuple[str, ...], host: str, covered: bool) -> None:
    assert covers(names, host) is covered
