"""Server-side SigV4 (``AWS_IAM``) verification, as Amazon API Gateway does it.

Written by hand because there is no good server-side SigV4 verifier on PyPI: botocore and
requests-aws4auth only *sign*, moto re-runs botocore's signer inside its mock, and the few
packages that say they verify are young single releases that document neither the raw-path
double encoding nor the two query forms nor AWS's error texts, so they would need
auditing line by line anyway. The canonicalisation lives in
:mod:`iamgate.auth.sigv4_canonical`; this module parses, checks, compares and raises. Only the
standard library is used (``hmac.compare_digest`` for every secret comparison).

Verification *raises* (pyca/cryptography habit): :func:`verify` returns a :class:`Verified` or
raises :class:`SignatureError`, never anything else for any request. Every
:class:`SignatureError` carries the HTTP status, the ``x-amzn-ErrorType`` and the message AWS
sends (docs/authentication.md)::

    SignatureError (403)
      MissingAuthenticationTokenException  nothing signed at all
      IncompleteSignatureException         malformed Authorization header or query parameters
      InvalidSignatureException            date, skew, scope, host, signature mismatch
      AccessDeniedException                unknown access key, missing or wrong session token
                                           (the type is a keyword argument of verify)
      ExpiredTokenException                temporary credentials past their expiry

The order of the checks is the one AWS's request-signing front end (shared by API Gateway,
DynamoDB and STS: the "Coral" texts) was recorded to follow: parse (all missing components
at once), date format, clock skew, ``host`` signed, algorithm, credential shape, credential
scope (region, service, terminator and date together), every signed header present, access
key, signature, session token, credential expiry. Sources: AWS's answers quoted in public issues; the
request-validation order documented from live DynamoDB responses in mhart/dynalite and
mhart/kinesalite (``index.js``); the "named as a SignedHeader" text observed from AppSync
(aws-mobile-appsync-sdk-js #702).

Choices where AWS documents nothing for execute-api [INF], all failing closed:

* Payload: a *signed* ``x-amz-content-sha256`` of ``UNSIGNED-PAYLOAD`` needs no body; any
  other declared value must be the body's SHA-256; otherwise the body is hashed. A presigned
  request without that header signs the empty body (botocore ``SigV4QueryAuth`` moves bodies
  into the query), so a presigned request that announces a body (``Content-Length`` > 0 or
  ``Transfer-Encoding``) must hand it over and fails. :func:`needs_body` says which requests
  need their body; a needed body passed as ``None`` fails.
* Presigned lifetime: ``X-Amz-Expires`` (1..604800) runs from ``X-Amz-Date``; a future date
  still gets the skew check; without ``X-Amz-Expires`` the usual +/- skew applies.
* A session token sent with long-term keys is refused, like a wrong one.
"""

from __future__ import annotations

import calendar
import datetime
import email.utils
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from iamgate.policy.memo import SecondSight

from . import sigv4_canonical as canon

__all__ = [
    "ACCESS_DENIED",
    "EXPIRED_TOKEN",
    "INCOMPLETE_SIGNATURE",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "Credential",
    "ParsedAuthorization",
    "SignatureError",
    "SignedRequest",
    "Verified",
    "announces_body",
    "authorization_header_error",
    "covered_path",
    "is_signed",
    "needs_body",
    "parse_authorization_header",
    "verify",
]

# error types and texts, not secrets (S105 reads "TOKEN" in a name as a password)
MISSING_AUTHENTICATION_TOKEN: Final = "MissingAuthenticationTokenException"  # noqa: S105
INCOMPLETE_SIGNATURE: Final = "IncompleteSignatureException"
INVALID_SIGNATURE: Final = "InvalidSignatureException"
# AWS's Knowledge Center table lists AccessDeniedException for an unknown key on execute-api;
# other Coral services answer UnrecognizedClientException. verify() takes either.
ACCESS_DENIED: Final = "AccessDeniedException"
EXPIRED_TOKEN: Final = "ExpiredTokenException"  # noqa: S105

