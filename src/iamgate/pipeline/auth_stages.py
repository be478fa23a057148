"""The stages that decide who may call: authenticate, authorize, API key (docs/authentication.md).

* ``authenticate`` establishes the caller for the method's authorization type: a SigV4
  signature (``AWS_IAM``; the body is buffered first when the payload hash needs it), a
  Lambda-style authorizer (``CUSTOM``; after the resource policy's explicit-deny pre-check), or
  a JWT (``COGNITO_USER_POOLS``/``JWT``). ``NONE`` has no caller.
* ``authorize`` combines the resource policy with the caller's side (identity policies,
  authorizer policy, valid token) using Tables A and B.
* ``api_key`` checks the API key of methods that require one.

Each stage returns a :data:`~iamgate.pipeline.later.StageResult`: None (go on), a response,
or a wait (:data:`~iamgate.pipeline.later.NEED_BODY`, or an authorizer's answer to come).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from iamgate.auth import combine
from iamgate.auth.custom import AuthorizerError, RequestFacts, Unauthorized
from iamgate.auth.identities import Identity, identity_decision
from iamgate.auth.jwt import JwtError
from iamgate.auth.sigv4 import (
    SignatureError,
    SignedRequest,
    announces_body,
    covered_path,
    is_signed,
    needs_body,
    verify,
)
from iamgate.config.model import ScopedPolicy
from iamgate.pipeline import responses as R
from iamgate.pipeline.exchange import Exchange, presented_api_key
from iamgate.pipeline.later import NEED_BODY, StageResult, after
from iamgate.pipeline.request_keys import fill
from iamgate.pipeline.stages import resolve
from iamgate.policy import Decision, DecisionEffect, Request

__all__ = ["api_key", "authenticate", "authorize"]

ACTION: Final = "execute-api:Invoke"
_ALLOW: Final = DecisionEffect.ALLOW


def _unauthorized(message: str = "Unauthorized") -> R.GatewayResponse:
    return R.gateway_error(R.UNAUTHORIZED, message)


def _wire_headers(ex: Exchange) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value) in arrival order, from the raw header lines."""
    return [(lname, line[len(lname) + 2 : -2]) for lname, line in ex.headers]


def _original_headers(ex: Exchange) -> list[tuple[str, str]]:
    out = []
    for lname, line in ex.headers:
        name = line[: len(lname)].decode("latin-1")
        out.append((name, line[len(lname) + 2 : -2].decode("utf-8", "replace")))
    return out


def facts(ex: Exchange) -> RequestFacts:
    api, stage, route = ex.api, ex.stage, ex.route
    assert api is not None  # route ran first
    assert stage is not None
    assert route is not None
    assert ex.arn is not None
    return RequestFacts(
        method_arn=ex.arn,
        http_method=ex.method,
        resource_path=route.resource_path,
        path=ex.path or "/",
        stage=stage.name,
        api_id=api.id,
        account_id=ex.snapshot.settings.account_id,
        request_id=ex.request_id,
        source_ip=ex.source_ip,
        headers=_original_headers(ex),
        query=ex.query,
        path_parameters=dict(ex.params or {}),
        stage_variables=stage.variables,
        api_key=ex.header(b"x-api-key"),
        context_path=ex.context_path,
        client_cert=ex.tls.client_cert() if ex.tls is not None else None,
    )


def authenticate(ex: Exchange) -> StageResult:
    route = ex.route
    assert route is not None
    kind = route.authorization
    if kind == "NONE":
        return None
    if kind == "AWS_IAM":
        return _sigv4(ex)
    if kind == "CUSTOM":
        return _custom(ex)
    return _jwt(ex)


