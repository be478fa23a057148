"""JWT validation for ``COGNITO_USER_POOLS`` (REST) and ``JWT`` (HTTP API) authorizers.

PyJWT does the JOSE work (parsing, base64url, signature verification with the key the JWKS
cache picked); this module adds what API Gateway checks on top, with an injectable clock:

1. the token: at most 16 KiB, three base64url parts, a JSON header whose ``alg`` is on the
   allow-list (``none`` and HS* can never be: :class:`JwtAuthorizerSettings` refuses them) and
   whose ``kid`` names a key of the right type (:mod:`iamgate.auth.jwks`);
2. the signature, before any claim is looked at (an expired token with a bad signature is
   ``Unauthorized``, not "expired");
3. ``exp`` (required; expired -> ``The incoming token has expired``), ``nbf`` and ``iat`` (when
   present, not in the future), all with ``leeway``; ``iss`` exactly; ``aud`` (string or list)
   or ``client_id`` among ``audiences``; ``token_use`` when configured;
4. scopes: with ``required_scopes``, at least one must be in ``scope`` (space-separated) or
   ``scp`` (list or space-separated string).

Every refusal is a :class:`JwtError` (message for the client, reason for the logs); no input
makes :meth:`JwtValidator.validate` raise anything else.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from iamgate.auth.jwks import EXPIRED, SUPPORTED_ALGORITHMS, UNAUTHORIZED, JwksCache, JwtError

if TYPE_CHECKING:
    from jwt.types import Options

__all__ = [
    "EXPIRED",
    "MAX_TOKEN_BYTES",
    "SUPPORTED_ALGORITHMS",
    "UNAUTHORIZED",
    "JwksCache",
    "JwtAuthorizerSettings",
    "JwtClaims",
    "JwtError",
    "JwtValidator",
    "extract_bearer",
]

MAX_TOKEN_BYTES = 16 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]*=*")
_TOKEN_USES = ("id", "access")
# REST claims: exp and iat arrive as Java's Date.toString() in UTC (observed on AWS); fixed English
# names, so the output does not depend on the process locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_CLAIMS = ("exp", "iat")
# PyJWT checks the signature only; the claim rules below use the validator's clock.
_DECODE_OPTIONS: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    "enforce_minimum_key_length": True,
}
_MALFORMED = "the token is malformed"
_NOT_YET = "the token is not valid yet"


def _no(reason: str, description: str = "the token is not valid") -> JwtError:
    """A refusal with the client message ``Unauthorized``."""
    return JwtError(UNAUTHORIZED, reason, description=description)


def _show(value: object, limit: int = 80) -> str:
    """``repr`` for log reasons: control characters escaped, length bounded."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_tuple(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise ValueError(f"{name} must be a tuple of strings, not {type(value).__name__}")
    if not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{name} must contain non-empty strings only")
    return tuple(value)


def _finite(value: object) -> float | None:
    """``value`` as a finite float, ``None`` if it is not a number (booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return number if math.isfinite(number) else None


def _check_number(value: float, name: str, *, positive: bool = False) -> None:
    if _finite(value) is None:
        raise ValueError(f"{name} must be a finite number")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'zero or more'}, not {value}")


@dataclass(frozen=True, slots=True)
class JwtAuthorizerSettings:
    """One authorizer's rules. Refuses bad values at construction (``ValueError``)."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str | None
    jwks_file: str | None
    algorithms: tuple[str, ...] = ("RS256",)
    leeway: float = 60.0
    token_use: str | None = None
    cache_ttl: float = 300.0
    fetch_timeout: float = 1.5
    min_refresh_interval: float = 10.0
    max_keys: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ValueError("issuer must be a non-empty string (the exact `iss` of the tokens)")
        object.__setattr__(self, "audiences", _as_tuple(self.audiences, "audiences"))
        object.__setattr__(self, "algorithms", _as_tuple(self.algorithms, "algorithms"))
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("exactly one of jwks_url and jwks_file must be set")
        if self.jwks_url is not None:
            parts = urllib.parse.urlsplit(self.jwks_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"jwks_url must be an http(s) URL with a host, not {self.jwks_url!r}")
        if self.jwks_file is not None and not self.jwks_file:
            raise ValueError("jwks_file must be a non-empty path")
        if not self.algorithms:
            raise ValueError("algorithms must name at least one algorithm")
        for alg in self.algorithms:
            if alg.lower() == "none":
                raise ValueError("algorithm 'none' is never allowed: it would accept unsigned tokens")
            if alg.upper().startswith("HS"):
                raise ValueError(
                    f"algorithm {alg!r} is not allowed: HMAC algorithms use a shared secret, and a key "
                    "published in a JWKS is public, so anyone could sign tokens (the HS/RS confusion "
                    "attack); use RS*, PS*, ES* or EdDSA"
                )
            if alg not in SUPPORTED_ALGORITHMS:
                supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
                raise ValueError(f"unsupported algorithm {alg!r}; supported: {supported}")
        if self.token_use is not None and self.token_use not in _TOKEN_USES:
            raise ValueError(f"token_use must be 'id', 'access' or None, not {self.token_use!r}")
        _check_number(self.leeway, "leeway")
        _check_number(self.cache_ttl, "cache_ttl")
        _check_number(self.fetch_timeout, "fetch_timeout", positive=True)
        _check_number(self.min_refresh_interval, "min_refresh_interval")
        if isinstance(self.max_keys, bool) or not isinstance(self.max_keys, int) or self.max_keys < 1:
            raise ValueError(f"max_keys must be a positive integer, not {self.max_keys!r}")


