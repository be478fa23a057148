"""Sign-in attempts, limited per source address with iamgate's token-bucket arithmetic
(:func:`iamgate.throttle.backend.refill` and :func:`~iamgate.throttle.backend.wait_for`, the
ones the data plane's limits use): a burst of :data:`BURST` attempts, then one every
:data:`INTERVAL` seconds. Every attempt counts, successful or not, so that guessing cannot hide
among good sign-ins. The table of addresses is bounded: when full, the addresses whose bucket
has refilled are forgotten first, then the oldest.
"""

from __future__ import annotations

from collections import OrderedDict

from iamgate.throttle.backend import refill, wait_for

__all__ = ["BURST", "INTERVAL", "SignInLimiter"]

BURST = 5
INTERVAL = 12.0  # seconds per attempt once the burst is spent (5 a minute)
MAX_ADDRESSES = 10_000


class SignInLimiter:
    def __init__(
        self, burst: int = BURST, interval: float = INTERVAL, max_addresses: int = MAX_ADDRESSES
    ) -> None:
        self.burst = burst
        self.rate = 1.0 / interval
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)

    def attempt(self, address: str, now: float) -> float:
        """Take one attempt for ``address``: 0.0 when it may go on, else the seconds to wait."""
        tokens, last = self._buckets.pop(address, (float(self.burst), now))
        tokens = refill(tokens, last, now, self.rate, self.burst)
        wait = wait_for(tokens, self.rate)
        if wait <= 0.0:
            tokens -= 1.0
        self._buckets[address] = (tokens, now)
        self._bound(now)
        return wait

    def _bound(self, now: float) -> None:
        if len(self._buckets) <= self.max_addresses:
            return
        for address, (tokens, last) in list(self._buckets.items()):
            if refill(tokens, last, now, self.rate, self.burst) >= self.burst:
                del self._buckets[address]
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
