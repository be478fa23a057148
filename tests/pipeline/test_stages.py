"""Each stage of the request path on its own, table-driven, on one snapshot built from the
configuration text below.

A case builds an exchange as the client connection would (method, path, headers, peer address),
runs the stages before the one under test (``chain.run_stage``, each must let the request
through: the exchange is then in the state the stage sees), runs the stage, and checks its
answer (``None``: go on; a gateway response: its status, ``x-amzn-ErrorType`` and message;
``NEED_BODY``) and what it wrote on the exchange. The attacker's cases sit in the same tables as
the ordinary ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from iamgate.config.snapshot import Snapshot
from iamgate.pipeline import responses as R
from iamgate.pipeline.chain import run_stage
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import NEED_BODY, StageResult
from iamgate.pipeline.services import Services
from iamgate.policy import DecisionEffect
from iamgate.throttle.memory import MemoryBackend
from tests.pipeline.stage_support import (
    make_exchange,
    make_services,
    make_snapshot,
    run_before,
    run_to,
    signed_headers,
    stage_index,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
API = "a1b2c3d4e5"
PRIVATE = "f6g7h8i9j0"
HOST = f"{API}.execute-api.us-east-1.amazonaws.com"
PRIVATE_HOST = f"{PRIVATE}.execute-api.us-east-1.amazonaws.com"
ARN = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API}"
ALICE = ("AKIAALICE00000000001", "alice-secret")  # same account, identity policy allows all
BOB = ("AKIABOB0000000000001", "bob-secret")  # same account, no identity policy
CAROL = ("AKIACAROL00000000001", "carol-secret")  # another account, no identity policy
UNKNOWN = ("AKIAUNKNOWN000000001", "whatever")
GOOD_KEY = "good-key-0123456789abcdef"
OFF_KEY = "off-key-0123456789abcdef"
STRAY_KEY = "stray-key-0123456789abcdef"  # enabled, in no usage plan
QUOTA_KEY = "quota-key-0123456789abcdef"

PEER = "192.0.2.10"  # an ordinary client
PROXY = "10.0.0.5"  # a trusted proxy
BLOCKED = "203.0.113.9"  # in the network the resource policy denies
ROGUE = "198.51.100.7"  # an untrusted peer that writes X-Forwarded-For
IN_VPC = "172.31.4.4"  # behind the VPC endpoint

CONFIG = """
gateway:
  region: us-east-1
  account_id: "111122223333"
  trusted_proxies: [10.0.0.0/8]
  networks:
    - {cidr: 172.31.0.0/16, vpc_id: vpc-0a1b2c3d, vpce_id: vpce-0123456789abcdef0}
identities:
  accounts: [{id: "111122223333"}, {id: "444455556666"}]
  users:
    - arn: "arn:aws:iam::111122223333:user/alice"
      policies:
        - Version: "2012-10-17"
          Statement: [{Effect: Allow, Action: "execute-api:Invoke", Resource: "*"}]
    - arn: "arn:aws:iam::111122223333:user/bob"
    - arn: "arn:aws:iam::444455556666:user/carol"
  access_keys:
    - {id: AKIAALICE00000000001, secret: alice-secret, owner: "arn:aws:iam::111122223333:user/alice"}
    - {id: AKIABOB0000000000001, secret: bob-secret, owner: "arn:aws:iam::111122223333:user/bob"}
    - {id: AKIACAROL00000000001, secret: carol-secret, owner: "arn:aws:iam::444455556666:user/carol"}
api_keys:
  - {id: k-good, value: good-key-0123456789abcdef}
  - {id: k-off, value: off-key-0123456789abcdef, enabled: false}
  - {id: k-stray, value: stray-key-0123456789abcdef}
  - {id: k-quota, value: quota-key-0123456789abcdef}
usage_plans:
  - id: gold
    api_stages: [{api: a1b2c3d4e5, stage: prod}]
    throttle: {rate: 0.001, burst: 1}
    keys: [k-good, k-off]
  - id: tiny
    api_stages: [{api: a1b2c3d4e5, stage: prod}]
    quota: {limit: 1, period: DAY}
    keys: [k-quota]
