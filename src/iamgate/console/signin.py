"""Checking an access key id and secret typed into the sign-in form.

The secret is compared in constant time (:func:`hmac.compare_digest`), and an unknown or
disabled key is compared against a dummy secret, so that the time taken does not tell a known
key from an unknown one. Every failure is the same value (None): the page says only that the
credentials were not accepted. Temporary credentials (a role session with a session token) are
not accepted: the form has no place for the token.
"""

from __future__ import annotations

import hmac
import time

from iamgate.auth.identities import Identity, IdentityStore

__all__ = ["MAX_FIELD", "check_credentials"]

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
