"""TLS at the edge, end to end: the real ``iamgate serve`` with ``gateway.tls`` and custom domains,
real TLS clients (Python ssl, http.client, curl, openssl s_client), certificates made here.

What a hostile or careless client does is tried too: plain HTTP on the TLS port, an unknown
server name, no client certificate or one from another CA on a mutual-TLS domain, a Host that
names another domain than the handshake did, handshakes that never finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.gateway.conftest import Backend, Gateway, loaded_cryptography, metric_value, wait_for_log
from tests.gateway.tls_support import (
    client_cert,
    client_context,
    get,
    tls_socket,
    write_ca,
    write_dated_server_cert,
    write_server_cert,
)
from tests.waiting import wait_for

API = "a1b2c3d4e5"
EXECUTE_API = f"{API}.execute-api.us-east-1.amazonaws.com"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
    ],
}


class Pki:
    """The test's CAs and certificates, as files in a directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = trustme.CA()  # issues the gateway's server certificates
        self.clients_ca = trustme.CA()  # issues client certificates (the mTLS truststore)
        self.other_ca = trustme.CA()  # a CA the gateway does not trust
        self.ca_file = write_ca(self.ca, directory, "ca")
        self.truststore = write_ca(self.clients_ca, directory, "clients-ca")
        self.default = write_server_cert(self.ca, directory, "default", EXECUTE_API, "localhost")
        self.api = write_server_cert(self.ca, directory, "api", "api.example.test")
        self.mtls = write_server_cert(self.ca, directory, "mtls", "mtls.example.test")
        self.modern = write_server_cert(self.ca, directory, "modern", "modern.example.test")
        self.wild = write_server_cert(self.ca, directory, "wild", "*.wild.example.test")
        cert, key, self.client = client_cert(self.clients_ca, directory, "client", cn="client-1")
        self.client_files = (cert, key)

    def context(self, **kw: Any) -> ssl.SSLContext:
        return client_context(self.ca_file, **kw)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def edge_config(pki: Pki, backend: Backend, **gateway: Any) -> dict[str, Any]:
    tls = {"certificate": pki.default[0], "key": pki.default[1], **gateway.pop("tls", {})}
    return {
        "gateway": {"region": "us-east-1", "account_id": "111122223333", "tls": tls, **gateway},
        "domains": [
            {
                "name": "api.example.test",
                "certificate": pki.api[0],
                "key": pki.api[1],
                "mappings": [
                    {"base_path": "(none)", "api": API, "stage": "prod"},
                    {"base_path": "v1", "api": API, "stage": "prod"},
                    {"base_path": "orders/v2", "api": API, "stage": "beta"},
                ],
            },
            {
                "name": "mtls.example.test",
                "certificate": pki.mtls[0],
                "key": pki.mtls[1],
                "mutual_tls": {"truststore": pki.truststore, "truststore_version": "1"},
                "mappings": [{"api": API, "stage": "prod"}],
            },
            {
                "name": "modern.example.test",
                "certificate": pki.modern[0],
                "key": pki.modern[1],
                "security_policy": "SecurityPolicy_TLS13_1_3_2025_09",
                "mappings": [{"base_path": "v1", "api": API, "stage": "prod"}],
            },
            {
                "name": "*.wild.example.test",
                "certificate": pki.wild[0],
                "key": pki.wild[1],
                "mappings": [{"api": API, "stage": "beta"}],
            },
        ],
        "apis": [
            {
                "id": API,
                "policy": POLICY,
                "stages": {"prod": {}, "beta": {}},
                "routes": [
                    {
                        "path": "/{proxy+}",
                        "method": "ANY",
                        "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/{{proxy}}"},
                    },
                    {
                        "path": "/",
                        "method": "GET",
                        "integration": {"type": "HTTP_PROXY", "uri": f"{backend.url}/"},
                    },
                ],
            }
        ],
    }


@pytest.fixture
def edge(pki: Pki, backend: Backend, gateway_factory: Any) -> Gateway:
    gw: Gateway = gateway_factory(edge_config(pki, backend))
    return gw


