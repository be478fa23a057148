"""Reading TLS and custom domains: ``gateway.tls``, ``gateway.admin_tls`` and ``domains``
(certificates, keys, security policies, mutual TLS truststores, base path mappings;
docs/tls.md). Certificates are checked here (``iamgate.tls.certs``) and their SSL contexts made
once, so that a bad certificate is a located error at start and a refused reload later."""

from __future__ import annotations

import datetime as dt
import os
import re
import ssl
from pathlib import Path
from typing import Any, Final

from iamgate.config._reader import Reader
from iamgate.config.model import ApiConfig, BasePathMapping, DomainConfig, MutualTls, TlsSettings
from iamgate.tls.certs import CertError, ServerCertificate, covers
from iamgate.tls.contexts import DEFAULT_POLICY, SECURITY_POLICIES, cached_context

__all__ = ["check_domains", "read_domains", "read_tls"]

# a DNS name of letters, digits and hyphens, with an optional leading "*." (a wildcard domain)
_DOMAIN: Final = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
# a base path: segments of letters, digits, '-', '_', '.', joined by '/'
_BASE_PATH: Final = re.compile(r"(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*")
_SOON: Final = dt.timedelta(days=14)


def _file(r: Reader, value: object, ptr: str, what: str, watched: list[str]) -> tuple[bytes, str] | None:
    name = r.string(value, ptr, what)
    if name is None:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = r.base_dir / path
    watched.append(str(path))  # watched even when unreadable: fixing it triggers a reload
    try:
        return r.read_file(path), str(path)
    except OSError as exc:
        r.report("unreadable-file", ptr, f"cannot read {what} {path}: {exc.strerror or exc}")
        return None


def _pem(
    r: Reader, m: dict[str, Any], ptr: str, key: str, what: str, watched: list[str]
) -> tuple[bytes, str] | None:
    """``key`` (a file) or ``key_pem`` (inline text): (bytes, where it came from)."""
    inline = f"{key}_pem"
    if key in m and inline in m:
        r.report("conflicting-keys", f"{ptr}/{inline}", f"give either {key} or {inline}, not both")
        return None
    if key in m:
        return _file(r, m[key], f"{ptr}/{key}", what, watched)
    if inline in m:
        text = r.string(m[inline], f"{ptr}/{inline}", inline)
        return None if text is None else (text.encode("utf-8"), f"{inline} of {ptr or '/'}")
    return None


def _password(r: Reader, m: dict[str, Any], ptr: str) -> tuple[bytes | None, bool]:
    if "key_password_env" not in m:
        return None, True
    name = r.string(m["key_password_env"], f"{ptr}/key_password_env", "key_password_env")
    if name is None:
        return None, False
    value = os.environ.get(name)
    if value is None:
        r.report(
            "missing-env",
            f"{ptr}/key_password_env",
            f"the environment variable {name} (the key's password) is not set",
        )
        return None, False
    return value.encode("utf-8"), True


def _certificate(
    r: Reader, m: dict[str, Any], ptr: str, name: str | None, watched: list[str], required: bool
) -> tuple[ServerCertificate | None, str, bool]:
    """The certificate chain and key of ``m``: (certificate or None, source, ok)."""
    chain = _pem(r, m, ptr, "certificate", "the certificate", watched)
    key = _pem(r, m, ptr, "key", "the key", watched)
    has_cert = "certificate" in m or "certificate_pem" in m
    has_key = "key" in m or "key_pem" in m
    if not has_cert and not has_key:
        if required:
            r.report("missing-key", ptr, "a certificate is needed here: give certificate and key (PEM files)")
        return None, "", not required
    if has_cert != has_key:
        missing = "key" if has_cert else "certificate"
        r.report("missing-key", ptr, f"give both certificate and key: '{missing}' is missing")
        return None, "", False
    password, ok = _password(r, m, ptr)
    if chain is None or key is None or not ok:
        return None, "", False
    from iamgate.tls.pem import read_server_certificate  # noqa: PLC0415 - cryptography, only where a certificate is read

    cert = read_server_certificate(chain[0], key[0], password, name=name)
    if isinstance(cert, CertError):
        r.report(
            "bad-certificate",
            f"{ptr}/certificate" if "certificate" in m else ptr,
            cert.message + f" ({chain[1]})",
        )
        return None, chain[1], False
    left = cert.not_after - dt.datetime.now(dt.UTC)
    if left < _SOON:
        r.warn(
            "certificate-expires",
            f"{ptr}/certificate" if "certificate" in m else ptr,
            f"the certificate ({chain[1]}) expires in {left.days} day(s), on {cert.not_after:%Y-%m-%d}",
        )
    return cert, chain[1], True


