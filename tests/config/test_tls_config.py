"""gateway.tls, gateway.admin_tls and domains, read through parse_config from files in a temporary
directory: each mistake is one located diagnostic (file, line and column of the culprit, its JSON
pointer, the sentence a person reads and the help), the warnings are located too, and a good
file is read into the model's values.

Certificates and keys are made here (trustme, cryptography), written next to the configuration."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iamgate.config.load import parse_config
from iamgate.config.model import BasePathMapping, GatewayConfig, TlsSettings
from iamgate.policy import Diagnostic
from iamgate.tls.contexts import SECURITY_POLICIES

SOURCE = "gw.yaml"
PASSWORD_ENV = "IAMGATE_TEST_TLS_KEY_PASSWORD"
UNSET_ENV = "IAMGATE_TEST_TLS_NEVER_SET"
POLICIES = ", ".join(SECURITY_POLICIES)

# two APIs: a1b2c3d4e5 (stage prod, only reachable through custom domains) and f6g7h8i9j0 (v2)
APIS = """
apis:
  - id: a1b2c3d4e5
    disable_execute_api_endpoint: true
    stages: {prod: {}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK, status: 200, body: ok}}
  - id: f6g7h8i9j0
    stages: {v2: {}}
    routes:
      - {path: /orders, method: GET, integration: {type: MOCK, status: 200, body: ok}}
"""


def _pem_chain(leaf: trustme.LeafCert) -> bytes:
    return b"".join(blob.bytes() for blob in leaf.cert_chain_pems)


@dataclass
class Files:
    """Certificates and keys written in ``dir`` (names relative to it, as the YAML gives them)."""

    dir: Path
    ca: trustme.CA
    clients_ca: trustme.CA

    def server(self, stem: str, *names: str) -> None:
        leaf = self.ca.issue_cert(*names)
        (self.dir / f"{stem}.pem").write_bytes(_pem_chain(leaf))
        (self.dir / f"{stem}-key.pem").write_bytes(leaf.private_key_pem.bytes())

    def path(self, name: str) -> str:
        return str(self.dir / name)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    made = Files(tmp_path, trustme.CA(), trustme.CA())
    made.server("gw", "gw.example.test")
    made.server("wild", "*.example.test")
    made.server("api", "api.example.test")
    made.server("shop", "shop.example.test")
    (tmp_path / "clients-ca.pem").write_bytes(made.clients_ca.cert_pem.bytes())
    # a truststore holding a client's own certificate next to its CA: a warning, not an error
    client = made.clients_ca.issue_cert("client@example.test")
    (tmp_path / "with-leaf.pem").write_bytes(
        made.clients_ca.cert_pem.bytes() + client.cert_chain_pems[0].bytes()
    )
    (tmp_path / "junk.pem").write_bytes(b"this is not a certificate\n")
    (tmp_path / "a-directory.pem").mkdir()
    return made


def load(files: Files, text: str, apis: str = APIS) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    return parse_config(text + apis, source=SOURCE, base_dir=files.dir)


def position(text: str, marker: str, nth: int = 1) -> tuple[int, int]:
    """1-based line and column where the ``nth`` ``marker`` starts in ``text``."""
    at = -1
    for _ in range(nth):
        at = text.index(marker, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def errors(diags: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diags if d.is_error]


def only_error(diags: list[Diagnostic]) -> Diagnostic:
    found = errors(diags)
    assert len(found) == 1, [d.render() for d in diags]
    return found[0]


def check(
    found: Diagnostic,
    text: str,
    *,
    code: str,
    pointer: str,
    at: tuple[str, int],
    message: str,
    help: str | None = None,
) -> None:
    """The diagnostic, where it points and what it says, as `iamgate config validate` prints it."""
    line, column = position(text, *at)
    assert (found.code, found.location.pointer) == (code, pointer), found.render()
    assert (found.location.line, found.location.column) == (line, column), found.render()
    assert found.source == SOURCE
    assert found.message == message, found.render()
    if help is not None:
        assert found.help == help, found.render()
    severity = "error" if found.is_error else "warning"
    assert found.render().startswith(f"{SOURCE}:{line}:{column}: {severity} {code}: {message}")


# --- errors: one each, where it is -----------------------------------------------------------------


def test_a_missing_key_file(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: gw.pem
    key: gw-key-missing.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.unreadable-file",
        pointer="/gateway/tls/key",
        at=("gw-key-missing.pem", 1),
        message=f"cannot read the key {files.path('gw-key-missing.pem')}: No such file or directory",
    )


def test_an_unreadable_certificate(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: junk.pem
    key: gw-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.bad-certificate",
        pointer="/gateway/tls/certificate",
        at=("junk.pem", 1),
        message="the certificate holds no PEM block ('-----BEGIN CERTIFICATE-----') "
        f"({files.path('junk.pem')})",
    )


def test_a_directory_as_the_certificate(files: Files) -> None:
    text = "gateway:\n  tls: {certificate: a-directory.pem, key: gw-key.pem}\n"
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.unreadable-file",
        pointer="/gateway/tls/certificate",
        at=("a-directory.pem", 1),
        message=f"cannot read the certificate {files.path('a-directory.pem')}: Is a directory",
    )


def test_a_key_from_another_certificate(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: gw.pem
    key: api-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    found = only_error(diags)
    assert found.message.startswith("the key does not match the certificate (")
    assert found.message.endswith(f") ({files.path('gw.pem')})")
    assert (found.location.pointer, found.location.line) == ("/gateway/tls/certificate", 3)


def _encrypted_key(files: Files) -> None:
    key = serialization.load_pem_private_key((files.dir / "gw-key.pem").read_bytes(), password=None)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    )
    (files.dir / "gw-key-locked.pem").write_bytes(locked)


ENCRYPTED = """gateway:
  tls:
    certificate: gw.pem
    key: gw-key-locked.pem
    key_password_env: {env}