def served_subject(port: int, ctx: ssl.SSLContext, name: str | None) -> str:
    with tls_socket(port, ctx, name) as s:
        cert = s.getpeercert()
    return ",".join(f"{k}={v}" for rdn in cert.get("subjectAltName", ()) for k, v in [rdn])


# --- the handshake ---------------------------------------------------------------------------------


def test_tls_1_2_and_1_3_with_alpn_http_1_1(pki: Pki, edge: Gateway) -> None:
    for maximum, version in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        ctx = pki.context(maximum=maximum, alpn=["h2", "http/1.1"])
        with tls_socket(edge.port, ctx, "api.example.test") as s:
            assert s.version() == version
            assert s.selected_alpn_protocol() == "http/1.1"  # never h2: the gateway speaks HTTP/1.1
    assert loaded_cryptography(edge.proc.pid)  # the certificates were read, with cryptography


def test_tls_1_1_is_refused(pki: Pki, edge: Gateway) -> None:
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = pki.context(maximum=ssl.TLSVersion.TLSv1_1)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        tls_socket(edge.port, ctx, "api.example.test").close()
    status, _, body = get("api.example.test", edge.port, pki.context(), "/v1/pets")
    assert (status, body) == (200, b"ok")  # and everyone else is still served


def test_security_policy_tls13_only_refuses_tls_1_2(pki: Pki, edge: Gateway) -> None:
    with pytest.raises(ssl.SSLError):
        tls_socket(edge.port, pki.context(maximum=ssl.TLSVersion.TLSv1_2), "modern.example.test").close()
    with tls_socket(edge.port, pki.context(), "modern.example.test") as s:
        assert s.version() == "TLSv1.3"
    # the same TLS 1.2 client is fine on a TLS_1_2 domain
    with tls_socket(edge.port, pki.context(maximum=ssl.TLSVersion.TLSv1_2), "api.example.test") as s:
        assert s.version() == "TLSv1.2"


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sessions_resume(pki: Pki, edge: Gateway, maximum: ssl.TLSVersion) -> None:
    ctx = pki.context(maximum=maximum)
    with tls_socket(edge.port, ctx, "api.example.test") as s:
        s.sendall(b"GET /v1/x HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")  # TLS 1.3 tickets come after the handshake
        session = s.session
    assert session is not None
    raw = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="api.example.test", session=session) as again:
        assert again.session_reused


def test_sni_picks_each_domains_certificate(pki: Pki, edge: Gateway) -> None:
    ctx = pki.context()  # verifies the name: a wrong certificate fails the handshake
    assert "api.example.test" in served_subject(edge.port, ctx, "api.example.test")
    assert "mtls.example.test" not in served_subject(edge.port, ctx, "api.example.test")
    assert "*.wild.example.test" in served_subject(edge.port, ctx, "eu.wild.example.test")
    assert EXECUTE_API in served_subject(edge.port, ctx, EXECUTE_API)
    # no server name at all: the gateway's own certificate
    plain = pki.context()
    plain.check_hostname = False
    with tls_socket(edge.port, plain, None) as s:
        assert ("DNS", EXECUTE_API) in s.getpeercert()["subjectAltName"]
    # a name no domain has: the default certificate, which the client rightly refuses
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_socket(edge.port, ctx, "unknown.example.test").close()


def test_unknown_server_name_without_a_default_certificate_gets_unrecognized_name(
    pki: Pki, backend: Backend, gateway_factory: Any
) -> None:
    config = edge_config(pki, backend)
    config["gateway"]["tls"] = {}  # no certificate of its own: only the domains'
    gw = gateway_factory(config)
    with pytest.raises(ssl.SSLError, match=r"UNRECOGNIZED_NAME|unrecognized name"):
        tls_socket(gw.port, pki.context(), "unknown.example.test").close()
    assert get("api.example.test", gw.port, pki.context(), "/v1/a")[0] == 200
    assert metric_value(gw, "iamgate_tls_handshakes_total", result="unknown_name") == 1
    assert "no certificate for server name 'unknown.example.test'" in gw.stderr()


