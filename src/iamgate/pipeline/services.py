"""What the request path uses of its process: given to every exchange, so a stage or an
integration reaches the backend pools, the throttle backend and the metrics without knowing the
server that holds them (the process's state, :mod:`iamgate.serving.state`, owns this object and
swaps its parts on reload)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iamgate.observe.metrics import Metrics
    from iamgate.throttle.backend import Backend
    from iamgate.upstream.pool import UpstreamPools

__all__ = ["Services"]


class Services:
    """The process's backend pools, throttle backend and metrics (``pools`` and ``throttler``
    are replaced when a reload changes their settings)."""

    __slots__ = ("metrics", "pools", "throttler")

    def __init__(self, pools: UpstreamPools, throttler: Backend, metrics: Metrics) -> None:
        self.pools = pools
        self.throttler = throttler
        self.metrics = metrics