def _policy(r: Reader, m: dict[str, Any], ptr: str) -> str:
    if "security_policy" not in m:
        return DEFAULT_POLICY
    return (
        r.string(
            m["security_policy"],
            f"{ptr}/security_policy",
            "security_policy",
            choices=tuple(SECURITY_POLICIES),
        )
        or DEFAULT_POLICY
    )


def _context_ok(r: Reader, ptr: str, cert: ServerCertificate, policy: str, mtls: MutualTls | None) -> bool:
    """Make the SSL context now (cached for serving): OpenSSL's refusal is a located error."""
    try:
        cached_context(cert, SECURITY_POLICIES[policy], mtls.truststore if mtls else None)
    except (ssl.SSLError, ValueError) as exc:
        r.report("bad-certificate", ptr, f"OpenSSL refuses this certificate, key or truststore: {exc}")
        return False
    return True


def read_tls(r: Reader, raw: object, ptr: str, watched: list[str], *, admin: bool) -> TlsSettings | None:
    """``gateway.tls`` or ``gateway.admin_tls``: None when absent (plain HTTP)."""
    if raw is None:
        return None
    what = "gateway.admin_tls" if admin else "gateway.tls"
    keys = dict.fromkeys(
        (
            "certificate",
            "certificate_pem",
            "key",
            "key_pem",
            "key_password_env",
            "security_policy",
            "handshake_timeout",
        ),
        False,
    )
    m = r.mapping(raw, ptr, what, keys)
    if m is None:
        return None
    # the data port may do without a certificate of its own when domains have theirs (checked
    # by check_domains); the admin port has no domains
    cert, source, ok = _certificate(r, m, ptr, None, watched, required=admin)
    policy = _policy(r, m, ptr)
    timeout = 10.0
    if "handshake_timeout" in m:
        n = r.number(
            m["handshake_timeout"], f"{ptr}/handshake_timeout", "handshake_timeout", low=0.1, high=300
        )
        timeout = timeout if n is None else float(n)
    if cert is not None and not _context_ok(r, ptr, cert, policy, None):
        return None
    return TlsSettings(cert, policy, timeout, source) if ok else None


def _mutual_tls(r: Reader, raw: object, ptr: str, watched: list[str]) -> MutualTls | None:
    m = r.mapping(
        raw, ptr, "mutual_tls", {"truststore": False, "truststore_pem": False, "truststore_version": False}
    )
    if m is None:
        return None
    pem = _pem(r, m, ptr, "truststore", "the truststore", watched)
    if pem is None:
        if "truststore" not in m and "truststore_pem" not in m:
            r.report("missing-key", ptr, "mutual_tls needs a truststore (a PEM file of CA certificates)")
        return None
    from iamgate.tls.pem import read_truststore  # noqa: PLC0415 - cryptography, only where a certificate is read

    store = read_truststore(pem[0])
    where = f"{ptr}/truststore" if "truststore" in m else f"{ptr}/truststore_pem"
    if isinstance(store, CertError):
        r.report("bad-truststore", where, f"{store.message} ({pem[1]})")
        return None
    for warning in store.warnings:
        r.warn("truststore-warning", where, f"truststore {pem[1]}: {warning}")
    version = None
    if "truststore_version" in m:
        version = r.string(m["truststore_version"], f"{ptr}/truststore_version", "truststore_version")
    return MutualTls(store, version, pem[1])


def _mappings(r: Reader, raw: object, ptr: str) -> list[BasePathMapping]:
    out: list[BasePathMapping] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(r.sequence(raw, ptr, "mappings") or []):
        p = f"{ptr}/{i}"
        m = r.mapping(item, p, "a base path mapping", {"base_path": False, "api": True, "stage": False})
        if m is None:
            continue
        base = "(none)"
        if "base_path" in m:
            base = r.string(m["base_path"], f"{p}/base_path", "base_path") or "(none)"
        if base in ("(none)", ""):
            base = ""
        elif not _BASE_PATH.fullmatch(base):
            r.report(
                "invalid-value",
                f"{p}/base_path",
                f"base_path '{base}' is not valid",
                "(none), or segments of letters, digits, '-', '_' and '.' joined by '/' (v1, orders/v2), "
                "with no leading or trailing '/'",
            )
            continue
        api = r.string(m["api"], f"{p}/api", "api")
        # "(none)" (or no stage): callers name the stage after the base path, as on AWS
        stage = r.string(m["stage"], f"{p}/stage", "stage") if "stage" in m else "(none)"
        if api is None or stage is None:
            continue
        if stage == "(none)":
            stage = ""
        if base in seen:
            shown = base or "(none)"
            r.report(
                "duplicate", f"{p}/base_path", f"base path '{shown}' is mapped twice (also item {seen[base]})"
            )
            continue
        seen[base] = i
        out.append(BasePathMapping(base, api, stage))
    return out