"""


def test_key_password_env_naming_an_unset_variable(files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypted_key(files)
    monkeypatch.delenv(UNSET_ENV, raising=False)
    text = ENCRYPTED.format(env=UNSET_ENV)
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.missing-env",
        pointer="/gateway/tls/key_password_env",
        at=(UNSET_ENV, 1),
        message=f"the environment variable {UNSET_ENV} (the key's password) is not set",
    )


def test_an_encrypted_key_and_its_password(files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypted_key(files)
    text = ENCRYPTED.format(env=PASSWORD_ENV)
    monkeypatch.setenv(PASSWORD_ENV, "wrong horse")
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.bad-certificate",
        pointer="/gateway/tls/certificate",
        at=("gw.pem", 1),
        message=f"the key's password is wrong (or the key is damaged) ({files.path('gw.pem')})",
    )
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    assert config.settings.tls is not None
    assert config.settings.tls.certificate is not None
    assert b"ENCRYPTED" not in config.settings.tls.certificate.key_pem
    # an encrypted key without key_password_env: the certificate is what is wrong
    config, diags = load(files, "gateway:\n  tls: {certificate: gw.pem, key: gw-key-locked.pem}\n")
    assert config is None
    assert only_error(diags).message == (
        f"the key is encrypted: give its password (key_password_env) ({files.path('gw.pem')})"
    )


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("TLS_12", "did you mean 'TLS_1_2'? "),
        ("tls_1_0", "did you mean 'TLS_1_0'? "),
        ("SecurityPolicy_TLS13_1_3_2025", "did you mean 'SecurityPolicy_TLS13_1_3_2025_09'? "),
        ("modern", ""),
    ],
)
def test_an_unknown_security_policy(files: Files, written: str, hint: str) -> None:
    text = f"""gateway:
  tls:
    certificate: gw.pem
    key: gw-key.pem
    security_policy: {written}
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.invalid-value",
        pointer="/gateway/tls/security_policy",
        at=(written, 1),
        message=f"security_policy '{written}' is not valid",
        help=f"{hint}one of: {POLICIES}",
    )


@pytest.mark.parametrize("policy", [p for p in SECURITY_POLICIES if p != "TLS_1_2"])
def test_mutual_tls_needs_tls_1_2(files: Files, policy: str) -> None:
    text = f"""domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    security_policy: {policy}
    mutual_tls:
      truststore: clients-ca.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.invalid-value",
        pointer="/domains/0/security_policy",
        at=(policy, 1),
        message=f"mutual TLS needs the security policy TLS_1_2, not {policy}",
        help="as API Gateway: mutual TLS is offered with TLS_1_2 only",
    )


def test_a_domain_with_a_certificate_for_another_name(files: Files) -> None:
    text = """domains:
  - name: api.example.test
    certificate: shop.pem
    key: shop-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.bad-certificate",
        pointer="/domains/0/certificate",
        at=("shop.pem", 1),
        message="the certificate is for shop.example.test, not for api.example.test "
        f"({files.path('shop.pem')})",
    )