def test_plain_http_on_the_tls_port_is_answered_400(edge: Gateway, pki: Pki) -> None:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as s:
        s.sendall(b"GET /v1/pets HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body) == {"message": "This port speaks TLS: send the request with https://"}
    assert get("api.example.test", edge.port, pki.context(), "/v1/pets")[0] == 200
    assert metric_value(edge, "iamgate_tls_handshakes_total", result="plain_http") == 1
    assert edge.stderr().count("plain HTTP from 127.0.0.1") == 1  # logged once


def test_stalled_handshakes_time_out_and_do_not_stop_others(
    pki: Pki, backend: Backend, gateway_factory: Any
) -> None:
    gw = gateway_factory(edge_config(pki, backend, tls={"handshake_timeout": 1}))
    hello = _client_hello("api.example.test")
    stalled = []
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        if i % 3 == 1:
            s.sendall(hello[: len(hello) // 2])  # half a ClientHello, then nothing
        elif i % 3 == 2:
            s.sendall(hello)  # a whole ClientHello, then never the rest of the handshake
        stalled.append(s)
    # served meanwhile
    assert get("api.example.test", gw.port, pki.context(), "/v1/a")[0] == 200
    for s in stalled:  # each is closed by the gateway once the timeout passes
        s.settimeout(5)
        with contextlib.suppress(ConnectionResetError):  # the server's first flight, then the end
            while s.recv(65536):
                pass
        s.close()
    assert metric_value(gw, "iamgate_tls_handshakes_total", result="timeout") == 40


def _client_hello(name: str) -> bytes:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


# --- custom domains and base path mappings ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reaches"),
    [
        ("/v1/pets", "/pets"),
        ("/v1/pets/42?x=1", "/pets/42?x=1"),
        ("/v1", "/"),
        ("/v1/", "/"),
        ("/v1x/pets", "/v1x/pets"),  # a whole segment only: (none) takes it
        ("/orders/v2/items", "/items"),  # the longest match, to stage beta
        ("/orders/v3/items", "/orders/v3/items"),
        ("/v1/prod/pets", "/prod/pets"),  # the stage is not in a custom domain's URL
        ("//v1//pets", "/pets"),  # canonical path first
        ("/V1/pets", "/V1/pets"),  # base paths are case-sensitive
        ("/v1/../orders/v2/items", "/items"),  # dot segments resolved before matching
    ],
)
def test_base_path_mappings_route_what_reaches_the_api(
    pki: Pki, edge: Gateway, backend: Backend, path: str, reaches: str
) -> None:
    status, _, _ = get("api.example.test", edge.port, pki.context(), path)
    assert status == 200
    assert backend.requests[-1].target == reaches


def test_a_mapping_without_a_stage_takes_the_stage_from_the_url(
    pki: Pki, backend: Backend, gateway_factory: Any
) -> None:
    config = edge_config(pki, backend)
    config["domains"][2]["mappings"] = [{"base_path": "v1", "api": API, "stage": "(none)"}]
    gw = gateway_factory(config)
    ctx = pki.context()
    status, headers, _ = get("modern.example.test", gw.port, ctx, "/v1/beta/pets")
    assert status == 200
    assert backend.requests[-1].target == "/pets"
    logged = wait_for_log(gw, headers["x-amzn-requestid"])
    assert (logged["stage"], logged["path"]) == ("beta", "/v1/beta/pets")
    for path in ("/v1/nostage/pets", "/v1"):  # no such stage, no stage at all
        status, _, body = get("modern.example.test", gw.port, ctx, path)
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"}), path


def test_a_domain_without_a_matching_mapping_answers_forbidden(pki: Pki, edge: Gateway) -> None:
    status, headers, body = get("modern.example.test", edge.port, pki.context(), "/v2/pets")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert headers["x-amzn-errortype"] == "ForbiddenException"
    assert get("modern.example.test", edge.port, pki.context(), "/v1/pets")[0] == 200


def test_context_behind_a_custom_domain(pki: Pki, edge: Gateway, backend: Backend) -> None:
    status, headers, _ = get("api.example.test", edge.port, pki.context(), "/orders/v2/items/7")
    assert status == 200
    logged = wait_for_log(edge, headers["x-amzn-requestid"])
    assert logged["domainName"] == "api.example.test"
    assert logged["domainPrefix"] == "api"
    assert logged["stage"] == "beta"
    assert logged["path"] == "/orders/v2/items/7"  # as the client sent it
    assert logged["customDomain.basePathMatched"] == "orders/v2"
    assert logged["resourcePath"] == "/{proxy+}"
    status, headers, _ = get("a.wild.example.test", edge.port, pki.context(), "/x")
    logged = wait_for_log(edge, headers["x-amzn-requestid"])
    assert (status, logged["customDomain.basePathMatched"], logged["path"]) == (200, "(none)", "/x")


def test_method_arn_behind_a_domain_names_the_stage_not_the_base_path(
    pki: Pki, backend: Backend, gateway_factory: Any
) -> None:
    config = edge_config(pki, backend)
    config["apis"][0]["policy"] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/beta/GET/items/*",
            }
        ],
    }
    gw = gateway_factory(config)
    assert get("api.example.test", gw.port, pki.context(), "/orders/v2/items/1")[0] == 200
    assert get("api.example.test", gw.port, pki.context(), "/v1/items/1")[0] == 403  # stage prod


def test_disable_execute_api_endpoint(pki: Pki, backend: Backend, gateway_factory: Any) -> None:
    config = edge_config(pki, backend)
    config["apis"][0]["disable_execute_api_endpoint"] = True
    gw = gateway_factory(config)
    ctx = pki.context()
    for host, path, headers in (
        (EXECUTE_API, "/prod/pets", {}),
        ("localhost", "/prod/pets", {"x-apigw-api-id": API}),
        ("localhost", f"/restapis/{API}/prod/_user_request_/pets", {}),
        ("localhost", f"/_aws/execute-api/{API}/prod/pets", {}),
        (EXECUTE_API, "/nostage/anything", {}),  # nothing about the API is told
    ):
        status, response_headers, body = get(host, gw.port, ctx, path, headers)
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"}), (host, path)
        assert response_headers["x-amzn-errortype"] == "ForbiddenException"
    assert len(backend.requests) == 0
    assert get("api.example.test", gw.port, ctx, "/v1/pets")[0] == 200


# --- mutual TLS --------------------------------------------------------------------------------------


def test_mutual_tls_accepts_a_client_certificate_and_logs_it(pki: Pki, edge: Gateway) -> None:
    ctx = pki.context(cert=pki.client_files)
    status, headers, body = get("mtls.example.test", edge.port, ctx, "/pets")
    assert (status, body) == (200, b"ok")
    logged = wait_for_log(edge, headers["x-amzn-requestid"])
    assert logged["identity.clientCert.subjectDN"] == "CN=client-1,O=Tests"
    assert logged["identity.clientCert.issuerDN"] == pki.client.issuer.rfc4514_string()
    serial = pki.client.serial_number
    assert logged["identity.clientCert.serialNumber"] == ":".join(
        f"{b:02x}" for b in serial.to_bytes((serial.bit_length() + 7) // 8, "big")
    )
    assert logged["identity.clientCert.validity.notAfter"].endswith(" GMT")
    assert "identity.clientCert.clientCertPem" not in logged  # a kilobyte: only in templates


@pytest.mark.parametrize("case", ["none", "other_ca", "expired", "not_yet_valid", "server_usage"])
def test_mutual_tls_refuses_at_the_handshake(pki: Pki, edge: Gateway, case: str) -> None:
    cert: tuple[str, str] | None = None
    if case == "other_ca":
        cert = client_cert(pki.other_ca, pki.dir, "intruder")[:2]
    elif case == "expired":
        cert = client_cert(pki.clients_ca, pki.dir, "old", days=(-30, -1))[:2]
    elif case == "not_yet_valid":
        cert = client_cert(pki.clients_ca, pki.dir, "early", days=(2, 30))[:2]
    elif case == "server_usage":
        cert = client_cert(pki.clients_ca, pki.dir, "srv", usage=ExtendedKeyUsageOID.SERVER_AUTH)[:2]
    ctx = pki.context(cert=cert)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        # TLS 1.3: the server's refusal may arrive only when the client reads
        get("mtls.example.test", edge.port, ctx, "/pets")
    wait_for(
        lambda: metric_value(edge, "iamgate_tls_handshakes_total", result="client_certificate") == 1,
        "the refusal to be counted",
    )
    assert "TLS handshake from 127.0.0.1 (mtls.example.test) failed" in edge.stderr()
    ok = get("mtls.example.test", edge.port, pki.context(cert=pki.client_files), "/pets")
    assert ok[0] == 200


def test_mutual_tls_domain_is_not_reachable_through_another_names_handshake(pki: Pki, edge: Gateway) -> None:
    # the handshake names api.example.test (no client certificate asked), the Host the mTLS domain
    status, _, body = get(
        "api.example.test", edge.port, pki.context(), "/pets", {"Host": "mtls.example.test"}
    )
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, _ = get(
        "api.example.test", edge.port, pki.context(), "/nowhere/at/all", {"Host": "mtls.example.test"}
    )
    assert status == 403  # the same answer whatever the path: nothing is told without a certificate
    # nor through the other path forms: behind a domain's Host, a path is the domain's
    for path in (f"/restapis/{API}/prod/_user_request_/pets", f"/_aws/execute-api/{API}/prod/pets"):
        status, _, _ = get("api.example.test", edge.port, pki.context(), path, {"Host": "mtls.example.test"})
        assert status == 403, path
    status, _, _ = get(
        "api.example.test",
        edge.port,
        pki.context(),
        "/pets",
        {"Host": "mtls.example.test", "x-apigw-api-id": API},
    )
    assert status == 403


def test_client_certificate_reaches_a_request_authorizer(
    pki: Pki, backend: Backend, gateway_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "authorizer.jsonl"
    config = edge_config(pki, backend)
    config["apis"][0]["authorizers"] = [
        {
            "name": "req",
            "type": "REQUEST",
            "function": "tests.gateway.authorizers:lambda_handler",
            "identity_source": "method.request.header.X-Token",
            "result_ttl": 0,
        }
    ]
    config["apis"][0]["routes"][0].update({"authorization": "CUSTOM", "authorizer": "req"})
    from tests.gateway.conftest import ROOT_DIR

    gw = gateway_factory(config, env={"IAMGATE_TEST_AUTHORIZER_LOG": str(log), "PYTHONPATH": str(ROOT_DIR)})
    ctx = pki.context(cert=pki.client_files)
    status, _, _ = get("mtls.example.test", gw.port, ctx, "/pets", {"X-Token": "allow:n1"})
    assert status == 200
    event = json.loads(log.read_text().splitlines()[-1])["event"]
    cert = event["requestContext"]["identity"]["clientCert"]
    assert cert["subjectDN"] == "CN=client-1,O=Tests"
    assert cert["clientCertPem"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(cert["validity"]) == {"notBefore", "notAfter"}
    assert event["requestContext"]["path"] == "/pets"
    assert event["methodArn"].endswith(f"{API}/prod/GET/pets")


# --- aws:SecureTransport ----------------------------------------------------------------------------


def test_secure_transport_is_true_over_tls_and_false_in_plain_http(
    pki: Pki, backend: Backend, gateway_factory: Any, edge: Gateway
) -> None:
    ctx = pki.context()
    assert get(EXECUTE_API, edge.port, ctx, "/prod/pets")[0] == 200
    config = edge_config(pki, backend)
    del config["gateway"]["tls"]
    del config["domains"]
    plain = gateway_factory(config)
    status, _, body = plain.request("GET", "/prod/pets", headers={"Host": EXECUTE_API})
    assert status == 403
    assert b"explicit deny" in body
    # behind a trusted proxy that terminated TLS, its X-Forwarded-Proto still counts
    config["gateway"]["trusted_proxies"] = ["127.0.0.1/32"]
    proxied = gateway_factory(config)
    status, _, _ = proxied.request(
        "GET", "/prod/pets", headers={"Host": EXECUTE_API, "X-Forwarded-Proto": "https"}
    )
    assert status == 200


# --- certificates renewed while serving ------------------------------------------------------------


def test_certificate_reload_under_load_drops_nothing(pki: Pki, edge: Gateway) -> None:
    ctx = pki.context()
    keep = tls_socket(edge.port, ctx, "api.example.test")  # opened before the reload
    failures: list[BaseException] = []
    serials: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                with tls_socket(edge.port, ctx, "api.example.test") as s:
                    serials.add(str(s.getpeercert()["serialNumber"]))
                    s.sendall(b"GET /v1/x HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
                    assert s.recv(65536).startswith(b"HTTP/1.1 200")
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(serials) >= 1, "requests before the reload")
    before = set(serials)
    renewed = write_server_cert(pki.ca, pki.dir, "api-renewed", "api.example.test")
    shutil.copy(renewed[0], pki.api[0])
    shutil.copy(renewed[1], pki.api[1])
    edge.signal(signal.SIGHUP)
    wait_for(lambda: len(serials - before) >= 1, "a connection with the renewed certificate", timeout=15)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    keep.sendall(b"GET /v1/y HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
    assert keep.recv(65536).startswith(b"HTTP/1.1 200")  # the old connection kept its context
    keep.close()


def test_a_broken_certificate_at_reload_keeps_the_old_one(pki: Pki, edge: Gateway) -> None:
    broken = Path(pki.dir) / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    os.replace(broken, pki.api[0])  # at once: the watcher never sees half a file
    wait_for(lambda: "the certificate is not readable PEM" in edge.stderr(), "the reload to be refused")
    assert "reload (file changed) refused" in edge.stderr()
    assert get("api.example.test", edge.port, pki.context(), "/v1/x")[0] == 200


def test_turning_tls_off_takes_a_restart(pki: Pki, backend: Backend, edge: Gateway) -> None:
    config = edge_config(pki, backend)
    del config["gateway"]["tls"]
    del config["domains"]
    import yaml

    edge.config_path.write_text(yaml.safe_dump(config))
    wait_for(lambda: "turns TLS off on the data port" in edge.stderr(), "the reload to be refused")
    assert get("api.example.test", edge.port, pki.context(), "/v1/x")[0] == 200


# --- real command-line clients --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_a_client_certificate(pki: Pki, edge: Gateway) -> None:
    base = ["curl", "-sS", "--cacert", pki.ca_file, "--resolve", f"mtls.example.test:{edge.port}:127.0.0.1"]
    url = f"https://mtls.example.test:{edge.port}/pets"
    cert, key = pki.client_files
    done = subprocess.run(
        [*base, "--cert", cert, "--key", key, url], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"ok"
    refused = subprocess.run([*base, url], capture_output=True, timeout=30, check=False)
    assert refused.returncode != 0  # refused at the handshake: no HTTP answer at all
    assert refused.stdout == b""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_s_client_sees_sni_alpn_and_the_chain(pki: Pki, edge: Gateway) -> None:
    done = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{edge.port}",
            "-servername",
            "api.example.test",
            "-alpn",
            "h2,http/1.1",
            "-CAfile",
            pki.ca_file,
            "-verify_return_error",
            "-verify_hostname",
            "api.example.test",
        ],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    out = done.stdout.decode()
    assert "Verify return code: 0 (ok)" in out
    assert "ALPN protocol: http/1.1" in out
    assert "Server certificate" in out


def test_admin_port_over_tls(pki: Pki, backend: Backend, gateway_factory: Any, tmp_path: Path) -> None:
    config = edge_config(pki, backend)
    config["gateway"]["admin_tls"] = {"certificate": pki.default[0], "key": pki.default[1]}
    gw = gateway_factory(config, wait=False)
    ctx = pki.context()

    def ready() -> bool:
        try:
            return get("localhost", gw.admin_port, ctx, "/readyz")[0] == 200
        except OSError:
            return False

    wait_for(ready, "the admin port to answer over TLS")
    status, body = gw.admin("/readyz")  # plain HTTP
    assert status == 400
    assert b"speaks TLS" in body


def test_tls_with_two_workers_and_a_reload(pki: Pki, backend: Backend, gateway_factory: Any) -> None:
    gw = gateway_factory(edge_config(pki, backend), workers=2)
    ctx = pki.context()
    for _ in range(20):  # both workers accept on the one socket
        assert get("api.example.test", gw.port, ctx, "/v1/a")[0] == 200
    # the supervisor's merged metrics: an expiry is a value, not a sum over the workers
    from cryptography import x509

    not_after = x509.load_pem_x509_certificate(Path(pki.api[0]).read_bytes()).not_valid_after_utc
    gauge = "iamgate_tls_certificate_expiry_timestamp_seconds"
    wait_for(lambda: metric_value(gw, gauge, domain="api.example.test") > 0, "the workers' metrics")
    assert metric_value(gw, gauge, domain="api.example.test") == not_after.timestamp()
    renewed = write_server_cert(pki.ca, pki.dir, "api-renewed", "api.example.test")
    shutil.copy(renewed[0], pki.api[0])
    shutil.copy(renewed[1], pki.api[1])
    gw.signal(signal.SIGHUP)
    want = Path(renewed[0]).read_bytes()

    def renewed_everywhere() -> bool:
        served = set()
        for _ in range(10):
            with tls_socket(gw.port, ctx, "api.example.test") as s:
                der = s.getpeercert(binary_form=True)
            served.add(ssl.DER_cert_to_PEM_cert(der).encode() in want)
        return served == {True}

    wait_for(renewed_everywhere, "every worker to serve the renewed certificate", timeout=15)


def test_a_resumed_mutual_tls_session_keeps_its_certificate(pki: Pki, edge: Gateway) -> None:
    ctx = pki.context(cert=pki.client_files)
    request = b"GET /pets HTTP/1.1\r\nHost: mtls.example.test\r\nConnection: close\r\n\r\n"
    with tls_socket(edge.port, ctx, "mtls.example.test") as s:
        s.sendall(request)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        session = s.session
    raw = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="mtls.example.test", session=session) as again:
        assert again.session_reused
        again.sendall(request)
        answer = again.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")
    request_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in answer.split(b"\r\n")
        if line.lower().startswith(b"x-amzn-requestid:")
    )
    assert wait_for_log(edge, request_id)["identity.clientCert.subjectDN"] == "CN=client-1,O=Tests"
    # a session from a domain without mutual TLS does not resume on the mTLS domain
    plain = pki.context()
    with tls_socket(edge.port, plain, "api.example.test") as s:
        s.sendall(b"GET /v1/a HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
        s.recv(65536)
        other = s.session
    raw = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    answer = b""
    refused = (ssl.SSLError, ConnectionResetError, BrokenPipeError)
    with (
        contextlib.suppress(*refused),
        plain.wrap_socket(raw, server_hostname="mtls.example.test", session=other) as s,
    ):
        assert not s.session_reused  # another context's ticket: a full handshake
        s.sendall(request)
        answer = s.recv(65536)
    assert answer == b""  # refused for want of a certificate: no HTTP answer


def test_a_domain_made_with_the_management_api_is_served_and_renewed(
    pki: Pki, backend: Backend, gateway_factory: Any, tmp_path: Path
) -> None:
    import boto3
    from botocore.config import Config

    config = {
        "gateway": {
            "region": "us-east-1",
            "account_id": "111122223333",
            "tls": {"certificate": pki.default[0], "key": pki.default[1]},
        },
        "store": f"sqlite:///{tmp_path / 'store.db'}",
        "management": {"authentication": "none"},
    }
    gw = gateway_factory(config)
    apigw = boto3.client(
        "apigateway",
        endpoint_url=f"http://127.0.0.1:{gw.admin_port}",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="unused",  # management.authentication: none (loopback)
        config=Config(retries={"max_attempts": 1}),
    )
    api_id = apigw.create_rest_api(name="stored", endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api_id,
        resourceId=root,
        httpMethod="GET",
        type="HTTP_PROXY",
        integrationHttpMethod="GET",
        uri=f"{backend.url}/from-store",
    )
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    name = "shop.example.test"
    first = write_server_cert(pki.ca, pki.dir, "shop", name)
    apigw.create_domain_name(
        domainName=name,
        certificateBody=Path(first[0]).read_text(),
        certificatePrivateKey=Path(first[1]).read_text(),
    )
    apigw.create_base_path_mapping(domainName=name, basePath="v1", restApiId=api_id, stage="prod")
    ctx = pki.context()

    def served() -> bool:
        try:
            return get(name, gw.port, ctx, "/v1")[0] == 200
        except (ssl.SSLError, OSError):
            return False

    wait_for(served, "the store's domain to be served", timeout=15)
    assert backend.requests[-1].target == "/from-store"

    def serial() -> str:
        with tls_socket(gw.port, ctx, name) as s:
            return str(s.getpeercert()["serialNumber"])

    before = serial()
    renewed = write_server_cert(pki.ca, pki.dir, "shop-renewed", name)
    bundle = pki.dir / "shop-bundle.pem"
    bundle.write_bytes(Path(renewed[0]).read_bytes() + Path(renewed[1]).read_bytes())
    apigw.update_domain_name(
        domainName=name,
        patchOperations=[{"op": "replace", "path": "/regionalCertificateArn", "value": bundle.as_uri()}],
    )
    wait_for(lambda: serial() != before, "the renewed certificate to be served", timeout=15)
    assert get(name, gw.port, ctx, "/v1")[0] == 200


def test_certificate_expiry_gauges_follow_reloads(pki: Pki, edge: Gateway) -> None:
    from cryptography import x509

    def expiry(path: str) -> float:
        return x509.load_pem_x509_certificate(Path(path).read_bytes()).not_valid_after_utc.timestamp()

    name = "iamgate_tls_certificate_expiry_timestamp_seconds"
    assert metric_value(edge, name, port="data", domain="") == expiry(pki.default[0])
    assert metric_value(edge, name, domain="api.example.test") == expiry(pki.api[0])
    assert metric_value(edge, name, domain="mtls.example.test") == expiry(pki.mtls[0])
    renewed = write_dated_server_cert(pki.ca, pki.dir, "api-90d", "api.example.test", 90)
    assert expiry(renewed[0]) != expiry(pki.api[0])
    shutil.copy(renewed[0], pki.api[0])
    shutil.copy(renewed[1], pki.api[1])
    edge.signal(signal.SIGHUP)
    wait_for(
        lambda: metric_value(edge, name, domain="api.example.test") == expiry(renewed[0]),
        "the gauge to follow the renewed certificate",
    )


def test_the_management_api_over_admin_tls_sees_secure_transport(
    pki: Pki, gateway_factory: Any, tmp_path: Path
) -> None:
    """An identity policy that denies unless ``aws:SecureTransport`` is true lets the management
    API through over the admin port's TLS (it always read "false" before), and nothing else."""
    import boto3
    from botocore.config import Config

    from tests.gateway.test_managed import gateway_yaml
    from tests.management.conftest import ADMIN

    config = gateway_yaml(f"sqlite:///{tmp_path / 'store.db'}")
    config["identities"]["users"][0]["policies"][0]["Statement"].append(
        {
            "Effect": "Deny",
            "Action": "apigateway:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    config["gateway"]["admin_tls"] = {"certificate": pki.default[0], "key": pki.default[1]}
    gw = gateway_factory(config, wait=False)
    ctx = pki.context()

    def ready() -> bool:
        try:
            return get("localhost", gw.admin_port, ctx, "/readyz")[0] == 200
        except OSError:
            return False

    wait_for(ready, "the admin port to answer over TLS")
    client = boto3.client(
        "apigateway",
        endpoint_url=f"https://localhost:{gw.admin_port}",
        region_name="us-east-1",
        aws_access_key_id=ADMIN.access_key,
        aws_secret_access_key=ADMIN.secret,
        verify=str(pki.ca_file),
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    assert client.get_rest_apis()["items"] == []
