"""Console sessions: a table kept in the memory of the process that serves the admin port.

Why a server-side table rather than a signed token (itsdangerous): the admin port is served by
one process (the worker when there is one, else the supervisor), so one table sees every
request; signing out really ends a session (a signed token stays valid until it expires unless a
revocation list is kept, which is a table again); and there is no signing key to generate, keep
secret and rotate. The cost: restarting the gateway signs everyone out (a reload does not).

A session holds what it was opened with (an access key id, or a console user's name) and a
digest of that key's secret (or of the user's password hash), never the secret. Every request
looks the key or user up again in the configuration being served, so a key or user removed,
disabled or given a new secret or password ends its sessions at once, and identity policies
changed by a reload apply to the next page.

The session id travels in an ``HttpOnly; SameSite=Strict; Path=/console`` cookie (``Secure``
when the admin port speaks TLS). Each session has its own CSRF token, sent back by every form
(hidden field ``csrf``) or script (header ``X-CSRF-Token``) and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "ACCESS_KEY",
    "CONSOLE_USER",
    "COOKIE",
    "IDLE_TIMEOUT",
    "LIFETIME",
    "SIGNIN_COOKIE",
    "Session",
    "SessionTable",
    "cookie_header",
    "parse_cookies",
    "same_token",
    "secret_digest",
]

ACCESS_KEY = "access-key"
CONSOLE_USER = "console-user"
COOKIE = "iamgate_console"
SIGNIN_COOKIE = "iamgate_console_signin"  # the sign-in form's own CSRF token (before any session)
LIFETIME = 8 * 3600.0  # seconds a session lasts at most, however active
IDLE_TIMEOUT = 30 * 60.0  # seconds without a request after which a session ends
MAX_SESSIONS = 10_000  # then the least recently used session is dropped


@dataclass(slots=True, repr=False)
class Session:
    id: str
    csrf: str
    kind: str  # ACCESS_KEY or CONSOLE_USER
    login: str  # the access key id, or the console user's name
    secret_digest: str  # SHA-256 of the secret (or password hash) it was opened with
    caller_arn: str
    created: float
    last_seen: float

    def __repr__(self) -> str:  # never log the session id or its CSRF token
        return f"Session(kind={self.kind!r}, login={self.login!r}, caller_arn={self.caller_arn!r})"

    def expires(self) -> float:
        return min(self.created + LIFETIME, self.last_seen + IDLE_TIMEOUT)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a token sent by the client with the one expected."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


class SessionTable:
    """Open sessions by id, least recently used first. Not thread-safe: used from the event
    loop only."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, kind: str, login: str, secret: str, caller_arn: str, now: float) -> Session:
        self._expire(now)
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            kind=kind,
            login=login,
            secret_digest=secret_digest(secret),
            caller_arn=caller_arn,
            created=now,
            last_seen=now,
        )
        self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None, now: float) -> Session | None:
        """The live session with this id (its idle clock restarted), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if now >= session.expires():
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self, now: float) -> None:
        for sid in [sid for sid, s in self._sessions.items() if now >= s.expires()]:
            del self._sessions[sid]


def parse_cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The cookies of a request (the first of a name wins; malformed pairs are skipped)."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, sep, text = pair.strip().partition("=")
            if sep and key and key not in found:
                found[key] = text.strip().strip('"')
    return found


def cookie_header(name: str, value: str, *, max_age: int, secure: bool) -> tuple[str, str]:
    """A ``Set-Cookie`` header for the console's path; ``max_age`` 0 deletes the cookie."""
    parts = [f"{name}={value}", "Path=/console", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return ("Set-Cookie", "; ".join(parts))