def _sigv4(ex: Exchange) -> StageResult:
    headers = _wire_headers(ex)
    # Any Authorization header is read as SigV4, as AWS does (a bearer token gets the parse error,
    # as observed); only a request with neither it nor a presigned query is unsigned.
    if b"authorization" not in ex.hmap and not is_signed(headers, ex.query):
        return R.gateway_error(R.MISSING_AUTHENTICATION_TOKEN)
    # what is refused without the body is refused before it is read
    if _signed_elsewhere(ex):
        return R.gateway_error(
            R.BAD_REQUEST,
            "Bad Request: a signed path must name the resource it is served as (no encoded '.' "
            "or '..' segment, no '..' out of the path prefix)",
            close=True,
        )
    body = ex.body
    if body is None:
        hmap = ex.hmap
        if not announces_body(hmap.get(b"transfer-encoding"), hmap.get(b"content-length")):
            body = b""  # what the buffering would give, without a second run of this stage
        elif needs_body(headers, ex.query):
            return NEED_BODY
    snap = ex.snapshot
    auth = snap.auth
    try:
        verified = verify(
            SignedRequest(ex.method, ex.raw_path, ex.query, headers, body),
            region=snap.settings.region,
            lookup=auth.store.lookup,
            now=ex.wall,
            unknown_key_error_type=snap.settings.unknown_access_key_error,
        )
    except SignatureError as exc:
        return R.GatewayResponse(
            exc.status,
            R.json_message("message", exc.message),
            (("Content-Type", "application/json"),),
            _signature_type(exc.error_type),
            exc.error_type,
            exc.message,
        )
    identity = verified.credential.owner
    assert isinstance(identity, Identity)
    ex.identity = identity
    ex.access_key_id = verified.credential.access_key_id
    ex.context.update(identity.condition_keys(ex.wall))
    return None


def _signed_elsewhere(ex: Exchange) -> bool:
    """Whether the resource a signature covers may differ from the one served: a signature must
    bind the very resource that is authorized and proxied. The signature covers the wire path
    with dot segments removed *before* decoding; the router decodes first. So a signed path may
    hold no segment that decodes to ``.`` or ``..`` (``%2e``, ``.%2E``), and a path with dot or
    empty segments is routed a second time as covered, and must land on the same resource."""
    raw = ex.raw_path
    covered = covered_path(raw)
    if (b"%2e" in covered or b"%2E" in covered) and any(
        segment.lower().replace(b"%2e", b".") in (b".", b"..") for segment in covered.split(b"/")
    ):
        return True
    if covered == raw:
        return False
    other = resolve(ex.snapshot, covered, ex.method, ex.hmap)
    return not (
        other.problem is None
        and other.api is ex.api
        and other.stage is ex.stage
        and other.route is ex.route
        and other.segments == ex.segments
    )


def _signature_type(error_type: str) -> str:
    return {
        "MissingAuthenticationTokenException": "MISSING_AUTHENTICATION_TOKEN",
        "ExpiredTokenException": "EXPIRED_TOKEN",
        "InvalidSignatureException": "INVALID_SIGNATURE",
        "IncompleteSignatureException": "INVALID_SIGNATURE",
    }.get(error_type, "ACCESS_DENIED")


def _resource_decision(ex: Exchange, principal: str | None) -> Decision | None:
    api = ex.api
    assert api is not None
    if api.policy is None:
        return None
    assert ex.arn is not None
    decision = api.policy.decide(principal, ACTION, ex.arn, ex.context)
    ex.decision = decision
    ex.policy_mode = api.policy_mode
    return decision


def _needs_authorizer(keys: tuple[str, ...], api_key_source: str) -> bool:
    """Whether some of these ``iamgate:`` keys are known only once the authorizer has answered."""
    for key in keys:
        if key.startswith("iamgate:authorizercontext/"):
            return True
        if key == "iamgate:apikeyid" and api_key_source == "AUTHORIZER":
            return True
    return False


