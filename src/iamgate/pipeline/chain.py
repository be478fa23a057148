"""The order of the stages: visible in one place (docs/architecture.md shows it too).

route -> context -> authenticate -> authorize -> api_key -> throttle -> validate -> (the integration)

:func:`run_stage` calls stage ``i`` by name rather than through a tuple of callables: compiled,
each is then a direct C call; through the tuple it was a generic call that boxes its argument
and parses it back (about 300 machine instructions each, seven per request).
"""

from __future__ import annotations

from typing import Final

from iamgate.pipeline.auth_stages import api_key, authenticate, authorize
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import StageResult
from iamgate.pipeline.stages import context, route
from iamgate.pipeline.throttle_stage import throttle
from iamgate.pipeline.validate import validate

__all__ = ["NAMES", "StageResult", "run_stage"]

NAMES: Final = ("route", "context", "authenticate", "authorize", "api_key", "throttle", "validate")


def run_stage(index: int, ex: Exchange) -> StageResult:
    """Run stage ``index`` (0 to ``len(NAMES) - 1``, in the order of :data:`NAMES`)."""
    if index == 0:
        return route(ex)
    if index == 1:
        return context(ex)
    if index == 2:
        return authenticate(ex)
    if index == 3:
        return authorize(ex)
    if index == 4:
        return api_key(ex)
    if index == 5:
        return throttle(ex)
    if index == 6:
        routed = ex.route
        if routed is not None and routed.check is None:
            return None  # most routes validate nothing: no call into validate.py (not compiled)
        return validate(ex)
    raise IndexError(f"no stage {index}")