MAX_PRESIGN_EXPIRES: Final = 604_800  # seven days, the life of a signing key

_INVALID_TOKEN: Final = "The security token included in the request is invalid."  # noqa: S105
_EXPIRED_TOKEN: Final = "The security token included in the request is expired"  # noqa: S105
_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
_HOST_NOT_SIGNED: Final = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
_PRESIGN_PARAMS: Final = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders")
_EPOCH_ORDINAL: Final = 719163  # datetime.date(1970, 1, 1).toordinal()
_AMZ_DATE: Final = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
_DIGITS: Final = re.compile(r"[0-9]{1,7}")


class SignatureError(Exception):
    """A request whose signature does not verify; ``status``, ``error_type`` (the
    ``x-amzn-ErrorType`` header) and ``message`` are what AWS answers."""

    status: int
    error_type: str
    message: str

    def __init__(self, error_type: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def __repr__(self) -> str:
        return f"SignatureError({self.error_type!r}, {self.message!r}, status={self.status})"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the gateway hands over, straight from the wire."""

    method: str
    raw_path: bytes
    raw_query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class Credential:
    """What the identity store returns for an access key id."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expires_at: float | None = None
    owner: Any = None  # Any, not object: mypyc resolves a dataclass field's annotation by name in the module

    def __repr__(self) -> str:  # never print the secret or the token
        return f"Credential(access_key_id={self.access_key_id!r}, owner={self.owner!r})"


@dataclass(frozen=True, slots=True)
class Verified:
    credential: Credential
    signed_headers: tuple[str, ...]
    presigned: bool
    canonical_variant: str
    request_time: float


@dataclass(frozen=True, slots=True)
class ParsedAuthorization:
    """The parts of an ``Authorization`` header (or of the presigned query parameters)."""

    algorithm: str
    credential: str
    signed_headers: str
    signature: str


def _incomplete(message: str) -> SignatureError:
    return SignatureError(INCOMPLETE_SIGNATURE, message)


def _invalid(message: str) -> SignatureError:
    return SignatureError(INVALID_SIGNATURE, message)


def parse_authorization_header(value: str, *, has_date: bool = True) -> ParsedAuthorization:
    """Parse ``<algorithm> Credential=..., SignedHeaders=..., Signature=...`` as AWS does.

    The first token is the algorithm (checked later, as AWS does); the rest is split on commas
    and blanks, and every piece must be ``key=value``. Missing ``Credential``, ``Signature``,
    ``SignedHeaders`` and (``has_date=False``) the date header are reported in one message.
    Raises :class:`SignatureError` (IncompleteSignatureException).
    """
    params: dict[str, str] = {}
    raw = value.strip()
    # the algorithm ends at the first blank or tab; the rest is split on runs of blanks, tabs and
    # commas (empty pieces skipped), with str methods: regular expressions cost a signed request
    # about a sixth of its instructions (tests/auth/test_sigv4_readers.py holds this to them)
    algorithm, _, rest = raw.replace("\t", " ").partition(" ")
    for piece in rest.replace(",", " ").split(" "):
        if not piece:
            continue
        key, eq, val = piece.partition("=")
        if not eq:
            raise _incomplete(
                f"'{piece}' not a valid key=value pair (missing equal-sign) in Authorization header: '{raw}'."
            )
        params[key] = val
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if name not in params
    ]
    if not has_date:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise _incomplete(" ".join(missing) + f" Authorization={raw}")
    return ParsedAuthorization(algorithm, params["Credential"], params["SignedHeaders"], params["Signature"])


def authorization_header_error(value: str, *, has_date: bool = False) -> SignatureError | None:
    """The error AWS answers for an ``Authorization`` header on an unmatched route (observed),
    or ``None`` when the header parses (the gateway then answers Missing Authentication Token)."""
    try:
        parse_authorization_header(value, has_date=has_date)
    except SignatureError as error:
        return error
    return None


# -- reading the request -------------------------------------------------------------------


