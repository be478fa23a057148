"""A bounded memo that keeps a key only the second time it is seen.

Used on every request's path (the policy engine's whole decisions, the gateway's routes and
access-log lines): a gateway asks the same few questions over and over, but a stream of distinct
ones (``/pets/1``, ``/pets/2``, ...) must not fill a memo with entries used once. The first time a
key is seen only its hash is recorded (:meth:`SecondSight.again`); the second time, the value is
kept (:meth:`SecondSight.keep`). Both the hashes and the entries are bounded: past ``limit`` they
are cleared at once, which costs one recomputation per key and never grows memory.

Hits are read straight from :attr:`SecondSight.found` (one dictionary lookup, no call).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["SecondSight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SecondSight(Generic[K, V]):
    __slots__ = ("found", "limit", "seen")

    def __init__(self, limit: int = 4096) -> None:
        self.found: dict[K, V] = {}
        self.seen: set[int] = set()  # hashes of the keys seen once
        self.limit = limit

    def again(self, key: K) -> bool:
        """Whether ``key`` was seen before; records it when not."""
        h = hash(key)
        seen = self.seen
        if h in seen:
            return True
        if len(seen) >= self.limit:
            seen.clear()
        seen.add(h)
        return False

    def keep(self, key: K, value: V) -> None:
        found = self.found
        if len(found) >= self.limit:
            found.clear()
        found[key] = value

    def offer(self, key: K, value: V) -> None:
        """Keep ``value`` if ``key`` was seen before (else only remember the key)."""
        if self.again(key):
            self.keep(key, value)

    def clear(self) -> None:
        self.found.clear()
        self.seen.clear()