def _custom(ex: Exchange) -> StageResult:
    """Phase 1: an explicit deny in the resource policy stops the request before the authorizer
    runs (it costs nothing); an allow does not skip the authorizer. A policy that reads what only
    the authorizer's answer gives (``iamgate:AuthorizerContext/...``) is decided after it, once."""
    api = ex.api
    assert api is not None
    decision: Decision | None = None
    policy = api.policy
    if policy is not None and policy.extension_keys:
        if _needs_authorizer(policy.extension_keys, api.api_key_source):
            policy = None  # no pre-check: decided in authorize with the authorizer's context
        else:
            refused = fill(ex, policy.extension_keys, policy.single_valued_keys)
            if refused is not None:
                return refused
    if policy is not None:
        decision = _resource_decision(ex, None)
    if decision is not None and decision.effect is DecisionEffect.EXPLICIT_DENY:
        if ex.policy_mode == "report":
            ex.would_deny = True
        else:
            return _denied(ex, "anonymous", explicit=True)
    route = ex.route
    assert route is not None
    authorizer = ex.api.authorizers[route.authorizer] if ex.api and route.authorizer else None
    if authorizer is None:
        return R.gateway_error(R.AUTHORIZER_CONFIGURATION_ERROR, None)
    request_facts = facts(ex)
    try:
        authorizer.identity(request_facts)  # missing sources or a failing regex: 401, nothing called
    except Unauthorized as exc:
        ex.authorizer_error = str(exc)
        return _unauthorized()
    return after(ex, _run_custom(ex, authorizer, request_facts))


async def _run_custom(ex: Exchange, authorizer: Any, request_facts: RequestFacts) -> R.GatewayResponse | None:
    try:
        assert ex.services is not None
        result = await authorizer.authorize(request_facts, ex.services.pools)
    except Unauthorized as exc:
        ex.authorizer_error = str(exc)
        return _unauthorized()
    except AuthorizerError as exc:
        ex.authorizer_error = str(exc)
        return R.gateway_error(R.AUTHORIZER_CONFIGURATION_ERROR, None)
    ex.authorizer = result
    return None


def _jwt(ex: Exchange) -> StageResult:
    route = ex.route
    api = ex.api
    assert route is not None
    assert api is not None
    validator = api.authorizers.get(route.authorizer) if route.authorizer else None
    if validator is None:
        return R.gateway_error(R.AUTHORIZER_CONFIGURATION_ERROR, None)
    return after(ex, _run_jwt(ex, validator, tuple(route.scopes)))


async def _run_jwt(ex: Exchange, validator: Any, scopes: tuple[str, ...]) -> R.GatewayResponse | None:
    token = validator.token(ex)
    if token is None:
        ex.authorizer_error = "no token"
        return _unauthorized()
    try:
        claims = await validator.validate(token, required_scopes=scopes)
    except JwtError as exc:
        ex.authorizer_error = exc.reason
        response = _unauthorized(exc.message)
        if validator.config.type == "JWT":  # HTTP API JWT authorizers say why
            headers = (*response.headers, ("www-authenticate", exc.www_authenticate()))
            response = R.GatewayResponse(
                response.status,
                response.body,
                headers,
                response.response_type,
                response.error_type,
                response.message,
            )
        return response
    ex.claims = claims
    return None


def authorize(ex: Exchange) -> R.GatewayResponse | None:
    """Combine the resource policy with the caller's side; a denial answers 403.

    A resource policy in ``report`` mode is evaluated (and its would-be denial recorded) but the
    request is judged as if the API had no resource policy: the policy neither blocks nor grants,
    and the caller's side (identity policies, authorizer policy) is enforced as usual. Judging it
    with the policy and then forgiving a denial attributed to the policy would let through callers
    whose own side refuses them too (an explicit identity or authorizer deny, a cross-account
    caller without an identity allow), and would let a report-only allow grant access.

    The common case, a ``NONE`` route whose resource policy allows (or that has none), is decided
    here without building the combination; everything else is :func:`_combined`'s."""
    route = ex.route
    api = ex.api
    assert route is not None
    assert api is not None
    policy = api.policy
    if policy is not None and policy.extension_keys:
        refused = fill(ex, policy.extension_keys, policy.single_valued_keys)
        if refused is not None:
            return refused
    if route.authorization != "NONE":
        return _combined(ex, None)
    resource = _resource_decision(ex, None)
    if resource is not None and resource.effect is not _ALLOW:
        return _combined(ex, resource)
    # combine.none allows (in report mode too): only the stage's and route's own policies, if
    # any, are left to ask
    stage = ex.stage
    assert stage is not None
    if stage.policy is None and route.policy is None:
        return None
    return _gates_only(ex, stage.policy, route.policy)


