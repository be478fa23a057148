"""``CompiledPolicy.decide()``, the gateway's path to a decision, checked next to ``evaluate()``.

``decide()`` memoises whole decisions for the policies whose conditions allow it, keyed by the
caller, action, resource and the values of the condition keys the policy reads; a key is kept
the second time it is seen. The differential tests ask it every question they ask ``evaluate()``.
"""

from __future__ import annotations

from iamgate.policy import CompiledPolicy, Decision, Request


def assert_decide_agrees(policy: CompiledPolicy, request: Request, evaluated: Decision) -> None:
    """``decide()`` answers ``request`` with ``evaluated`` (``evaluate()``'s decision): asked three
    times, so that a memoised policy answers the third time from its memo (and earlier questions
    to the same policy with equal keys are answered from it too)."""
    for _ in range(3):
        decided = policy.decide(request.principal, request.action, request.resource, request.context)
        assert decided == evaluated, (request, decided, evaluated)
