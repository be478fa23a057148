"""Configuration of who may call: identities, access keys, authorizers, API keys.

The ``identities`` section (top level) describes the AWS side iamgate pretends to be: accounts,
IAM users and roles with tags and identity policies, access keys, and role sessions (temporary
credentials). Secrets are given inline, or better from the environment (``secret_env``) or a
file (``secret_file``). ``api_keys`` (top level) lists API keys. Each API may declare
``authorizers`` (Lambda-style TOKEN/REQUEST, or COGNITO_USER_POOLS/JWT) that its routes name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iamgate.auth.custom import parse_identity_sources
from iamgate.auth.identities import Account, ConsoleUser, Identity, IdentityStore, Principal, unique_id
from iamgate.auth.sigv4 import Credential
from iamgate.config._reader import Reader
from iamgate.policy import ApiRef, CompiledPolicy, PolicyKind, prepare
from iamgate.policy.diagnostics import Diagnostic, pointer_join
from iamgate.policy.values import read_date

__all__ = [
    "ApiKey",
    "AuthSettings",
    "AuthorizerConfig",
    "read_api_keys",
    "read_authorizers",
    "read_identities",
]

_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):(user|role)/(?:[\w+=,.@/-]*/)?([\w+=,.@-]{1,64})"
)
_ACCOUNT = re.compile(r"[0-9]{12}")
_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
_CONSOLE_USER = re.compile(r"(?=.*[a-z.@_+-])[A-Za-z0-9.@_+-]{1,64}")
_API_KEY = re.compile(r"[A-Za-z0-9_-]{20,128}")
_ORG = re.compile(r"o-[a-z0-9]{10,32}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    value: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    name: str
    type: str  # TOKEN | REQUEST | COGNITO_USER_POOLS | JWT
    identity_source: str
    ttl: int
    validation: str | None = None
    url: str | None = None
    function: str | None = None
    timeout: float = 10.0
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    token_use: str | None = None
    leeway: float = 60.0


@dataclass(frozen=True, slots=True)
class AuthSettings:
    store: IdentityStore = field(default_factory=IdentityStore)
    api_keys: tuple[ApiKey, ...] = ()


def _secret(
    r: Reader, m: dict[str, Any], ptr: str, what: str, base_dir: Path, *, required: bool = True
) -> str | None:
    """``NAME``, ``NAME_env`` or ``NAME_file``: exactly one."""
    given = [k for k in (what, f"{what}_env", f"{what}_file") if k in m]
    if len(given) > 1:
        r.report("conflicting-keys", f"{ptr}/{given[1]}", f"give only one of {', '.join(given)}")
        return None
    if not given:
        if required:
            r.report(
                "missing-key",
                ptr,
                f"needs '{what}', '{what}_env' or '{what}_file'",
                f"prefer {what}_env or {what}_file to keep secrets out of the configuration file",
            )
        return None
    key = given[0]
    text = r.string(m[key], f"{ptr}/{key}", key)
    if text is None:
        return None
    if key.endswith("_env"):
        value = os.environ.get(text)
        if value is None:
            r.report("missing-secret", f"{ptr}/{key}", f"environment variable {text} is not set")
        return value
    if key.endswith("_file"):
        path = Path(text) if Path(text).is_absolute() else base_dir / text
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            r.report("missing-secret", f"{ptr}/{key}", f"cannot read {path}: {exc}")
            return None
    return text


def _tags(r: Reader, raw: object, ptr: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        r.report("wrong-type", ptr, "tags must be a mapping of key: value")
        return {}
    out = {}
    for key, value in raw.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            r.report("wrong-type", pointer_join(ptr, key), f"tag {key} must be a string")
        else:
            out[str(key)] = str(value)
    return out


def _policies(
    r: Reader, raw: object, ptr: str, base_dir: Path, max_chars: int | None
) -> tuple[CompiledPolicy, ...]:
    if raw is None:
        return ()
    items = r.sequence(raw, ptr, "policies") or []
    out = []
    for i, item in enumerate(items):
        p = f"{ptr}/{i}"
        source: Any = item
        name = None
        if isinstance(item, dict) and set(item) == {"policy_file"}:
            name = r.string(item["policy_file"], f"{p}/policy_file", "policy_file")
            if name is None:
                continue
            path = Path(name) if Path(name).is_absolute() else base_dir / name
            try:
                source = path.read_bytes()
            except OSError as exc:
                r.report("policy-file", f"{p}/policy_file", f"cannot read {path}: {exc.strerror or exc}")
                continue
        prepared = prepare(source, kind=PolicyKind.IDENTITY, max_chars=max_chars, source_name=name)
        for d in prepared.diagnostics:
            r.diags.append(
                d
                if name
                else Diagnostic(
                    d.code,
                    d.severity,
                    d.message,
                    r.positions.location(p + d.location.pointer),
                    d.help,
                    r.source,
                )
            )
        if prepared.policy is not None:
            out.append(prepared.policy)
    return tuple(out)


def read_identities(r: Reader, raw: object, base_dir: Path, max_chars: int | None) -> IdentityStore:
    """The ``identities`` section."""
    store = IdentityStore()
    if raw is None:
        return store
    ptr = "/identities"
    m = r.mapping(
        raw,
        ptr,
        "identities",
        {
            "accounts": False,
            "users": False,
            "roles": False,
            "access_keys": False,
            "sessions": False,
            "console_users": False,
        },
    )
    if m is None:
        return store
    for i, item in enumerate(r.sequence(m.get("accounts", []), f"{ptr}/accounts", "accounts") or []):
        p = f"{ptr}/accounts/{i}"
        am = r.mapping(
            item, p, "an account", {"id": True, "organization_id": False, "organization_paths": False}
        )
        if am is None or "id" not in am:
            continue
        account = r.string(
            am["id"], f"{p}/id", "account id", pattern=_ACCOUNT, help='12 digits, quoted: "111122223333"'
        )
        org = (
            r.string(
                am["organization_id"],
                f"{p}/organization_id",
                "organization_id",
                pattern=_ORG,
                help="for example o-a1b2c3d4e5",
            )
            if "organization_id" in am
            else None
        )
        paths: list[str] = []
        for j, path in enumerate(
            r.sequence(am.get("organization_paths", []), f"{p}/organization_paths", "organization_paths")
            or []
        ):
            text = r.string(path, f"{p}/organization_paths/{j}", "an organization path")
            if text is not None:
                paths.append(text)
        if account is not None:
            store.accounts[account] = Account(account, org, tuple(paths))
    principals: dict[str, Principal] = {}
    for kind in ("users", "roles"):
        for i, item in enumerate(r.sequence(m.get(kind, []), f"{ptr}/{kind}", kind) or []):
            p = f"{ptr}/{kind}/{i}"
            pm = r.mapping(
                item, p, f"a {kind[:-1]}", {"arn": True, "id": False, "tags": False, "policies": False}
            )
            if pm is None or "arn" not in pm:
                continue
            arn = r.string(pm["arn"], f"{p}/arn", "arn")
            match = _ARN.fullmatch(arn or "")
            if arn is None or match is None or match.group(3) != kind[:-1]:
                r.report(
                    "invalid-value",
                    f"{p}/arn",
                    f"'{arn}' is not an IAM {kind[:-1]} ARN",
                    f"for example arn:aws:iam::111122223333:{kind[:-1]}/name",
                )
                continue
            if arn in principals:
                r.report("duplicate-id", f"{p}/arn", f"{arn} is defined twice")
                continue
            uid = r.string(pm["id"], f"{p}/id", "id") if "id" in pm else None
            principals[arn] = Principal(
                arn,
                kind[:-1],
                match.group(2),
                match.group(4),
                uid or unique_id("AIDA" if kind == "users" else "AROA", arn),
                _tags(r, pm.get("tags"), f"{p}/tags"),
                _policies(r, pm.get("policies"), f"{p}/policies", base_dir, max_chars),
            )
    for i, item in enumerate(r.sequence(m.get("access_keys", []), f"{ptr}/access_keys", "access_keys") or []):
        p = f"{ptr}/access_keys/{i}"
        km = r.mapping(
            item,
            p,
            "an access key",
            {
                "id": True,
                "secret": False,
                "secret_env": False,
                "secret_file": False,
                "owner": True,
                "enabled": False,
            },
        )
        if km is None or "id" not in km or "owner" not in km:
            continue
        key_id = r.string(
            km["id"],
            f"{p}/id",
            "access key id",
            pattern=_KEY_ID,
            help="upper-case letters and digits, e.g. AKIAIOSFODNN7EXAMPLE",
        )
        secret = _secret(r, km, p, "secret", base_dir)
        owner = r.string(km["owner"], f"{p}/owner", "owner")
        enabled = r.boolean(km["enabled"], f"{p}/enabled", "enabled") if "enabled" in km else True
        principal = _owner(r, store, principals, owner, f"{p}/owner")
        if key_id is None or secret is None or principal is None:
            continue
        if principal.kind == "role":
            r.report(
                "invalid-value",
                f"{p}/owner",
                "a role has no long-term access keys",
                "describe its temporary credentials under identities.sessions",
            )
            continue
        identity = Identity(principal, principal.arn, account=store.accounts.get(principal.account))
        _add(r, store, Credential(key_id, secret, None, None, identity), enabled is not False, f"{p}/id")
    for i, item in enumerate(r.sequence(m.get("sessions", []), f"{ptr}/sessions", "sessions") or []):
        p = f"{ptr}/sessions/{i}"
        sm = r.mapping(
            item,
            p,
            "a role session",
            {
                "access_key_id": True,
                "secret": False,
                "secret_env": False,
                "secret_file": False,
                "session_token": False,
                "session_token_env": False,
                "session_token_file": False,
                "role": True,
                "session_name": True,
                "expires": False,
                "issued": False,
                "mfa": False,
                "tags": False,
            },
        )
        if sm is None or not {"access_key_id", "role", "session_name"} <= set(sm):
            continue
        key_id = r.string(
            sm["access_key_id"],
            f"{p}/access_key_id",
            "access_key_id",
            pattern=_KEY_ID,
            help="upper-case letters and digits, e.g. ASIAIOSFODNN7EXAMPLE",
        )
        secret = _secret(r, sm, p, "secret", base_dir)
        token = _secret(r, sm, p, "session_token", base_dir)
        role = principals.get(str(sm["role"]))
        if role is None or role.kind != "role":
            r.report(
                "invalid-value", f"{p}/role", f"role '{sm['role']}' is not defined under identities.roles"
            )
            continue
        name = r.string(
            sm["session_name"],
            f"{p}/session_name",
            "session_name",
            pattern=re.compile(r"[\w+=,.@-]{2,64}"),
            help="2 to 64 of letters, digits and +=,.@-_",
        )
        expires = _time(r, sm, "expires", p)
        issued = _time(r, sm, "issued", p)
        mfa = r.boolean(sm["mfa"], f"{p}/mfa", "mfa") if "mfa" in sm else False
        if key_id is None or secret is None or token is None or name is None:
            continue
        partition = role.arn.split(":", 2)[1]
        identity = Identity(
            role,
            f"arn:{partition}:sts::{role.account}:assumed-role/{role.name}/{name}",
            name,
            _tags(r, sm.get("tags"), f"{p}/tags"),
            issued if issued is not None else 0.0,
            (issued or 0.0) if mfa else None,
            store.accounts.get(role.account),
        )
        _add(r, store, Credential(key_id, secret, token, expires, identity), True, f"{p}/access_key_id")
    users = r.sequence(m.get("console_users", []), f"{ptr}/console_users", "console_users") or []
    for i, item in enumerate(users):
        _console_user(r, store, principals, item, f"{ptr}/console_users/{i}", base_dir)
    return store


def _console_user(
    r: Reader, store: IdentityStore, principals: dict[str, Principal], item: object, p: str, base_dir: Path
) -> None:
    """One entry of ``identities.console_users``: a name, an argon2 password hash, the user (or
    account root) it acts as (docs/console.md)."""
    um = r.mapping(
        item,
        p,
        "a console user",
        {
            "name": True,
            "password_hash": False,
            "password_hash_env": False,
            "password_hash_file": False,
            "owner": True,
            "enabled": False,
        },
    )
    if um is None or "name" not in um or "owner" not in um:
        return
    name = r.string(
        um["name"],
        f"{p}/name",
        "name",
        pattern=_CONSOLE_USER,
        help="1 to 64 of letters, digits and .@_+-, with at least one lower-case letter or symbol "
        "(so that it cannot be read as an access key id)",
    )
    hashed = _secret(r, um, p, "password_hash", base_dir)
    owner = _owner(r, store, principals, r.string(um["owner"], f"{p}/owner", "owner"), f"{p}/owner")
    enabled = r.boolean(um["enabled"], f"{p}/enabled", "enabled") if "enabled" in um else True
    if hashed is not None and not _is_argon2(hashed):
        r.report(
            "invalid-value",
            f"{p}/{next(k for k in um if k.startswith('password_hash'))}",
            "the password hash is not an argon2 hash",
            "an argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash), made with "
            "iamgate console hash-password",
        )
        return
    if name is None or hashed is None or owner is None:
        return
    if owner.kind == "role":
        r.report(
            "invalid-value", f"{p}/owner", "a console user acts as a user or an account root, not a role"
        )
        return
    if store.has_console_user(name):
        r.report("duplicate-id", f"{p}/name", f"console user {name} is defined twice")
        return
    identity = Identity(owner, owner.arn, account=store.accounts.get(owner.account))
    store.add_console_user(ConsoleUser(name, hashed, identity, enabled is not False))


def _is_argon2(text: str) -> bool:
    import argon2  # noqa: PLC0415 - only for console users: most gateways never load it

    try:
        argon2.extract_parameters(text)
    except (argon2.exceptions.InvalidHashError, ValueError):
        return False
    return text.startswith(("$argon2id$", "$argon2i$", "$argon2d$"))


def _time(r: Reader, m: dict[str, Any], key: str, ptr: str) -> float | None:
    if key not in m:
        return None
    text = str(m[key]) if not isinstance(m[key], str) else m[key]
    micros = read_date(text)
    if micros is None:
        r.report(
            "invalid-value",
            f"{ptr}/{key}",
            f"{key} '{text}' is not a date",
            "ISO 8601, e.g. 2026-12-31T23:59:59Z",
        )
        return None
    return micros / 1_000_000


def _owner(
    r: Reader, store: IdentityStore, principals: dict[str, Principal], owner: str | None, ptr: str
) -> Principal | None:
    if owner is None:
        return None
    if owner in principals:
        return principals[owner]
    root = re.fullmatch(r"arn:(?:aws|aws-cn|aws-us-gov):iam::([0-9]{12}):root|([0-9]{12})", owner)
    if root:
        account = root.group(1) or root.group(2)
        return Principal(f"arn:aws:iam::{account}:root", "root", account, "root", account)
    r.report(
        "invalid-value",
        ptr,
        f"owner '{owner}' is not a user defined under identities.users nor an account root",
        "give the user's ARN, or arn:aws:iam::ACCOUNT:root",
    )
    return None


def _add(r: Reader, store: IdentityStore, credential: Credential, enabled: bool, ptr: str) -> None:
    if store.lookup(credential.access_key_id) is not None:
        r.report("duplicate-id", ptr, f"access key {credential.access_key_id} is defined twice")
        return
    store.add(credential, enabled=enabled)


def read_api_keys(r: Reader, raw: object, base_dir: Path) -> tuple[ApiKey, ...]:
    """The ``api_keys`` section."""
    if raw is None:
        return ()
    out: list[ApiKey] = []
    values: set[str] = set()
    for i, item in enumerate(r.sequence(raw, "/api_keys", "api_keys") or []):
        p = f"/api_keys/{i}"
        m = r.mapping(
            item,
            p,
            "an API key",
            {
                "id": True,
                "name": False,
                "value": False,
                "value_env": False,
                "value_file": False,
                "enabled": False,
            },
        )
        if m is None or "id" not in m:
            continue
        key_id = r.string(m["id"], f"{p}/id", "id")
        value = _secret(r, m, p, "value", base_dir)
        enabled = r.boolean(m["enabled"], f"{p}/enabled", "enabled") if "enabled" in m else True
        if value is not None and not _API_KEY.fullmatch(value):
            r.report("invalid-value", p, "an API key value is 20 to 128 letters, digits, '-' or '_'")
            continue
        if key_id is None or value is None:
            continue
        if value in values:
            r.report("duplicate-id", p, "two API keys have the same value")
            continue
        values.add(value)
        name = str(m.get("name") or key_id)
        out.append(ApiKey(key_id, name, value, enabled is not False))
    return tuple(out)


AUTHORIZER_TYPES = ("TOKEN", "REQUEST", "COGNITO_USER_POOLS", "JWT")


_TOKEN_SOURCE = re.compile(r"method\.request\.header\.[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _authorizer_target(
    r: Reader, p: str, kind: str, source: str | None, url: str | None, function: str | None
) -> bool:
    """What validation can know about a Lambda-style authorizer before it is built: the URL's
    shape, ``module:function``, and a REQUEST authorizer's identity sources."""
    ok = True
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            r.report(
                "invalid-value",
                f"{p}/url",
                f"'{url}' is not an http(s) URL",
                "the endpoint that receives the event by POST, e.g. http://127.0.0.1:9001/",
            )
            ok = False
    if function is not None and not _FUNCTION.fullmatch(function):
        r.report(
            "invalid-value",
            f"{p}/function",
            f"'{function}' is not module:function",
            "for example my_package.authorizers:handler (the module must be importable by iamgate)",
        )
        ok = False
    if kind == "REQUEST" and source is not None:
        try:
            parse_identity_sources(source)
        except ValueError as exc:
            r.report("invalid-value", f"{p}/identity_source", str(exc))
            ok = False
    return ok