class _Headers:
    __slots__ = ("pairs", "values")

    def __init__(self, pairs: Sequence[tuple[bytes, bytes]]) -> None:
        self.pairs = pairs
        self.values: dict[bytes, list[bytes]] = {}
        for name, value in pairs:
            self.values.setdefault(name.lower(), []).append(value)

    def first(self, name: bytes) -> str | None:
        found = self.values.get(name)
        return None if found is None else found[0].decode("latin-1").strip()

    def joined(self, name: bytes) -> str | None:
        found = self.values.get(name)
        return None if found is None else ", ".join(v.decode("latin-1").strip() for v in found)


def _query_params(raw_query: bytes) -> dict[str, str]:
    """The first value of every query parameter, both decoded (``+`` is a space)."""
    params: dict[str, str] = {}
    for part in raw_query.decode("utf-8", errors="replace").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        decoded = canon.query_param_name(name)
        if decoded not in params:
            params[decoded] = canon.form_decode(value).decode("utf-8", errors="replace")
    return params


def _is_presigned_query(params: dict[str, str]) -> bool:
    return "X-Amz-Algorithm" in params or "X-Amz-Signature" in params


def covered_path(raw_path: bytes) -> bytes:
    """The path a signature covers, still percent-encoded: the wire path with its dot segments
    and empty segments removed, as signers and AWS normalise it before encoding it once more into
    the canonical URI. Escapes are *not* decoded first, so ``%2e%2e`` stays a segment of its own
    here while a router that decodes first reads it as ``..``: a gateway must route this path,
    not only the wire path, to know what was signed (docs/security.md, "Signatures")."""
    if raw_path.isascii() and canon.is_plain_path(raw_path.decode("ascii")):
        return raw_path
    return canon.remove_dot_segments(raw_path.decode("utf-8", errors="replace")).encode("utf-8")


def is_signed(headers: Sequence[tuple[bytes, bytes]], raw_query: bytes) -> bool:
    """Whether the request carries a SigV4 signature: an ``Authorization`` header starting with
    ``AWS4-HMAC-SHA256`` or ``X-Amz-Signature`` / ``X-Amz-Algorithm`` in the query."""
    authorization = _Headers(headers).first(b"authorization")
    if authorization is not None and authorization.startswith(canon.ALGORITHM):
        return True
    return _is_presigned_query(_query_params(raw_query))


def announces_body(transfer_encoding: bytes | None, content_length: bytes | None) -> bool:
    """Whether a request head with these header values announces a body: any
    ``Transfer-Encoding``, or a ``Content-Length`` other than 0."""
    return transfer_encoding is not None or (content_length is not None and content_length.strip() != b"0")


def _announces_body(headers: _Headers) -> bool:
    encodings, lengths = headers.values.get(b"transfer-encoding"), headers.values.get(b"content-length")
    return announces_body(encodings[0] if encodings else None, lengths[0] if lengths else None)


def _payload_header(headers: _Headers, signed: Iterable[str]) -> str | None:
    """The ``x-amz-content-sha256`` value, when the request carries it *and* it is signed."""
    if "x-amz-content-sha256" not in (name.lower() for name in signed):
        return None
    return headers.first(b"x-amz-content-sha256")


def _body_needed(headers: _Headers, signed: Sequence[str], presigned: bool) -> bool:
    declared = _payload_header(headers, signed)
    if declared == canon.UNSIGNED_PAYLOAD:
        return False
    if declared is None and presigned:
        # botocore's SigV4QueryAuth signs the hash of an empty body (it moves a body into the
        # query); a presigned request that announces a body must show it, to fail
        return _announces_body(headers)
    return True


def needs_body(headers: Sequence[tuple[bytes, bytes]], raw_query: bytes) -> bool:
    """Whether :func:`verify` needs the body bytes: not for ``UNSIGNED-PAYLOAD`` (signed), not
    for a presigned request that announces no body, and not for an ``Authorization`` header that
    is no SigV4 header (it is refused on its own, without reading a body an unauthenticated
    client could make large); otherwise yes."""
    wrapped = _Headers(headers)
    authorization = wrapped.joined(b"authorization")
    if authorization is None:
        params = _query_params(raw_query)
        if not _is_presigned_query(params):
            return False
        return _body_needed(wrapped, params.get("X-Amz-SignedHeaders", "").split(";"), presigned=True)
    try:
        parsed = parse_authorization_header(authorization)
    except SignatureError:
        return False
    return _body_needed(wrapped, parsed.signed_headers.split(";"), presigned=False)


