"""Custom domain names and base path mappings through the real AWS clients (boto3, the AWS CLI),
on SQLite and PostgreSQL stores; what the store composes passes the gateway's own loader, and a
private key never comes back in any answer."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import trustme
from botocore.exceptions import ClientError

from iamgate.config.load import parse_config
from iamgate.store.compose import compose
from tests.gateway.tls_support import dated_cert
from tests.management.conftest import AdminHandle
from tests.management.test_keys import put_stage

API = "d0m4i5n6a7"
NAME = "api.example.test"


@pytest.fixture
def admin(admin_on_each_store: AdminHandle) -> AdminHandle:
    """The management API over SQLite, then PostgreSQL, holding API ``API`` with stage prod."""
    put_stage(admin_on_each_store.store, API, "prod")
    return admin_on_each_store


class Pem:
    def __init__(self, tmp_path: Path) -> None:
        self.ca = trustme.CA()
        leaf = self.ca.issue_cert(NAME)
        self.cert = leaf.cert_chain_pems[0].bytes().decode()
        self.chain = b"".join(b.bytes() for b in leaf.cert_chain_pems[1:]).decode()
        self.key = leaf.private_key_pem.bytes().decode()
        self.bundle = tmp_path / "bundle.pem"
        self.bundle.write_bytes(
            b"".join(b.bytes() for b in leaf.cert_chain_pems) + leaf.private_key_pem.bytes()
        )
        self.truststore = tmp_path / "clients.pem"
        self.truststore.write_bytes(self.ca.cert_pem.bytes())


@pytest.fixture
def pem(tmp_path: Path) -> Pem:
    return Pem(tmp_path)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def served_document(admin: AdminHandle) -> dict[str, Any]:
    document, _ = compose({"apis": []}, admin.store.served())
    return document


def loads(admin: AdminHandle) -> None:
    config, diags = parse_config(json.dumps(served_document(admin)), source="store")
    assert config is not None, [d.message for d in diags]


def no_key_anywhere(value: Any, pem: Pem) -> None:
    text = json.dumps(value, default=str)
    assert "PRIVATE KEY" not in text
    assert pem.key.splitlines()[1] not in text


def test_domain_name_round_trip_with_boto3(admin: AdminHandle, pem: Pem) -> None:
    apigw = admin.boto3()
    created = apigw.create_domain_name(
        domainName=NAME,
        certificateName="api",
        certificateBody=pem.cert,
        certificateChain=pem.chain,
        certificatePrivateKey=pem.key,
        endpointConfiguration={"types": ["REGIONAL"]},
        securityPolicy="TLS_1_2",
        mutualTlsAuthentication={"truststoreUri": pem.truststore.as_uri(), "truststoreVersion": "1"},
        tags={"team": "edge"},
    )
    no_key_anywhere(created, pem)
    assert created["domainName"] == NAME
    assert created["domainNameStatus"] == "AVAILABLE"
    assert created["regionalDomainName"].startswith("d-")
    assert created["mutualTlsAuthentication"] == {
        "truststoreUri": pem.truststore.as_uri(),
        "truststoreVersion": "1",
        "truststoreWarnings": [],
    }
    got = apigw.get_domain_name(domainName=NAME)
    no_key_anywhere(got, pem)
    assert got["securityPolicy"] == "TLS_1_2"
    assert [d["domainName"] for d in apigw.get_domain_names()["items"]] == [NAME]

    mapping = apigw.create_base_path_mapping(domainName=NAME, basePath="v1", restApiId=API, stage="prod")
    assert mapping == {**mapping, "basePath": "v1", "restApiId": API, "stage": "prod"}
    apigw.create_base_path_mapping(domainName=NAME, restApiId=API)  # (none), the stage from the URL
    apigw.create_base_path_mapping(domainName=NAME, basePath="orders/v2", restApiId=API, stage="prod")
    items = apigw.get_base_path_mappings(domainName=NAME)["items"]
    assert [(m["basePath"], m["stage"]) for m in items] == [
        ("(none)", "(none)"),
        ("orders/v2", "prod"),
        ("v1", "prod"),
    ]
    assert apigw.get_base_path_mapping(domainName=NAME, basePath="orders/v2")["stage"] == "prod"
    assert apigw.get_base_path_mapping(domainName=NAME, basePath="(none)")["restApiId"] == API
    updated = apigw.update_base_path_mapping(
        domainName=NAME,
        basePath="v1",
        patchOperations=[{"op": "replace", "path": "/basePath", "value": "v3"}],
    )
    assert updated["basePath"] == "v3"

    document = served_document(admin)
    (domain,) = document["domains"]
    assert domain["name"] == NAME
    assert domain["mutual_tls"] == {"truststore": str(pem.truststore), "truststore_version": "1"}
    assert {(m["base_path"], m["stage"]) for m in domain["mappings"]} == {
        ("(none)", "(none)"),
        ("orders/v2", "prod"),
        ("v3", "prod"),
    }
    loads(admin)

    apigw.delete_base_path_mapping(domainName=NAME, basePath="v3")
    with pytest.raises(ClientError) as exc:
        apigw.get_base_path_mapping(domainName=NAME, basePath="v3")
    assert error_of(exc)[0] == "NotFoundException"
    apigw.delete_domain_name(domainName=NAME)
    with pytest.raises(ClientError) as exc:
        apigw.get_domain_name(domainName=NAME)
    assert error_of(exc)[:1] == ("NotFoundException",)
    assert "domains" not in served_document(admin)


def test_domain_names_with_the_aws_cli(admin: AdminHandle, pem: Pem) -> None:
    created = admin.aws(
        "create-domain-name",
        "--domain-name",
        NAME,
        "--regional-certificate-arn",
        pem.bundle.as_uri(),
        "--endpoint-configuration",
        "types=REGIONAL",
    )
    # the CLI reads file:// itself and sends the bundle's PEM: kept, never shown back
    assert "regionalCertificateArn" not in created
    no_key_anywhere(created, pem)
    admin.aws(
        "create-base-path-mapping",
        "--domain-name",
        NAME,
        "--base-path",
        "v1",
        "--rest-api-id",
        API,
        "--stage",
        "prod",
    )
    listed = admin.aws("get-base-path-mappings", "--domain-name", NAME)
    assert [m["basePath"] for m in listed["items"]] == ["v1"]
    admin.aws(
        "update-domain-name",
        "--domain-name",
        NAME,
        "--patch-operations",
        "op=replace,path=/securityPolicy,value=SecurityPolicy_TLS13_1_3_2025_09",
    )
    got = admin.aws("get-domain-name", "--domain-name", NAME)
    assert got["securityPolicy"] == "SecurityPolicy_TLS13_1_3_2025_09"
    (domain,) = served_document(admin)["domains"]
    assert domain["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in domain["key_pem"]
    loads(admin)
    # boto3 sends the URI as it is: the gateway reads (and watches) the file itself
    admin.boto3().update_domain_name(
        domainName=NAME,
        patchOperations=[{"op": "replace", "path": "/regionalCertificateArn", "value": pem.bundle.as_uri()}],
    )
    (domain,) = served_document(admin)["domains"]
    assert domain["certificate"] == domain["key"] == str(pem.bundle)
    assert "certificate_pem" not in domain
    loads(admin)
    admin.aws("delete-base-path-mapping", "--domain-name", NAME, "--base-path", "v1", parse=False)
    admin.aws("delete-domain-name", "--domain-name", NAME, parse=False)
    assert admin.aws("get-domain-names")["items"] == []


def _expired(pem: Pem) -> tuple[str, str]:
    cert, key = dated_cert(pem.ca, NAME, (-30, -1))
    return cert.decode(), key.decode()


def test_bad_input_is_refused_and_nothing_is_written(admin: AdminHandle, pem: Pem, tmp_path: Path) -> None:
    apigw = admin.boto3()
    other = trustme.CA().issue_cert(NAME)
    expired_cert, expired_key = _expired(pem)
    non_ca = tmp_path / "leaf.pem"
    non_ca.write_bytes(pem.ca.issue_cert("client").cert_chain_pems[0].bytes())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"certificateBody": "garbage", "certificatePrivateKey": pem.key}, "holds no PEM block"),
        (
            {"certificateBody": pem.cert, "certificatePrivateKey": other.private_key_pem.bytes().decode()},
            "the key does not match",
        ),
        ({"certificateBody": expired_cert, "certificatePrivateKey": expired_key}, "expired on"),
        ({"certificateBody": pem.cert}, "certificatePrivateKey is needed"),
        ({}, "a certificate is needed"),
        (
            {"regionalCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"},
            "iamgate has no ACM",
        ),
        ({"regionalCertificateArn": "file:///nonexistent/bundle.pem"}, "cannot read the certificate bundle"),
        (
            {"certificateBody": pem.cert, "certificatePrivateKey": pem.key, "securityPolicy": "TLS_9"},
            "Invalid security policy 'TLS_9'",
        ),
        (
            {
                "certificateBody": pem.cert,
                "certificatePrivateKey": pem.key,
                "endpointConfiguration": {"types": ["PRIVATE"]},
            },
            "private custom domain names are not supported",
        ),
        (
            {
                "certificateBody": pem.cert,
                "certificatePrivateKey": pem.key,
                "mutualTlsAuthentication": {"truststoreUri": "s3://bucket/truststore.pem"},
            },
            "iamgate does not read S3",
        ),
        (
            {
                "certificateBody": pem.cert,
                "certificatePrivateKey": pem.key,
                "mutualTlsAuthentication": {
                    "truststoreUri": "data:application/x-pem-file;base64,"
                    + base64.b64encode(b"junk").decode()
                },
            },
            "Invalid truststore",
        ),
        (
            {
                "certificateBody": pem.cert,
                "certificatePrivateKey": pem.key,
                "securityPolicy": "TLS_1_0",
                "mutualTlsAuthentication": {"truststoreUri": pem.truststore.as_uri()},
            },
            "Mutual TLS needs",
        ),
    ]
    for fields, message in cases:
        with pytest.raises(ClientError) as exc:
            apigw.create_domain_name(domainName=NAME, **fields)
        code, text, status = error_of(exc)
        assert (code, status) == ("BadRequestException", 400), fields
        assert message in text, (message, text)
        no_key_anywhere(exc.value.response, pem)
    with pytest.raises(ClientError) as exc:
        apigw.create_domain_name(
            domainName=NAME, certificateBody=pem.cert, certificatePrivateKey=pem.key.replace("A", "B", 3)
        )
    assert error_of(exc)[0] == "BadRequestException"
    with pytest.raises(ClientError) as exc:  # a certificate for another name
        apigw.create_domain_name(
            domainName="other.example.test", certificateBody=pem.cert, certificatePrivateKey=pem.key
        )
    assert "not for other.example.test" in error_of(exc)[1]
    assert apigw.get_domain_names()["items"] == []

    # a truststore with a leaf in it is accepted, with AWS's warnings
    created = apigw.create_domain_name(
        domainName=NAME,
        certificateBody=pem.cert,
        certificateChain=pem.chain,
        certificatePrivateKey=pem.key,
        mutualTlsAuthentication={"truststoreUri": non_ca.as_uri()},
    )
    (warning,) = created["mutualTlsAuthentication"]["truststoreWarnings"]
    assert "is not a CA certificate" in warning
    assert created["domainNameStatusMessage"].startswith("The truststore has warnings")
    with pytest.raises(ClientError) as exc:
        apigw.create_domain_name(domainName=NAME, certificateBody=pem.cert, certificatePrivateKey=pem.key)
    assert error_of(exc)[0] == "ConflictException"

    for kwargs, expected in (
        ({"basePath": "v1", "restApiId": "nosuchapi", "stage": "prod"}, "NotFoundException"),
        ({"basePath": "v1", "restApiId": API, "stage": "nostage"}, "BadRequestException"),
        ({"basePath": "/v1", "restApiId": API, "stage": "prod"}, "BadRequestException"),
        ({"basePath": "v1/", "restApiId": API, "stage": "prod"}, "BadRequestException"),
        ({"basePath": "a b", "restApiId": API, "stage": "prod"}, "BadRequestException"),
    ):
        with pytest.raises(ClientError) as exc:
            apigw.create_base_path_mapping(domainName=NAME, **kwargs)
        assert error_of(exc)[0] == expected, kwargs
    apigw.create_base_path_mapping(domainName=NAME, basePath="v1", restApiId=API, stage="prod")
    with pytest.raises(ClientError) as exc:
        apigw.create_base_path_mapping(domainName=NAME, basePath="v1", restApiId=API, stage="prod")
    assert error_of(exc)[0] == "ConflictException"
    with pytest.raises(ClientError) as exc:
        apigw.create_base_path_mapping(domainName="nosuch.example.test", basePath="v1", restApiId=API)
    assert error_of(exc)[0] == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        apigw.update_domain_name(
            domainName=NAME, patchOperations=[{"op": "replace", "path": "/domainName", "value": "x"}]
        )
    assert error_of(exc)[0] == "BadRequestException"
    assert [m["basePath"] for m in apigw.get_base_path_mappings(domainName=NAME)["items"]] == ["v1"]
    loads(admin)


def test_disable_execute_api_endpoint_reaches_the_served_api_with_a_deployment(admin: AdminHandle) -> None:
    apigw = admin.boto3()
    api = apigw.create_rest_api(name="edge", disableExecuteApiEndpoint=True)
    assert api["disableExecuteApiEndpoint"] is True
    root = apigw.get_resources(restApiId=api["id"])["items"][0]["id"]
    apigw.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api["id"],
        resourceId=root,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    apigw.create_deployment(restApiId=api["id"], stageName="prod")
    (entry,) = [a for a in served_document(admin)["apis"] if a["id"] == api["id"]]
    assert entry["disable_execute_api_endpoint"] is True
    apigw.update_rest_api(
        restApiId=api["id"],
        patchOperations=[{"op": "replace", "path": "/disableExecuteApiEndpoint", "value": "false"}],
    )
    (entry,) = [a for a in served_document(admin)["apis"] if a["id"] == api["id"]]
    assert entry.get("disable_execute_api_endpoint") is True  # the deployed one, until a new deployment
    apigw.create_deployment(restApiId=api["id"], stageName="prod")
    (entry,) = [a for a in served_document(admin)["apis"] if a["id"] == api["id"]]
    assert "disable_execute_api_endpoint" not in entry