def read_authorizers(r: Reader, raw: object, ptr: str, api: ApiRef) -> dict[str, AuthorizerConfig]:
    """An API's ``authorizers`` list."""
    out: dict[str, AuthorizerConfig] = {}
    if raw is None:
        return out
    for i, item in enumerate(r.sequence(raw, ptr, "authorizers") or []):
        p = f"{ptr}/{i}"
        m = r.mapping(
            item,
            p,
            "an authorizer",
            {
                "name": True,
                "type": True,
                "identity_source": False,
                "identity_validation_expression": False,
                "result_ttl": False,
                "url": False,
                "function": False,
                "timeout": False,
                "issuer": False,
                "audiences": False,
                "jwks_url": False,
                "jwks_file": False,
                "algorithms": False,
                "token_use": False,
                "leeway": False,
            },
        )
        if m is None or "name" not in m or "type" not in m:
            continue
        name = r.string(
            m["name"],
            f"{p}/name",
            "name",
            pattern=re.compile(r"[A-Za-z0-9_-]{1,128}"),
            help="letters, digits, '-' and '_'",
        )
        kind = r.string(m["type"], f"{p}/type", "authorizer type", choices=AUTHORIZER_TYPES)
        if name is None or kind is None:
            continue
        if name in out:
            r.report("duplicate-id", f"{p}/name", f"authorizer '{name}' is defined twice")
            continue
        default_source = "method.request.header.Authorization"
        source = r.string(m.get("identity_source", default_source), f"{p}/identity_source", "identity_source")
        ttl = 300
        if "result_ttl" in m:
            n = r.number(m["result_ttl"], f"{p}/result_ttl", "result_ttl", low=0, high=3600, integer=True)
            ttl = int(n) if n is not None else ttl
        validation = None
        if "identity_validation_expression" in m:
            validation = r.string(
                m["identity_validation_expression"],
                f"{p}/identity_validation_expression",
                "identity_validation_expression",
            )
            if validation is not None:
                try:
                    re.compile(validation)
                except re.error as exc:
                    r.report(
                        "invalid-value",
                        f"{p}/identity_validation_expression",
                        f"not a valid regular expression: {exc}",
                    )
        timeout = 10.0
        if "timeout" in m:
            timeout = r.number(m["timeout"], f"{p}/timeout", "timeout", low=0.05, high=30) or timeout
        if kind in ("TOKEN", "REQUEST"):
            given = [k for k in ("url", "function") if k in m]
            if len(given) != 1:
                r.report(
                    "missing-key" if not given else "conflicting-keys",
                    p,
                    f"a {kind} authorizer needs exactly one of url (HTTP) or function (module:function)",
                )
                continue
            for key in ("issuer", "audiences", "jwks_url", "jwks_file", "algorithms", "token_use", "leeway"):
                if key in m:
                    r.report(
                        "unknown-key", f"{p}/{key}", f"{key} belongs to COGNITO_USER_POOLS/JWT authorizers"
                    )
            url = r.string(m["url"], f"{p}/url", "url") if "url" in m else None
            function = r.string(m["function"], f"{p}/function", "function") if "function" in m else None
            if kind == "TOKEN" and source is not None and not _TOKEN_SOURCE.fullmatch(source.strip()):
                r.report(
                    "invalid-value",
                    f"{p}/identity_source",
                    "a TOKEN authorizer's identity source is one header: method.request.header.NAME",
                )
                continue
            if not _authorizer_target(r, p, kind, source, url, function):
                continue
            out[name] = AuthorizerConfig(
                name, kind, source or default_source, ttl, validation, url, function, timeout
            )
            continue
        for key in ("url", "function"):
            if key in m:
                r.report("unknown-key", f"{p}/{key}", f"{key} belongs to TOKEN/REQUEST authorizers")
        if source is not None and not _TOKEN_SOURCE.fullmatch(source.strip()):
            r.report(
                "invalid-value",
                f"{p}/identity_source",
                f"a {kind} authorizer reads the token from one header: method.request.header.NAME",
            )
            continue
        issuer = r.string(m.get("issuer"), f"{p}/issuer", "issuer") if "issuer" in m else None
        if issuer is None:
            r.report(
                "missing-key",
                p,
                f"a {kind} authorizer needs 'issuer'",
                "for Cognito: https://cognito-idp.REGION.amazonaws.com/POOL_ID",
            )
            continue
        audiences = tuple(
            str(a) for a in (r.sequence(m.get("audiences", []), f"{p}/audiences", "audiences") or [])
        )
        jwks_url = r.string(m["jwks_url"], f"{p}/jwks_url", "jwks_url") if "jwks_url" in m else None
        jwks_file = r.string(m["jwks_file"], f"{p}/jwks_file", "jwks_file") if "jwks_file" in m else None
        if jwks_file and not Path(jwks_file).is_absolute():
            jwks_file = str(r.base_dir / jwks_file)  # relative: to the configuration file, as policy_file
        if jwks_url is None and jwks_file is None:
            jwks_url = issuer.rstrip("/") + "/.well-known/jwks.json"
        algorithms = tuple(
            str(a)
            for a in (
                r.sequence(m.get("algorithms", ["RS256"]), f"{p}/algorithms", "algorithms") or ["RS256"]
            )
        )
        bad = [a for a in algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            r.report(
                "invalid-value",
                f"{p}/algorithms",
                f"algorithm(s) {', '.join(bad)} are not allowed",
                "JWT authorizers accept asymmetric algorithms only: RS256, RS384, RS512, PS256, ES256, ...",
            )
            continue
        token_use = (
            r.string(m["token_use"], f"{p}/token_use", "token_use", choices=("id", "access"))
            if "token_use" in m
            else None
        )
        leeway = r.number(m["leeway"], f"{p}/leeway", "leeway", low=0, high=600) if "leeway" in m else 60.0
        out[name] = AuthorizerConfig(
            name,
            kind,
            source or default_source,
            ttl,
            None,
            None,
            None,
            timeout,
            issuer,
            audiences,
            jwks_url,
            jwks_file,
            algorithms,
            token_use,
            60.0 if leeway is None else leeway,
        )
    _ = api
    return out