# -- time ----------------------------------------------------------------------------------


def _amz(epoch: int) -> str:
    t = time.gmtime(epoch)
    return f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}T{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}Z"


def _bad_date(value: str) -> SignatureError:
    return _incomplete(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _parse_amz_date(value: str) -> int:
    """``YYYYMMDDTHHMMSSZ`` as epoch seconds. Accepts what ``time.strptime(value,
    "%Y%m%dT%H%M%SZ")`` accepts (a real date of years 1-9999, hours to 23, minutes to 59, seconds
    to 61, as strptime allows leap seconds) and computes what ``calendar.timegm`` would, without
    strptime's cost (most of a signed request's date handling); tests/auth/test_sigv4_readers.py
    holds it to both."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        raise _bad_date(value)
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if hour > 23 or minute > 59 or second > 61:
        raise _bad_date(value)
    try:
        days = datetime.date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # no such date (20240230, month 13, year 0)
        raise _bad_date(value) from None
    return days * 86400 + hour * 3600 + minute * 60 + second


def _parse_http_date(value: str) -> int:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        return calendar.timegm(parsed.utctimetuple())
    except (TypeError, ValueError, IndexError, OverflowError):
        raise _bad_date(value) from None


def _window(seconds: float) -> str:
    return f"{int(seconds // 60)} min." if seconds % 60 == 0 else f"{seconds:g} sec."


def _check_skew(request_time: int, now: int, max_skew: float, *, past: bool = True) -> None:
    if past and request_time < now - max_skew:
        raise _invalid(
            f"Signature expired: {_amz(request_time)} is now earlier than "
            f"{_amz(math.ceil(now - max_skew))} ({_amz(now)} - {_window(max_skew)})"
        )
    if request_time > now + max_skew:
        raise _invalid(
            f"Signature not yet current: {_amz(request_time)} is still later than "
            f"{_amz(math.floor(now + max_skew))} ({_amz(now)} + {_window(max_skew)})"
        )


def _check_presigned_expiry(request_time: int, now: int, expires: str | None, max_skew: float) -> None:
    """``X-Amz-Expires`` (1..604800) bounds a presigned request's life from ``X-Amz-Date``; a
    future date still gets the skew check. Without ``X-Amz-Expires`` the usual +/- skew
    applies (what AWS's Coral services do with every presigned request). Texts: [INF]."""
    if expires is None:
        _check_skew(request_time, now, max_skew)
        return
    if _DIGITS.fullmatch(expires) is None:
        raise _incomplete(f"X-Amz-Expires should be a number of seconds from 1 to 604800, not '{expires}'.")
    seconds = int(expires)
    if not 1 <= seconds <= MAX_PRESIGN_EXPIRES:
        raise _incomplete(f"X-Amz-Expires should be a number of seconds from 1 to 604800, not '{expires}'.")
    _check_skew(request_time, now, max_skew, past=False)
    if now > request_time + seconds:
        raise _invalid(
            f"Signature expired: {_amz(request_time)} is now earlier than "
            f"{_amz(now - seconds)} ({_amz(now)} - {seconds} sec.)"
        )


# -- signing keys --------------------------------------------------------------------------


class _SigningKeys:
    """Signing keys by (key id, secret, date, region, service); a bounded memo (policy.memo).

    The secret is part of the key so that a rotated secret under the same key id never meets
    a key derived from the old one. Safe from several threads without a lock: the memo only
    gets, clears and stores (each one dictionary operation), and a key it forgets is derived
    again."""

    def __init__(self, limit: int = 1024) -> None:
        self._keys: SecondSight[tuple[str, str, str, str, str], bytes] = SecondSight(limit)

    def get(self, credential: Credential, date: str, region: str, service: str) -> bytes:
        slot = (credential.access_key_id, credential.secret_access_key, date, region, service)
        key = self._keys.found.get(slot)
        if key is None:
            key = canon.derive_signing_key(credential.secret_access_key, date, region, service)
            self._keys.keep(slot, key)
        return key


_signing_keys = _SigningKeys()


# -- verification --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    auth: ParsedAuthorization
    presigned: bool
    raw_date: str
    request_time: int
    amz_date: str
    token: str | None


def _parse_request(request: SignedRequest, headers: _Headers, now: int, max_skew: float) -> _Parsed:
    params = _query_params(request.raw_query)
    authorization = headers.joined(b"authorization")
    if authorization is not None and "X-Amz-Algorithm" in params:
        raise _invalid(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
        )
    if authorization is None:
        if not _is_presigned_query(params):
            raise SignatureError(MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")
        missing = [name for name in (*_PRESIGN_PARAMS, "X-Amz-Date") if name not in params]
        if missing:
            raise _incomplete(
                "".join(f"AWS query-string parameters must include '{name}'. " for name in missing)
                + "Re-examine the query-string parameters."
            )
        auth = ParsedAuthorization(
            params["X-Amz-Algorithm"], params["X-Amz-Credential"], params["X-Amz-SignedHeaders"],
            params["X-Amz-Signature"],
        )  # fmt: skip
        raw_date = params["X-Amz-Date"]
        request_time = _parse_amz_date(raw_date)
        _check_presigned_expiry(request_time, now, params.get("X-Amz-Expires"), max_skew)
        token = params.get("X-Amz-Security-Token", headers.first(b"x-amz-security-token"))
        return _Parsed(auth, True, raw_date, request_time, raw_date, token)
    amz_date = headers.first(b"x-amz-date")
    date_header = amz_date if amz_date is not None else headers.first(b"date")
    # without either date header the parser raises, naming the missing date with the rest
    auth = parse_authorization_header(authorization, has_date=date_header is not None)
    raw_date = date_header or ""
    request_time = _parse_amz_date(raw_date) if amz_date is not None else _parse_http_date(raw_date)
    _check_skew(request_time, now, max_skew)
    token = headers.first(b"x-amz-security-token")
    # an X-Amz-Date with seconds below 60 is already what _amz would format (its fields are
    # checked digits of a real date); a leap second, or a Date header, is formatted
    signed_date = raw_date if amz_date is not None and raw_date[13] < "6" else _amz(request_time)
    return _Parsed(auth, False, raw_date, request_time, signed_date, token)


def _check_scope(parsed: _Parsed, region: str, service: str) -> list[str]:
    """Host signed, algorithm, credential shape and scope; returns the credential parts."""
    signed = parsed.auth.signed_headers.split(";")
    if not {"host", ":authority"} & {name.lower() for name in signed}:
        raise _invalid(_HOST_NOT_SIGNED)
    if parsed.auth.algorithm != canon.ALGORITHM:
        raise _incomplete(
            f"Unsupported AWS 'algorithm': '{parsed.auth.algorithm}' (only {canon.ALGORITHM} for now). "
        )
    parts = parsed.auth.credential.rstrip("/").split("/")
    if len(parts) != 5:
        raise _incomplete(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term,"
            f" got '{parsed.auth.credential}'"
        )
    _, scope_date, scope_region, scope_service, terminator = parts
    problems = []
    if scope_region != region:
        problems.append(f"Credential should be scoped to a valid region, not '{scope_region}'. ")
    if scope_service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'. ")
    if terminator != canon.TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{canon.TERMINATOR}', not '{terminator}'. "
        )
    if scope_date != parsed.amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{parsed.amz_date[:8]}', from '{parsed.raw_date}'."
        )
    if problems:
        raise _invalid("".join(problems))
    return parts


def _payload_hash(request: SignedRequest, headers: _Headers, signed: Sequence[str], presigned: bool) -> str:
    declared = _payload_header(headers, signed)
    if declared == canon.UNSIGNED_PAYLOAD:
        return declared
    if request.body is None:
        if _body_needed(headers, signed, presigned):
            # the caller did not pass a body verification needs: fail closed
            raise _invalid(_MISMATCH)
        return canon.EMPTY_SHA256
    actual = hashlib.sha256(request.body).hexdigest()
    # a declared hash is used verbatim only when it is the body's; otherwise the canonical
    # request gets the real hash, so the signature (over the declared one) fails
    return declared if declared is not None and declared.lower() == actual else actual


def _mismatch(canonical: str, to_sign: str, show_canonical: bool) -> SignatureError:
    if not show_canonical:
        return _invalid(_MISMATCH)
    return _invalid(
        f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
        f"The String-to-Sign should have been\n'{to_sign}'\n"
    )


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", errors="replace"), expected.encode("ascii"))


def verify(
    request: SignedRequest,
    *,
    region: str,
    lookup: Callable[[str], Credential | None],
    now: float,
    service: str = "execute-api",
    max_skew: float = 300.0,
    show_canonical: bool = True,
    unknown_key_error_type: str = ACCESS_DENIED,
) -> Verified:
    """Verify a header-signed or presigned SigV4 request; raise :class:`SignatureError`.

    ``lookup`` maps an access key id to its :class:`Credential` (``None``: unknown). ``now`` is
    the server's epoch time. ``show_canonical`` appends the canonical request and string to
    sign to a mismatch message, as AWS does. The canonical query is tried in the
    specification's form first and then in the raw form botocore signs for a query written
    into the URL; :attr:`Verified.canonical_variant` says which matched.
    """
    headers = _Headers(request.headers)
    current = math.floor(now)
    parsed = _parse_request(request, headers, current, max_skew)
    key_id, scope_date, scope_region, scope_service, terminator = _check_scope(parsed, region, service)
    signed = parsed.auth.signed_headers.split(";")
    header_block, missing = canon.canonical_headers(headers.pairs, signed)
    if missing is not None:
        raise _incomplete(
            f"'{missing}' is named as a SignedHeader, but it does not exist in the HTTP request."
        )
    credential = lookup(key_id)
    if credential is None:
        raise SignatureError(unknown_key_error_type, _INVALID_TOKEN)
    payload = _payload_hash(request, headers, signed, parsed.presigned)
    uri = canon.canonical_uri(request.raw_path)
    scope = f"{scope_date}/{scope_region}/{scope_service}/{terminator}"
    key = _signing_keys.get(credential, scope_date, scope_region, scope_service)
    spec_query = canon.canonical_query_spec(request.raw_query, drop_signature=parsed.presigned)
    raw_query = canon.canonical_query_raw(request.raw_query, drop_signature=parsed.presigned)
    candidates = [("spec", spec_query)]
    if raw_query != spec_query:
        candidates.append(("raw-query", raw_query))
    attempts = []
    for name, query in candidates:
        canonical = canon.canonical_request(request.method, uri, query, header_block, signed, payload)
        attempts.append((name, canonical, canon.string_to_sign(parsed.amz_date, scope, canonical)))
    variant = next(
        (name for name, _, to_sign in attempts if _same(parsed.auth.signature, canon.sign(key, to_sign))),
        None,
    )
    if variant is None:
        _, canonical, to_sign = attempts[0]  # AWS shows the specification's form
        raise _mismatch(canonical, to_sign, show_canonical)
    if credential.session_token is None:
        token_ok = parsed.token is None
    else:
        token_ok = parsed.token is not None and hmac.compare_digest(
            parsed.token.encode("utf-8", errors="replace"), credential.session_token.encode("utf-8")
        )
    if not token_ok:
        raise SignatureError(unknown_key_error_type, _INVALID_TOKEN)
    if credential.expires_at is not None and now >= credential.expires_at:
        raise SignatureError(EXPIRED_TOKEN, _EXPIRED_TOKEN)
    return Verified(credential, tuple(signed), parsed.presigned, variant, float(parsed.request_time))
