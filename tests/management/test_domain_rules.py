"""Custom domain names and base path mappings, continued: every operation through the AWS CLI,
paging, every update path, AWS's rules (mutual TLS only on a REGIONAL domain with TLS_1_2; an API
or a stage with base path mappings cannot be deleted; disabling mutual TLS with an empty
truststoreUri), refusals that leave the store exactly as it was (its generation does not move),
the ``domains`` document the store composes, and a private key that never leaves: not in an
answer, an error, a log line or an export. Real clients, real stores (SQLite and PostgreSQL),
certificates made by trustme and cryptography in the test."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import trustme
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from iamgate.cli.manage import export_document, render
from iamgate.config.load import parse_config
from iamgate.store.compose import compose, decode_served, encode_served
from tests.gateway.tls_support import dated_cert
from tests.management.conftest import (
    READER,
    AdminHandle,
)
from tests.management.test_domains import API, NAME, Pem, error_of, served_document
from tests.management.test_keys import put_stage

OTHER = "other.example.test"


@pytest.fixture
def admin(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over SQLite, then PostgreSQL, holding API ``API`` with stage prod."""
    put_stage(admin_on_each_store.store, API, "prod")
    return admin_on_each_store


@pytest.fixture
def pem(tmp_path: Path) -> Pem:
    return Pem(tmp_path)


def key_lines(*pems: str) -> list[str]:
    """Lines of the base64 body of private keys: none may appear anywhere they are not kept."""
    return [line for text in pems for line in text.splitlines()[1:-1] if len(line) > 20]


# a private key block (messages may name the marker, '-----BEGIN PRIVATE KEY-----', but no block)
_KEY_BLOCK = re.compile(r"PRIVATE KEY-----(\\n|\\r|\s)+[A-Za-z0-9+/=]{16}")


def assert_no_key(value: Any, *pems: str) -> None:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    assert not _KEY_BLOCK.search(text), text
    for line in key_lines(*pems):
        assert line not in text