def test_a_wildcard_certificate_does_not_cover_two_labels(files: Files) -> None:
    text = """domains:
  - name: a.b.example.test
    certificate: wild.pem
    key: wild-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    assert only_error(diags).message == (
        f"the certificate is for *.example.test, not for a.b.example.test ({files.path('wild.pem')})"
    )


def test_a_duplicate_domain(files: Files) -> None:
    text = """domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.duplicate",
        pointer="/domains/1/name",
        at=("api.example.test", 2),
        message="domain api.example.test is configured twice (also item 0)",
    )


@pytest.mark.parametrize(
    "written",
    [
        "Bad_Name",
        "API.example.test",  # lower case only, as stored
        "example",  # one label
        "-api.example.test",
        "api-.example.test",
        "api..example.test",
        "api.example.test.",
        "a.*.example.test",
        "*.*.example.test",
        "*example.test",
        "api.example.test:443",
        "https://api.example.test",
        "a" * 64 + ".example.test",  # a label of 64
    ],
)
def test_an_invalid_domain_name(files: Files, written: str) -> None:
    text = f"""domains:
  - name: "{written}"
    certificate: api.pem
    key: api-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.invalid-value",
        pointer="/domains/0/name",
        at=(f'"{written}"', 1),
        message=f"domain name '{written}' is not valid",
        help="a lower-case DNS name such as api.example.com, or *.example.com",
    )


def test_the_longest_domain_name_is_valid(files: Files) -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    config, diags = load(files, f"domains:\n  - name: {longest}\n")
    assert config is not None, [d.render() for d in diags]
    config, diags = load(files, f"domains:\n  - name: {longest}x\n")
    assert config is None


BASE_PATH_HELP = (
    "(none), or segments of letters, digits, '-', '_' and '.' joined by '/' (v1, orders/v2), "
    "with no leading or trailing '/'"
)


@pytest.mark.parametrize("written", ["/v1", "v1/", "orders//v2", "v 1", "v1?x=1", "ü", "orders/*", "%2e%2e"])
def test_an_invalid_base_path(files: Files, written: str) -> None:
    text = f"""domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mappings:
      - base_path: "{written}"
        api: a1b2c3d4e5
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.invalid-value",
        pointer="/domains/0/mappings/0/base_path",
        at=(f'"{written}"', 1),
        message=f"base_path '{written}' is not valid",
        help=BASE_PATH_HELP,
    )


@pytest.mark.parametrize(
    ("first", "second", "shown"),
    [
        ('base_path: "v1"', 'base_path: "v1"', "v1"),
        ('base_path: "orders/v2"', 'base_path: "orders/v2"', "orders/v2"),
        ('base_path: "(none)"', 'base_path: ""', "(none)"),
        ('base_path: ""', 'base_path: "(none)"', "(none)"),
    ],
)
def test_a_duplicate_base_path(files: Files, first: str, second: str, shown: str) -> None:
    text = f"""domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mappings:
      - {first}
        api: a1b2c3d4e5
        stage: prod
      - {second}
        api: f6g7h8i9j0
        stage: v2
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.duplicate",
        pointer="/domains/0/mappings/1/base_path",
        at=(second.split(": ", 1)[1], 1 if first != second else 2),
        message=f"base path '{shown}' is mapped twice (also item 0)",
    )


def test_a_mapping_without_base_path_is_the_none_path(files: Files) -> None:
    # no base_path is "(none)": it clashes with a written one, and is located at its mapping
    text = """domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mappings:
      - base_path: (none)
        api: a1b2c3d4e5
      - api: f6g7h8i9j0
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.duplicate",
        pointer="/domains/0/mappings/1/base_path",
        at=("api: f6g7h8i9j0", 1),
        message="base path '(none)' is mapped twice (also item 0)",
    )


