"""gateway.tls, gateway.admin_tls and domains in the configuration file: every mistake a located
diagnostic (line, column, pointer, message), and a good file read into the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from iamgate.config.load import parse_config
from iamgate.config.model import GatewayConfig
from iamgate.policy import Diagnostic
from tests.gateway.tls_support import dated_cert

API = """
apis:
  - id: a1b2c3d4e5
    stages: {prod: {}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK, status: 200, body: ok}}
"""


class Files:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = trustme.CA()
        for stem, name in (
            ("api", "api.example.test"),
            ("shop", "shop.example.test"),
            ("gw", "gw.example.test"),
        ):
            leaf = self.ca.issue_cert(name)
            (directory / f"{stem}.pem").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
            (directory / f"{stem}-key.pem").write_bytes(leaf.private_key_pem.bytes())
        (directory / "ca.pem").write_bytes(self.ca.cert_pem.bytes())
        leaf_only = self.ca.issue_cert("client").cert_chain_pems[0].bytes()
        (directory / "leaf-ca.pem").write_bytes(leaf_only)
        (directory / "junk.pem").write_bytes(b"junk")


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def load(files: Files, text: str) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    return parse_config(text + API, source="gw.yaml", base_dir=files.dir)


def only_error(diags: list[Diagnostic]) -> Diagnostic:
    errors = [d for d in diags if d.is_error]
    assert len(errors) == 1, [(d.code, d.message) for d in diags]
    return errors[0]


def test_a_good_file(files: Files) -> None:
    config, diags = load(
        files,
        """
gateway:
  tls: {certificate: gw.pem, key: gw-key.pem, handshake_timeout: 3}
  admin_tls: {certificate: gw.pem, key: gw-key.pem, security_policy: SecurityPolicy_TLS13_1_3_2025_09}
domains:
  - name: api.example.test
    certificate: api.pem
    key: api-key.pem
    mutual_tls: {truststore: ca.pem, truststore_version: "7"}
    mappings:
      - {base_path: "(none)", api: a1b2c3d4e5, stage: prod}
      - {base_path: orders/v2, api: a1b2c3d4e5}