def refused(call: Any, code: str, message: str, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    got_code, text, status = error_of(exc)
    assert got_code == code, (kwargs, got_code, text)
    assert status == {"BadRequestException": 400, "NotFoundException": 404, "ConflictException": 409}[code]
    assert message in text, (message, text)
    return text


def a_leaf(
    ca: trustme.CA, name: str, *, days: tuple[int, int] = (-1, 30), encrypt: bool = False
) -> tuple[str, str]:
    """A certificate for ``name`` issued by ``ca`` valid from ``days[0]`` to ``days[1]`` days from
    now, and its key (encrypted with the password ``pw`` when ``encrypt``)."""
    cert, key = dated_cert(ca, name, days, password=b"pw" if encrypt else None)
    return cert.decode(), key.decode()


def data_uri(pem_bytes: bytes) -> str:
    return "data:application/x-pem-file;base64," + base64.b64encode(pem_bytes).decode()


def with_pem(pem: Pem, **fields: Any) -> dict[str, Any]:
    return {
        "certificateBody": pem.cert,
        "certificateChain": pem.chain,
        "certificatePrivateKey": pem.key,
        **fields,
    }


def store_state(admin: AdminHandle) -> tuple[int, bytes]:
    served = admin.store.served()
    return served.generation, encode_served(served)


# --- every operation through the AWS CLI ----------------------------------------------------------


def test_every_operation_with_the_aws_cli(admin: AdminHandle, pem: Pem, tmp_path: Path) -> None:
    cert, chain, key = tmp_path / "cert.pem", tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_text(pem.cert)
    chain.write_text(pem.chain)
    key.write_text(pem.key)
    outputs: list[Any] = []

    def aws(*args: str) -> Any:
        out = admin.aws(*args)
        outputs.append(out)
        return out

    created = aws(
        "create-domain-name",
        "--domain-name",
        NAME,
        "--certificate-name",
        "api",
        "--certificate-body",
        f"file://{cert}",
        "--certificate-chain",
        f"file://{chain}",
        "--certificate-private-key",
        f"file://{key}",
        "--endpoint-configuration",
        "types=REGIONAL",
        "--security-policy",
        "TLS_1_2",
        "--mutual-tls-authentication",
        json.dumps({"truststoreUri": data_uri(pem.ca.cert_pem.bytes()), "truststoreVersion": "7"}),
    )
    assert created["domainName"] == NAME
    assert created["certificateName"] == "api"
    assert created["endpointConfiguration"] == {"types": ["REGIONAL"]}
    assert created["mutualTlsAuthentication"]["truststoreVersion"] == "7"
    assert created["mutualTlsAuthentication"]["truststoreWarnings"] == []
    # the bundle is for NAME, not OTHER: refused, and the CLI shows AWS's error
    done = admin.aws_run(
        "create-domain-name", "--domain-name", OTHER, "--regional-certificate-arn", f"file://{pem.bundle}"
    )
    assert done.returncode != 0
    assert "BadRequestException" in done.stderr
    assert f"not for {OTHER}" in done.stderr
    assert_no_key(done.stderr, pem.key)
    other = pem.ca.issue_cert(OTHER)
    bundle = tmp_path / "other.pem"
    bundle.write_bytes(b"".join(b.bytes() for b in other.cert_chain_pems) + other.private_key_pem.bytes())
    aws("create-domain-name", "--domain-name", OTHER, "--regional-certificate-arn", f"file://{bundle}")

    # paging: the CLI follows `position` itself, one item per call
    listed = aws("get-domain-names", "--page-size", "1")
    assert [d["domainName"] for d in listed["items"]] == sorted([NAME, OTHER])
    got = aws("get-domain-name", "--domain-name", NAME)
    assert got["securityPolicy"] == "TLS_1_2"

    updated = aws(
        "update-domain-name",
        "--domain-name",
        NAME,
        "--patch-operations",
        "op=replace,path=/certificateName,value=renamed",
        "op=replace,path=/mutualTlsAuthentication/truststoreVersion,value=8",
    )
    assert updated["certificateName"] == "renamed"
    assert updated["mutualTlsAuthentication"]["truststoreVersion"] == "8"

    for base, stage in (("(none)", "prod"), ("orders/v2", "prod"), ("v1", "(none)")):
        mapping = aws(
            "create-base-path-mapping",
            "--domain-name",
            NAME,
            "--base-path",
            base,
            "--rest-api-id",
            API,
            *(("--stage", stage) if stage != "(none)" else ()),
        )
        assert mapping == {"basePath": base, "restApiId": API, "stage": stage}
    assert aws("get-base-path-mapping", "--domain-name", NAME, "--base-path", "orders/v2")["stage"] == "prod"
    assert (
        aws("get-base-path-mapping", "--domain-name", NAME, "--base-path", "(none)")["basePath"] == "(none)"
    )
    listed = aws("get-base-path-mappings", "--domain-name", NAME, "--page-size", "1")
    assert [m["basePath"] for m in listed["items"]] == ["(none)", "orders/v2", "v1"]
    moved = aws(
        "update-base-path-mapping",
        "--domain-name",
        NAME,
        "--base-path",
        "orders/v2",
        "--patch-operations",
        "op=replace,path=/basePath,value=orders/v3",
        "op=replace,path=/stage,value=(none)",
    )
    assert moved == {"basePath": "orders/v3", "restApiId": API, "stage": "(none)"}
    (domain,) = [d for d in served_document(admin)["domains"] if d["name"] == NAME]
    assert domain["mappings"] == [
        {"base_path": "(none)", "api": API, "stage": "prod"},
        {"base_path": "orders/v3", "api": API, "stage": "(none)"},
        {"base_path": "v1", "api": API, "stage": "(none)"},
    ]
    assert domain["mutual_tls"]["truststore_version"] == "8"
    config, diags = parse_config(json.dumps(served_document(admin)), source="store")
    assert config is not None, [d.message for d in diags]

    # mutual TLS off, as AWS documents it: the truststore URI replaced by nothing
    off = aws(
        "update-domain-name",
        "--domain-name",
        NAME,
        "--patch-operations",
        "op=replace,path=/mutualTlsAuthentication/truststoreUri,value=''",
    )
    assert "mutualTlsAuthentication" not in off
    (domain,) = [d for d in served_document(admin)["domains"] if d["name"] == NAME]
    assert "mutual_tls" not in domain

    admin.aws("delete-base-path-mapping", "--domain-name", NAME, "--base-path", "orders/v3", parse=False)
    assert [m["basePath"] for m in aws("get-base-path-mappings", "--domain-name", NAME)["items"]] == [
        "(none)",
        "v1",
    ]
    admin.aws("delete-domain-name", "--domain-name", NAME, parse=False)
    admin.aws("delete-domain-name", "--domain-name", OTHER, parse=False)
    assert aws("get-domain-names")["items"] == []
    for out in outputs:
        assert_no_key(out, pem.key, other.private_key_pem.bytes().decode())


# --- paging and every update path (boto3) -------------------------------------------------------


def test_paging_and_every_update_path(admin: AdminHandle, pem: Pem, tmp_path: Path) -> None:
    apigw = admin.boto3()
    for name in ("a.example.test", "b.example.test", "c.example.test"):
        leaf = pem.ca.issue_cert(name)
        apigw.create_domain_name(
            domainName=name,
            certificateBody=leaf.cert_chain_pems[0].bytes().decode(),
            certificatePrivateKey=leaf.private_key_pem.bytes().decode(),
        )
    first = apigw.get_domain_names(limit=2)
    assert [d["domainName"] for d in first["items"]] == ["a.example.test", "b.example.test"]
    rest = apigw.get_domain_names(limit=2, position=first["position"])
    assert [d["domainName"] for d in rest["items"]] == ["c.example.test"]
    assert "position" not in rest
    for base in ("x", "y", "z"):
        apigw.create_base_path_mapping(
            domainName="a.example.test", basePath=base, restApiId=API, stage="prod"
        )
    page = apigw.get_base_path_mappings(domainName="a.example.test", limit=2)
    assert [m["basePath"] for m in page["items"]] == ["x", "y"]
    page = apigw.get_base_path_mappings(domainName="a.example.test", limit=2, position=page["position"])
    assert [m["basePath"] for m in page["items"]] == ["z"]

    created = apigw.create_domain_name(
        domainName=NAME, regionalCertificateArn=pem.bundle.as_uri(), regionalCertificateName="first"
    )
    assert created["regionalCertificateArn"] == pem.bundle.as_uri()
    assert created["securityPolicy"] == "TLS_1_2"  # the default
    assert created["endpointConfiguration"] == {"types": ["REGIONAL"]}  # the default
    assert created["regionalDomainName"].endswith(".execute-api.us-east-1.amazonaws.com")

    def update(*ops: tuple[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = apigw.update_domain_name(
            domainName=NAME, patchOperations=[{"op": "replace", "path": p, "value": v} for p, v in ops]
        )
        return out

    def served() -> dict[str, Any]:
        (domain,) = [d for d in served_document(admin)["domains"] if d["name"] == NAME]
        return domain  # type: ignore[no-any-return]

    assert update(("/securityPolicy", "SecurityPolicy_TLS13_1_2_2021_06"))["securityPolicy"] == (
        "SecurityPolicy_TLS13_1_2_2021_06"
    )
    assert served()["security_policy"] == "SecurityPolicy_TLS13_1_2_2021_06"
    assert (
        update(("/securityPolicy", "TLS_1_2"), ("/regionalCertificateName", "second"))[
            "regionalCertificateName"
        ]
        == "second"
    )
    assert update(("/certificateName", "cert"))["certificateName"] == "cert"
    with_mtls = update(("/mutualTlsAuthentication/truststoreUri", pem.truststore.as_uri()))
    assert with_mtls["mutualTlsAuthentication"] == {
        "truststoreUri": pem.truststore.as_uri(),
        "truststoreWarnings": [],
    }
    assert served()["mutual_tls"] == {"truststore": str(pem.truststore)}
    versioned = update(("/mutualTlsAuthentication/truststoreVersion", "2"))
    assert versioned["mutualTlsAuthentication"]["truststoreVersion"] == "2"
    inline = data_uri(pem.ca.cert_pem.bytes())
    moved = update(("/mutualTlsAuthentication/truststoreUri", inline))
    assert moved["mutualTlsAuthentication"]["truststoreUri"] == inline
    assert served()["mutual_tls"] == {
        "truststore_pem": pem.ca.cert_pem.bytes().decode(),
        "truststore_version": "2",
    }
    # the certificate: a new bundle file, then PEM sent as the AWS CLI sends a file:// parameter
    renewed = pem.ca.issue_cert(NAME)
    newer = tmp_path / "renewed.pem"
    newer.write_bytes(b"".join(b.bytes() for b in renewed.cert_chain_pems) + renewed.private_key_pem.bytes())
    assert update(("/regionalCertificateArn", newer.as_uri()))["regionalCertificateArn"] == newer.as_uri()
    assert served()["certificate"] == served()["key"] == str(newer)
    as_text = update(("/regionalCertificateArn", newer.read_text()))
    assert "regionalCertificateArn" not in as_text
    assert "PRIVATE KEY" in served()["key_pem"]
    assert "certificate" not in served()
    assert served()["certificate_pem"].count("BEGIN CERTIFICATE") == len(renewed.cert_chain_pems)

    # the endpoint type: AWS's /endpointConfiguration/types/{current} or /0 (what Terraform sends);
    # EDGE only without mutual TLS
    refused(
        apigw.update_domain_name,
        "BadRequestException",
        "Mutual TLS needs a REGIONAL domain name",
        domainName=NAME,
        patchOperations=[{"op": "replace", "path": "/endpointConfiguration/types/0", "value": "EDGE"}],
    )
    edge = update(
        ("/mutualTlsAuthentication/truststoreUri", ""), ("/endpointConfiguration/types/REGIONAL", "EDGE")
    )
    assert edge["endpointConfiguration"] == {"types": ["EDGE"]}
    assert "mutualTlsAuthentication" not in edge
    assert served()["endpoint_type"] == "EDGE"
    refused(
        apigw.update_domain_name,
        "BadRequestException",
        "the domain name's endpoint type is EDGE",
        domainName=NAME,
        patchOperations=[{"op": "replace", "path": "/endpointConfiguration/types/REGIONAL", "value": "EDGE"}],
    )
    refused(
        apigw.update_domain_name,
        "BadRequestException",
        "private custom domain names are not supported",
        domainName=NAME,
        patchOperations=[{"op": "replace", "path": "/endpointConfiguration/types/0", "value": "PRIVATE"}],
    )
    assert update(("/endpointConfiguration/types/0", "REGIONAL"))["endpointConfiguration"] == {
        "types": ["REGIONAL"]
    }
    for op, path, message in (
        ("add", "/certificateName", "Must be one of: [replace]"),
        ("replace", "/domainName", "Invalid patch path  '/domainName'"),
        ("replace", "/ownershipVerificationCertificateArn", "/endpointConfiguration/types/{type}"),
    ):
        refused(
            apigw.update_domain_name,
            "BadRequestException",
            message,
            domainName=NAME,
            patchOperations=[{"op": op, "path": path, "value": "x"}],
        )
    config, diags = parse_config(json.dumps(served_document(admin)), source="store")
    assert config is not None, [d.message for d in diags]


def test_an_edge_domain_keeps_certificate_arn_and_moves_to_regional_as_terraform_does(
    admin: AdminHandle, pem: Pem, tmp_path: Path
) -> None:
    apigw = admin.boto3()
    edge = apigw.create_domain_name(
        domainName=NAME, certificateArn=pem.bundle.as_uri(), endpointConfiguration={"types": ["EDGE"]}
    )
    assert edge["certificateArn"] == pem.bundle.as_uri()
    assert "regionalCertificateArn" not in edge
    renewed = pem.ca.issue_cert(NAME)
    regional = tmp_path / "regional.pem"
    regional.write_bytes(
        b"".join(b.bytes() for b in renewed.cert_chain_pems) + renewed.private_key_pem.bytes()
    )
    # the operations Terraform's aws_api_gateway_domain_name sends, in its order
    moved = apigw.update_domain_name(
        domainName=NAME,
        patchOperations=[
            {"op": "replace", "path": "/certificateArn", "value": ""},
            {"op": "replace", "path": "/endpointConfiguration/types/0", "value": "REGIONAL"},
            {"op": "replace", "path": "/regionalCertificateArn", "value": regional.as_uri()},
        ],
    )
    assert moved["regionalCertificateArn"] == regional.as_uri()
    assert "certificateArn" not in moved
    assert moved["endpointConfiguration"] == {"types": ["REGIONAL"]}
    before = store_state(admin)
    refused(
        apigw.update_domain_name,
        "BadRequestException",
        "a domain name needs a certificate",
        domainName=NAME,
        patchOperations=[{"op": "replace", "path": "/regionalCertificateArn", "value": ""}],
    )
    assert store_state(admin) == before


# --- AWS's rules -----------------------------------------------------------------------------


def test_mutual_tls_needs_a_regional_domain_and_tls_1_2(admin: AdminHandle, pem: Pem) -> None:
    apigw = admin.boto3()
    trust = {"truststoreUri": pem.truststore.as_uri()}
    refused(
        apigw.create_domain_name,
        "BadRequestException",
        "Mutual TLS needs a REGIONAL domain name, not EDGE",
        domainName=NAME,
        **with_pem(pem, endpointConfiguration={"types": ["EDGE"]}, mutualTlsAuthentication=trust),
    )
    for policy in ("TLS_1_0", "SecurityPolicy_TLS13_1_2_2021_06", "SecurityPolicy_TLS13_1_3_2025_09"):
        refused(
            apigw.create_domain_name,
            "BadRequestException",
            f"Mutual TLS needs the security policy TLS_1_2, not {policy}",
            domainName=NAME,
            **with_pem(pem, securityPolicy=policy, mutualTlsAuthentication=trust),
        )
    assert apigw.get_domain_names()["items"] == []
    apigw.create_domain_name(domainName=NAME, **with_pem(pem, mutualTlsAuthentication=trust))
    before = store_state(admin)
    refused(
        apigw.update_domain_name,
        "BadRequestException",
        "Mutual TLS needs the security policy TLS_1_2",
        domainName=NAME,
        patchOperations=[
            {"op": "replace", "path": "/securityPolicy", "value": "SecurityPolicy_TLS13_1_3_2025_09"}
        ],
    )
    assert store_state(admin) == before
    # in one call, mutual TLS off first makes the new policy acceptable
    done = apigw.update_domain_name(
        domainName=NAME,
        patchOperations=[
            {"op": "replace", "path": "/mutualTlsAuthentication/truststoreUri", "value": ""},
            {"op": "replace", "path": "/securityPolicy", "value": "SecurityPolicy_TLS13_1_3_2025_09"},
        ],
    )
    assert "mutualTlsAuthentication" not in done
    refused(
        apigw.update_domain_name,
        "BadRequestException",
        "the domain has no mutual TLS",
        domainName=NAME,
        patchOperations=[
            {"op": "replace", "path": "/mutualTlsAuthentication/truststoreVersion", "value": "3"}
        ],
    )


def test_a_mapped_api_or_stage_cannot_be_deleted(admin: AdminHandle, pem: Pem) -> None:
    apigw = admin.boto3()
    put_stage(admin.store, API, "beta")
    apigw.create_domain_name(domainName=NAME, **with_pem(pem))
    apigw.create_domain_name(domainName=OTHER, regionalCertificateArn=_bundle_for(pem, OTHER).as_uri())
    apigw.create_base_path_mapping(domainName=NAME, basePath="v1", restApiId=API, stage="prod")
    apigw.create_base_path_mapping(domainName=OTHER, restApiId=API)  # (none): no stage named
    before = store_state(admin)
    refused(
        apigw.delete_stage,
        "BadRequestException",
        "Deleting stage prod failed. Please remove all base path mappings related to the stage in your "
        f"domains: {NAME}",
        restApiId=API,
        stageName="prod",
    )
    refused(
        apigw.delete_rest_api,
        "BadRequestException",
        f"Deleting RestApi {API} failed. Please remove all base path mappings related to the RestApi in "
        f"your domains: {NAME}, {OTHER}",
        restApiId=API,
    )
    assert store_state(admin) == before
    apigw.delete_stage(restApiId=API, stageName="beta")  # no mapping names it
    apigw.delete_base_path_mapping(domainName=NAME, basePath="v1")
    apigw.delete_stage(restApiId=API, stageName="prod")
    refused(apigw.delete_rest_api, "BadRequestException", f"in your domains: {OTHER}", restApiId=API)
    apigw.delete_domain_name(domainName=OTHER)  # and its mapping with it
    apigw.delete_rest_api(restApiId=API)


def _bundle_for(pem: Pem, name: str) -> Path:
    leaf = pem.ca.issue_cert(name)
    path = pem.bundle.with_name(f"{name}.pem")
    path.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems) + leaf.private_key_pem.bytes())
    return path


# --- refusals leave the store as it was ------------------------------------------------------


def test_every_refusal_leaves_the_store_unchanged(admin: AdminHandle, pem: Pem) -> None:
    apigw = admin.boto3()
    apigw.create_domain_name(
        domainName=NAME, **with_pem(pem, mutualTlsAuthentication={"truststoreUri": pem.truststore.as_uri()})
    )
    apigw.create_base_path_mapping(domainName=NAME, basePath="v1", restApiId=API, stage="prod")
    before = store_state(admin)
    other_ca = trustme.CA()
    stranger = other_ca.issue_cert(NAME).private_key_pem.bytes().decode()
    expired_cert, expired_key = a_leaf(pem.ca, NAME, days=(-30, -1))
    future_cert, future_key = a_leaf(pem.ca, NAME, days=(2, 30))
    locked_cert, locked_key = a_leaf(pem.ca, NAME, encrypt=True)
    keys = [pem.key, stranger, expired_key, future_key]
    new = "new.example.test"
    creations: list[tuple[dict[str, Any], str]] = [
        ({"certificateBody": "garbage", "certificatePrivateKey": pem.key}, "holds no PEM block"),
        ({"certificateBody": pem.key, "certificatePrivateKey": pem.key}, "is it a key?"),
        ({"certificateBody": pem.cert, "certificatePrivateKey": pem.cert}, "is it a certificate?"),
        ({"certificateBody": pem.cert, "certificatePrivateKey": stranger}, "the key does not match"),
        ({"certificateBody": expired_cert, "certificatePrivateKey": expired_key}, "expired on"),
        ({"certificateBody": future_cert, "certificatePrivateKey": future_key}, "is not valid before"),
        (
            {"certificateBody": locked_cert, "certificatePrivateKey": locked_key},
            "the private key is encrypted",
        ),
        (with_pem(pem), f"not for {new}"),
        (
            {"regionalCertificateArn": pem.bundle.as_uri(), "certificatePrivateKey": pem.key},
            "certificatePrivateKey go with certificateBody",
        ),
        (
            {"regionalCertificateArn": pem.bundle.as_uri(), "certificateArn": pem.bundle.as_uri()},
            "either regionalCertificateArn or certificateArn",
        ),
        ({"regionalCertificateArn": "https://example.test/bundle.pem"}, "file:///absolute/path URI"),
        ({"regionalCertificateArn": "file://relative/bundle.pem"}, "file:///absolute/path URI"),
        (with_pem(pem, endpointConfiguration={"types": ["PRIVATE"]}), "private custom domain names"),
        (
            with_pem(pem, endpointConfiguration={"types": ["REGIONAL", "EDGE"]}),
            "exactly one of REGIONAL, EDGE",
        ),
        (
            with_pem(pem, securityPolicy="TLS_1_3"),
            "one of TLS_1_0, TLS_1_2, SecurityPolicy_TLS13_1_2_2021_06",
        ),
        (
            with_pem(pem, mutualTlsAuthentication={"truststoreUri": "s3://bucket/ca.pem"}),
            "file:///path/truststore.pem",
        ),
        (
            with_pem(pem, mutualTlsAuthentication={"truststoreUri": "https://x.test/ca.pem"}),
            "use file:// or data:",
        ),
        (with_pem(pem, mutualTlsAuthentication={"truststoreUri": pem.bundle.as_uri()}), "(a key?)"),
        (
            with_pem(pem, mutualTlsAuthentication={"truststoreUri": data_uri(pem.key.encode())}),
            "is it a key?",
        ),
        (
            with_pem(
                pem, mutualTlsAuthentication={"truststoreUri": "data:application/x-pem-file;base64,%%%"}
            ),
            "not valid base64",
        ),
    ]
    for fields, message in creations:
        text = refused(
            apigw.create_domain_name,
            "BadRequestException",
            message,
            domainName=new if message.startswith("not for") else NAME,
            **fields,
        )
        assert_no_key(text, *keys)
    refused(
        apigw.create_domain_name,
        "BadRequestException",
        "Invalid domain name 'bad_name.test'",
        domainName="bad_name.test",
        **with_pem(pem),
    )
    refused(
        apigw.create_domain_name,
        "ConflictException",
        "already exists",
        domainName=NAME.upper(),
        **with_pem(pem),
    )
    updates: list[tuple[str, str, str]] = [
        ("/regionalCertificateArn", "file:///nonexistent/bundle.pem", "cannot read the certificate bundle"),
        ("/regionalCertificateArn", _bundle_for(pem, OTHER).as_uri(), f"not for {NAME}"),
        ("/regionalCertificateArn", "arn:aws:acm:us-east-1:123456789012:certificate/x", "iamgate has no ACM"),
        ("/securityPolicy", "TLS_9", "Invalid security policy 'TLS_9'"),
        ("/mutualTlsAuthentication/truststoreUri", "s3://bucket/ca.pem", "iamgate does not read S3"),
        ("/endpointConfiguration/types/0", "PRIVATE", "private custom domain names"),
        ("/endpointConfiguration/types/EDGE", "REGIONAL", "the domain name's endpoint type is REGIONAL"),
    ]
    for path, value, message in updates:
        refused(
            apigw.update_domain_name,
            "BadRequestException",
            message,
            domainName=NAME,
            patchOperations=[
                {"op": "replace", "path": "/certificateName", "value": "changed"},
                {"op": "replace", "path": path, "value": value},
            ],
        )
    refused(
        apigw.update_domain_name,
        "NotFoundException",
        "no domain name",
        domainName=OTHER,
        patchOperations=[{"op": "replace", "path": "/certificateName", "value": "x"}],
    )
    mappings: list[tuple[dict[str, Any], str, str]] = [
        (
            {"basePath": "v2", "restApiId": "nosuchapi", "stage": "prod"},
            "NotFoundException",
            "no API 'nosuchapi'",
        ),
        (
            {"basePath": "v2", "restApiId": API, "stage": "nostage"},
            "BadRequestException",
            "has no stage 'nostage'",
        ),
        (
            {"basePath": "v1", "restApiId": API, "stage": "prod"},
            "ConflictException",
            "Base path already exists",
        ),
        ({"basePath": "/v2", "restApiId": API}, "BadRequestException", "Invalid base path '/v2'"),
        ({"basePath": "v2/", "restApiId": API}, "BadRequestException", "Invalid base path 'v2/'"),
        ({"basePath": "a//b", "restApiId": API}, "BadRequestException", "Invalid base path 'a//b'"),
        ({"basePath": "v 2", "restApiId": API}, "BadRequestException", "Invalid base path 'v 2'"),
        ({"basePath": "v2?x", "restApiId": API}, "BadRequestException", "Invalid base path 'v2?x'"),
        ({"basePath": "ü", "restApiId": API}, "BadRequestException", "Invalid base path 'ü'"),
    ]
    for fields, code, message in mappings:
        refused(apigw.create_base_path_mapping, code, message, domainName=NAME, **fields)
    refused(
        apigw.create_base_path_mapping, "NotFoundException", "no domain name", domainName=OTHER, restApiId=API
    )
    assert store_state(admin) == before  # not one of the refusals above wrote anything
    apigw.create_base_path_mapping(domainName=NAME, basePath="v2", restApiId=API, stage="prod")
    before = store_state(admin)
    for op, code, message in (
        (
            {"op": "replace", "path": "/basePath", "value": "v1"},
            "ConflictException",
            "Base path already exists",
        ),
        (
            {"op": "replace", "path": "/stage", "value": "nostage"},
            "BadRequestException",
            "no stage 'nostage'",
        ),
        ({"op": "replace", "path": "/restapiId", "value": "nosuchapi"}, "NotFoundException", "no API"),
        (
            {"op": "replace", "path": "/basePath", "value": "../x"},
            "BadRequestException",
            "none of them '.' or '..'",
        ),
        (
            {"op": "replace", "path": "/basePath", "value": "a/./b"},
            "BadRequestException",
            "none of them '.' or '..'",
        ),
        (
            {"op": "add", "path": "/basePath", "value": "x"},
            "BadRequestException",
            "Must be one of: [replace]",
        ),
    ):
        refused(
            apigw.update_base_path_mapping,
            code,
            message,
            domainName=NAME,
            basePath="v2",
            patchOperations=[op],
        )
    refused(
        apigw.get_base_path_mapping, "NotFoundException", "no base path 'v9'", domainName=NAME, basePath="v9"
    )
    refused(
        apigw.delete_base_path_mapping, "NotFoundException", "no base path", domainName=NAME, basePath="v9"
    )
    refused(apigw.delete_domain_name, "NotFoundException", "no domain name", domainName=OTHER)
    assert store_state(admin) == before


def test_truststore_warnings_show_in_every_read(admin: AdminHandle, pem: Pem, tmp_path: Path) -> None:
    apigw = admin.boto3()
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(
        pem.ca.issue_cert("client.example.test").cert_chain_pems[0].bytes() + pem.ca.cert_pem.bytes()
    )
    apigw.create_domain_name(
        domainName=NAME, **with_pem(pem, mutualTlsAuthentication={"truststoreUri": leaf_only.as_uri()})
    )
    got = apigw.get_domain_name(domainName=NAME)
    (warning,) = got["mutualTlsAuthentication"]["truststoreWarnings"]
    assert warning.startswith("certificate 1 (")
    assert "is not a CA certificate" in warning
    assert got["domainNameStatusMessage"].startswith("The truststore has warnings")
    (listed,) = apigw.get_domain_names()["items"]
    assert listed["mutualTlsAuthentication"]["truststoreWarnings"] == [warning]
    cli = admin.aws("get-domain-name", "--domain-name", NAME)
    assert cli["mutualTlsAuthentication"]["truststoreWarnings"] == [warning]
    fixed = apigw.update_domain_name(
        domainName=NAME,
        patchOperations=[
            {
                "op": "replace",
                "path": "/mutualTlsAuthentication/truststoreUri",
                "value": pem.truststore.as_uri(),
            }
        ],
    )
    assert fixed["mutualTlsAuthentication"]["truststoreWarnings"] == []
    assert "domainNameStatusMessage" not in apigw.get_domain_name(domainName=NAME)


def test_a_wildcard_domain(admin: AdminHandle) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("*.example.test")
    apigw = admin.boto3()
    created = apigw.create_domain_name(
        domainName="*.Example.Test",
        certificateBody=leaf.cert_chain_pems[0].bytes().decode(),
        certificatePrivateKey=leaf.private_key_pem.bytes().decode(),
    )
    assert created["domainName"] == "*.example.test"
    apigw.create_base_path_mapping(domainName="*.example.test", basePath="v1", restApiId=API, stage="prod")
    assert apigw.get_domain_name(domainName="*.example.test")["domainName"] == "*.example.test"
    (domain,) = served_document(admin)["domains"]
    assert domain["name"] == "*.example.test"
    config, diags = parse_config(json.dumps(served_document(admin)), source="store")
    assert config is not None, [d.message for d in diags]


# --- what the store composes ----------------------------------------------------------------


def test_compose_makes_the_domains_document(admin: AdminHandle, pem: Pem) -> None:
    apigw = admin.boto3()
    apigw.create_domain_name(
        domainName=NAME,
        regionalCertificateArn=pem.bundle.as_uri(),
        securityPolicy="TLS_1_2",
        mutualTlsAuthentication={"truststoreUri": pem.truststore.as_uri(), "truststoreVersion": "1"},
    )
    for base, stage in (("(none)", None), ("orders/v2", "prod"), ("v1", "prod")):
        apigw.create_base_path_mapping(
            domainName=NAME, basePath=base, restApiId=API, **({"stage": stage} if stage else {})
        )
    other = pem.ca.issue_cert(OTHER)
    apigw.create_domain_name(
        domainName=OTHER,
        certificateBody=other.cert_chain_pems[0].bytes().decode(),
        certificateChain=b"".join(b.bytes() for b in other.cert_chain_pems[1:]).decode(),
        certificatePrivateKey=other.private_key_pem.bytes().decode(),
        endpointConfiguration={"types": ["EDGE"]},
        securityPolicy="SecurityPolicy_TLS13_1_3_2025_09",
    )
    api = apigw.create_rest_api(
        name="hidden", disableExecuteApiEndpoint=True, endpointConfiguration={"types": ["REGIONAL"]}
    )
    root = apigw.get_resources(restApiId=api["id"])["items"][0]["id"]
    apigw.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api["id"],
        resourceId=root,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    apigw.create_deployment(restApiId=api["id"], stageName="live")
    apigw.create_base_path_mapping(domainName=OTHER, restApiId=api["id"], stage="live")

    served = admin.store.served()
    document, origins = compose({"apis": []}, served)
    key_pem = serialization.load_pem_private_key(other.private_key_pem.bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert document["domains"] == [
        {
            "name": NAME,
            "security_policy": "TLS_1_2",
            "endpoint_type": "REGIONAL",
            "certificate": str(pem.bundle),
            "key": str(pem.bundle),
            "mutual_tls": {"truststore": str(pem.truststore), "truststore_version": "1"},
            "mappings": [
                {"base_path": "(none)", "api": API, "stage": "(none)"},
                {"base_path": "orders/v2", "api": API, "stage": "prod"},
                {"base_path": "v1", "api": API, "stage": "prod"},
            ],
        },
        {
            "name": OTHER,
            "security_policy": "SecurityPolicy_TLS13_1_3_2025_09",
            "endpoint_type": "EDGE",
            "certificate_pem": b"".join(b.bytes() for b in other.cert_chain_pems).decode(),
            "key_pem": key_pem.decode(),
            "mappings": [{"base_path": "(none)", "api": api["id"], "stage": "live"}],
        },
    ]
    assert origins["/domains/0"] == f"the store's domain name {NAME}"
    (entry,) = [a for a in document["apis"] if a["id"] == api["id"]]
    assert entry["disable_execute_api_endpoint"] is True
    # what travels to the workers composes to the same document
    assert compose({"apis": []}, decode_served(encode_served(served)))[0] == document
    config, diags = parse_config(json.dumps(document), source="store")
    assert config is not None, [d.message for d in diags]
    by_name = {d.name: d for d in config.domains}
    assert by_name[NAME].mutual_tls is not None
    assert by_name[NAME].mutual_tls.version == "1"
    assert [(m.base_path, m.api, m.stage) for m in by_name[NAME].mappings] == [
        ("", API, ""),
        ("orders/v2", API, "prod"),
        ("v1", API, "prod"),
    ]
    assert by_name[OTHER].certificate is not None
    assert OTHER in by_name[OTHER].certificate.names
    (served_api,) = [a for a in config.apis if a.id == api["id"]]
    assert served_api.disable_execute_api_endpoint
    # a file's own domains come first and keep their place; the store's are appended
    mine = {"name": "file.example.test", "certificate": str(pem.bundle), "key": str(pem.bundle)}
    document, origins = compose({"apis": [], "domains": [mine]}, served)
    assert [d["name"] for d in document["domains"]] == ["file.example.test", NAME, OTHER]
    assert "/domains/0" not in origins
    assert origins["/domains/1"].endswith(NAME)


# --- a private key never leaves -----------------------------------------------------------


def test_a_private_key_is_never_answered_logged_or_exported(
    admin: AdminHandle, pem: Pem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    apigw = admin.boto3()
    generation = admin.store.generation()
    answers: list[Any] = [apigw.create_domain_name(domainName=NAME, **with_pem(pem))]
    assert admin.store.generation() > generation  # a new generation: serving gateways pick it up
    # IAM decides as for any path: a reader of /restapis* reads no domain name
    for read in (admin.boto3(READER).get_domain_names, admin.boto3(READER).get_domain_name):
        with pytest.raises(ClientError) as denied:
            read(**({"domainName": NAME} if read.__name__ == "get_domain_name" else {}))
        assert error_of(denied)[0] == "AccessDeniedException"
        assert "/domainnames" in error_of(denied)[1]
    answers.append(
        apigw.create_base_path_mapping(domainName=NAME, basePath="v1", restApiId=API, stage="prod")
    )
    answers.append(apigw.get_domain_name(domainName=NAME))
    answers.append(apigw.get_domain_names())
    answers.append(
        apigw.update_domain_name(
            domainName=NAME,
            patchOperations=[
                {"op": "replace", "path": "/regionalCertificateArn", "value": pem.bundle.read_text()}
            ],
        )
    )
    answers.append(apigw.get_base_path_mappings(domainName=NAME))
    for fields in (
        with_pem(pem, securityPolicy="nope"),
        {"certificateBody": pem.key, "certificatePrivateKey": pem.key},
        with_pem(pem, mutualTlsAuthentication={"truststoreUri": data_uri(pem.bundle.read_bytes())}),
        {"regionalCertificateArn": pem.key},
    ):
        with pytest.raises(ClientError) as exc:
            apigw.create_domain_name(domainName="x.example.test", **fields)
        answers.append(exc.value.response)
    # raw answers too: what boto3 parses away would still be on the wire
    for target in ("/domainnames", f"/domainnames/{NAME}", f"/domainnames/{NAME}/basepathmappings"):
        status, headers, body = admin.signed("GET", target)
        assert status == 200
        answers.append(body.decode())
        answers.append(headers)
    # the store does keep the key (it serves it) ...
    (kept,) = admin.store.served().domains
    assert "PRIVATE KEY" in kept["privateKeyPem"]
    # ... but what iamgate export writes of a store holds no domains and no key
    text = render(export_document(admin.store))
    assert_no_key(text, pem.key)
    for answer in answers:
        assert_no_key(answer, pem.key)
    # iamgate's own log lines (the clients' debug logs hold what they send, the key included)
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "iamgate"]
    assert_no_key("\n".join(ours), pem.key)