def _combined(ex: Exchange, none_resource: Decision | None) -> R.GatewayResponse | None:
    """:func:`authorize` with the caller's side and the combination tables (``none_resource``:
    the resource policy's decision of a ``NONE`` route, already made)."""
    route = ex.route
    api = ex.api
    assert route is not None
    assert api is not None
    assert ex.arn is not None
    kind = route.authorization
    settings = ex.snapshot.settings
    judge: Callable[[Decision | None], combine.Outcome]
    stage = ex.stage
    assert stage is not None
    if kind == "NONE":
        resource = none_resource
        judge = combine.none
        caller = "anonymous"
    elif kind == "AWS_IAM":
        identity = ex.identity
        assert identity is not None
        for own in identity.principal.policies:
            if own.extension_keys:
                refused = fill(ex, own.extension_keys, own.single_valued_keys)
                if refused is not None:
                    return refused
        resource = _resource_decision(ex, identity.caller_arn)
        caller_side = ex.identity_decision = identity_decision(
            identity, identity.caller_arn, ACTION, ex.arn, ex.context
        )
        same_account = identity.account_id == settings.account_id

        def judge(rp: Decision | None) -> combine.Outcome:
            return combine.aws_iam(
                caller_side,
                rp,
                same_account=same_account,
                cross_account_without_policy=settings.cross_account_without_policy,
            )

        caller = identity.caller_arn
    elif kind == "CUSTOM":
        result = ex.authorizer
        assert result is not None
        if result.policy.extension_keys:
            refused = fill(ex, result.policy.extension_keys, result.policy.single_valued_keys)
            if refused is not None:
                return refused
        auth_decision = result.policy.evaluate(Request(None, ACTION, ex.arn, ex.context))
        ex.identity_decision = auth_decision
        if api.policy is not None and _needs_authorizer(api.policy.extension_keys, api.api_key_source):
            resource = _resource_decision(ex, None)  # not decided before the authorizer ran
        else:
            resource = ex.decision if api.policy is not None else None

        def judge(rp: Decision | None) -> combine.Outcome:
            return combine.custom(auth_decision, rp)

        caller = "anonymous"
    else:
        resource = _resource_decision(ex, None)

        def judge(rp: Decision | None) -> combine.Outcome:
            return combine.cognito(rp, mode=settings.cognito_mode)

        caller = "anonymous"
    outcome = judge(resource)
    if resource is not None and api.policy_mode == "report":
        enforced = judge(None)
        if not outcome.allowed and enforced.allowed:
            ex.would_deny = True
        outcome = enforced
    if stage.policy is None and route.policy is None:
        if outcome.allowed:
            return None
        if kind == "CUSTOM" and outcome.denied_by == "authorizer":
            return R.authorizer_denied(explicit=outcome.explicit)
        return _denied(ex, caller, explicit=outcome.explicit)
    principal = ex.identity.caller_arn if kind == "AWS_IAM" and ex.identity is not None else None
    gate = _scoped(ex, principal, stage.policy, route.policy)
    if isinstance(gate, R.GatewayResponse):
        return gate
    if outcome.allowed and gate is None:
        return None
    if not outcome.allowed:  # the API's policy (or the caller's side) gate: it names the denial,
        # unless only a stage or route policy's is explicit
        if outcome.denied_by == "authorizer":
            ex.denied_by = "authorizer"
        elif outcome.explicit or gate is not True:
            ex.denied_by = "api"
    if not outcome.allowed and kind == "CUSTOM" and outcome.denied_by == "authorizer":
        return R.authorizer_denied(explicit=outcome.explicit)
    explicit = (not outcome.allowed and outcome.explicit) or gate is True
    return _denied(ex, caller, explicit=explicit)