""",
    )
    assert config is not None, [d.message for d in diags]
    assert [d for d in diags if d.is_error] == []
    tls = config.settings.tls
    assert tls is not None
    assert (tls.handshake_timeout, tls.security_policy) == (3, "TLS_1_2")
    assert config.settings.admin_tls is not None
    assert config.settings.admin_tls.security_policy == "SecurityPolicy_TLS13_1_3_2025_09"
    (domain,) = config.domains
    assert domain.name == "api.example.test"
    assert domain.mutual_tls is not None
    assert domain.mutual_tls.version == "7"
    assert [(m.base_path, m.stage) for m in domain.mappings] == [("", "prod"), ("orders/v2", "")]
    assert str(files.dir / "api.pem") in config.watched  # a renewed certificate reloads


CASES = [
    # (configuration, code, JSON pointer of the culprit, a piece of its line, message)
    (
        "gateway:\n  tls: {certificate: nope.pem, key: gw-key.pem}\n",
        "config.unreadable-file",
        "/gateway/tls/certificate",
        "nope.pem",
        "cannot read the certificate",
    ),
    (
        "gateway:\n  tls: {certificate: junk.pem, key: gw-key.pem}\n",
        "config.bad-certificate",
        "/gateway/tls/certificate",
        "junk.pem",
        "holds no PEM block",
    ),
    (
        "gateway:\n  tls: {certificate: gw.pem, key: api-key.pem}\n",
        "config.bad-certificate",
        "/gateway/tls/certificate",
        "api-key.pem",
        "the key does not match",
    ),
    (
        "gateway:\n  tls: {certificate: gw.pem, key: gw-key.pem, key_password_env: IAMGATE_NO_VAR}\n",
        "config.missing-env",
        "/gateway/tls/key_password_env",
        "IAMGATE_NO_VAR",
        "IAMGATE_NO_VAR",
    ),
    (
        "gateway:\n  tls: {certificate: gw.pem, key: gw-key.pem, security_policy: TLS_1_3}\n",
        "config.invalid-value",
        "/gateway/tls/security_policy",
        "TLS_1_3",
        "security_policy 'TLS_1_3' is not valid",
    ),
    (
        "gateway:\n  tls: {certificate: gw.pem}\n",
        "config.missing-key",
        "/gateway/tls",
        "gw.pem",
        "'key' is missing",
    ),
    (
        "gateway:\n  admin_tls: {security_policy: TLS_1_2}\n",
        "config.missing-key",
        "/gateway/admin_tls",
        "admin_tls",
        "a certificate is needed",
    ),
    (
        "gateway:\n  tls: {}\n",
        "config.missing-key",
        "/gateway/tls",
        "tls:",
        "nothing could answer a TLS handshake",
    ),
    (
        "gateway:\n  tls: {certificate: gw.pem, key: gw-key.pem}\ndomains:\n  - name: api.example.test\n",
        "config.missing-key",
        "/domains/0",
        "api.example.test",
        "gateway.tls has none that covers it",
    ),
    (
        "domains:\n  - {name: shop.example.test, certificate: api.pem, key: api-key.pem}\n",
        "config.bad-certificate",
        "/domains/0/certificate",
        "shop",
        "not for shop.example.test",
    ),
    (
        "domains:\n  - {name: Bad_Name, certificate: api.pem, key: api-key.pem}\n",
        "config.invalid-value",
        "/domains/0/name",
        "Bad_Name",
        "domain name 'Bad_Name' is not valid",
    ),
    (
        "domains:\n  - {name: api.example.test}\n  - {name: api.example.test}\n",
        "config.duplicate",
        "/domains/1/name",
        "  - {name: api.example.test}",
        "configured twice",
    ),
    (
        "domains:\n  - name: api.example.test\n    mappings: [{base_path: /v1, api: a1b2c3d4e5}]\n",
        "config.invalid-value",
        "/domains/0/mappings/0/base_path",
        "/v1",
        "base_path '/v1' is not valid",
    ),
    (
        "domains:\n  - name: api.example.test\n"
        "    mappings: [{api: a1b2c3d4e5}, {base_path: (none), api: x}]\n",
        "config.duplicate",
        "/domains/0/mappings/1/base_path",
        "(none)",
        "mapped twice",
    ),
    (
        "domains:\n  - name: api.example.test\n    mappings: [{base_path: v1/.., api: a1b2c3d4e5}]\n",
        "config.invalid-value",
        "/domains/0/mappings/0/base_path",
        "v1/..",
        "base_path 'v1/..' is not valid",
    ),
    (
        "domains:\n  - name: api.example.test\n    mutual_tls: {truststore: junk.pem}\n",
        "config.bad-truststore",
        "/domains/0/mutual_tls/truststore",
        "junk.pem",
        "holds no PEM block",
    ),
    (
        "domains:\n  - name: api.example.test\n    security_policy: TLS_1_0\n"
        "    mutual_tls: {truststore: ca.pem}\n",
        "config.invalid-value",
        "/domains/0/security_policy",
        "TLS_1_0",
        "mutual TLS needs the security policy TLS_1_2",
    ),
]


@pytest.mark.parametrize(("text", "code", "pointer", "marker", "message"), CASES)
def test_mistakes_are_located(
    files: Files, text: str, code: str, pointer: str, marker: str, message: str
) -> None:
    config, diags = load(files, text)
    assert config is None
    found = only_error(diags)
    assert (found.code, found.location.pointer) == (code, pointer), found
    assert message in found.message, found.message
    lines = text.split("\n")
    # the line of the culprit (the last line holding the marker), counted from 1
    expected = max(i for i, line in enumerate(lines, start=1) if marker in line)
    assert found.location.line == expected, found
    assert (found.location.column or 0) > 0


def test_warnings(files: Files) -> None:
    config, diags = load(
        files,
        """
domains:
  - name: api.example.test
    mutual_tls: {truststore: leaf-ca.pem}
    mappings:
      - {base_path: v1, api: nosuchapi, stage: prod}
      - {base_path: v2, api: a1b2c3d4e5, stage: nostage}
""",
    )
    assert config is not None
    codes = sorted(d.code for d in diags if not d.is_error)
    assert codes == [
        "config.plain-http-mtls",
        "config.truststore-warning",
        "config.unserved-mapping",
        "config.unserved-mapping",
    ]
    assert any("is not a CA certificate" in d.message for d in diags)


def test_a_certificate_expiring_soon_is_a_warning(files: Files) -> None:
    cert, key = dated_cert(files.ca, "soon.example.test", (-80, 5))
    (files.dir / "soon.pem").write_bytes(cert)
    (files.dir / "soon-key.pem").write_bytes(key)
    config, diags = load(files, "gateway:\n  tls: {certificate: soon.pem, key: soon-key.pem}\n")
    assert config is not None
    (warning,) = [d for d in diags if d.code == "config.certificate-expires"]
    assert "expires in 4 day(s)" in warning.message or "expires in 5 day(s)" in warning.message