def test_a_domain_without_a_certificate_that_gateway_tls_does_not_cover(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: gw.pem
    key: gw-key.pem
domains:
  - name: api.example.test
    mappings: [{api: a1b2c3d4e5, stage: prod}]
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.missing-key",
        pointer="/domains/0",
        at=("name: api.example.test", 1),
        message="domain api.example.test has no certificate, and gateway.tls has none that covers it",
        help="give the domain certificate and key",
    )


def test_a_domain_covered_by_the_gateways_wildcard_certificate(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: wild.pem
    key: wild-key.pem
domains:
  - name: api.example.test
  - name: deep.api.example.test
"""
    config, diags = load(files, text)
    assert config is None
    # the wildcard covers api.example.test, not a name two labels below it
    check(
        only_error(diags),
        text,
        code="config.missing-key",
        pointer="/domains/1",
        at=("name: deep.api.example.test", 1),
        message="domain deep.api.example.test has no certificate, and gateway.tls has none that covers it",
    )


def test_gateway_tls_without_a_certificate_while_no_domain_has_one(files: Files) -> None:
    text = """gateway:
  tls:
    security_policy: TLS_1_2
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.missing-key",
        pointer="/gateway/tls",
        at=("security_policy", 1),
        message="gateway.tls has no certificate and no domain has one: nothing could answer a TLS handshake",
        help="give gateway.tls a certificate and key",
    )
    # one domain with a certificate is enough: the handshakes for its name can be answered
    config, diags = load(
        files, text + "domains:\n  - name: api.example.test\n    certificate: api.pem\n    key: api-key.pem\n"
    )
    assert config is not None, [d.render() for d in diags]
    assert config.settings.tls == TlsSettings(None, "TLS_1_2", 10.0, "")


def test_gateway_admin_tls_without_a_certificate(files: Files) -> None:
    text = """gateway:
  admin_tls:
    security_policy: SecurityPolicy_TLS13_1_3_2025_09
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.missing-key",
        pointer="/gateway/admin_tls",
        at=("security_policy", 1),
        message="a certificate is needed here: give certificate and key (PEM files)",
    )


@pytest.mark.parametrize(
    ("body", "code", "pointer", "marker", "message"),
    [
        (
            "    certificate: gw.pem\n",
            "config.missing-key",
            "/gateway/tls",
            "certificate",
            "give both certificate and key: 'key' is missing",
        ),
        (
            "    key: gw-key.pem\n",
            "config.missing-key",
            "/gateway/tls",
            "key",
            "give both certificate and key: 'certificate' is missing",
        ),
        (
            "    certificate: gw.pem\n    certificate_pem: x\n    key: gw-key.pem\n",
            "config.conflicting-keys",
            "/gateway/tls/certificate_pem",
            "x\n",
            "give either certificate or certificate_pem, not both",
        ),
        (
            "    certificate: gw.pem\n    key: gw-key.pem\n    handshake_timeout: 0\n",
            "config.invalid-value",
            "/gateway/tls/handshake_timeout",
            "0\n",
            None,
        ),
    ],
)
def test_half_a_certificate_and_other_shapes(
    files: Files, body: str, code: str, pointer: str, marker: str, message: str | None
) -> None:
    text = "gateway:\n  tls:\n" + body
    config, diags = load(files, text)
    assert config is None
    found = only_error(diags)
    assert (found.code, found.location.pointer) == (code, pointer), found.render()
    assert (found.location.line, found.location.column) == position(text, marker), found.render()
    if message is not None:
        assert found.message == message


def test_a_bad_inline_certificate(files: Files) -> None:
    key = (files.dir / "gw-key.pem").read_text()
    text = "gateway:\n  tls:\n    certificate_pem: not a certificate\n    key_pem: |\n" + "".join(
        f"      {line}\n" for line in key.splitlines()
    )
    config, diags = load(files, text)
    assert config is None
    found = only_error(diags)
    assert found.message == (
        "the certificate holds no PEM block ('-----BEGIN CERTIFICATE-----') (certificate_pem of /gateway/tls)"
    )
    assert found.location.pointer == "/gateway/tls"


def test_a_bad_truststore(files: Files) -> None:
    text = """domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mutual_tls:
      truststore: api-key.pem