apis:
  - id: a1b2c3d4e5
    stages:
      prod: {}
      beta: {method_throttling: {"/pets/GET": {rate: 0.001, burst: 1}}}
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: Everyone
          Effect: Allow
          Principal: "*"
          Action: "execute-api:Invoke"
          Resource: "execute-api:/*"
        - Sid: NoAdmin
          Effect: Deny
          Principal: "*"
          Action: "execute-api:Invoke"
          Resource: "execute-api:/*/*/admin"
        - Sid: NoBlockedNet
          Effect: Deny
          Principal: "*"
          Action: "execute-api:Invoke"
          Resource: "execute-api:/*"
          Condition: {IpAddress: {"aws:SourceIp": 203.0.113.0/24}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK}}
      - {path: "/pets/{id}", method: ANY, integration: {type: MOCK}}
      - {path: /admin, method: GET, integration: {type: MOCK}}
      - {path: /signed, method: ANY, authorization: AWS_IAM, integration: {type: MOCK}}
      - {path: "/signed/{item}", method: ANY, authorization: AWS_IAM, integration: {type: MOCK}}
      - {path: /keyed, method: GET, api_key_required: true, integration: {type: MOCK}}
      - path: /limited
        method: GET
        rate_limit: {by: ip, rate: 0.001, burst: 1}
        integration: {type: MOCK}
  - id: f6g7h8i9j0
    endpoint_type: PRIVATE
    stages: {prod: {}}
    policy:
      Version: "2012-10-17"
      Statement:
        - {Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*"}
    routes:
      - {path: /ping, method: GET, integration: {type: MOCK}}
"""

# the same gateway, answering unmatched requests with 404 (gateway.unmatched_status)
CONFIG_404 = CONFIG.replace("  trusted_proxies:", "  unmatched_status: 404\n  trusted_proxies:", 1)

SNAPSHOT = make_snapshot(CONFIG)
SNAPSHOT_404 = make_snapshot(CONFIG_404)


@dataclass(frozen=True)
class Answer:
    """What a stage answers: ``None`` (go on), NEED_BODY, or a gateway response."""

    status: int | None = None  # None: the stage lets the request through
    error_type: str | None = None  # x-amzn-ErrorType
    message: str | None = None  # the body's message (a prefix of it, for denials)
    need_body: bool = False


GO_ON = Answer()
MISSING_TOKEN = Answer(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
NOT_FOUND = Answer(404, "NotFoundException", "Not Found")
FORBIDDEN = Answer(403, "ForbiddenException", "Forbidden")
THROTTLED = Answer(429, "TooManyRequestsException", "Too Many Requests")
NEEDS_BODY = Answer(need_body=True)


def _denied(caller: str, tail: str, *, explicit: bool) -> Answer:
    arn = f"arn:aws:execute-api:us-east-1:********{ACCOUNT[-4:]}:{API}/{tail}"
    text = f"User: {caller} is not authorized to perform: execute-api:Invoke on resource: {arn}"
    return Answer(403, "AccessDeniedException", text + (" with an explicit deny" if explicit else ""))


def check(result: StageResult, answer: Answer) -> None:
    """The stage's answer is the one expected (and, for a response, its body says so)."""
    if answer.need_body:
        assert result is NEED_BODY, result
        return
    if answer.status is None:
        assert result is None, result
        return
    assert type(result) is R.GatewayResponse, result
    assert (result.status, result.error_type) == (answer.status, answer.error_type), result
    if answer.message is not None:
        body = json.loads(result.body)
        assert body.get("message", body.get("Message")) == answer.message, body


def _exchange(
    method: str,
    target: str,
    headers: dict[str, str] | None,
    peer: str,
    *,
    services: Services | None = None,
    snapshot: Snapshot = SNAPSHOT,
    host: str | None = HOST,
) -> Exchange:
    all_headers = {"Host": host} if host is not None else {}
    all_headers.update(headers or {})
    return make_exchange(snapshot, services or make_services(), method, target, all_headers, peer=peer)


# --- route ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteCase:
    id: str
    target: str
    answer: Answer = GO_ON
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    host: str | None = HOST
    snapshot: str = "403"  # which gateway: unmatched answered 403 (AWS's) or 404
    # what the route stage writes when it lets the request through
    api: str | None = API
    stage: str | None = "prod"
    resource: str | None = None  # the route's resource path
    path: str | None = None  # the canonical path after the stage
    params: dict[str, str] | None = None


ROUTE_CASES = [
    RouteCase("plain", "/prod/pets", resource="/pets", path="/pets", params={}),
    RouteCase(
        "path-parameter-any-method",
        "/prod/pets/7",
        method="DELETE",
        resource="/pets/{id}",
        path="/pets/7",
        params={"id": "7"},
    ),
    RouteCase("second-stage", "/beta/pets", stage="beta", resource="/pets", path="/pets", params={}),
    RouteCase("query-not-in-path", "/prod/pets?x=/admin", resource="/pets", path="/pets", params={}),
    RouteCase(
        "api-id-header",
        "/prod/pets",
        host="localhost",
        headers={"x-apigw-api-id": " A1B2C3D4E5 "},
        resource="/pets",
        path="/pets",
        params={},
    ),
    RouteCase(
        "localstack-path",
        f"/restapis/{API}/prod/_user_request_/pets",
        host="localhost",
        resource="/pets",
        path="/pets",
        params={},
    ),
    RouteCase(
        "private-api-host", "/prod/ping", host=PRIVATE_HOST, api=PRIVATE, resource="/ping", path="/ping"
    ),
    # the attacker's paths land on the resource they mean, which the policy then judges
    RouteCase("dot-dot-to-admin", "/prod/a/../admin", resource="/admin", path="/admin", params={}),
    RouteCase("encoded-dot-dot-to-admin", "/prod/a/%2e%2e/admin", resource="/admin", path="/admin"),
    RouteCase("dot-segment", "/prod/./admin", resource="/admin", path="/admin"),
    RouteCase(
        "dot-dot-into-another-stage", "/prod/../beta/pets", stage="beta", resource="/pets", path="/pets"
    ),
    RouteCase("encoded-letter", "/prod/%61dmin", resource="/admin", path="/admin"),
    RouteCase("doubled-and-trailing-slash", "/prod//admin/", resource="/admin", path="/admin"),
    RouteCase(
        "encoded-path-parameter",
        "/prod/pets/a%20b",
        resource="/pets/{id}",
        path="/pets/a b",
        params={"id": "a b"},
    ),
    # requests that go nowhere
    RouteCase("unknown-stage", "/nostage/pets", MISSING_TOKEN, api=API, stage=None),
    RouteCase("stage-name-case", "/PROD/pets", MISSING_TOKEN, api=API, stage=None),
    RouteCase("dot-dot-out-of-the-stage", "/prod/../admin", MISSING_TOKEN, api=API, stage=None),
    RouteCase("unknown-resource", "/prod/nothing", MISSING_TOKEN),
    RouteCase("resource-name-case", "/prod/ADMIN", MISSING_TOKEN),
    RouteCase("method-not-routed", "/prod/pets", MISSING_TOKEN, method="POST"),
    RouteCase("root-only", "/", MISSING_TOKEN, api=API, stage=None),
    RouteCase(
        "unknown-api-header",
        "/prod/pets",
        MISSING_TOKEN,
        headers={"x-apigw-api-id": "zzzzzzzzzz"},
        api=None,
        stage=None,
    ),
    RouteCase(
        "unknown-api-host",
        "/prod/pets",
        MISSING_TOKEN,
        host="zzzzzzzzzz.execute-api.us-east-1.amazonaws.com",
        api=None,
        stage=None,
    ),
    RouteCase("no-api-named-two-apis", "/prod/pets", MISSING_TOKEN, host="localhost", api=None, stage=None),
    RouteCase(
        "localstack-path-without-marker",
        f"/restapis/{API}/prod/pets",
        MISSING_TOKEN,
        host="localhost",
        api=None,
        stage=None,
    ),
    RouteCase(
        "encoded-slash",
        "/prod/a/..%2fadmin",
        Answer(400, "BadRequestException", "Bad Request: an encoded '/' or '\\' (%2F, %5C) in the path"),
        api=API,
        stage=None,
    ),
    RouteCase(
        "semicolon-parameter",
        "/prod/..;/admin",
        Answer(
            400,
            "BadRequestException",
            "Bad Request: a ';' in the path (backends read it as a parameter separator)",
        ),
        api=API,
        stage=None,
    ),
    RouteCase(
        "unmatched-with-a-bad-authorization",
        "/prod/nothing",
        Answer(403, "IncompleteSignatureException"),
        headers={"Authorization": "Bearer abc"},
    ),
    RouteCase(
        "arn-over-the-quota",
        "/prod/pets/" + "x" * 1600,
        Answer(414, "RequestUriTooLongException", "Request-URI Too Long"),
    ),
    RouteCase("unknown-stage-404", "/nostage/pets", NOT_FOUND, snapshot="404", api=API, stage=None),
    RouteCase(
        "unknown-api-404",
        "/prod/pets",
        NOT_FOUND,
        headers={"x-apigw-api-id": "zzzzzzzzzz"},
        snapshot="404",
        api=None,
        stage=None,
    ),
    RouteCase("unknown-resource-404", "/prod/nothing", NOT_FOUND, snapshot="404"),
]


@pytest.mark.parametrize("case", ROUTE_CASES, ids=lambda c: c.id)
def test_route(case: RouteCase) -> None:
    snapshot = SNAPSHOT_404 if case.snapshot == "404" else SNAPSHOT
    # twice on one snapshot: the second answer comes from the route memo (kept on second sight)
    for _ in range(3):
        ex = _exchange(case.method, case.target, case.headers, PEER, snapshot=snapshot, host=case.host)
        check(run_stage(stage_index("route"), ex), case.answer)
        assert (ex.api.id if ex.api else None) == case.api
        assert (ex.stage.name if ex.stage else None) == case.stage
        if case.answer.status is not None:  # nothing routed: nothing a later stage could use
            assert (ex.route, ex.arn, ex.params) == (None, None, None)
            # only the path asked for on a known stage, for $context.path in the answer and log
            expected = "/" + case.target.split("/", 2)[2] if ex.stage is not None else None
            assert ex.path == expected
            continue
        assert ex.route is not None
        assert ex.route.resource_path == case.resource
        assert ex.path == case.path
        assert case.path is not None
        assert ex.segments == tuple(case.path.strip("/").split("/"))
        if case.params is not None:
            assert ex.params == case.params
        api_id = case.api
        assert (
            ex.arn
            == f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/{case.stage}/{case.method}{case.path}"
        )


# --- context -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextCase:
    id: str
    peer: str
    headers: dict[str, str] = field(default_factory=dict)
    answer: Answer = GO_ON
    host: str = HOST
    target: str = "/prod/pets"
    source_ip: str | None = None  # the client address the stage settles on
    keys: dict[str, str] = field(default_factory=dict)  # condition keys that must be there
    absent: tuple[str, ...] = ()  # condition keys that must not


CONTEXT_CASES = [
    ContextCase(
        "direct-client",
        PEER,
        source_ip=PEER,
        keys={"aws:sourceip": PEER, "aws:securetransport": "false"},
        absent=("aws:sourcevpce", "aws:vpcsourceip", "aws:useragent", "aws:referer", "aws:principaltype"),
    ),
    ContextCase(
        "user-agent-and-referer",
        PEER,
        {"User-Agent": "curl/8.0", "Referer": "https://example.com/"},
        keys={"aws:useragent": "curl/8.0", "aws:referer": "https://example.com/"},
    ),
    ContextCase(
        "trusted-proxy-forwards",
        PROXY,
        {"X-Forwarded-For": "192.0.2.44"},
        source_ip="192.0.2.44",
        keys={"aws:sourceip": "192.0.2.44"},
    ),
    ContextCase(
        "trusted-proxy-chain",
        PROXY,
        {"X-Forwarded-For": "192.0.2.44, 10.9.9.9"},
        source_ip="192.0.2.44",
        keys={"aws:sourceip": "192.0.2.44"},
    ),
    ContextCase(
        "left-most-hop-not-believed",
        PROXY,
        {"X-Forwarded-For": "192.0.2.1, 203.0.113.9"},
        source_ip=BLOCKED,
        keys={"aws:sourceip": BLOCKED},
    ),
    ContextCase("hop-with-port", PROXY, {"X-Forwarded-For": "192.0.2.44:5555"}, source_ip="192.0.2.44"),
    ContextCase(
        "unreadable-hop-stops-the-walk",
        PROXY,
        {"X-Forwarded-For": "192.0.2.44, not-an-address"},
        source_ip=PROXY,
        keys={"aws:sourceip": PROXY},
    ),
    ContextCase(
        "spoofed-forwarded-for-from-untrusted-peer",
        ROGUE,
        {"X-Forwarded-For": "10.1.2.3"},
        source_ip=ROGUE,
        keys={"aws:sourceip": ROGUE},
    ),
    ContextCase(
        "spoofed-forwarded-for-from-denied-network",
        BLOCKED,
        {"X-Forwarded-For": "192.0.2.1"},
        source_ip=BLOCKED,
        keys={"aws:sourceip": BLOCKED},
    ),
    ContextCase(
        "forwarded-proto-from-trusted-proxy",
        PROXY,
        {"X-Forwarded-Proto": "HTTPS"},
        source_ip=PROXY,
        keys={"aws:securetransport": "true"},
    ),
    ContextCase(
        "forwarded-proto-http-from-trusted-proxy",
        PROXY,
        {"X-Forwarded-Proto": "http"},
        keys={"aws:securetransport": "false"},
    ),
    ContextCase(
        "spoofed-forwarded-proto-from-untrusted-peer",
        ROGUE,
        {"X-Forwarded-Proto": "https"},
        keys={"aws:securetransport": "false"},
    ),
    ContextCase(
        "rfc7239-forwarded-ignored-when-x-forwarded-for-is-configured",
        PROXY,
        {"Forwarded": "for=192.0.2.44"},
        source_ip=PROXY,
    ),
    ContextCase(
        "private-api-through-vpc-endpoint",
        IN_VPC,
        host=PRIVATE_HOST,
        target="/prod/ping",
        source_ip=IN_VPC,
        keys={
            "aws:sourcevpce": "vpce-0123456789abcdef0",
            "aws:sourcevpc": "vpc-0a1b2c3d",
            "aws:vpcsourceip": IN_VPC,
        },
        absent=("aws:sourceip",),
    ),
    ContextCase("public-api-through-vpc-endpoint", IN_VPC, answer=FORBIDDEN),
    ContextCase("private-api-from-outside", PEER, host=PRIVATE_HOST, target="/prod/ping", answer=FORBIDDEN),
    ContextCase(
        "private-api-spoofed-vpc-address",
        ROGUE,
        {"X-Forwarded-For": IN_VPC},
        host=PRIVATE_HOST,
        target="/prod/ping",
        answer=FORBIDDEN,
    ),
]


@pytest.mark.parametrize("case", CONTEXT_CASES, ids=lambda c: c.id)
def test_context(case: ContextCase) -> None:
    ex = _exchange("GET", case.target, case.headers, case.peer, host=case.host)
    check(run_to("context", ex), case.answer)
    if case.answer.status is not None:
        assert ex.context is None  # no condition keys: nothing can be authorized on them
        return
    if case.source_ip is not None:
        assert ex.source_ip == case.source_ip
    ctx = ex.context
    for key, value in case.keys.items():
        assert ctx.get(key) == value, (key, ctx)
    for key in case.absent:
        assert key not in ctx, (key, ctx)
    assert ctx["aws:epochtime"] == str(int(ex.wall))
    assert ctx["aws:currenttime"].endswith("Z")


# --- authenticate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signing:
    """How a case's request is signed (botocore's SigV4Auth) and what is then sent."""

    keys: tuple[str, str] = ALICE
    body: bytes = b""  # the body signed
    sent_body: bytes | None = None  # the body sent (default: the one signed)
    sent_target: str | None = None  # the path sent (default: the one signed)
    unsigned_payload: bool = False
    host: str = HOST  # the Host signed
    sent_host: str | None = None  # the Host sent (default: the one signed)


@dataclass(frozen=True)
class AuthCase:
    id: str
    target: str
    answer: Answer = GO_ON
    method: str = "GET"
    signing: Signing | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # the whole body, as the connection hands it after NEED_BODY
    caller: str | None = None  # the verified caller


def _signed(case: AuthCase) -> tuple[str, dict[str, str], bytes | None]:
    """The target, headers and (for NEED_BODY) body of a case."""
    signing = case.signing
    if signing is None:
        return case.target, case.headers, case.body
    headers = signed_headers(
        *signing.keys,
        case.method,
        signing.host,
        case.target,
        body=signing.body,
        headers=case.headers,
        unsigned_payload=signing.unsigned_payload,
    )
    if signing.sent_host is not None:
        headers["Host"] = signing.sent_host
    sent = signing.sent_body if signing.sent_body is not None else signing.body
    return signing.sent_target or case.target, headers, sent if case.body is None else case.body


MISMATCH = Answer(403, "InvalidSignatureException")
ALICE_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"

AUTH_CASES = [
    AuthCase("none-route", "/prod/pets"),
    AuthCase("none-route-ignores-authorization", "/prod/pets", headers={"Authorization": "Bearer x"}),
    AuthCase("unsigned", "/prod/signed", MISSING_TOKEN),
    AuthCase(
        "signed-needs-the-body",
        "/prod/signed",
        NEEDS_BODY,
        method="POST",
        signing=Signing(body=b'{"a": 1}'),  # its Content-Length announces the body
        body=None,  # the connection has not read the body yet
    ),
    AuthCase("signed-get", "/prod/signed", signing=Signing(), caller=ALICE_ARN),
    AuthCase(
        "signed-post-with-body",
        "/prod/signed",
        method="POST",
        signing=Signing(body=b'{"a": 1}'),
        caller=ALICE_ARN,
    ),
    AuthCase(
        "unsigned-payload-needs-no-body",
        "/prod/signed",
        method="POST",
        signing=Signing(body=b"anything", unsigned_payload=True),
        caller=ALICE_ARN,
    ),
    AuthCase(
        "tampered-body",
        "/prod/signed",
        MISMATCH,
        method="POST",
        signing=Signing(body=b'{"amount": 1}', sent_body=b'{"amount": 1000}'),
    ),
    AuthCase("tampered-path", "/prod/signed/1", MISMATCH, signing=Signing(sent_target="/prod/signed/2")),
    AuthCase("tampered-query", "/prod/signed?a=1", MISMATCH, signing=Signing(sent_target="/prod/signed?a=2")),
    AuthCase(
        "dot-dot-in-a-signed-path-served-as-signed",
        "/prod/signed/x/../1",
        signing=Signing(unsigned_payload=True),
        caller=ALICE_ARN,
    ),
    AuthCase(
        "encoded-dot-dot-in-a-signed-path",  # covers /prod/signed/%2e%2e/signed/1, routed /prod/signed/1
        "/prod/signed/%2e%2e/signed/1",
        Answer(400, "BadRequestException"),
        signing=Signing(unsigned_payload=True),
    ),
    AuthCase("wrong-secret", "/prod/signed", MISMATCH, signing=Signing(keys=(ALICE[0], "not-the-secret"))),
    AuthCase(
        "unknown-access-key",
        "/prod/signed",
        Answer(403, "AccessDeniedException", "The security token included in the request is invalid."),
        signing=Signing(keys=UNKNOWN),
    ),
    AuthCase(
        "signed-for-another-host",
        "/prod/signed",
        MISMATCH,
        signing=Signing(host=f"{API}.execute-api.eu-west-1.amazonaws.com", sent_host=HOST),
    ),
    AuthCase(
        "bearer-token-on-sigv4-route",
        "/prod/signed",
        Answer(403, "IncompleteSignatureException"),
        headers={"Authorization": "Bearer abc"},
        body=b"",
    ),
    # a malformed Authorization header is refused before any body is read (an unauthenticated
    # client must not make the gateway buffer its body), and so is an encoded dot segment
    AuthCase(
        "bearer-token-refused-before-the-body",
        "/prod/signed",
        Answer(403, "IncompleteSignatureException"),
        headers={"Authorization": "Bearer abc", "Content-Length": "100000"},
    ),
    AuthCase(
        "encoded-dot-dot-refused-before-the-body",
        "/prod/signed/%2e%2e/signed/1",
        Answer(400, "BadRequestException"),
        signing=Signing(),
    ),
    AuthCase(
        "presigned-query-without-signature",
        "/prod/signed?X-Amz-Algorithm=AWS4-HMAC-SHA256",
        Answer(403, "IncompleteSignatureException"),
    ),
]


@pytest.mark.parametrize("case", AUTH_CASES, ids=lambda c: c.id)
def test_authenticate(case: AuthCase) -> None:
    target, headers, body = _signed(case)
    ex = _exchange(case.method, target, headers, PEER, host=None if case.signing else HOST)
    run_before("authenticate", ex)
    ex.body = body if case.answer != NEEDS_BODY else None
    check(run_stage(stage_index("authenticate"), ex), case.answer)
    if case.caller is None:
        assert ex.identity is None
        assert "aws:principalarn" not in ex.context
        return
    assert ex.identity is not None
    assert ex.identity.caller_arn == case.caller
    assert ex.access_key_id == ALICE[0]
    assert ex.context["aws:principalarn"] == case.caller
    assert ex.context["aws:username"] == "alice"


def test_authenticate_asks_for_the_body_once_then_verifies_it() -> None:
    """NEED_BODY, then (the connection has read the body and runs the stage again) the answer."""
    headers = signed_headers(*ALICE, "PUT", HOST, "/prod/signed", body=b"payload")
    ex = _exchange("PUT", "/prod/signed", headers, PEER, host=None)
    run_before("authenticate", ex)
    assert run_stage(stage_index("authenticate"), ex) is NEED_BODY
    assert ex.identity is None
    ex.body = b"payload"
    assert run_stage(stage_index("authenticate"), ex) is None
    assert ex.identity is not None
    assert ex.identity.caller_arn == ALICE_ARN


@pytest.mark.parametrize(
    ("announced", "waits"),
    [
        ({}, False),  # no Content-Length, no Transfer-Encoding: there is no body
        ({"Content-Length": "0"}, False),
        ({"Content-Length": "2"}, True),
        ({"Transfer-Encoding": "chunked"}, True),
        ({"Content-Length": "00"}, True),  # not the plain "0": read, as any other length
    ],
    ids=["no-body", "length-0", "length-2", "chunked", "length-00"],
)
def test_a_signed_request_waits_for_the_body_its_head_announces(
    announced: dict[str, str], waits: bool
) -> None:
    """A head that announces no body is verified at once against the empty body (what buffering
    would hand over); one that announces a body waits for it, however short. A client cannot
    get its signature checked against an empty body while a body follows: a signature over the
    empty body still has to match the body that comes."""
    headers = signed_headers(*ALICE, "GET", HOST, "/prod/signed")
    ex = _exchange("GET", "/prod/signed", {**headers, **announced}, PEER, host=None)
    run_before("authenticate", ex)
    assert ex.body is None
    answer = run_stage(stage_index("authenticate"), ex)
    if waits:
        assert answer is NEED_BODY
        assert ex.identity is None
        ex.body = b"{}"  # a body the signature (over the empty body) does not cover
        check(run_stage(stage_index("authenticate"), ex), MISMATCH)
    else:
        assert answer is None
        assert ex.identity is not None
        assert ex.identity.caller_arn == ALICE_ARN
        assert ex.body is None  # nothing was read: the stages after it see what they saw


# --- authorize -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizeCase:
    id: str
    target: str
    answer: Answer = GO_ON
    effect: DecisionEffect | None = DecisionEffect.ALLOW  # of the resource policy
    sids: tuple[str | None, ...] = ("Everyone",)  # the determining statements
    peer: str = PEER
    headers: dict[str, str] = field(default_factory=dict)
    keys: tuple[str, str] | None = None  # sign with these (the /signed route)
    host: str = HOST
    identity_effect: DecisionEffect | None = None  # the caller's identity policies


AUTHORIZE_CASES = [
    AuthorizeCase("allowed", "/prod/pets"),
    AuthorizeCase("allowed-path-parameter", "/prod/pets/7"),
    AuthorizeCase(
        "denied-resource",
        "/prod/admin",
        _denied("anonymous", "prod/GET/admin", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoAdmin",),
    ),
    AuthorizeCase(
        "dot-dot-to-denied-resource",
        "/prod/a/../admin",
        _denied("anonymous", "prod/GET/admin", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoAdmin",),
    ),
    AuthorizeCase(
        "encoded-to-denied-resource",
        "/prod/%61dmin/",
        _denied("anonymous", "prod/GET/admin", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoAdmin",),
    ),
    AuthorizeCase(
        "denied-network-through-trusted-proxy",
        "/prod/pets",
        _denied("anonymous", "prod/GET/pets", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoBlockedNet",),
        peer=PROXY,
        headers={"X-Forwarded-For": BLOCKED},
    ),
    AuthorizeCase(
        "denied-network-spoofing-forwarded-for",
        "/prod/pets",
        _denied("anonymous", "prod/GET/pets", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoBlockedNet",),
        peer=BLOCKED,
        headers={"X-Forwarded-For": "192.0.2.1"},
    ),
    AuthorizeCase(
        "forged-left-most-hop-through-trusted-proxy",
        "/prod/pets",
        _denied("anonymous", "prod/GET/pets", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoBlockedNet",),
        peer=PROXY,
        headers={"X-Forwarded-For": f"192.0.2.1, {BLOCKED}"},
    ),
    AuthorizeCase(
        "signed-caller-allowed",
        "/prod/signed",
        keys=ALICE,
        identity_effect=DecisionEffect.ALLOW,
    ),
    AuthorizeCase(
        "signed-same-account-without-identity-policy",  # the resource policy's allow suffices
        "/prod/signed",
        keys=BOB,
        identity_effect=DecisionEffect.IMPLICIT_DENY,
    ),
    AuthorizeCase(
        "signed-other-account-without-identity-policy",
        "/prod/signed",
        _denied(f"arn:aws:iam::{OTHER}:user/carol", "prod/GET/signed", explicit=False),
        keys=CAROL,
        identity_effect=DecisionEffect.IMPLICIT_DENY,
    ),
    AuthorizeCase(
        "signed-caller-from-denied-network",
        "/prod/signed",
        _denied(ALICE_ARN, "prod/GET/signed", explicit=True),
        DecisionEffect.EXPLICIT_DENY,
        ("NoBlockedNet",),
        peer=BLOCKED,
        keys=ALICE,
        identity_effect=DecisionEffect.ALLOW,
    ),
    AuthorizeCase(
        "private-api-through-vpc-endpoint",
        "/prod/ping",
        sids=(None,),
        peer=IN_VPC,
        host=PRIVATE_HOST,
    ),
]


@pytest.mark.parametrize("case", AUTHORIZE_CASES, ids=lambda c: c.id)
def test_authorize(case: AuthorizeCase) -> None:
    headers = dict(case.headers)
    if case.keys is not None:
        headers.update(signed_headers(*case.keys, "GET", case.host, case.target, unsigned_payload=True))
    ex = _exchange("GET", case.target, headers, case.peer, host=None if case.keys else case.host)
    check(run_to("authorize", ex), case.answer)
    decision = ex.decision
    assert decision is not None
    assert decision.effect is case.effect
    assert tuple(ref.sid for ref in decision.determining) == case.sids
    assert ex.policy_mode == "enforce"
    assert not ex.would_deny
    if case.identity_effect is None:
        assert ex.identity_decision is None
    else:
        assert ex.identity_decision is not None
        assert ex.identity_decision.effect is case.identity_effect


# --- api_key -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCase:
    id: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    answer: Answer = GO_ON
    key_id: str | None = None  # the key the stage accepted


KEY_CASES = [
    KeyCase("not-required", "/prod/pets"),
    KeyCase("not-required-key-ignored", "/prod/pets", {"x-api-key": GOOD_KEY}),
    KeyCase("good-key", "/prod/keyed", {"x-api-key": GOOD_KEY}, key_id="k-good"),
    KeyCase("header-name-case", "/prod/keyed", {"X-API-Key": GOOD_KEY}, key_id="k-good"),
    KeyCase("quota-plan-key", "/prod/keyed", {"x-api-key": QUOTA_KEY}, key_id="k-quota"),
    KeyCase("missing", "/prod/keyed", answer=FORBIDDEN),
    KeyCase("empty", "/prod/keyed", {"x-api-key": ""}, answer=FORBIDDEN),
    KeyCase("unknown", "/prod/keyed", {"x-api-key": "guess-0123456789abcdef"}, answer=FORBIDDEN),
    KeyCase("value-case", "/prod/keyed", {"x-api-key": GOOD_KEY.upper()}, answer=FORBIDDEN),
    KeyCase("key-id-instead-of-value", "/prod/keyed", {"x-api-key": "k-good"}, answer=FORBIDDEN),
    KeyCase("disabled", "/prod/keyed", {"x-api-key": OFF_KEY}, answer=FORBIDDEN),
    KeyCase("in-no-usage-plan", "/prod/keyed", {"x-api-key": STRAY_KEY}, answer=FORBIDDEN),
    KeyCase("in-the-query-not-the-header", f"/prod/keyed?x-api-key={GOOD_KEY}", answer=FORBIDDEN),
    KeyCase("plan-not-for-this-stage", "/beta/keyed", {"x-api-key": GOOD_KEY}, answer=FORBIDDEN),
]


@pytest.mark.parametrize("case", KEY_CASES, ids=lambda c: c.id)
def test_api_key(case: KeyCase) -> None:
    ex = _exchange("GET", case.target, case.headers, PEER)
    result = run_to("api_key", ex)
    check(result, case.answer)
    if case.answer.status is not None:
        assert type(result) is R.GatewayResponse
        assert result.response_type == "INVALID_API_KEY"
    assert (ex.api_key.id if ex.api_key is not None else None) == case.key_id


# --- throttle ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    peer: str = PEER
    headers: dict[str, str] = field(default_factory=dict)
    answer: Answer = GO_ON
    level: str | None = None  # throttled_by


@dataclass(frozen=True)
class ThrottleCase:
    id: str
    target: str
    calls: tuple[Call, ...]  # one after the other, on one process's backend
    buckets: int = 0  # the backend's buckets afterwards


QUOTA = Answer(429, "LimitExceededException", "Limit Exceeded")
KEYED = {"x-api-key": GOOD_KEY}

THROTTLE_CASES = [
    ThrottleCase("nothing-limited", "/prod/pets", (Call(), Call(), Call())),
    ThrottleCase(
        "route-limit-burst-1",
        "/prod/limited",
        (Call(), Call(answer=THROTTLED, level="route-ip")),
        buckets=1,
    ),
    ThrottleCase(
        "route-limit-per-client",
        "/prod/limited",
        (
            Call(peer="192.0.2.1"),
            Call(peer="192.0.2.2"),
            Call(peer="192.0.2.1", answer=THROTTLED, level="route-ip"),
        ),
        buckets=2,
    ),
    ThrottleCase(
        "spoofed-forwarded-for-shares-the-peer-bucket",
        "/prod/limited",
        (
            Call(peer=ROGUE, headers={"X-Forwarded-For": "192.0.2.1"}),
            Call(peer=ROGUE, headers={"X-Forwarded-For": "192.0.2.2"}, answer=THROTTLED, level="route-ip"),
        ),
        buckets=1,
    ),
    ThrottleCase(
        "clients-behind-trusted-proxy-apart",
        "/prod/limited",
        (
            Call(peer=PROXY, headers={"X-Forwarded-For": "192.0.2.1"}),
            Call(peer=PROXY, headers={"X-Forwarded-For": "192.0.2.2"}),
            Call(peer=PROXY, headers={"X-Forwarded-For": "192.0.2.1"}, answer=THROTTLED, level="route-ip"),
        ),
        buckets=2,
    ),
    ThrottleCase(
        "stage-method-limit",
        "/beta/pets",
        (Call(), Call(peer="192.0.2.99", answer=THROTTLED, level="stage")),
        buckets=1,
    ),
    ThrottleCase(
        "usage-plan-limit",
        "/prod/keyed",
        (Call(headers=KEYED), Call(peer="192.0.2.99", headers=KEYED, answer=THROTTLED, level="usage-plan")),
        buckets=1,
    ),
    ThrottleCase(
        "usage-plan-quota",
        "/prod/keyed",
        (
            Call(headers={"x-api-key": QUOTA_KEY}),
            Call(headers={"x-api-key": QUOTA_KEY}, answer=QUOTA, level="quota"),
        ),
    ),
]


@pytest.mark.parametrize("case", THROTTLE_CASES, ids=lambda c: c.id)
def test_throttle(case: ThrottleCase) -> None:
    services = make_services()
    for call in case.calls:
        ex = _exchange("GET", case.target, call.headers, call.peer, services=services)
        result = run_to("throttle", ex)
        check(result, call.answer)
        assert ex.throttled_by == call.level
        if call.answer.status is not None:
            assert type(result) is R.GatewayResponse
            retry = dict(result.headers).get("Retry-After")
            assert retry is not None
            assert int(retry) >= 1
    backend = services.throttler
    assert isinstance(backend, MemoryBackend)
    assert len(backend.buckets) == case.buckets


def test_throttle_counts_what_it_refuses() -> None:
    services = make_services()
    for _ in range(2):
        run_to("throttle", _exchange("GET", "/prod/limited", {}, PEER, services=services))
    counters = {
        (name, tuple(map(tuple, labels))): value
        for name, labels, value in services.metrics.export()["counters"]
    }
    key = ("iamgate_throttled_total", (("api", API), ("stage", "prod"), ("level", "route-ip")))
    assert counters.get(key) == 1, counters
