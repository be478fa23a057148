"""The order of the stages: data, visible in one place (docs/architecture.md shows it too).

route -> context -> authenticate -> authorize -> api_key -> throttle -> (the integration)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from iamgate.pipeline import responses as R
from iamgate.pipeline.auth_stages import api_key, authenticate, authorize
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.stages import context, route
from iamgate.pipeline.throttle_stage import throttle

__all__ = ["STAGES", "Stage"]

Stage = Callable[[Exchange], "R.GatewayResponse | object | Awaitable[R.GatewayResponse | None] | None"]

STAGES: Final[tuple[Stage, ...]] = (route, context, authenticate, authorize, api_key, throttle)
