"""The in-memory throttle backend: exact within one process, shared by the workers of one node.

* :class:`MemoryBackend` keeps buckets and quotas in dictionaries: one process (the default,
  ``--workers 1``).
* :class:`SharedMemoryBackend` keeps them in a file of fixed-size slots mapped into every worker
  (``--workers N``), so the limits hold for the whole node: one ``fcntl`` lock around each
  request's all-or-nothing check. Keys are stored as 64-bit hashes (BLAKE2b) in an
  open-addressing table; a full table fails closed for that key (and says so in the log).

Written by hand: no maintained library offers cross-process token buckets on shared memory; the
table is ~100 lines of ``struct`` over ``mmap``.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
from collections.abc import Sequence
from typing import Final

from iamgate.throttle.backend import ALLOWED, ONE, Backend, Bucket, Quota, Verdict, day_of, refill, wait_for

__all__ = ["MemoryBackend", "SharedMemoryBackend"]


class _BucketState:
    """One bucket's tokens at its last use (a native object when compiled: its fields are C
    doubles, where a list's items are boxed floats read and written generically)."""

    __slots__ = ("burst", "last", "level", "rate", "tokens")

    def __init__(self, tokens: float, last: float, rate: float, burst: float) -> None:
        self.tokens = tokens
        self.last = last
        self.rate = rate
        self.burst = burst
        self.level = tokens  # during a check: the tokens found at its time, before taking one


