"""Identifiers in API Gateway's style: lower-case letters and digits, from the OS's CSPRNG."""

from __future__ import annotations

import secrets
import string

__all__ = ["new_id"]

_ALPHABET = string.ascii_lowercase + string.digits
LENGTHS = {
    "restapi": 10,
    "resource": 10,
    "deployment": 6,
    "authorizer": 6,
    "apikey": 10,
    "usageplan": 6,
    "model": 6,
    "requestvalidator": 6,
}


def new_id(kind: str) -> str:
    """A new id for an object of ``kind`` (see ``LENGTHS``): e.g. ``a1b2c3d4e5`` for a REST API."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(LENGTHS[kind]))