def _java_date(seconds: float) -> str:
    t = time.gmtime(seconds)
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC {t.tm_year}"
    )


def _scalar_string(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)  # true/false/null, numbers as JSON writes them
    return None


def _flatten(name: str, value: object) -> str:
    if name in _DATE_CLAIMS and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _java_date(value)
        except (OverflowError, OSError, ValueError):
            pass  # out of gmtime's range: the number itself
    scalar = _scalar_string(value)
    if scalar is not None:
        return scalar
    if isinstance(value, list):
        items = [_scalar_string(item) for item in value]
        if all(item is not None for item in items):
            return ",".join(item for item in items if item is not None)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class JwtClaims:
    """A validated token's claims (as decoded) and its scopes."""

    claims: dict[str, object]
    scopes: tuple[str, ...]

    def as_strings(self) -> dict[str, str]:
        """The claims as REST API Gateway hands them to integrations and logs
        (``$context.authorizer.claims.<name>``, Lambda ``requestContext.authorizer.claims``):
        every value a string. Strings as they are; numbers and ``true``/``false``/``null`` as
        JSON writes them; ``exp`` and ``iat`` as Java dates (``Thu Nov 15 23:43:34 UTC 2018``),
        as observed on AWS; a list of scalars joined with commas (``cognito:groups`` ->
        ``"admin,users"``, as observed); anything else (objects, nested lists) as compact JSON
        [INF: AWS's rendering of those is not documented]."""
        return {name: _flatten(name, value) for name, value in self.claims.items()}


def extract_bearer(header_value: str | None) -> str | None:
    """The token in an ``Authorization`` value: ``Bearer <token>`` (scheme case-insensitive) or a
    bare token, surrounding whitespace ignored. ``None`` when there is no token: absent, empty,
    or anything with inner whitespace left after the optional scheme (``Basic abc``)."""
    if header_value is None:
        return None
    value = header_value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value or any(ch.isspace() for ch in value):
        return None
    return value


def _number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None and name not in payload:
        return None
    number = _finite(value)
    if number is None:
        raise _no(f"claim {name} is not a number: {_show(value)}")
    return number