class MemoryBackend(Backend):
    """Buckets and quotas in this process's memory."""

    def __init__(self) -> None:
        # key -> the bucket's state; a full bucket is the same as none, so a state is created
        # full the first time a key is seen, even if the request is then refused
        self.buckets: dict[str, _BucketState] = {}
        self.quotas: dict[str, list[int]] = {}  # key -> [period start, used]
        self.counters: dict[str, int] = {}  # usage key + day -> count
        self._swept = 0.0

    def check(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict:
        # the request path runs this for every throttled request: written for speed (no helper
        # calls, no allocation on the allowed path beyond the first sight of a key)
        store = self.buckets
        # a tuple (what the stage passes) is walked by index when compiled, any other sequence
        # through the generic iterator protocol: copy those
        items: tuple[Bucket, ...] = buckets if isinstance(buckets, tuple) else tuple(buckets)
        for i, bucket in enumerate(items):
            state = store.get(bucket.key)
            if state is None:
                burst = float(bucket.burst)
                state = store[bucket.key] = _BucketState(burst, now, bucket.rate, burst)
                tokens = burst
            else:
                tokens = state.tokens
                last = state.last
                if now > last:
                    tokens += bucket.rate * (now - last)
                    if tokens > bucket.burst:
                        tokens = float(bucket.burst)
            if tokens < ONE:
                return Verdict(False, "throttle", i, wait_for(tokens, bucket.rate))
            state.level = tokens  # taken below, once every bucket has a token
        remaining = None
        if quota is not None:
            state_q = self.quotas.get(quota.key)
            used = state_q[1] if state_q is not None and state_q[0] == quota.start else 0
            if used >= quota.limit:
                return Verdict(False, "quota", -1, max(0.0, quota.end - now), 0)
            self.quotas[quota.key] = [quota.start, used + 1]
            remaining = quota.limit - used - 1
        for bucket in items:
            state = store[bucket.key]
            left = state.level - 1.0
            state.tokens = left if left > 0.0 else 0.0
            state.last = now
            state.rate = bucket.rate
            state.burst = float(bucket.burst)
        if usage is not None:
            day_key = f"{usage}:{day_of(now)}"
            self.counters[day_key] = self.counters.get(day_key, 0) + 1
        if now - self._swept > 60.0:
            self.sweep(now)
        return ALLOWED if remaining is None else Verdict(True, remaining=remaining)

    def sweep(self, now: float) -> None:
        """Forget buckets that have refilled completely (a full bucket is the same as none): keeps
        per-client buckets from growing without bound."""
        self._swept = now
        full = [
            key
            for key, state in self.buckets.items()
            if refill(state.tokens, state.last, now, state.rate, int(state.burst)) >= state.burst
        ]
        for key in full:
            del self.buckets[key]

    def usage(self, key: str, days: Sequence[str]) -> dict[str, int]:
        return {day: self.counters.get(f"{key}:{day}", 0) for day in days}

    def submit(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict:
        return self.check(buckets, quota, now, usage)

    def close(self) -> None:
        pass


def _full_at(tokens: float, now: float, bucket: Bucket) -> float:
    """When a bucket holding ``tokens`` at ``now`` is full again (from then on, it can be forgotten)."""
    if bucket.rate <= 0:
        return math.inf
    return now + (bucket.burst - tokens) / bucket.rate


# key hash, tokens, last use, (buckets) when full again or (quotas) period start, used/count, kind
_SLOT: Final = struct.Struct("<QddqqQ")
_BUCKET: Final = 1
_QUOTA: Final = 2
_COUNTER: Final = 3
_KEEP: Final = {_QUOTA: 40 * 86400.0, _COUNTER: 400 * 86400.0}  # seconds unused before reuse
_NEVER: Final = 1 << 62
_SLOT_SIZE: Final = _SLOT.size
_HEADER: Final = 64
_MAGIC: Final = b"iamgate-throttle-v1\0"
_PROBES: Final = 64


def _hash(key: str) -> int:
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return value or 1  # 0 marks an empty slot


class SharedMemoryBackend(Backend):
    """Buckets, quotas and usage counters in a file mapped by every worker of one node."""

    def __init__(self, path: str, *, slots: int = 1 << 16, create: bool = False) -> None:
        self.path = path
        self.slots = slots
        size = _HEADER + slots * _SLOT_SIZE
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.fd = os.open(path, flags, 0o600)
        if create:
            os.ftruncate(self.fd, size)
            os.pwrite(self.fd, _MAGIC + slots.to_bytes(8, "little"), 0)
        header = os.pread(self.fd, len(_MAGIC) + 8, 0)
        if not header.startswith(_MAGIC):
            os.close(self.fd)
            raise ValueError(f"{path} is not an iamgate throttle state file")
        self.slots = int.from_bytes(header[len(_MAGIC) :], "little")
        self.map = mmap.mmap(self.fd, _HEADER + self.slots * _SLOT_SIZE)
        self.full_errors = 0

    # --- the table ---------------------------------------------------------------------------
    def _find(self, key: str, kind: int, now: float, claim: bool) -> int | None:
        """The byte offset of the slot for ``key``; when ``claim``, a new one (an empty slot, or one
        whose entry has not been used for longer than its kind keeps entries) if it has none."""
        h = _hash(key)
        base = h % self.slots
        free = None
        for i in range(_PROBES):
            offset = _HEADER + ((base + i) % self.slots) * _SLOT_SIZE
            stored, _, last, _, _, stored_kind = _SLOT.unpack_from(self.map, offset)
            if stored == h:
                return offset
            if stored == 0:
                if free is None:
                    free = offset
                break
            if free is None and self._stale(offset, stored_kind, last, now):
                free = offset  # free to reuse once the key is known to be absent
        if not claim or free is None:
            return None
        _SLOT.pack_into(self.map, free, h, -1.0, now, 0, 0, kind)
        return free

    def _stale(self, offset: int, kind: int, last: float, now: float) -> bool:
        """A bucket that is full again, or a quota or counter unused for longer than it matters."""
        if kind == _BUCKET:
            full_at: int = _SLOT.unpack_from(self.map, offset)[3]
            return now >= full_at
        return now - last > _KEEP.get(kind, _KEEP[_QUOTA])

    def check(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            return self._check(buckets, quota, now, usage)
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def _check(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None
    ) -> Verdict:
        offsets = []
        levels = []
        for i, bucket in enumerate(buckets):
            offset = self._find(bucket.key, _BUCKET, now, claim=True)
            if offset is None:
                self.full_errors += 1
                return Verdict(False, "backend", i, 1.0)
            _, tokens, last, _, _, _ = _SLOT.unpack_from(self.map, offset)
            tokens = (
                float(bucket.burst) if tokens < -0.5 else refill(tokens, last, now, bucket.rate, bucket.burst)
            )
            if tokens < ONE:
                return Verdict(False, "throttle", i, wait_for(tokens, bucket.rate))
            offsets.append(offset)
            levels.append(tokens)
        remaining = None
        quota_offset = None
        if quota is not None:
            quota_offset = self._find(quota.key, _QUOTA, now, claim=True)
            if quota_offset is None:
                self.full_errors += 1
                return Verdict(False, "backend", -1, 1.0)
            h, _, _, start, used, _ = _SLOT.unpack_from(self.map, quota_offset)
            if start != quota.start:
                used = 0
            if used >= quota.limit:
                return Verdict(False, "quota", -1, max(0.0, quota.end - now), 0)
            _SLOT.pack_into(self.map, quota_offset, h, 0.0, now, quota.start, used + 1, _QUOTA)
            remaining = quota.limit - used - 1
        for bucket, offset, tokens in zip(buckets, offsets, levels, strict=True):
            h = struct.unpack_from("<Q", self.map, offset)[0]
            left = max(0.0, tokens - 1.0)
            full = _full_at(left, now, bucket)
            full_at = _NEVER if full > _NEVER else math.ceil(full)
            _SLOT.pack_into(self.map, offset, h, left, now, full_at, 0, _BUCKET)
        if usage is not None:
            offset = self._find(f"{usage}:{day_of(now)}", _COUNTER, now, claim=True)
            if offset is not None:
                h, _, _, _, count, _ = _SLOT.unpack_from(self.map, offset)
                _SLOT.pack_into(self.map, offset, h, 0.0, now, 0, count + 1, _COUNTER)
        return ALLOWED if remaining is None else Verdict(True, remaining=remaining)

    def usage(self, key: str, days: Sequence[str]) -> dict[str, int]:
        out = {}
        fcntl.lockf(self.fd, fcntl.LOCK_SH)
        try:
            for day in days:
                offset = self._find(f"{key}:{day}", _COUNTER, 0.0, claim=False)
                out[day] = 0 if offset is None else _SLOT.unpack_from(self.map, offset)[4]
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)
        return out

    def submit(
        self, buckets: Sequence[Bucket], quota: Quota | None, now: float, usage: str | None = None
    ) -> Verdict:
        return self.check(buckets, quota, now, usage)

    def close(self) -> None:
        try:
            self.map.close()
        finally:
            os.close(self.fd)