def read_domains(r: Reader, raw: object, watched: list[str]) -> list[tuple[int, DomainConfig]]:
    """``domains``: the custom domain names, each with its index in the list (for messages)."""
    if raw is None:
        return []
    out: list[tuple[int, DomainConfig]] = []
    names: dict[str, int] = {}
    keys = dict.fromkeys(
        (
            "name",
            "certificate",
            "certificate_pem",
            "key",
            "key_pem",
            "key_password_env",
            "security_policy",
            "endpoint_type",
            "mutual_tls",
            "mappings",
        ),
        False,
    )
    keys["name"] = True
    for i, item in enumerate(r.sequence(raw, "/domains", "domains") or []):
        ptr = f"/domains/{i}"
        m = r.mapping(item, ptr, "a domain", keys)
        if m is None or "name" not in m:
            continue
        name = r.string(m["name"], f"{ptr}/name", "name")
        if name is None:
            continue
        if not _DOMAIN.fullmatch(name) or len(name) > 253:
            r.report(
                "invalid-value",
                f"{ptr}/name",
                f"domain name '{name}' is not valid",
                "a lower-case DNS name such as api.example.com, or *.example.com",
            )
            continue
        if name in names:
            r.report(
                "duplicate", f"{ptr}/name", f"domain {name} is configured twice (also item {names[name]})"
            )
            continue
        names[name] = i
        cert, _, ok = _certificate(r, m, ptr, name, watched, required=False)
        policy = _policy(r, m, ptr)
        endpoint = "REGIONAL"
        if "endpoint_type" in m:
            endpoint = (
                r.string(
                    m["endpoint_type"], f"{ptr}/endpoint_type", "endpoint_type", choices=("REGIONAL", "EDGE")
                )
                or endpoint
            )
        mtls = None
        if m.get("mutual_tls") is not None:
            mtls = _mutual_tls(r, m["mutual_tls"], f"{ptr}/mutual_tls", watched)
            if mtls is None:
                ok = False
            elif policy != "TLS_1_2":
                r.report(
                    "invalid-value",
                    f"{ptr}/security_policy",
                    f"mutual TLS needs the security policy TLS_1_2, not {policy}",
                    "as API Gateway: mutual TLS is offered with TLS_1_2 only",
                )
                ok = False
        mappings = _mappings(r, m["mappings"], f"{ptr}/mappings") if "mappings" in m else []
        if cert is not None and not _context_ok(r, ptr, cert, policy, mtls):
            ok = False
        if ok:
            out.append((i, DomainConfig(name, cert, policy, endpoint, mtls, tuple(mappings))))
    return out


def check_domains(
    r: Reader, domains: list[tuple[int, DomainConfig]], apis: list[ApiConfig], tls: TlsSettings | None
) -> None:
    """What ties domains to the rest: each mapping names a configured API stage; on a TLS data
    port each domain has a certificate (its own, or the gateway's covering its name); on plain
    HTTP, certificates go unused and mutual TLS refuses every request (warnings)."""
    stages = {(api.id, stage) for api in apis for stage in api.stages}
    ids = {api.id for api in apis}
    for i, domain in domains:
        ptr = f"/domains/{i}"
        for j, mapping in enumerate(domain.mappings):
            # a warning, not an error: a store's mapping may outlive its stage (AWS answers 403
            # Forbidden then, as the gateway does), and one bad mapping must not stop the rest
            base = mapping.base_path or "(none)"
            if mapping.api not in ids:
                r.warn(
                    "unserved-mapping",
                    f"{ptr}/mappings/{j}/api",
                    f"API '{mapping.api}' is not configured: requests for base path {base} of "
                    f"{domain.name} are answered 403",
                )
            elif mapping.stage and (mapping.api, mapping.stage) not in stages:
                r.warn(
                    "unserved-mapping",
                    f"{ptr}/mappings/{j}/stage",
                    f"API '{mapping.api}' has no stage '{mapping.stage}': requests for base path {base} "
                    f"of {domain.name} are answered 403",
                )
        if tls is None:
            if domain.mutual_tls is not None:
                r.warn(
                    "plain-http-mtls",
                    f"{ptr}/mutual_tls",
                    f"domain {domain.name} requires mutual TLS but the data port speaks plain HTTP "
                    "(no gateway.tls): its requests are refused with 403",
                )
            continue
        if domain.certificate is None:
            default = tls.certificate
            if default is None or not covers(default.names, domain.name):
                r.report(
                    "missing-key",
                    ptr,
                    f"domain {domain.name} has no certificate, and gateway.tls has none that covers it",
                    "give the domain certificate and key",
                )
    if tls is not None and tls.certificate is None and not any(d.certificate for _, d in domains):
        r.report(
            "missing-key",
            "/gateway/tls",
            "gateway.tls has no certificate and no domain has one: nothing could answer a TLS handshake",
            "give gateway.tls a certificate and key",
        )