"""
    config, diags = load(files, text)
    assert config is None
    check(
        only_error(diags),
        text,
        code="config.bad-truststore",
        pointer="/domains/0/mutual_tls/truststore",
        at=("api-key.pem", 2),
        message="the truststore holds no certificate ('-----BEGIN CERTIFICATE-----'); is it a key? "
        f"({files.path('api-key.pem')})",
    )


# --- warnings ------------------------------------------------------------------------------------


def test_a_truststore_with_a_certificate_that_is_not_a_ca(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: gw.pem
    key: gw-key.pem
domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mutual_tls:
      truststore: with-leaf.pem
"""
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    (warning,) = diags
    subject = x509.load_pem_x509_certificates((files.dir / "with-leaf.pem").read_bytes())[1].subject
    check(
        warning,
        text,
        code="config.truststore-warning",
        pointer="/domains/0/mutual_tls/truststore",
        at=("with-leaf.pem", 1),
        message=f"truststore {files.path('with-leaf.pem')}: certificate 2 ({subject.rfc4514_string()}) "
        "is not a CA certificate (basicConstraints CA:TRUE is missing)",
    )
    # still served: the domain keeps the truststore, both certificates in it
    (domain,) = config.domains
    assert domain.mutual_tls is not None
    assert domain.mutual_tls.truststore.count == 2


