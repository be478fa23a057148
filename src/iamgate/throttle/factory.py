"""The throttle backend a configuration asks for."""

from __future__ import annotations

from iamgate.throttle.backend import Backend
from iamgate.throttle.memory import MemoryBackend, SharedMemoryBackend
from iamgate.throttle.settings import ThrottleSettings

__all__ = ["make_throttler"]


def make_throttler(settings: ThrottleSettings, shared_state: str | None = None) -> Backend:
    """``redis``: the Redis backend (failures reported as verdicts; the stage applies each usage
    plan's fail mode); ``memory``: this process's memory, or the node's shared state file when
    the supervisor runs several workers."""
    if settings.backend == "redis" and settings.redis_url:
        from iamgate.throttle.redis import RedisBackend  # noqa: PLC0415 - only when configured

        backend: Backend = RedisBackend(
            settings.redis_url, timeout=settings.redis_timeout, prefix=settings.redis_prefix, fail_open=False
        )
        return backend
    if shared_state is not None:
        return SharedMemoryBackend(shared_state)
    return MemoryBackend()
