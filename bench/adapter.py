"""iamgate's policy engine as an engine of the policy benchmark (bench/policy_timing.py).

``make_decider(policy_doc)`` compiles the policy once; the returned ``decide(req)`` builds the
engine's :class:`~iamgate.policy.Request` from the benchmark's plain request (``.method``,
``.path``, ``.ip``, ``.principal``; None = anonymous) on every call, as the gateway has to, and
answers whether the request is allowed. Only the public API of ``iamgate.policy`` is used.

Run from the project root (bench/policy_bench.py does this for you, pinned to one core)::

    PYTHONPATH=bench python bench/policy_timing.py --engine 'iamgate=adapter:make_decider'

The same factories plug into an external baseline harness that takes
``--add-engine NAME=module:factory`` (``policy_bench.py --anchor PATH``).

Two factories:

* ``make_decider``: the request context is built as an :class:`~iamgate.policy.Context` with the
  key already lower-cased (``aws:sourceip``), the documented hot-path form a gateway uses.
* ``make_decider_dict``: the context is the plain ``{"aws:SourceIp": ip}`` dict, which
  ``Request`` normalises on every call (key lower-casing, value check) - the cost of loose input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from iamgate.policy import ApiRef, CompiledPolicy, Context, Request, prepare

__all__ = ["ACTION", "API", "ARN_PREFIX", "compile_policy", "make_decider", "make_decider_dict"]

API = ApiRef("us-east-1", "123456789012", "petapi")
STAGE = "prod"
ACTION = "execute-api:Invoke"
# arn:aws:execute-api:us-east-1:123456789012:petapi/prod/  (+ METHOD + path)
ARN_PREFIX = f"{API.arn_prefix}/{STAGE}/"
SOURCE_IP = "aws:sourceip"  # condition keys are case-insensitive; Context holds them lower-cased


class BenchRequest(Protocol):
    """The benchmark's ``Req(method, path, ip, principal)`` (bench/policy_timing.py)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def principal(self) -> str | None: ...


def compile_policy(policy_doc: Mapping[str, Any]) -> CompiledPolicy:
    """prepare() once. The large scenario (~58,000 characters) is over API Gateway's 8,192
    character quota, so the size limit is lifted (``max_chars=None``); any error is fatal."""
    prepared = prepare(policy_doc, api=API, max_chars=None)
    if prepared.policy is None:
        raise ValueError("policy rejected:\n" + "\n".join(d.render() for d in prepared.errors))
    return prepared.policy


def make_decider(policy_doc: Mapping[str, Any]) -> Callable[[BenchRequest], bool]:
    evaluate = compile_policy(policy_doc).evaluate

    def decide(req: BenchRequest) -> bool:
        context = Context()
        context[SOURCE_IP] = req.ip
        resource = f"{ARN_PREFIX}{req.method}{req.path}"
        return evaluate(Request(req.principal, ACTION, resource, context)).allowed

    return decide


def make_decider_dict(policy_doc: Mapping[str, Any]) -> Callable[[BenchRequest], bool]:
    evaluate = compile_policy(policy_doc).evaluate

    def decide(req: BenchRequest) -> bool:
        resource = f"{ARN_PREFIX}{req.method}{req.path}"
        return evaluate(Request(req.principal, ACTION, resource, {"aws:SourceIp": req.ip})).allowed

    return decide