def _expiring(files: Files, stem: str, host: str, left: dt.timedelta) -> None:
    ca_key = serialization.load_pem_private_key(files.ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(files.ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=80))
        .not_valid_after(now + left)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    (files.dir / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (files.dir / f"{stem}-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def test_a_certificate_expiring_within_14_days(files: Files) -> None:
    left = dt.timedelta(days=5, hours=12)  # 5 whole days left for as long as this test runs
    _expiring(files, "soon", "api.example.test", left)
    _expiring(files, "later", "gw.example.test", dt.timedelta(days=15))
    text = """gateway:
  tls:
    certificate: later.pem
    key: later-key.pem
domains:
  - name: api.example.test
    certificate: soon.pem
    key: soon-key.pem
"""
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    (warning,) = diags  # 15 days left: no warning for gateway.tls
    on = (dt.datetime.now(dt.UTC) + left).strftime("%Y-%m-%d")
    check(
        warning,
        text,
        code="config.certificate-expires",
        pointer="/domains/0/certificate",
        at=("soon.pem", 1),
        message=f"the certificate ({files.path('soon.pem')}) expires in 5 day(s), on {on}",
    )


def test_mappings_to_an_unknown_api_or_stage_are_warnings(files: Files) -> None:
    # a store's mapping may outlive its stage: answered 403, the rest still served
    text = """domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mappings:
      - base_path: v1
        api: nosuchapi
        stage: prod
      - base_path: v2
        api: a1b2c3d4e5
        stage: nosuchstage
      - base_path: v3
        api: f6g7h8i9j0
        stage: prod
"""
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    first, second, third = diags
    check(
        first,
        text,
        code="config.unserved-mapping",
        pointer="/domains/0/mappings/0/api",
        at=("nosuchapi", 1),
        message="API 'nosuchapi' is not configured: requests for base path v1 of api.example.test "
        "are answered 403",
    )
    check(
        second,
        text,
        code="config.unserved-mapping",
        pointer="/domains/0/mappings/1/stage",
        at=("nosuchstage", 1),
        message="API 'a1b2c3d4e5' has no stage 'nosuchstage': requests for base path v2 of api.example.test "
        "are answered 403",
    )
    # prod is a stage of the other API, not of this one
    check(
        third,
        text,
        code="config.unserved-mapping",
        pointer="/domains/0/mappings/2/stage",
        at=("prod", 2),
        message="API 'f6g7h8i9j0' has no stage 'prod': requests for base path v3 of api.example.test "
        "are answered 403",
    )


def test_mutual_tls_on_a_plain_http_port_is_a_warning(files: Files) -> None:
    text = """domains:
  - name: api.example.test
    mutual_tls:
      truststore: clients-ca.pem
"""
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    (warning,) = diags
    check(
        warning,
        text,
        code="config.plain-http-mtls",
        pointer="/domains/0/mutual_tls",
        at=("truststore", 1),
        message="domain api.example.test requires mutual TLS but the data port speaks plain HTTP "
        "(no gateway.tls): its requests are refused with 403",
    )


# --- a good file ---------------------------------------------------------------------------------


def test_a_valid_configuration(files: Files) -> None:
    shop_cert = (files.dir / "shop.pem").read_text()
    shop_key = (files.dir / "shop-key.pem").read_text()

    def block(pem: str) -> str:
        return "".join(f"      {line}\n" for line in pem.splitlines())

    text = (
        """gateway:
  tls:
    certificate: gw.pem
    key: gw-key.pem
    security_policy: SecurityPolicy_TLS13_1_2_2021_06
    handshake_timeout: 2.5
  admin_tls:
    certificate: gw.pem
    key: gw-key.pem
    security_policy: SecurityPolicy_TLS13_1_3_2025_09
domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mutual_tls:
      truststore: clients-ca.pem
      truststore_version: "3"
    mappings:
      - base_path: (none)
        api: a1b2c3d4e5
        stage: prod
      - base_path: v1
        api: a1b2c3d4e5
      - base_path: orders/v2
        api: f6g7h8i9j0
        stage: v2
  - name: shop.example.test
    endpoint_type: EDGE
    security_policy: SecurityPolicy_TLS13_1_3_2025_09
    certificate_pem: |
"""
        + block(shop_cert)
        + "    key_pem: |\n"
        + block(shop_key)
        + "    mappings:\n      - {api: f6g7h8i9j0, stage: (none)}\n"
    )
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    assert diags == []

    tls = config.settings.tls
    assert tls is not None
    assert (tls.security_policy, tls.handshake_timeout, tls.source) == (
        "SecurityPolicy_TLS13_1_2_2021_06",
        2.5,
        files.path("gw.pem"),
    )
    assert tls.certificate is not None
    assert tls.certificate.names == ("gw.example.test",)
    admin = config.settings.admin_tls
    assert admin is not None
    assert (admin.security_policy, admin.handshake_timeout) == ("SecurityPolicy_TLS13_1_3_2025_09", 10.0)

    api, shop = config.domains
    assert (api.name, api.security_policy, api.endpoint_type) == ("api.example.test", "TLS_1_2", "REGIONAL")
    assert api.certificate is not None
    assert api.certificate.names == ("api.example.test",)
    assert api.mappings == (
        BasePathMapping("", "a1b2c3d4e5", "prod"),
        BasePathMapping("v1", "a1b2c3d4e5", ""),
        BasePathMapping("orders/v2", "f6g7h8i9j0", "v2"),
    )
    assert [m.segments for m in api.mappings] == [(), ("v1",), ("orders", "v2")]
    assert api.mutual_tls is not None
    assert (api.mutual_tls.version, api.mutual_tls.source) == ("3", files.path("clients-ca.pem"))
    assert api.mutual_tls.truststore.count == 1
    assert api.mutual_tls.truststore.warnings == ()
    assert api.mutual_tls.truststore.pem == files.clients_ca.cert_pem.bytes()

    assert (shop.name, shop.security_policy, shop.endpoint_type) == (
        "shop.example.test",
        "SecurityPolicy_TLS13_1_3_2025_09",
        "EDGE",
    )
    assert shop.mutual_tls is None
    assert shop.certificate is not None
    assert shop.certificate.names == ("shop.example.test",)
    assert shop.mappings == (BasePathMapping("", "f6g7h8i9j0", ""),)

    by_id = {a.id: a for a in config.apis}
    assert by_id["a1b2c3d4e5"].disable_execute_api_endpoint is True
    assert by_id["f6g7h8i9j0"].disable_execute_api_endpoint is False
    # renewing a certificate, a key or a truststore on disk reloads the configuration
    for name in ("gw.pem", "gw-key.pem", "api.pem", "api-key.pem", "clients-ca.pem"):
        assert files.path(name) in config.watched


def test_a_domain_without_its_own_certificate_served_by_the_gateways(files: Files) -> None:
    text = """gateway:
  tls:
    certificate: wild.pem
    key: wild-key.pem
domains:
  - name: api.example.test
  - name: "*.example.test"
"""
    config, diags = load(files, text)
    assert config is not None, [d.render() for d in diags]
    assert diags == []
    assert [(d.name, d.certificate, d.mappings) for d in config.domains] == [
        ("api.example.test", None, ()),
        ("*.example.test", None, ()),
    ]
