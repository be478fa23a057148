"""A stage's answer that arrives later, by a call instead of an awaitable.

A stage that must wait for something (the Redis throttle's reply) returns a :class:`Later`; the
connection attaches itself (:meth:`Later.attach`) and the stage's helper calls :meth:`Later.answer`
once the answer is known, which goes on with the request right there (``Resumer.stage_answered``).
Against an awaitable this saves, per request, the futures, their done-callbacks and the event-loop
turns each scheduled callback waits for. Authorizers still answer with awaitables: they run
coroutines (HTTP calls, caches) that a callback would not make cheaper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mypy_extensions import trait

if TYPE_CHECKING:
    from iamgate.pipeline.exchange import Exchange
    from iamgate.pipeline.responses import GatewayResponse

__all__ = ["Later", "Resumer"]


@trait
class Resumer:
    """Who goes on with a request once a stage's :class:`Later` has its answer (the client
    connection). A trait: compiled, a direct native call."""

    def stage_answered(self, ex: Exchange, index: int, result: GatewayResponse | None) -> None:
        """Stage ``index`` answered ``result`` for ``ex`` (None: go on to the next stage)."""
        raise NotImplementedError


class Later:
    """The answer of stage ``index`` for ``ex``, to come: :meth:`answer` is called once (a second
    call is ignored), before or after :meth:`attach`."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.owner: Resumer | None = None
        self.index = -1
        self.answered = False
        self.result: GatewayResponse | None = None

    def attach(self, owner: Resumer, index: int) -> None:
        self.index = index
        if self.answered:
            owner.stage_answered(self.ex, index, self.result)
        else:
            self.owner = owner

    def answer(self, result: GatewayResponse | None) -> None:
        if self.answered:
            return
        self.answered = True
        self.result = result
        owner = self.owner
        if owner is not None:
            self.owner = None
            owner.stage_answered(self.ex, self.index, result)
