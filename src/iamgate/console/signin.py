"""Checking what was typed into the sign-in form: an access key id and its secret, or a console
user's name and password.

A secret is compared in constant time (:func:`hmac.compare_digest`), and an unknown or disabled
key is compared against a dummy secret, so that the time taken does not tell a known key from an
unknown one. A password is verified against the user's argon2 hash (argon2-cffi); an unknown
user's password is verified against a dummy hash made with the same parameters, for the same
reason. That takes about a tenth of a second of CPU: callers run :func:`check_password` in a
worker thread. Every failure is the same value (None): the page says only that the credentials
were not accepted. Temporary credentials (a role session with a session token) are not accepted:
the form has no place for the token.
"""

from __future__ import annotations

import functools
import hmac
import time
from typing import TYPE_CHECKING

from iamgate.auth.identities import Identity, IdentityStore

__all__ = ["MAX_FIELD", "check_credentials", "check_password", "hash_password", "password_problem"]

MAX_FIELD = 256  # longest access key id or secret read from the form
_DUMMY = "iamgate-console-dummy-secret-never-matches-anything-0000000000"


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def check_credentials(
    identities: IdentityStore, access_key_id: str, secret: str, now: float | None = None
) -> tuple[Identity, str] | None:
    """The identity behind these credentials and the secret it has now, or None (whatever the
    reason)."""
    current = time.time() if now is None else now
    credential = identities.lookup(access_key_id) if 0 < len(access_key_id) <= MAX_FIELD else None
    expected = credential.secret_access_key if credential is not None else _DUMMY
    matched = _equal(secret[:MAX_FIELD], expected) and len(secret) <= MAX_FIELD
    if credential is None or not matched:
        return None
    if credential.session_token is not None:
        return None
    if credential.expires_at is not None and credential.expires_at <= current:
        return None
    owner = credential.owner
    if not isinstance(owner, Identity):
        return None
    return owner, credential.secret_access_key


if TYPE_CHECKING:
    import argon2


@functools.cache
def _hasher() -> argon2.PasswordHasher:
    # imported when a password is first hashed or checked: a gateway whose console nobody signs
    # in to does not load argon2-cffi (memory in every worker: docs/benchmarks.md "Scale")
    import argon2  # noqa: PLC0415

    return argon2.PasswordHasher()


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a console user's (the sign-in form reads at most
    :data:`MAX_FIELD` characters), or None."""
    if not password:
        return "the password is empty"
    if len(password) > MAX_FIELD:
        return f"the password is longer than {MAX_FIELD} characters, the most the sign-in form reads"
    if password != password.strip():
        return "the password starts or ends with white space (a copy-and-paste slip?)"
    return None


def hash_password(password: str) -> str:
    """The argon2 hash (PHC string) of a console user's password, made with the parameters sign-in
    verifies with; ValueError naming the problem for a password that could never sign in."""
    problem = password_problem(password)
    if problem is not None:
        raise ValueError(problem)
    return _hasher().hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash("iamgate-console-dummy-password")


def check_password(identities: IdentityStore, name: str, password: str) -> tuple[Identity, str] | None:
    """The identity a console user acts as and the user's password hash now, or None (whatever
    the reason). Slow on purpose (argon2): run it off the event loop."""
    user = identities.console_user(name) if 0 < len(name) <= MAX_FIELD else None
    hashed = user.password_hash if user is not None else _dummy_hash()
    import argon2.exceptions  # noqa: PLC0415 - loaded by _hasher() already

    try:
        _hasher().verify(hashed, password[:MAX_FIELD])
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if user is None or len(password) > MAX_FIELD:
        return None
    return user.identity, user.password_hash