def _scopes(payload: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for name in ("scope", "scp"):
        value = payload.get(name)
        items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
        found.extend(item for item in items if isinstance(item, str) and item and item not in found)
    return tuple(found)


class JwtValidator:
    """Validates tokens for one authorizer. ``clock`` gives the time (epoch seconds) for
    ``exp``/``nbf``/``iat``; ``jwks`` lets authorizers with the same source share a cache."""

    __slots__ = ("_clock", "_jwks", "_jwt", "settings")

    def __init__(
        self,
        settings: JwtAuthorizerSettings,
        *,
        clock: Callable[[], float] = time.time,
        jwks: JwksCache | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._jwks = jwks if jwks is not None else JwksCache(settings)
        # imported here, not at the top: a process without a JWT authorizer never loads PyJWT and
        # the cryptography behind it (about 10 MB of RSS in every worker)
        import jwt as pyjwt  # noqa: PLC0415

        self._jwt = pyjwt.PyJWT(options=_DECODE_OPTIONS)

    @property
    def jwks(self) -> JwksCache:
        return self._jwks

    async def validate(self, token: str, *, required_scopes: tuple[str, ...] = ()) -> JwtClaims:
        """The token's claims if it passes every rule; raises :class:`JwtError` otherwise."""
        header = self._header(token)
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise _no("token header has no alg", _MALFORMED)
        if alg.lower() == "none":
            raise _no("alg none is refused", "the token is not signed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _no(f"kid is not a string: {_show(kid)}", _MALFORMED)
        key = await self._jwks.key_for(kid, alg)  # refuses algorithms outside the allow-list too
        import jwt as pyjwt  # noqa: PLC0415 - loaded by __init__: a lookup in sys.modules

        try:
            payload: dict[str, Any] = self._jwt.decode(token, key, algorithms=[alg])
        except pyjwt.InvalidSignatureError:
            raise _no("signature verification failed", "the token signature is invalid") from None
        except pyjwt.PyJWTError as exc:
            raise _no(f"token rejected: {type(exc).__name__}: {exc}", _MALFORMED) from None
        except Exception as exc:  # fail closed on anything else PyJWT or a key backend may raise
            raise _no(f"token could not be verified: {type(exc).__name__}") from None
        return self._check_claims(payload, required_scopes)

    def _header(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str):
            raise _no("token is not a string", _MALFORMED)
        if len(token) > MAX_TOKEN_BYTES:
            raise _no(f"token larger than {MAX_TOKEN_BYTES} bytes", _MALFORMED)
        if not _TOKEN.fullmatch(token):
            raise _no("token is not three base64url parts", _MALFORMED)
        import jwt as pyjwt  # noqa: PLC0415 - loaded by __init__: a lookup in sys.modules

        try:
            header = pyjwt.get_unverified_header(token)
        except Exception as exc:  # PyJWTError for every malformation known; fail closed on the rest
            raise _no(f"token header unreadable: {type(exc).__name__}: {exc}", _MALFORMED) from None
        return header

    def _check_claims(self, payload: dict[str, Any], required_scopes: tuple[str, ...]) -> JwtClaims:
        settings = self.settings
        now = self._clock()
        leeway = settings.leeway
        exp = _number(payload, "exp")
        if exp is None:
            raise _no("token has no exp claim", "the token has no expiry")
        if exp <= now - leeway:
            raise JwtError(
                EXPIRED,
                f"token expired (exp {exp:.0f}, now {now:.0f}, leeway {leeway:g}s)",
                description="the token has expired",
            )
        nbf = _number(payload, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise _no(f"token not valid yet (nbf {nbf:.0f}, now {now:.0f}, leeway {leeway:g}s)", _NOT_YET)
        iat = _number(payload, "iat")
        if iat is not None and iat > now + leeway:
            raise _no(
                f"token issued in the future (iat {iat:.0f}, now {now:.0f}, leeway {leeway:g}s)", _NOT_YET
            )
        iss = payload.get("iss")
        if iss != settings.issuer:
            raise _no(f"issuer not allowed: {_show(iss)}", "the token does not have a valid issuer")
        if settings.audiences:
            aud = payload.get("aud")
            candidates = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            candidates = [*candidates, payload.get("client_id")]
            if not any(isinstance(c, str) and c in settings.audiences for c in candidates):
                client_id = _show(payload.get("client_id"))
                reason = f"audience not allowed: aud {_show(aud)}, client_id {client_id}"
                raise _no(reason, "the token does not have a valid audience")
        if settings.token_use is not None and payload.get("token_use") != settings.token_use:
            reason = f"token_use {_show(payload.get('token_use'))} is not {settings.token_use!r}"
            raise _no(reason, "the token is not of the expected type")
        scopes = _scopes(payload)
        if required_scopes and not any(scope in scopes for scope in required_scopes):
            reason = (
                f"missing scope: needs one of {list(required_scopes)}, token has {_show(list(scopes), 200)}"
            )
            raise JwtError(
                UNAUTHORIZED,
                reason,
                description="the token does not have the required scope",
                error="insufficient_scope",
            )
        return JwtClaims(claims=dict(payload), scopes=scopes)
