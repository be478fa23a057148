"""What a stage answers: go on, a response, or wait (a small closed set, as Envoy's filters).

:data:`StageResult` is ``None`` (continue with the next stage), a
:class:`~iamgate.pipeline.responses.GatewayResponse` (answer the request with it), or a
:class:`Wait`: either :data:`NEED_BODY` (run this stage again once the whole request body has
arrived) or a :class:`Later`, whose answer (``None`` or a response) comes by a call.

A stage that waits for something answers with a :class:`Later`; the connection attaches itself
(:meth:`Later.attach`) and the stage's helper calls :meth:`Later.answer` once the answer is
known, which goes on with the request right there (``Resumer.stage_answered``). The Redis
throttle answers that way: against an awaitable it saves, per request, the futures, their
done-callbacks and the event-loop turns each scheduled callback waits for. A stage that runs a
coroutine (an authorizer: HTTP calls, caches) wraps it with :func:`after`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from mypy_extensions import trait

from iamgate.pipeline import responses as R

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

    from iamgate.pipeline.exchange import Exchange

__all__ = ["NEED_BODY", "Later", "Resumer", "StageResult", "Wait", "after"]

log: Final = logging.getLogger("iamgate")


@trait
class Resumer:
    """Who goes on with a request once a stage's :class:`Later` has its answer (the client
    connection). A trait: compiled, a direct native call."""

    def stage_answered(self, ex: Exchange, index: int, result: R.GatewayResponse | None) -> None:
        """Stage ``index`` answered ``result`` for ``ex`` (None: go on to the next stage)."""
        raise NotImplementedError


class Wait:
    """A stage's answer: the request waits (see :data:`NEED_BODY` and :class:`Later`)."""

    def __repr__(self) -> str:
        return "NEED_BODY" if self is NEED_BODY else f"{type(self).__name__}()"


NEED_BODY: Final = Wait()
"""Run this stage again once the whole request body has arrived (in ``Exchange.body``)."""


class Later(Wait):
    """The answer of stage ``index`` for ``ex``, to come: :meth:`answer` is called once (a second
    call is ignored), before or after :meth:`attach`."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.owner: Resumer | None = None
        self.index = -1
        self.answered = False
        self.result: R.GatewayResponse | None = None

    def attach(self, owner: Resumer, index: int) -> None:
        self.index = index
        if self.answered:
            owner.stage_answered(self.ex, index, self.result)
        else:
            self.owner = owner

    def answer(self, result: R.GatewayResponse | None) -> None:
        if self.answered:
            return
        self.answered = True
        self.result = result
        owner = self.owner
        if owner is not None:
            self.owner = None
            owner.stage_answered(self.ex, self.index, result)

    def settle(self, task: asyncio.Future[R.GatewayResponse | None]) -> None:
        """Answer with what a task returned; a task that failed or was cancelled is a bug of
        the stage: 500, logged, never an allow."""
        if task.cancelled():
            self.answer(R.gateway_error(R.API_CONFIGURATION_ERROR))
            return
        exc = task.exception()
        if exc is not None:
            log.error("stage failed for request %s", self.ex.request_id, exc_info=exc)
            self.answer(R.gateway_error(R.API_CONFIGURATION_ERROR))
            return
        self.answer(task.result())


def after(ex: Exchange, work: Coroutine[Any, Any, R.GatewayResponse | None]) -> Later:
    """Run a stage's coroutine; its result is the stage's answer."""
    later = Later(ex)
    asyncio.ensure_future(work).add_done_callback(later.settle)
    return later


StageResult = R.GatewayResponse | Wait | None
