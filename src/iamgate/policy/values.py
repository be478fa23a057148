"""Typed readings of condition values: numbers, dates, booleans, IP networks, base64.

Each reader returns the typed value or None when the text is not of that type; validation
turns None into a diagnostic for policy values, evaluation into "no match" for request
values (docs/policy-semantics.md, values that cannot be read).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

__all__ = [
    "IPNetwork",
    "read_base64",
    "read_bool",
    "read_date",
    "read_ip",
    "read_network",
    "read_number",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def read_number(text: str) -> Decimal | None:
    """Integers and decimals (an exponent is accepted); no NaN, no infinities, no spaces."""
    if len(text) > 100 or not _NUMBER.fullmatch(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None
    if not value.is_finite() or abs(value.adjusted()) > 1000:
        return None
    return value


# W3C profile of ISO 8601 (IAM's date operators): YYYY-MM[-DD[Thh:mm[:ss[.s+]]][TZD]]; a missing time zone
# means UTC. A string of digits only is epoch seconds (also with a fraction).
_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})(?:-(?P<d>\d{2}))?"
    r"(?:[Tt](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?"
)
_EPOCH = re.compile(r"-?\d{1,15}(?:\.\d{1,9})?")
_EPOCH_ZERO = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4096)
def read_date(text: str) -> int | None:
    """A date as integer microseconds since the epoch (UTC), or None."""
    if _EPOCH.fullmatch(text):
        whole, _, frac = text.partition(".")
        micros = int(whole) * 1_000_000
        if frac:
            sign = -1 if whole.startswith("-") else 1
            micros += sign * int((frac + "000000")[:6])
        return micros
    m = _ISO.fullmatch(text)
    if not m:
        return None
    if m.group("tz") and not m.group("h"):
        return None  # a zone designator only follows a time
    try:
        stamp = datetime(
            int(m.group("y")),
            int(m.group("mo")),
            int(m.group("d") or 1),
            int(m.group("h") or 0),
            int(m.group("mi") or 0),
            int(m.group("s") or 0),
            int(((m.group("f") or "") + "000000")[:6]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    delta = stamp - _EPOCH_ZERO
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    tz = m.group("tz")
    if tz and tz not in "Zz":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        # in integers, not datetime arithmetic: 9999-12-31T23:00-05:00 is past datetime.max in UTC
        micros -= sign * (hours * 3600 + minutes * 60) * 1_000_000
    return micros


def read_bool(text: str) -> bool | None:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def read_network(text: str) -> IPNetwork | None:
    """An IPv4/IPv6 network; a bare address is a /32 or /128; host bits are ignored."""
    if not text or len(text) > 64 or text != text.strip():
        return None
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        mapped = net.network_address.ipv4_mapped
        if net.prefixlen >= 96:
            return ipaddress.IPv4Network((int(mapped), net.prefixlen - 96), strict=False)
    return net


@lru_cache(maxsize=8192)
def read_ip(text: str) -> tuple[int, int] | None:
    """A request address as ``(version, integer)``; IPv4-mapped IPv6 reads as IPv4.

    A zone id (``fe80::1%eth0``) is dropped. Anything else, including CIDR text, is None.
    """
    if not text or len(text) > 64:
        return None
    try:
        addr = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return 4, int(addr.ipv4_mapped)
    return addr.version, int(addr)


def read_base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
