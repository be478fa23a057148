"""Who may call the management API: SigV4 and the caller's identity policies, as AWS does it.

Every request is signed with SigV4 for the service ``apigateway`` in the gateway's region
(``gateway.region``), with an access key of the configured identities (``identities``, see
docs/authentication.md). The caller is then authorized by **its identity policies**, evaluated
by the project's policy engine for the action ``apigateway:{HTTP METHOD}`` on the resource
``arn:aws:apigateway:{region}::{path}`` (AWS's IAM model for API Gateway management, e.g.
``apigateway:PATCH`` on ``arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5``). The account
root is allowed everything; anyone else needs an identity-policy Allow and no Deny.

Some operations need a second action, as on AWS: changing a resource policy also needs
``apigateway:UpdateRestApiPolicy`` on the API. Handlers ask for it with :func:`require`, which
checks against the caller of the request being served (a context variable set by the app).

Failures are AWS's 403s: ``MissingAuthenticationTokenException`` (nothing signed),
``IncompleteSignatureException``, ``InvalidSignatureException``, ``UnrecognizedClientException``
(an unknown or disabled access key), ``ExpiredTokenException`` and ``AccessDeniedException``
(``User: ARN is not authorized to perform: apigateway:POST on resource: ARN``).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass

from iamgate.auth.identities import Identity, IdentityStore, identity_decision
from iamgate.auth.sigv4 import SignatureError, SignedRequest, verify
from iamgate.management.core import ApiError
from iamgate.policy import DecisionEffect

__all__ = ["Caller", "authenticate", "authorize", "caller_of", "require", "resource_arn"]

SERVICE = "apigateway"


@dataclass(frozen=True, slots=True)
class Caller:
    identity: Identity
    region: str
    context: dict[str, str | tuple[str, ...]]

    @property
    def arn(self) -> str:
        return self.identity.caller_arn


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("iamgate_management_caller")


def resource_arn(region: str, path: str) -> str:
    """``arn:aws:apigateway:REGION::PATH`` (API Gateway's management resources have no account)."""
    partition = (
        "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    )
    return f"arn:{partition}:apigateway:{region}::{path}"


def authenticate(
    method: str,
    raw_path: bytes,
    raw_query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    region: str,
    identities: IdentityStore,
    peer: str | None,
    now: float | None = None,
    secure: bool = False,
) -> Caller:
    """The verified caller, or :class:`ApiError` with AWS's 403 (``secure``: the request came
    over the admin port's TLS, ``aws:SecureTransport``)."""
    current = time.time() if now is None else now
    request = SignedRequest(method, raw_path, raw_query, headers, body)
    try:
        verified = verify(
            request,
            region=region,
            lookup=identities.lookup,
            now=current,
            service=SERVICE,
            unknown_key_error_type="UnrecognizedClientException",
        )
    except SignatureError as exc:
        raise ApiError(exc.status, exc.error_type, exc.message) from None
    identity = verified.credential.owner
    if not isinstance(identity, Identity):  # every configured credential has one
        raise ApiError(
            403, "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    agent = None
    for name, value in headers:
        if name.lower() == b"user-agent":
            agent = value.decode("latin-1")  # the last one, as before
    return caller_of(identity, region=region, now=current, peer=peer, user_agent=agent, secure=secure)


def caller_of(
    identity: Identity,
    *,
    region: str,
    now: float,
    peer: str | None,
    user_agent: str | None = None,
    secure: bool = False,
) -> Caller:
    """``identity`` as a caller of the management API, with the global condition keys AWS fills
    (the console builds its callers here too, so both are authorized alike)."""
    context: dict[str, str | tuple[str, ...]] = dict(identity.condition_keys(now))
    context["aws:currenttime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    context["aws:epochtime"] = str(int(now))
    context["aws:securetransport"] = "true" if secure else "false"
    context["aws:requestedregion"] = region
    if peer:
        context["aws:sourceip"] = peer
    if user_agent is not None:
        context["aws:useragent"] = user_agent
    return Caller(identity, region, context)


def authorize(caller: Caller, action: str, path: str) -> None:
    """Allow, or raise ``AccessDeniedException`` naming the caller, the action and the ARN."""
    arn = resource_arn(caller.region, path)
    decision = identity_decision(caller.identity, caller.arn, action, arn, caller.context)
    if decision.effect is DecisionEffect.ALLOW:
        return
    suffix = " with an explicit deny" if decision.effect is DecisionEffect.EXPLICIT_DENY else ""
    raise ApiError(
        403,
        "AccessDeniedException",
        f"User: {caller.arn} is not authorized to perform: {action} on resource: {arn}{suffix}",
    )


def serve_as(caller: Caller | None) -> Callable[[], None]:
    """Make ``caller`` the one :func:`require` checks for the rest of this task; returns the
    function that undoes it."""
    token = _current.set(caller)
    return lambda: _current.reset(token)


def require(action: str, path: str) -> None:
    """Also require ``action`` on ``path`` of the caller being served (nothing when the
    management API runs without authentication)."""
    caller = _current.get(None)
    if caller is not None:
        authorize(caller, action, path)
