"""Where a JWT authorizer's verification keys come from: a JSON Web Key Set (RFC 7517), fetched
over HTTP(S) or read from a local file, cached, and turned into PyJWT keys one ``(kid, alg)`` at a
time.

This is the lower layer of the JWT authorizer; :mod:`iamgate.auth.jwt` builds the validator on it
and re-exports :class:`JwtError`, which lives here because the cache is the first to raise it.

Rules (each one refuses with :class:`JwtError`, message ``Unauthorized``, never another exception):

* URL source: the document is cached for ``cache_ttl`` seconds. An unknown ``kid`` triggers a
  refetch, but no two fetches start less than ``min_refresh_interval`` apart, so a stream of
  tokens with made-up ``kid`` values costs at most one fetch per interval. Concurrent callers
  share one in-flight fetch. A fetch is bounded by ``fetch_timeout`` (the whole fetch, not each
  read), the document by :data:`MAX_JWKS_BYTES` and ``max_keys``; at most 3 redirects, to
  http(s) only.
* When a refresh fails, the keys of the last good document stay in use for a grace period of
  ``max(cache_ttl, min_refresh_interval)`` past their expiry (an identity provider's blip does
  not take every API down), while refreshes are retried at most once per ``min_refresh_interval``.
  With no good document at all, every call fails fast with the last fetch error until the next
  retry is due.
* File source: ``os.stat`` on each call; the file is read again only when its mtime, size or
  inode changes. A changed file that does not parse fails closed (until the file changes again).
* A key is used only if it fits the token's ``alg``: ``kty`` (and ``crv``) of the algorithm's
  family, the JWK's own ``alg``/``use``/``key_ops`` when present, no private key material, RSA
  at least 2048 bits. HMAC keys (``kty: oct``) never fit: HS* is not in the supported set, which
  is what rules out the HS/RS confusion attack.
* Header fields that name other keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are never followed.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jwt import PyJWK

    from iamgate.auth.jwt import JwtAuthorizerSettings

__all__ = [
    "EXPIRED",
    "MAX_JWKS_BYTES",
    "SUPPORTED_ALGORITHMS",
    "UNAUTHORIZED",
    "JwksCache",
    "JwtError",
    "key_problem",
    "parse_jwks",
]

UNAUTHORIZED = "Unauthorized"
EXPIRED = "The incoming token has expired"
MAX_JWKS_BYTES = 1024 * 1024
_MAX_REDIRECTS = 3
_READ_CHUNK = 64 * 1024

# alg -> (kty, allowed crv values or None when the family has no curve)
_KEY_FAMILY: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", ("P-256",)),
    "ES384": ("EC", ("P-384",)),
    "ES512": ("EC", ("P-521",)),
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
}
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(_KEY_FAMILY)
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class JwtError(Exception):
    """A token was refused.

    ``message`` is what the client sees (``{"message": ...}`` with status 401): ``Unauthorized``
    or, for a validly signed but expired token, ``The incoming token has expired``. ``reason``
    says why, for logs and ``$context.authorizer.error``; it never goes to the client.
    ``error``/``description`` fill the ``www-authenticate`` header of HTTP API JWT authorizers
    (:meth:`www_authenticate`); the descriptions are fixed phrases, never attacker input.
    """

    def __init__(
        self,
        message: str,
        reason: str,
        *,
        description: str = "the token is not valid",
        error: str = "invalid_token",
    ) -> None:
        super().__init__(message, reason)
        self.message = message
        self.reason = reason
        self.description = description
        self.error = error

    def __str__(self) -> str:
        return f"{self.message}: {self.reason}"

    @property
    def expired(self) -> bool:
        return self.message == EXPIRED

    def www_authenticate(self) -> str:
        """The header value an HTTP API JWT authorizer sends with its 401 (AWS's JWT troubleshooting page)."""
        return f'Bearer scope="" error="{self.error}" error_description="{self.description}"'

    def copy(self) -> JwtError:
        """A fresh exception with the same fields (re-raising one instance grows its traceback)."""
        return JwtError(self.message, self.reason, description=self.description, error=self.error)


def _refused(reason: str, description: str = "the signing key could not be found") -> JwtError:
    return JwtError(UNAUTHORIZED, reason, description=description)


def _show(value: object, limit: int = 80) -> str:
    """``repr`` for log reasons: escapes control characters, bounded in length."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_problem(jwk: dict[str, Any], alg: str) -> str | None:
    """Why ``jwk`` must not verify a token signed with ``alg``, or ``None`` if it may."""
    family = _KEY_FAMILY.get(alg)
    if family is None:
        return f"algorithm {_show(alg)} is not supported"
    kty, curves = family
    if jwk.get("kty") != kty:
        return f"key type {_show(jwk.get('kty'))} does not fit {alg} (needs {kty})"
    if curves is not None and jwk.get("crv") not in curves:
        return f"curve {_show(jwk.get('crv'))} does not fit {alg} (needs {' or '.join(curves)})"
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        return "the JWKS publishes private key material; refusing the key"
    if "alg" in jwk and jwk["alg"] != alg:
        return f"key is for {_show(jwk['alg'])}, token uses {alg}"
    if "use" in jwk and jwk["use"] != "sig":
        return f"key use is {_show(jwk['use'])}, not 'sig'"
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return f"key_ops {_show(ops)} does not include 'verify'"
    return None


def parse_jwks(raw: bytes, max_keys: int) -> dict[str, tuple[dict[str, Any], ...]]:
    """A JWKS document -> its keys by ``kid``. Entries without a string ``kid`` are ignored (a
    token must name its key); one ``kid`` may carry several keys (e.g. one per algorithm)."""
    if len(raw) > MAX_JWKS_BYTES:
        raise _refused(f"JWKS document larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _refused(f"JWKS document is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _refused('JWKS document is not an object with a "keys" array')
    keys: list[object] = document["keys"]
    if len(keys) > max_keys:
        raise _refused(f"JWKS document has {len(keys)} keys, more than max_keys={max_keys}")
    by_kid: dict[str, list[dict[str, Any]]] = {}
    for entry in keys:
        if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
            by_kid.setdefault(entry["kid"], []).append(entry)
    return {kid: tuple(entries) for kid, entries in by_kid.items()}


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    max_redirections = _MAX_REDIRECTS

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            return None  # urllib then raises the redirect as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_RedirectHandler)


def _fetch_blocking(url: str, timeout: float) -> bytes:
    """GET the JWKS (runs in a worker thread). Every failure becomes a :class:`JwtError`."""
    deadline = time.monotonic() + timeout
    # S310: the settings admit http(s) URLs only, and _RedirectHandler holds redirects to http(s)
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "iamgate"})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > MAX_JWKS_BYTES:
                raise _refused(f"JWKS document larger than {MAX_JWKS_BYTES} bytes (Content-Length {length})")
            chunks: list[bytes] = []
            total = 0
            while True:
                if time.monotonic() > deadline:
                    raise _refused(f"JWKS fetch from {url} timed out after {timeout}s")
                chunk = response.read1(_READ_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_JWKS_BYTES:
                    raise _refused(f"JWKS document larger than {MAX_JWKS_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        exc.close()  # an HTTPError holds the response and its socket
        raise _refused(f"JWKS fetch from {url} failed: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise _refused(f"JWKS fetch from {url} failed: {exc.reason}") from None
    except TimeoutError:
        raise _refused(f"JWKS fetch from {url} timed out after {timeout}s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _refused(f"JWKS fetch from {url} failed: {type(exc).__name__}: {exc}") from None


class JwksCache:
    """The keys of one authorizer. ``clock`` (monotonic seconds) is injectable for tests."""

    __slots__ = (
        "_attempted_at",
        "_built",
        "_clock",
        "_file_stamp",
        "_inflight",
        "_keys",
        "_last_error",
        "_loaded_at",
        "_settings",
        "fetches",
    )

    def __init__(
        self, settings: JwtAuthorizerSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._keys: dict[str, tuple[dict[str, Any], ...]] = {}
        self._built: dict[tuple[str, str], PyJWK] = {}
        self._loaded_at: float | None = None  # when the current document was installed
        self._attempted_at: float | None = None  # when the last fetch started
        self._last_error: JwtError | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._file_stamp: tuple[int, int, int] | None = None
        self.fetches = 0  # fetches started (URL) or reads done (file): for metrics and tests

    @property
    def last_error(self) -> JwtError | None:
        """The error of the last failed load, ``None`` once a load succeeds."""
        return self._last_error

    async def key_for(self, kid: str | None, alg: str) -> PyJWK:
        """The key that verifies a token with header ``kid``/``alg``; raises :class:`JwtError`."""
        if alg not in self._settings.algorithms:
            raise _refused(
                f"algorithm {_show(alg)} is not allowed", "the token signing algorithm is not allowed"
            )
        if kid is None:
            raise _refused("token header has no kid")
        if self._settings.jwks_file is not None:
            self._load_file_if_changed(self._settings.jwks_file)
            candidates = self._keys.get(kid)
        else:
            await self._ensure_fresh()
            candidates = self._keys.get(kid)
            if candidates is None:
                candidates = await self._refetch_for(kid)
        if candidates is None:
            raise _refused(f"unknown kid {_show(kid)}")
        return self._build(kid, alg, candidates)

    # -- URL source -------------------------------------------------------------------------

    def _may_fetch(self, now: float) -> bool:
        if self._inflight is not None and not self._inflight.done():
            return True  # joining a fetch costs nothing extra
        return self._attempted_at is None or now - self._attempted_at >= self._settings.min_refresh_interval

    def _stale_usable(self, now: float) -> bool:
        if self._loaded_at is None:
            return False
        grace = max(self._settings.cache_ttl, self._settings.min_refresh_interval)
        return now - self._loaded_at < self._settings.cache_ttl + grace

    async def _ensure_fresh(self) -> None:
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self._settings.cache_ttl:
            return
        if self._may_fetch(now):
            try:
                await self._fetch_shared()
            except JwtError:
                if not self._stale_usable(self._clock()):
                    raise
            return
        if self._stale_usable(now):
            return
        if self._last_error is not None:
            raise self._last_error.copy()
        raise _refused("JWKS not loaded yet")  # unreachable in practice: a failed fetch sets the error

    async def _refetch_for(self, kid: str) -> tuple[dict[str, Any], ...] | None:
        if not self._may_fetch(self._clock()):
            return None  # rate-limited: the caller reports the unknown kid
        try:
            await self._fetch_shared()
        except JwtError as exc:
            raise _refused(f"unknown kid {_show(kid)}; JWKS refetch failed: {exc.reason}") from None
        return self._keys.get(kid)

    async def _fetch_shared(self) -> None:
        url = self._settings.jwks_url
        if url is None:
            raise _refused("no JWKS source configured")
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not loop:
            self._attempted_at = self._clock()
            task = loop.create_task(self._fetch_and_install(url))
            self._inflight = task
            task.add_done_callback(self._fetch_done)
        await asyncio.shield(task)  # one caller's cancellation does not cancel the shared fetch

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, so a fetch nobody awaits any more is not reported

    async def _fetch_and_install(self, url: str) -> None:
        timeout = self._settings.fetch_timeout
        self.fetches += 1
        loop = asyncio.get_running_loop()
        try:
            raw = await asyncio.wait_for(loop.run_in_executor(None, _fetch_blocking, url, timeout), timeout)
            keys = parse_jwks(raw, self._settings.max_keys)
        except TimeoutError:
            self._last_error = _refused(f"JWKS fetch from {url} timed out after {timeout}s")
            raise self._last_error.copy() from None
        except JwtError as exc:
            self._last_error = exc.copy()
            raise
        self._install(keys)

    def _install(self, keys: dict[str, tuple[dict[str, Any], ...]]) -> None:
        self._keys = keys
        self._built = {}
        self._loaded_at = self._clock()
        self._last_error = None

    # -- file source ------------------------------------------------------------------------

    def _load_file_if_changed(self, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise _refused(f"JWKS file {path} cannot be read: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._file_stamp:
            if self._last_error is not None:
                raise self._last_error.copy()
            return
        self._file_stamp = stamp
        self.fetches += 1
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_JWKS_BYTES + 1)
            keys = parse_jwks(raw, self._settings.max_keys)
        except OSError as exc:
            self._last_error = _refused(f"JWKS file {path} cannot be read: {exc.strerror}")
            raise self._last_error.copy() from None
        except JwtError as exc:
            self._last_error = _refused(f"JWKS file {path}: {exc.reason}")
            raise self._last_error.copy() from None
        self._install(keys)

    # -- keys -------------------------------------------------------------------------------

    def _build(self, kid: str, alg: str, candidates: tuple[dict[str, Any], ...]) -> PyJWK:
        built = self._built.get((kid, alg))
        if built is not None:
            return built
        # PyJWT (and the cryptography it loads, about 10 MB of RSS) is imported by the first key
        # built, not by every gateway process at start: most configurations have no JWT authorizer
        from jwt import PyJWK  # noqa: PLC0415

        problems: list[str] = []
        for jwk in candidates:
            problem = key_problem(jwk, alg)
            if problem is None:
                try:
                    key = PyJWK(jwk, algorithm=alg)
                except Exception as exc:  # fail closed on whatever a malformed JWK makes PyJWT raise
                    problem = f"unusable JWK ({type(exc).__name__}: {exc})"
                else:
                    problem = key.Algorithm.check_key_length(key.key)
                    if problem is None:
                        self._built[(kid, alg)] = key  # bounded: kids <= max_keys, algs in the allow-list
                        return key
            problems.append(problem)
        raise _refused(f"key {_show(kid)} cannot verify {alg}: {'; '.join(problems)}")
