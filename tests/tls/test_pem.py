"""Certificates, keys and truststores (iamgate.tls.pem): every mistake a person makes with PEM
files, with the sentence they read; and the clientCert shape of API Gateway."""

from __future__ import annotations

import datetime as dt

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from iamgate.tls.certs import CertError, ServerCertificate, Truststore, covers
from iamgate.tls.contexts import SECURITY_POLICIES, server_context
from iamgate.tls.pem import client_cert_context, read_server_certificate, read_truststore

NAME = "api.example.test"


def issued(ca: trustme.CA, *names: str) -> tuple[bytes, bytes]:
    leaf = ca.issue_cert(*names)
    return b"".join(b.bytes() for b in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


def built(
    ca: trustme.CA, *, days: tuple[int, int], key: object | None = None, ca_flag: bool = False
) -> tuple[bytes, bytes]:
    """A certificate for NAME signed by ``ca`` with the given validity (days from now)."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    private = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(private.public_key())  # type: ignore[attr-defined]
        .serial_number(0x0A0B0C)
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = private.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def error(found: object) -> str:
    assert isinstance(found, CertError), found
    return found.message


def test_a_good_chain_with_an_intermediate(ca: trustme.CA) -> None:
    child = ca.create_child_ca()
    chain, key = issued(child, NAME, "*.wild.example.test")
    found = read_server_certificate(chain, key, name=NAME)
    assert isinstance(found, ServerCertificate)
    assert found.names == (NAME, "*.wild.example.test")
    assert found.chain_pem.count(b"BEGIN CERTIFICATE") == 2
    assert b"ENCRYPTED" not in found.key_pem
    assert isinstance(read_server_certificate(chain, key, name="a.wild.example.test"), ServerCertificate)
    assert server_context(found, SECURITY_POLICIES["TLS_1_2"]) is not None


def test_one_bundle_file_holds_chain_and_key(ca: trustme.CA) -> None:
    chain, key = issued(ca, NAME)
    bundle = key + chain  # any order
    assert isinstance(read_server_certificate(bundle, bundle, name=NAME), ServerCertificate)


def test_the_chain_in_the_wrong_order(ca: trustme.CA) -> None:
    child = ca.create_child_ca()
    leaf = child.issue_cert(NAME)
    first, second = (b.bytes() for b in leaf.cert_chain_pems)
    message = error(read_server_certificate(second + first, leaf.private_key_pem.bytes()))
    assert "the key matches certificate 2 of the chain, not the first" in message
    other = trustme.CA().cert_pem.bytes()
    message = error(read_server_certificate(first + other, leaf.private_key_pem.bytes()))
    assert "did not issue certificate 1" in message


@pytest.mark.parametrize(
    ("chain", "key", "expected"),
    [
        (b"\x30\x82\x01\x00", None, "is DER, not PEM"),
        (b"hello", None, "holds no PEM block"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", None, "not readable PEM"),
        (None, b"no pem here", "the key holds no PEM block"),
        (None, "CERT", "is it a certificate?"),
        ("KEY", None, "is it a key?"),
    ],
)
def test_unreadable_input(ca: trustme.CA, chain: object, key: object, expected: str) -> None:
    good_chain, good_key = issued(ca, NAME)
    chain_pem = good_chain if chain is None else (good_key if chain == "KEY" else chain)
    key_pem = good_key if key is None else (good_chain if key == "CERT" else key)
    assert expected in error(read_server_certificate(chain_pem, key_pem))  # type: ignore[arg-type]


def test_encrypted_keys(ca: trustme.CA) -> None:
    chain, key = issued(ca, NAME)
    loaded = serialization.load_pem_private_key(key, password=None)
    locked = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    assert "give its password" in error(read_server_certificate(chain, locked))
    assert "password is wrong" in error(read_server_certificate(chain, locked, b"nope"))
    found = read_server_certificate(chain, locked, b"s3cret")
    assert isinstance(found, ServerCertificate)
    assert b"ENCRYPTED" not in found.key_pem  # kept decrypted, in memory only


def test_a_key_of_another_certificate(ca: trustme.CA) -> None:
    chain, _ = issued(ca, NAME)
    _, other_key = issued(ca, NAME)
    assert "the key does not match the certificate" in error(read_server_certificate(chain, other_key))


def test_dates_and_names(ca: trustme.CA) -> None:
    assert "expired on" in error(read_server_certificate(*built(ca, days=(-30, -1))))
    assert "is not valid before" in error(read_server_certificate(*built(ca, days=(2, 30))))
    chain, key = issued(ca, "other.example.test")
    assert error(read_server_certificate(chain, key, name=NAME)) == (
        "the certificate is for other.example.test, not for api.example.test"
    )


def test_weak_rsa_keys_are_refused(ca: trustme.CA) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert "RSA key of 1024 bits" in error(read_server_certificate(*built(ca, days=(-1, 30), key=weak)))


def test_covers() -> None:
    assert covers(("*.example.test",), "a.example.test")
    assert covers(("*.example.test",), "A.Example.Test.")
    assert not covers(("*.example.test",), "example.test")
    assert not covers(("*.example.test",), "a.b.example.test")
    assert covers(("api.example.test",), "api.example.test")


def test_truststores(ca: trustme.CA) -> None:
    good = read_truststore(ca.cert_pem.bytes() + ca.create_child_ca().cert_pem.bytes())
    assert isinstance(good, Truststore)
    assert (good.count, good.warnings) == (2, ())
    assert "holds no PEM block" in error(read_truststore(b"junk"))
    assert "a key?" in error(read_truststore(ca.cert_pem.bytes() + ca.private_key_pem.bytes()))
    leaf, _ = issued(ca, NAME)
    warned = read_truststore(leaf.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n")
    assert isinstance(warned, Truststore)
    assert any("is not a CA certificate" in w for w in warned.warnings)
    old_ca_cert, _ = built(ca, days=(-30, -1), ca_flag=True)
    expired = read_truststore(old_ca_cert)
    assert isinstance(expired, Truststore)
    assert any("expired on" in w for w in expired.warnings)


def test_client_cert_context_is_api_gateways_shape(ca: trustme.CA) -> None:
    pem, _ = built(ca, days=(-1, 30))
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    shown = client_cert_context(der)
    assert set(shown) == {"clientCertPem", "subjectDN", "issuerDN", "serialNumber", "validity"}
    assert shown["clientCertPem"] == pem.decode()
    assert shown["subjectDN"] == f"CN={NAME}"
    assert shown["issuerDN"] == x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject.rfc4514_string()
    assert shown["serialNumber"] == "0a:0b:0c"
    not_after = shown["validity"]["notAfter"]
    assert not_after.endswith(" GMT")
    assert dt.datetime.strptime(not_after, "%b %d %H:%M:%S %Y GMT") > dt.datetime.now()
