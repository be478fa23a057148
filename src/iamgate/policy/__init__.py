"""The policy engine: AWS IAM resource policies as API Gateway evaluates them.

A pure library (no I/O, nothing imported from the rest of iamgate)::

    from iamgate.policy import ApiRef, Request, prepare

    prepared = prepare(policy_text, api=ApiRef("us-east-1", "111122223333", "a1b2c3d4e5"))
    if not prepared.ok:
        for d in prepared.diagnostics:
            print(d.render())
    decision = prepared.policy.evaluate(Request(None, "execute-api:Invoke", arn, {"aws:SourceIp": ip}))

Stages: ``_json`` (read) -> ``parse`` -> ``validate`` -> ``compile`` -> ``evaluate`` (and
``explain`` for traces, ``lint`` for findings); ``reference`` is the test oracle.
"""

from .ast import Effect, Policy, PolicyKind, Statement
from .compile import ApiRef, expand_shorthand, partition_of
from .decision import Decision, DecisionEffect, MatchKind, StatementRef, StatementTrace
from .diagnostics import Diagnostic, Location, Severity, has_errors
from .evaluate import CompiledPolicy
from .prepare import DEFAULT_MAX_CHARS, Prepared, prepare, read_document
from .request import Caller, CallerKind, Context, Request, parse_caller, principal_arn_key

__all__ = [
    "DEFAULT_MAX_CHARS",
    "ApiRef",
    "Caller",
    "CallerKind",
    "CompiledPolicy",
    "Context",
    "Decision",
    "DecisionEffect",
    "Diagnostic",
    "Effect",
    "Location",
    "MatchKind",
    "Policy",
    "PolicyKind",
    "Prepared",
    "Request",
    "Severity",
    "Statement",
    "StatementRef",
    "StatementTrace",
    "expand_shorthand",
    "has_errors",
    "parse_caller",
    "partition_of",
    "prepare",
    "principal_arn_key",
    "read_document",
]
