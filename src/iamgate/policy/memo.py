"""The bounded memo: iamgate's memos are all of this one type, with one limit rule (apart from
``functools.lru_cache`` on a few pure functions of policy values, and the custom authorizers'
result cache, whose entries expire).

Used on every request's path (the policy engine's decisions and indexes, the gateway's routes,
header names and access-log lines, the throttle's encoded buckets, signing keys, the network
map). A memo is a dictionary read straight from :attr:`SecondSight.found` (one dictionary lookup,
no call) and filled in one of two ways:

* :meth:`SecondSight.keep` stores at once: for what a gateway is asked over and over and whose
  keys come from a small set (actions, header names, client addresses);
* :meth:`SecondSight.offer` stores a key only the second time it is seen: a stream of distinct
  questions (``/pets/1``, ``/pets/2``, ...) must not fill a memo with entries used once. The
  first time only the key's hash is recorded (:meth:`SecondSight.again`).

The limit rule: when the entries (or the hashes seen once) reach ``limit``, they are cleared at
once before the next one is added, which costs one recomputation per key and never grows memory
(no order to keep, no eviction to pay on every store). A memo of a pure function may be cleared
at any time.

Part of the policy engine, the lowest layer (it imports nothing but the standard library), so
that the engine and everything above it share the one type.
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

    def __len__(self) -> int:
        return len(self.found)

    def clear(self) -> None:
        self.found.clear()
        self.seen.clear()