def _gates_only(
    ex: Exchange, stage: ScopedPolicy | None, route: ScopedPolicy | None
) -> R.GatewayResponse | None:
    """A ``NONE`` route whose API side allows: the answer is the stage's and route's policies'
    alone (what :func:`authorize` concludes with an allowing outcome, without building it)."""
    gate = _scoped(ex, None, stage, route)
    if gate is None:
        return None
    if isinstance(gate, R.GatewayResponse):
        return gate
    return _denied(ex, "anonymous", explicit=gate)


def _scoped(
    ex: Exchange, principal: str | None, stage: ScopedPolicy | None, route: ScopedPolicy | None
) -> R.GatewayResponse | bool | None:
    """The stage's and the route's own policies, each a further gate (docs/policy-semantics.md):
    every one that is enforced must allow. None when they all allow (or only a report-only one
    refuses: recorded as a would-be denial); True when one refuses with an explicit deny, False
    when one refuses without; a 400 answer for an ambiguous iamgate: key. ``ex.denied_by`` names
    the first that refused with an explicit deny, else the first that refused. Written out for
    the two (no loop, no list): a route with a policy pays its decision and little else."""
    refused: bool | None = None
    first: tuple[str, Decision, str] | None = None
    if stage is not None:
        decision = _gate_decision(ex, principal, stage)
        if isinstance(decision, R.GatewayResponse):
            return decision
        first = (stage.label, decision, stage.mode)
        refused = _refusal(ex, stage, decision, refused)
    if route is None:
        ex.scoped = None if first is None else (first,)
        return refused
    decision = _gate_decision(ex, principal, route)
    if isinstance(decision, R.GatewayResponse):
        return decision
    last = (route.label, decision, route.mode)
    ex.scoped = (last,) if first is None else (first, last)
    return _refusal(ex, route, decision, refused)


def _gate_decision(ex: Exchange, principal: str | None, scoped: ScopedPolicy) -> Decision | R.GatewayResponse:
    """One stage or route policy's memoised decision (a 400 answer for an ambiguous iamgate: key)."""
    assert ex.arn is not None
    policy = scoped.policy
    if policy.extension_keys:
        ambiguous = fill(ex, policy.extension_keys, policy.single_valued_keys)
        if ambiguous is not None:
            return ambiguous
    return policy.decide(principal, ACTION, ex.arn, ex.context)


def _refusal(ex: Exchange, scoped: ScopedPolicy, decision: Decision, refused: bool | None) -> bool | None:
    """``refused`` once this policy's decision is counted: True once any enforced one denied
    explicitly, False once one refused without, None while all allow (see :func:`_scoped`)."""
    effect = decision.effect
    if effect is _ALLOW:
        return refused
    if scoped.mode == "report":
        ex.would_deny = True
        return refused
    if effect is DecisionEffect.EXPLICIT_DENY:
        if refused is not True:
            ex.denied_by = scoped.label
        return True
    if refused is None:
        ex.denied_by = scoped.label
        return False
    return refused


def _denied(ex: Exchange, caller: str, *, explicit: bool) -> R.GatewayResponse:
    assert ex.arn is not None
    return R.access_denied(
        caller, ex.arn, explicit=explicit, suffix_style=ex.snapshot.settings.denial_messages
    )


def api_key(ex: Exchange) -> R.GatewayResponse | None:
    """API keys on methods that require one: from the ``x-api-key`` header,
    or from the authorizer's ``usageIdentifierKey`` when the API's key source is AUTHORIZER."""
    route = ex.route
    api = ex.api
    assert route is not None
    assert api is not None
    if not route.api_key_required:
        return None
    key = presented_api_key(ex)
    if (
        key is None
        or not key.enabled
        or not ex.snapshot.key_allowed(key, api.id, ex.stage.name if ex.stage else "")
    ):
        return R.gateway_error(R.INVALID_API_KEY)
    ex.api_key = key
    return None


_ = Decision  # re-exported for type checkers of callers
