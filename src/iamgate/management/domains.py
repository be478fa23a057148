"""Custom domain names and base path mappings, as API Gateway's operations: ``CreateDomainName``,
``GetDomainName(s)``, ``UpdateDomainName``, ``DeleteDomainName``, ``CreateBasePathMapping``,
``GetBasePathMapping(s)``, ``UpdateBasePathMapping``, ``DeleteBasePathMapping`` (paths, status
codes and shapes of botocore's ``apigateway`` model; docs/management.md and docs/tls.md).

A domain is one store object, ``domainname`` ("", name), holding its mappings; the gateway
serves it at once (no deployment, as on AWS), composed into the configuration's ``domains``
(``iamgate.store.compose.domain_entry``). Where iamgate differs from AWS: certificates are PEM, given in
AWS's own ``certificateBody``/``certificatePrivateKey``/``certificateChain`` fields or as a
``file://`` URI in ``regionalCertificateArn`` (a PEM bundle: the chain, then the key); a
truststore is a ``file://`` or ``data:`` URI, not S3. Certificates and truststores are checked
as the configuration loader checks them; a private key is never answered back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from iamgate.management.core import Call, Reply, Route, bad_request, conflict, not_found
from iamgate.management.drafts import page
from iamgate.management.patch import PatchOp, invalid_op, invalid_path, operations
from iamgate.store.base import ConflictError, Doc, Transaction
from iamgate.tls.certs import CertError, ServerCertificate
from iamgate.tls.contexts import DEFAULT_POLICY, SECURITY_POLICIES

__all__ = ["KIND", "ROUTES", "domains_mapping"]

KIND = "domainname"
_NAME = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# segments of letters, digits, '.', '_' and '-', none of them '.' or '..' (never in a canonical path)
_BASE_PATH = re.compile(r"(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*")
_HOSTED_ZONE = "Z1UJRXOUMOOFQ8"  # what AWS shows for us-east-1 regional domains; informational here
_DOMAIN_UPDATABLE = [
    "/certificateName",
    "/certificateArn",
    "/regionalCertificateArn",
    "/regionalCertificateName",
    "/securityPolicy",
    "/mutualTlsAuthentication/truststoreUri",
    "/mutualTlsAuthentication/truststoreVersion",
    "/endpointConfiguration/types/{type}",
]
_MAPPING_UPDATABLE = ["/basePath", "/restapiId", "/stage"]


# --- reading what a call gives ---------------------------------------------------------------


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string, not {type(value).__name__}")
    return value


def _file_uri(uri: str, what: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise bad_request(f"{what} must be a file:///absolute/path URI here")
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        raise bad_request(f"{what} must name an absolute path (file:///...)")
    return path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise bad_request(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _split_bundle(data: bytes) -> tuple[bytes, bytes]:
    """A PEM bundle's certificates and its private key (any order in the file)."""
    certs: list[bytes] = []
    key: list[bytes] = []
    for match in re.finditer(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----\s*", data, re.DOTALL):
        (key if b"PRIVATE KEY" in match.group(1) else certs).append(match.group(0))
    return b"".join(certs), b"".join(key)


_ARN_FIELDS = ("regionalCertificateArn", "certificateArn")
# what a domain document holds of its certificate (one of: the PEM kept, or a file and the URI naming it)
_CERTIFICATE_KEYS = ("certificatePem", "privateKeyPem", "certificateFile", *_ARN_FIELDS)


def _certificate(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The certificate fields of a domain document, checked: PEM text, or a file:// bundle. The
    URI is kept under the field it came in (``regionalCertificateArn``, or ``certificateArn`` as
    edge-optimized domains give it) and answered back there; PEM is kept normalised (the
    certificates, and the key alone, unencrypted), never answered back."""
    given = [f for f in _ARN_FIELDS if body.get(f) is not None]
    if len(given) > 1:
        raise bad_request("give either regionalCertificateArn or certificateArn, not both")
    field = given[0] if given else _ARN_FIELDS[0]
    arn = _text(body, field)
    pem = _text(body, "certificateBody")
    if arn is not None and pem is not None:
        raise bad_request(f"give either certificateBody (PEM) or {field} (file://), not both")
    if arn is not None:
        extra = [f for f in ("certificatePrivateKey", "certificateChain") if body.get(f) is not None]
        if extra:
            raise bad_request(
                f"{' and '.join(extra)} go with certificateBody; a {field} bundle holds the chain and "
                "the private key itself"
            )
    if arn is not None and "-----BEGIN" in arn:
        # the AWS CLI reads a parameter given as file://PATH and sends the file's content: a
        # bundle given so arrives as PEM, and is kept as PEM (never shown back)
        chain, key = _split_bundle(arn.encode())
        return _kept(_check(chain, key, name))
    if arn is not None:
        if arn.startswith("arn:"):
            raise bad_request(
                f"iamgate has no ACM: give {field} as a file:///path URI of a PEM bundle "
                "(the certificate chain, then the private key), or the PEM in certificateBody, "
                "certificateChain and certificatePrivateKey"
            )
        path = _file_uri(arn, field)
        chain, key = _split_bundle(_read(path, "the certificate bundle"))
        _check(chain, key, name)
        return {field: arn, "certificateFile": str(path)}
    if pem is None:
        raise bad_request(
            "a certificate is needed: certificateBody (PEM), certificateChain and certificatePrivateKey, "
            "or regionalCertificateArn as a file:///path URI"
        )
    key_text = _text(body, "certificatePrivateKey")
    if key_text is None:
        raise bad_request("certificatePrivateKey is needed with certificateBody")
    chain = (pem.strip() + "\n" + (_text(body, "certificateChain") or "").strip() + "\n").encode()
    return _kept(_check(chain, key_text.encode(), name))


def _kept(cert: ServerCertificate) -> dict[str, Any]:
    return {"certificatePem": cert.chain_pem.decode(), "privateKeyPem": cert.key_pem.decode()}


def _check(chain: bytes, key: bytes, name: str) -> ServerCertificate:
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in key or b"Proc-Type: 4,ENCRYPTED" in key:
        # the configuration file can name a password (key_password_env); an API call has no
        # place for one, as ACM's import has none
        raise bad_request(
            f"Invalid certificate for {name}: the private key is encrypted; give it unencrypted"
        )
    from iamgate.tls.pem import read_server_certificate  # noqa: PLC0415 - cryptography, only where a certificate is read

    found = read_server_certificate(chain, key, None, name=name)
    if isinstance(found, CertError):
        raise bad_request(f"Invalid certificate for {name}: {found.message}")
    return found


def _truststore(mtls: Any) -> tuple[dict[str, Any], list[str]]:
    """``mutualTlsAuthentication`` as stored, and its warnings (AWS's ``truststoreWarnings``)."""
    if not isinstance(mtls, dict):
        raise bad_request("'mutualTlsAuthentication' must be an object with truststoreUri")
    uri = mtls.get("truststoreUri")
    if not isinstance(uri, str) or not uri:
        raise bad_request("mutualTlsAuthentication.truststoreUri is required")
    version = mtls.get("truststoreVersion")
    if version is not None and not isinstance(version, str):
        raise bad_request("mutualTlsAuthentication.truststoreVersion must be a string")
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "s3":
        raise bad_request(
            "iamgate does not read S3: give truststoreUri as file:///path/truststore.pem or as "
            "data:application/x-pem-file;base64,... (the PEM bundle itself)"
        )
    out: dict[str, Any] = {"truststoreUri": uri}
    if scheme == "data":
        head, comma, payload = uri.partition(",")
        if not comma:
            raise bad_request("a data: truststoreUri needs a ',' before its content")
        try:
            pem = (
                base64.b64decode(payload, validate=True)
                if head.endswith(";base64")
                else unquote(payload).encode()
            )
        except (binascii.Error, ValueError):
            raise bad_request("the data: truststoreUri is not valid base64") from None
        out["truststorePem"] = pem.decode("utf-8", "replace")
    elif scheme == "file":
        path = _file_uri(uri, "truststoreUri")
        pem = _read(path, "the truststore")
        out["truststoreFile"] = str(path)
    else:
        raise bad_request(f"truststoreUri: the scheme '{scheme}' is not read here; use file:// or data:")
    from iamgate.tls.pem import read_truststore  # noqa: PLC0415 - cryptography, only where a certificate is read

    store = read_truststore(pem)
    if isinstance(store, CertError):
        raise bad_request(f"Invalid truststore: {store.message}")
    if version is not None:
        out["truststoreVersion"] = version
    return out, list(store.warnings)


def _policy(value: Any) -> str:
    if value is None:
        return DEFAULT_POLICY
    if value not in SECURITY_POLICIES:
        raise bad_request(f"Invalid security policy '{value}': one of {', '.join(SECURITY_POLICIES)}")
    return str(value)


def _endpoint(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"types": ["REGIONAL"]}
    types = raw.get("types") if isinstance(raw, dict) else None
    if not isinstance(types, list) or len(types) != 1 or types[0] not in ("REGIONAL", "EDGE", "PRIVATE"):
        raise bad_request(f"Invalid endpoint configuration types {types!r}: exactly one of REGIONAL, EDGE")
    if types[0] == "PRIVATE":
        raise bad_request(
            "private custom domain names are not supported by iamgate (PRIVATE): use REGIONAL or EDGE"
        )
    return {"types": list(types)}


def _base_path(value: str | None) -> str:
    """A base path as stored: "" for ``(none)``."""
    if value is None or value in ("", "(none)"):
        return ""
    if not _BASE_PATH.fullmatch(value):
        raise bad_request(
            f"Invalid base path '{value}': letters, digits, '-', '_' and '.' in segments joined by '/', "
            "none of them '.' or '..', with no leading or trailing '/'; or (none)"
        )
    return value


# --- shapes --------------------------------------------------------------------------------------

_SHOWN = (
    "domainName",
    "certificateName",
    "certificateUploadDate",
    "regionalDomainName",
    "regionalHostedZoneId",
    "regionalCertificateName",
    "regionalCertificateArn",
    "certificateArn",
    "endpointConfiguration",
    "domainNameStatus",
    "domainNameStatusMessage",
    "securityPolicy",
    "tags",
)


def _shape(doc: Doc) -> dict[str, Any]:
    """What AWS answers: never the private key, nor the PEM kept for serving."""
    out = {k: doc[k] for k in _SHOWN if k in doc}
    mtls = doc.get("mutualTlsAuthentication")
    if mtls:
        out["mutualTlsAuthentication"] = {
            **{k: mtls[k] for k in ("truststoreUri", "truststoreVersion") if k in mtls},
            "truststoreWarnings": list(doc.get("truststoreWarnings") or []),
        }
    return out


def _mapping_shape(mapping: dict[str, Any]) -> dict[str, Any]:
    return {
        "basePath": mapping["basePath"] or "(none)",
        "restApiId": mapping["restApiId"],
        "stage": mapping.get("stage") or "(none)",
    }


# --- domain names ----------------------------------------------------------------------------


def _find(tx: Transaction, name: str) -> Doc:
    doc = tx.get(KIND, "", name.lower())
    if doc is None:
        raise not_found(f"Invalid domain name identifier specified: there is no domain name '{name}'")
    return doc


def _endpoint_type(doc: Doc) -> str:
    return str(((doc.get("endpointConfiguration") or {}).get("types") or ["REGIONAL"])[0])


def _check_mtls(doc: Doc) -> None:
    """AWS's rules for mutual TLS: a regional domain name with the security policy TLS_1_2 (not
    TLS_1_0, nor an enhanced ``SecurityPolicy_...`` one)."""
    if not doc.get("mutualTlsAuthentication"):
        return
    policy = doc.get("securityPolicy")
    if policy != "TLS_1_2":
        raise bad_request(
            f"Mutual TLS needs the security policy TLS_1_2, not {policy}: API Gateway offers mutual TLS "
            "neither with TLS_1_0 nor with an enhanced security policy (SecurityPolicy_...)"
        )
    if _endpoint_type(doc) != "REGIONAL":
        raise bad_request(
            f"Mutual TLS needs a REGIONAL domain name, not {_endpoint_type(doc)}: API Gateway offers "
            "mutual TLS on regional custom domain names only"
        )


async def create_domain_name(call: Call) -> Reply:
    body = call.json()
    name = _text(body, "domainName")
    if not name:
        raise bad_request("'domainName' is required")
    name = name.lower().removesuffix(".")
    if not _NAME.fullmatch(name) or len(name) > 253:
        raise bad_request(
            f"Invalid domain name '{name}': a DNS name such as api.example.com, or *.example.com"
        )
    region = call.gateway.config().settings.region
    # AWS's regional target name: d-{10 characters}.execute-api.{region}.amazonaws.com
    target = f"d-{hashlib.sha256(name.encode()).hexdigest()[:10]}.execute-api.{region}.amazonaws.com"
    doc: Doc = {
        "domainName": name,
        "certificateUploadDate": int(time.time()),
        "regionalDomainName": target,
        "regionalHostedZoneId": _HOSTED_ZONE,
        "endpointConfiguration": _endpoint(body.get("endpointConfiguration")),
        "domainNameStatus": "AVAILABLE",
        "securityPolicy": _policy(body.get("securityPolicy")),
        "mappings": [],
    }
    for field in ("certificateName", "regionalCertificateName"):
        if (value := _text(body, field)) is not None:
            doc[field] = value
    doc.update(_certificate(body, name))
    if body.get("mutualTlsAuthentication") is not None:
        doc["mutualTlsAuthentication"], doc["truststoreWarnings"] = _truststore(
            body["mutualTlsAuthentication"]
        )
        if doc["truststoreWarnings"]:
            doc["domainNameStatusMessage"] = "The truststore has warnings: see mutualTlsAuthentication"
    _check_mtls(doc)
    tags = body.get("tags")
    if tags is not None:
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise bad_request("'tags' must be a map of string keys to string values")
        doc["tags"] = dict(tags)

    def write() -> None:
        with call.store.transaction() as tx:
            tx.insert(KIND, "", name, doc)

    try:
        await call.in_store(write)
    except ConflictError:
        raise conflict(f"The domain name you provided already exists: {name}") from None
    return Reply(201, _shape(doc))


async def get_domain_name(call: Call) -> Reply:
    def run() -> Doc:
        with call.store.transaction() as tx:
            return _find(tx, call.params["domain_name"])

    return Reply(200, _shape(await call.in_store(run)))


async def get_domain_names(call: Call) -> Reply:
    def run() -> list[Doc]:
        with call.store.transaction() as tx:
            return [doc for _, _, doc in tx.list(KIND)]

    docs = await call.in_store(run)
    return Reply(200, page(call, [_shape(d) for d in docs], key="domainName"))


def _apply_domain(doc: Doc, op: PatchOp, name: str) -> None:
    if op.op != "replace":
        raise invalid_op(("replace",))
    value = op.need_value()
    tokens = op.tokens
    if op.path in ("/certificateName", "/regionalCertificateName"):
        doc[op.path[1:]] = value
    elif op.path == "/securityPolicy":
        doc["securityPolicy"] = _policy(value)
    elif op.path in ("/regionalCertificateArn", "/certificateArn"):
        field = op.path[1:]
        if not value:
            # what a client sends for the field of the other endpoint type (Terraform moving a
            # domain from EDGE to REGIONAL empties certificateArn): a certificate named by that
            # field goes; the update is refused if none is left (checked after every operation)
            if doc.get(field) is not None:
                for key in _CERTIFICATE_KEYS:
                    doc.pop(key, None)
            return
        for key in _CERTIFICATE_KEYS:
            doc.pop(key, None)
        doc.update(_certificate({field: value}, name))
        doc["certificateUploadDate"] = int(time.time())
    elif op.path == "/mutualTlsAuthentication/truststoreUri":
        if not value:  # AWS: how mutual TLS is turned off
            doc.pop("mutualTlsAuthentication", None)
            doc.pop("truststoreWarnings", None)
            return
        current = dict(doc.get("mutualTlsAuthentication") or {})
        current.pop("truststorePem", None)
        current.pop("truststoreFile", None)
        current["truststoreUri"] = value
        doc["mutualTlsAuthentication"], doc["truststoreWarnings"] = _truststore(current)
    elif op.path == "/mutualTlsAuthentication/truststoreVersion":
        if not doc.get("mutualTlsAuthentication"):
            raise bad_request(
                "the domain has no mutual TLS: replace /mutualTlsAuthentication/truststoreUri first"
            )
        current = dict(doc["mutualTlsAuthentication"])
        current["truststoreVersion"] = value
        doc["mutualTlsAuthentication"], doc["truststoreWarnings"] = _truststore(current)
    elif tokens[:2] == ["endpointConfiguration", "types"] and len(tokens) == 3:
        current_type = _endpoint_type(doc)
        if tokens[2] not in ("0", current_type):
            raise bad_request(
                f"Invalid patch path {op.path}: the domain name's endpoint type is {current_type} "
                f"(replace /endpointConfiguration/types/{current_type} or /endpointConfiguration/types/0)"
            )
        doc["endpointConfiguration"] = _endpoint({"types": [value]})
    else:
        raise invalid_path(op, _DOMAIN_UPDATABLE)


async def update_domain_name(call: Call) -> Reply:
    ops = operations(call.json())

    def run() -> Doc:
        with call.store.transaction() as tx:
            doc = dict(_find(tx, call.params["domain_name"]))
            for op in ops:
                _apply_domain(doc, op, doc["domainName"])
            if "certificatePem" not in doc and "certificateFile" not in doc:
                raise bad_request(
                    "a domain name needs a certificate: give regionalCertificateArn (or certificateArn) "
                    "a file:///path URI of a PEM bundle"
                )
            _check_mtls(doc)
            if doc.get("truststoreWarnings"):
                doc["domainNameStatusMessage"] = "The truststore has warnings: see mutualTlsAuthentication"
            else:
                doc.pop("domainNameStatusMessage", None)
            tx.put(KIND, "", doc["domainName"], doc)
            return doc

    return Reply(200, _shape(await call.in_store(run)))


async def delete_domain_name(call: Call) -> Reply:
    def run() -> None:
        with call.store.transaction() as tx:
            doc = _find(tx, call.params["domain_name"])
            tx.delete(KIND, "", doc["domainName"])  # and its mappings, which it holds

    await call.in_store(run)
    return Reply(202, None)


# --- base path mappings --------------------------------------------------------------------


def domains_mapping(tx: Transaction, api_id: str, stage: str | None = None) -> list[str]:
    """The domain names with a base path mapping to the API (to that stage of it, when given):
    what AWS names when it refuses to delete them (``Please remove all base path mappings
    related to the RestApi in your domains: ...``)."""
    return [
        name
        for _, name, doc in tx.list(KIND)
        if any(
            m["restApiId"] == api_id and (stage is None or m.get("stage") == stage)
            for m in doc.get("mappings") or []
        )
    ]


def _check_target(tx: Transaction, api_id: str, stage: str) -> None:
    if tx.get("restapi", "", api_id) is None:
        raise not_found(f"Invalid REST API identifier specified: there is no API '{api_id}'")
    if stage and tx.get("stage", api_id, stage) is None:
        raise bad_request(f"Invalid stage identifier specified: API '{api_id}' has no stage '{stage}'")


def _find_mapping(doc: Doc, raw: str) -> dict[str, Any]:
    wanted = "" if raw in ("(none)", "") else raw
    for mapping in doc.get("mappings") or []:
        if mapping["basePath"] == wanted:
            return dict(mapping)
    raise not_found(f"Invalid base path mapping identifier specified: there is no base path '{raw}'")


async def create_base_path_mapping(call: Call) -> Reply:
    body = call.json()
    base = _base_path(_text(body, "basePath"))
    api_id = _text(body, "restApiId")
    if not api_id:
        raise bad_request("'restApiId' is required")
    stage = _text(body, "stage") or ""
    stage = "" if stage == "(none)" else stage
    mapping = {"basePath": base, "restApiId": api_id, "stage": stage}

    def run() -> None:
        with call.store.transaction() as tx:
            doc = dict(_find(tx, call.params["domain_name"]))
            _check_target(tx, api_id, stage)
            mappings = list(doc.get("mappings") or [])
            if any(m["basePath"] == base for m in mappings):
                raise conflict(f"Base path already exists for this domain name: {base or '(none)'}")
            mappings.append(mapping)
            doc["mappings"] = sorted(mappings, key=lambda m: str(m["basePath"]))
            tx.put(KIND, "", doc["domainName"], doc)

    await call.in_store(run)
    return Reply(201, _mapping_shape(mapping))


async def get_base_path_mapping(call: Call) -> Reply:
    def run() -> dict[str, Any]:
        with call.store.transaction() as tx:
            return _find_mapping(_find(tx, call.params["domain_name"]), call.params["base_path"])

    return Reply(200, _mapping_shape(await call.in_store(run)))


async def get_base_path_mappings(call: Call) -> Reply:
    def run() -> list[dict[str, Any]]:
        with call.store.transaction() as tx:
            return list(_find(tx, call.params["domain_name"]).get("mappings") or [])

    shapes = [_mapping_shape(m) for m in await call.in_store(run)]
    return Reply(200, page(call, shapes, key="basePath"))


async def update_base_path_mapping(call: Call) -> Reply:
    ops = operations(call.json())

    def run() -> dict[str, Any]:
        with call.store.transaction() as tx:
            doc = dict(_find(tx, call.params["domain_name"]))
            mapping = _find_mapping(doc, call.params["base_path"])
            old = mapping["basePath"]
            for op in ops:
                if op.op != "replace":
                    raise invalid_op(("replace",))
                value = op.need_value()
                if op.path == "/basePath":
                    mapping["basePath"] = _base_path(value)
                elif op.path == "/restapiId":
                    mapping["restApiId"] = value
                elif op.path == "/stage":
                    mapping["stage"] = "" if value == "(none)" else value
                else:
                    raise invalid_path(op, _MAPPING_UPDATABLE)
            _check_target(tx, mapping["restApiId"], mapping["stage"])
            others = [m for m in doc.get("mappings") or [] if m["basePath"] != old]
            if any(m["basePath"] == mapping["basePath"] for m in others):
                raise conflict(
                    f"Base path already exists for this domain name: {mapping['basePath'] or '(none)'}"
                )
            doc["mappings"] = sorted([*others, mapping], key=lambda m: str(m["basePath"]))
            tx.put(KIND, "", doc["domainName"], doc)
            return mapping

    return Reply(200, _mapping_shape(await call.in_store(run)))


async def delete_base_path_mapping(call: Call) -> Reply:
    def run() -> None:
        with call.store.transaction() as tx:
            doc = dict(_find(tx, call.params["domain_name"]))
            mapping = _find_mapping(doc, call.params["base_path"])
            doc["mappings"] = [m for m in doc.get("mappings") or [] if m["basePath"] != mapping["basePath"]]
            tx.put(KIND, "", doc["domainName"], doc)

    await call.in_store(run)
    return Reply(202, None)


ROUTES = [
    Route("POST", "/domainnames", create_domain_name),
    Route("GET", "/domainnames", get_domain_names),
    Route("GET", "/domainnames/{domain_name}", get_domain_name),
    Route("PATCH", "/domainnames/{domain_name}", update_domain_name),
    Route("DELETE", "/domainnames/{domain_name}", delete_domain_name),
    Route("POST", "/domainnames/{domain_name}/basepathmappings", create_base_path_mapping),
    Route("GET", "/domainnames/{domain_name}/basepathmappings", get_base_path_mappings),
    Route("GET", "/domainnames/{domain_name}/basepathmappings/{base_path}", get_base_path_mapping),
    Route("PATCH", "/domainnames/{domain_name}/basepathmappings/{base_path}", update_base_path_mapping),
    Route("DELETE", "/domainnames/{domain_name}/basepathmappings/{base_path}", delete_base_path_mapping),
]
