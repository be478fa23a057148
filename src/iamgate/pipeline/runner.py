"""The stage runner: runs the stages of :mod:`iamgate.pipeline.chain` in order for one exchange,
and tells its host (the client connection) what comes next: a response, a wait (for the body or
for a stage's later answer), or the integration.

A stage answers a :data:`~iamgate.pipeline.later.StageResult`. A stage that raises is a bug: the
request gets 500 (never an allow) and the error is logged.
"""

from __future__ import annotations

import logging
from typing import Final

from mypy_extensions import trait

from iamgate.pipeline import responses as R
from iamgate.pipeline.chain import NAMES, run_stage
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import NEED_BODY, Later, Resumer

__all__ = ["StageHost", "run_stages"]

log: Final = logging.getLogger("iamgate")
STAGE_COUNT: Final = len(NAMES)


@trait
class StageHost(Resumer):
    """What runs the stages for a request and acts on their outcome (the client connection).
    A trait: compiled, these are direct native calls."""

    def respond(self, ex: Exchange, response: R.GatewayResponse) -> None:
        """Answer ``ex`` with a gateway response."""
        raise NotImplementedError

    def need_body(self, ex: Exchange, index: int) -> None:
        """Stage ``index`` needs the whole body: run the stages from ``index`` again once
        ``ex.body`` holds it."""
        raise NotImplementedError

    def wait(self, ex: Exchange, later: Later, index: int) -> None:
        """Stage ``index`` answers later: wait, then go on (``Resumer.stage_answered``)."""
        raise NotImplementedError

    def integrate(self, ex: Exchange) -> None:
        """Every stage let the request through: hand it to its integration."""
        raise NotImplementedError


def run_stages(host: StageHost, ex: Exchange, start: int) -> None:
    """Run the stages from ``start`` on, until one answers or waits, or all let the request
    through to the integration."""
    for i in range(start, STAGE_COUNT):
        try:
            result = run_stage(i, ex)
        except Exception:  # a bug must never take the connection down silently or allow
            log.exception("stage failed for request %s", ex.request_id)
            result = R.gateway_error(R.API_CONFIGURATION_ERROR)
        if result is None:
            continue
        if type(result) is R.GatewayResponse:
            host.respond(ex, result)
            return
        if result is NEED_BODY:
            if ex.body is not None:  # a stage must not ask twice
                log.error("stage %s asked for the body twice (request %s)", NAMES[i], ex.request_id)
                host.respond(ex, R.gateway_error(R.API_CONFIGURATION_ERROR))
                return
            host.need_body(ex, i)
            return
        if isinstance(result, Later):
            host.wait(ex, result, i)
            return
        log.error("stage %s answered %r (request %s)", NAMES[i], result, ex.request_id)
        host.respond(ex, R.gateway_error(R.API_CONFIGURATION_ERROR))
        return
    host.integrate(ex)
