"""The path-attack corpus, end to end: raw request lines through the real gateway to a recording backend.

Policy: allow ``execute-api:/*``, explicitly deny ``/*/*/admin``, ``/*/*/admin/*`` (so any path with
an ``admin`` segment) and ``/*/GET/secret`` (exactly ``/secret``, GET only). One ``ANY /{proxy+}``
route proxies to a backend that records the raw request target it received.

Every variant is written to the socket byte for byte (no client library normalises anything) and
checked against the invariant of docs/security.md "Paths and canonicalisation":

* a refusal (400, 403) never reaches the backend;
* when the backend is reached, the target it received, decoded once, is exactly the path the
  policy judged (the access log's ``path`` is ``/{stage}{judged path}``), and a *lenient* backend
  (tests/pipeline/lenient.py: decodes repeatedly, re-splits at ``?``/``#``, stops at NUL, reads
  ``\\`` as ``/``, strips ``;params``, merges slashes, resolves dots) reads it as the same path --
  so never as a path the policy denies;
* a denial names the path the gateway judged, and that path is one the policy denies.

Each variant also pins its exact outcome (denied / unmatched / bad request / forwarded as X).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

from tests.gateway.conftest import Backend, Gateway, raw_request, simple_config, start_gateway, wait_for_log
from tests.pipeline.lenient import lenient_segments

API = "a1b2c3d4e5"
ARN_PREFIX = f"arn:aws:execute-api:us-east-1:********3333:{API}"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": ["execute-api:/*/*/admin", "execute-api:/*/*/admin/*"],
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*/GET/secret",
        },
    ],
}

DENIED, UNMATCHED, BAD, FORWARDED = "denied", "unmatched", "bad request", "forwarded"


def forbidden(segments: list[str], method: str) -> bool:
    """What POLICY denies, on path segments after the stage."""
    return "admin" in segments or (method == "GET" and segments == ["secret"])


@dataclass(frozen=True)
class V:
    """One attack: a raw request target and what the gateway must do with it."""

    id: str
    target: bytes
    expect: str
    why: str  # what the variant tries
    judged: str = "admin"  # DENIED: the path in the method ARN, without the leading slash
    forwarded: str | None = None  # FORWARDED: the exact target the backend must receive
    method: bytes = b"GET"
    reason: str | None = None  # BAD: words of the refusal's reason
    case_note: bool = False  # the gateway is case-sensitive: a case-insensitive backend is not protected


# fmt: off
BASE: list[V] = [
    # --- controls: ordinary requests pass, so a pass in the harness would be seen ---
    V("control-plain-path", b"/prod/pets/7", FORWARDED, "an ordinary path is forwarded unchanged",
      forwarded="/pets/7"),
    V("control-admin-prefix-name", b"/prod/administrator", FORWARDED,
      "a segment that merely starts with 'admin' is another resource", forwarded="/administrator"),
    V("control-secret-other-verb", b"/prod/secret", FORWARDED, "the secret deny is for GET only",
      method=b"POST", forwarded="/secret"),
    # --- the plain denied paths ---
    V("admin", b"/prod/admin", DENIED, "the denied path itself"),
    V("admin-subpath", b"/prod/admin/users", DENIED, "below the denied path", judged="admin/users"),
    V("admin-deeper", b"/prod/x/admin", DENIED, "'*' spans '/': an admin segment anywhere is denied",
      judged="x/admin"),
    V("secret", b"/prod/secret", DENIED, "the exact GET deny", judged="secret"),
    # --- slashes ---
    V("trailing-slash", b"/prod/admin/", DENIED, "a trailing slash, which AWS would keep in the ARN"),
    V("double-slash", b"/prod//admin", DENIED, "an empty segment before the denied one"),
    V("many-slashes", b"/prod///admin//", DENIED, "runs of slashes everywhere"),
    V("leading-double-slash", b"//prod/admin", DENIED, "an empty segment before the stage"),
    V("secret-trailing-slash", b"/prod/secret/", DENIED,
      "the exact deny: AWS would judge 'secret/' and allow it; the canonical form drops the slash",
      judged="secret"),
    V("secret-double-slash", b"/prod//secret", DENIED, "the exact deny with an empty segment",
      judged="secret"),
    # --- dot segments ---
    V("dot-before-stage", b"/./prod/admin", DENIED, "a '.' segment before the stage"),
    V("dot-segment", b"/prod/./admin", DENIED, "a '.' segment before the denied one"),
    V("dotdot-segment", b"/prod/x/../admin", DENIED, "climb out of an allowed segment into admin"),
    V("dot-after-admin", b"/prod/admin/.", DENIED, "a '.' segment after the denied one"),
    V("dotdot-after-admin", b"/prod/admin/x/..", DENIED, "climb back into admin from below it"),
    V("dotdot-above-root", b"/prod/../../prod/admin", DENIED, "climb above the root and back"),
    V("dotdot-long-chain", b"/prod/" + b"a/" * 40 + b"../" * 40 + b"admin", DENIED,
      "forty segments in and forty out"),
    V("secret-dot", b"/prod/secret/.", DENIED, "the exact deny with a trailing '.' segment",
      judged="secret"),
    V("dotdot-pops-stage", b"/prod/.%2e/admin", UNMATCHED,
      "a half-encoded '..' that removes the stage: 'admin' becomes the stage, which does not exist"),
    # --- percent-encoding ---
    V("encoded-letter", b"/prod/%61dmin", DENIED, "'a' percent-encoded"),
    V("encoded-letter-middle", b"/prod/adm%69n", DENIED, "'i' percent-encoded"),
    V("encoded-all-letters", b"/prod/%61%64%6D%69%6E", DENIED, "every letter encoded, mixed case hex"),
    V("encoded-stage", b"/%70rod/admin", DENIED, "the stage name percent-encoded"),
    V("encoded-secret", b"/prod/s%65cret", DENIED, "the exact deny with an encoded letter", judged="secret"),
    V("encoded-dot", b"/prod/%2e/admin", DENIED, "an encoded '.' segment"),
    V("encoded-dotdot-restage", b"/prod/%2e%2e/prod/admin", DENIED,
      "an encoded '..' that re-enters the stage"),
    V("encoded-dotdot", b"/prod/x/%2e%2e/admin", DENIED, "an encoded '..' out of an allowed segment"),
    V("half-encoded-dotdot", b"/prod/x/%2E./admin", DENIED, "'..' with one dot encoded, upper-case hex"),
    V("literal-percent-across-segments", b"/prod/%25/61dmin", FORWARDED,
      "a literal '%' at the end of one segment must not pair with hex digits in the next",
      forwarded="/%25/61dmin"),
    # --- double encoding: decoded once only, and refused (a second decoder would see 'admin') ---
    V("double-encoded-letter", b"/prod/%2561dmin", BAD,
      "'%2561' is '%61' once decoded and 'a' twice; forwarded as '/%2561dmin' before the fix",
      reason="double-encoded"),
    V("double-encoded-two-letters", b"/prod/%2561%2564min", BAD, "two double-encoded letters",
      reason="double-encoded"),
    V("triple-encoded-letter", b"/prod/%252561dmin", BAD, "three levels of encoding",
      reason="double-encoded"),
    V("double-encoded-slash-traversal", b"/prod/x%252f..%252fadmin", BAD,
      "one allowed segment once decoded, 'x/../admin' twice: a bypass before the fix",
      reason="double-encoded"),
    V("double-encoded-slash", b"/prod/admin%252fusers", BAD, "a double-encoded '/'", reason="double-encoded"),
    V("malformed-escape", b"/prod/admin%zz", BAD, "'%' without two hex digits", reason="hexadecimal"),
    V("percent-percent", b"/prod/%%361dmin", BAD, "'%%36' leaves '%61' to a sloppy decoder",
      reason="hexadecimal"),
    # --- encoded and raw separators ---
    V("encoded-slash-lower", b"/prod/admin%2fusers", BAD, "'%2f' inside a segment", reason="encoded '/'"),
    V("encoded-slash-upper", b"/prod/admin%2Fusers", BAD, "'%2F' inside a segment", reason="encoded '/'"),
    V("encoded-slash-trailing", b"/prod/admin%2f", BAD, "a trailing encoded slash", reason="encoded '/'"),
    V("encoded-slash-traversal", b"/prod/x%2f..%2fadmin", BAD, "'x/../admin' hidden in one segment",
      reason="encoded '/'"),
    V("encoded-slash-after-stage", b"/prod%2fadmin", BAD, "stage and path glued by '%2f'",
      reason="encoded '/'"),
    V("encoded-backslash", b"/prod/admin%5cusers", BAD, "'%5c', a separator on Windows backends",
      reason="'\\'"),
    V("encoded-backslash-traversal", b"/prod/x%5c..%5cadmin", BAD, "'x\\..\\admin' in one segment",
      reason="'\\'"),
    V("raw-backslash", b"/prod/admin\\users", BAD, "a raw backslash", reason="backslash"),
    V("raw-backslash-traversal", b"/prod/x\\..\\admin", BAD, "a raw backslash traversal", reason="backslash"),
    # --- path parameters (';') ---
    V("semicolon-session", b"/prod/admin;jsessionid=x", BAD,
      "Tomcat strips ';jsessionid=x' and serves /admin", reason="';'"),
    V("semicolon-empty-param", b"/prod/admin;/users", BAD, "an empty ';' parameter", reason="';'"),
    V("semicolon-dotdot", b"/prod/x/..;/admin", BAD, "Tomcat reads '..;' as '..'", reason="';'"),
    V("encoded-semicolon", b"/prod/admin%3bx", BAD, "an encoded ';'", reason="';'"),
    # --- case (the gateway is case-sensitive, like API Gateway: see docs/security.md) ---
    V("uppercase", b"/prod/ADMIN", FORWARDED,
      "case: another resource to API Gateway and to the gateway; a case-insensitive backend would serve "
      "/admin, so such backends must be told (docs/security.md)", forwarded="/ADMIN", case_note=True),
    V("encoded-uppercase", b"/prod/%41DMIN", FORWARDED,
      "case through an escape: forwarded as '/ADMIN' exactly", forwarded="/ADMIN", case_note=True),
    V("secret-uppercase", b"/prod/SECRET", FORWARDED, "case against the exact deny", forwarded="/SECRET",
      case_note=True),
    V("uppercase-stage", b"/PROD/admin", UNMATCHED, "stage names are case-sensitive"),
    # --- controls and invisible characters ---
    V("nul", b"/prod/admin%00", BAD, "a NUL: C-string backends stop there", reason="control"),
    V("nul-extension", b"/prod/admin%00.png", BAD, "a NUL hiding an extension", reason="control"),
    V("newline", b"/prod/admin%0a", BAD, "an encoded line feed", reason="control"),
    V("crlf-injection", b"/prod/x%0d%0aX-Injected:%201", BAD, "header injection into the backend request",
      reason="control"),
    V("tab", b"/prod/admin%09", BAD, "an encoded tab, trimmed by some backends", reason="control"),
    V("delete-char", b"/prod/admin%7f", BAD, "DEL", reason="control"),
    V("no-break-space", b"/prod/admin%c2%a0", BAD, "U+00A0, trimmed as whitespace by some backends",
      reason="non-printable"),
    V("zero-width-space", b"/prod/%e2%80%8badmin", BAD, "U+200B, invisible and stripped by some backends",
      reason="non-printable"),
    # --- invalid and overlong UTF-8 ---
    V("overlong-dotdot", b"/prod/%c0%ae%c0%ae/admin", BAD, "overlong '..' (C0 AE)", reason="UTF-8"),
    V("overlong-slash", b"/prod/%c0%afadmin", BAD, "overlong '/' (C0 AF)", reason="UTF-8"),
    V("overlong-3-byte-dotdot", b"/prod/x/%e0%80%ae%e0%80%ae/admin", BAD, "3-byte overlong '..'",
      reason="UTF-8"),
    V("invalid-byte", b"/prod/%ff", BAD, "a byte that is never UTF-8", reason="UTF-8"),
    V("surrogate", b"/prod/%ed%a0%80admin", BAD, "a UTF-16 surrogate encoded as UTF-8", reason="UTF-8"),
    # --- trailing spaces and dots: distinct resources, forwarded as they are ---
    V("trailing-space", b"/prod/admin%20", FORWARDED,
      "'admin ' is another resource; forwarded encoded, never trimmed", forwarded="/admin%20"),
    V("trailing-dot", b"/prod/admin.", FORWARDED, "'admin.' is another resource (Windows trims it)",
      forwarded="/admin."),
    V("trailing-dots", b"/prod/admin..", FORWARDED, "'admin..' is not a dot segment", forwarded="/admin.."),
    # --- query and fragment ---
    V("query-dotdot", b"/prod/admin?x=/../", DENIED, "a '..' in the query does not touch the path"),
    V("query-hides-nothing", b"/prod/x?/../admin", FORWARDED,
      "'/../admin' in the query stays in the query", forwarded="/x?/../admin"),
    V("fragment-dotdot", b"/prod/x#/../admin", BAD, "a fragment is never sent to a server",
      reason="fragment"),
    V("fragment-hides-path", b"/prod/admin#/../x", BAD,
      "'admin' then a fragment: judged as '/x' before the fix", reason="fragment"),
    V("encoded-hash", b"/prod/admin%23x", BAD,
      "'%23': a backend that decodes and re-parses reads '/admin' (forwarded before the fix)", reason="'#'"),
    V("encoded-question", b"/prod/admin%3fx", BAD,
      "'%3f': nginx '$uri' proxying sends '/admin?x' (forwarded before the fix)", reason="'?'"),
    V("encoded-question-upper", b"/prod/admin%3Fx=1", BAD, "upper-case '%3F'", reason="'?'"),
    # --- request-line forms ---
    V("absolute-form", b"http://127.0.0.1/prod/admin", DENIED, "absolute-form request target"),
    V("absolute-form-dotdot", b"http://127.0.0.1/prod/x/../admin", DENIED, "absolute-form with '..'"),
    V("absolute-form-other-host", b"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod/%61dmin",
      DENIED, "absolute-form naming another host, with an escape"),
    V("asterisk-form", b"*", BAD, "OPTIONS-style '*' target", method=b"OPTIONS", reason="absolute path"),
    V("method-lowercase", b"/prod/admin", BAD, "'get' is not GET: llhttp refuses it", method=b"get"),
    V("method-mixed-case", b"/prod/admin", BAD, "'Get' is not GET", method=b"Get"),
    V("raw-space-split", b"/prod/admin /x", BAD, "a raw space inside the target splits the request line"),
    V("raw-tab", b"/prod/admin\t", BAD, "a raw tab in the target"),
    # --- Unicode lookalikes: never folded into 'admin' ---
    V("fullwidth-raw", "/prod/ａdmin".encode(), BAD, "raw UTF-8 in the target: llhttp refuses it"),
    V("fullwidth-encoded", b"/prod/%EF%BD%81dmin", FORWARDED,
      "fullwidth 'a' (U+FF41): a different resource, forwarded as such, never folded",
      forwarded="/%EF%BD%81dmin"),
    V("cyrillic-a", b"/prod/%D0%B0dmin", FORWARDED, "Cyrillic 'a' (U+0430): a homoglyph, not 'admin'",
      forwarded="/%D0%B0dmin"),
    V("fullwidth-solidus", b"/prod/x%EF%BC%8Fadmin", BAD,
      "U+FF0F becomes '/' under NFKC: 'x/admin' to a normalising backend", reason="NFKC"),
    V("fullwidth-dot-segment", b"/prod/secret/%EF%BC%8E", BAD,
      "U+FF0E becomes '.' under NFKC: '/secret/.' is '/secret' to a normalising backend", reason="NFKC"),
    V("fullwidth-percent", b"/prod/%EF%BC%85%EF%BC%96%EF%BC%91dmin", BAD,
      "fullwidth '%61' becomes an escape under NFKC", reason="NFKC"),
]

# the same attacks through LocalStack's path-style forms: judged exactly as the plain form
THROUGH_PREFIXES = [
    "control-plain-path", "admin", "trailing-slash", "double-slash", "dot-segment", "dotdot-segment",
    "encoded-letter", "encoded-dotdot-restage", "double-encoded-letter", "double-encoded-slash-traversal",
    "encoded-slash-lower", "raw-backslash", "semicolon-session", "uppercase", "overlong-dotdot",
    "encoded-question", "fragment-hides-path", "secret-trailing-slash", "fullwidth-solidus",
]
PREFIXES = {
    "restapis": f"/restapis/{API}/prod/_user_request_".encode(),
    "aws": f"/_aws/execute-api/{API}/prod".encode(),
}

PREFIX_SPECIFIC: list[V] = [
    V("restapis-id-uppercase", f"/restapis/{API.upper()}/prod/_user_request_/admin".encode(), DENIED,
      "the API id in another case (ids are lower-cased, as LocalStack does)"),
    V("restapis-encoded-stage", f"/restapis/{API}/%70rod/_user_request_/admin".encode(), DENIED,
      "the stage encoded inside the prefix"),
    V("restapis-dotdot-out-of-prefix", f"/restapis/{API}/prod/_user_request_/../admin".encode(), UNMATCHED,
      "'..' right after the marker removes the stage"),
    V("restapis-dotdot-into-stage", f"/restapis/{API}/x/_user_request_/%2e%2e/prod/admin".encode(), DENIED,
      "an unknown stage in the prefix, then '..' back into prod"),
    V("restapis-dotdot-in-prefix", f"/restapis/{API}/../prod/_user_request_/admin".encode(), UNMATCHED,
      "'..' inside the prefix itself: not the LocalStack form"),
    V("restapis-double-slash-after-marker", f"/restapis/{API}/prod/_user_request_//admin".encode(), DENIED,
      "an empty segment after the marker"),
    V("restapis-encoded-marker", f"/restapis/{API}/prod/%5Fuser_request_/admin".encode(), UNMATCHED,
      "an encoded marker is not the marker"),
    V("restapis-no-marker", f"/restapis/{API}/prod/admin".encode(), UNMATCHED,
      "the prefix without its marker"),
    V("restapis-leading-double-slash", f"//restapis/{API}/prod/_user_request_/admin".encode(), UNMATCHED,
      "'//restapis' is a plain path whose stage 'restapis' does not exist"),
    V("aws-dotdot-out-of-prefix", f"/_aws/execute-api/{API}/prod/../admin".encode(), UNMATCHED,
      "'..' in /_aws/execute-api form removes the stage"),
]
# fmt: on


def _through(prefix_name: str, base: V) -> V:
    assert base.target.startswith(b"/prod/")
    target = PREFIXES[prefix_name] + base.target[len(b"/prod") :]
    return V(f"{prefix_name}-{base.id}", target, base.expect, f"{base.why}, through the {prefix_name} prefix",
             base.judged, base.forwarded, base.method, base.reason, base.case_note)  # fmt: skip


_BY_ID = {v.id: v for v in BASE}
CORPUS = [
    *BASE,
    *(_through(p, _BY_ID[i]) for p in PREFIXES for i in THROUGH_PREFIXES),
    *PREFIX_SPECIFIC,
]
assert len({v.id for v in CORPUS}) == len(CORPUS)


# --- the gateway under attack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    b = Backend().start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def gateway(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("attacks"), simple_config(backend.url, policy=POLICY))
    yield gw
    gw.stop()


@dataclass
class Outcome:
    status: int
    headers: dict[str, str]
    body: bytes
    received: list[str]  # the raw targets the backend received for this request

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def send(gw: Gateway, backend: Backend, method: bytes, target: bytes, tag: str, *extra: bytes) -> Outcome:
    """Write the request line and headers byte for byte; read the response until the server closes."""
    head = b"%b %b HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Attack-Id: %b\r\n" % (
        method,
        target,
        gw.port,
        tag.encode(),
    )
    data = raw_request(gw.port, head + b"".join(h + b"\r\n" for h in extra) + b"Connection: close\r\n\r\n")
    response_head, _, body = data.partition(b"\r\n\r\n")
    lines = response_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    received = [r.target for r in backend.requests if r.header("X-Attack-Id") == tag]
    return Outcome(int(lines[0].split(" ", 2)[1]), headers, body, received)


def check(gw: Gateway, backend: Backend, v: V, *, strip_params: bool = True) -> Outcome:
    out = send(gw, backend, v.method, v.target, v.id)
    method = v.method.decode()
    why = f"{v.id}: {v.why}"

    # 1. the generic invariant, whatever the variant expects
    if out.status in (400, 403, 404, 414):
        assert out.received == [], f"{why}: refused with {out.status} but the backend was reached"
    if out.received:
        assert len(out.received) == 1, why
        target = out.received[0]
        path = target.split("?", 1)[0]
        seen = lenient_segments(target, strip_params=strip_params)
        assert not forbidden(seen, method), f"{why}: the backend received {target!r}, read as {seen}"
        entry = wait_for_log(gw, out.headers["x-amzn-requestid"])
        assert entry["decision"] == "Allow", why
        judged = entry["path"].removeprefix("/prod")
        assert entry["path"] == "/prod" + judged, why
        assert unquote_to_bytes(path).decode("utf-8") == judged, (
            f"{why}: backend {target!r}, judged {judged!r}"
        )
        assert seen == [s for s in judged.split("/") if s], f"{why}: a lenient backend reads another path"
    if out.status == 403 and out.headers.get("x-amzn-errortype") == "AccessDeniedException":
        message = out.json()["Message"]
        resource = message.split(" on resource: ", 1)[1].removesuffix(" with an explicit deny")
        judged_arn_path = resource.removeprefix(f"{ARN_PREFIX}/prod/{method}/")
        assert forbidden(judged_arn_path.split("/"), method), f"{why}: denied, but for {resource}"

    # 2. the exact outcome this variant must have
    if v.expect == DENIED:
        assert out.status == 403, (why, out)
        assert out.headers["x-amzn-errortype"] == "AccessDeniedException", why
        assert out.json() == {
            "Message": "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
            f"{ARN_PREFIX}/prod/{method}/{v.judged} with an explicit deny"
        }, why
        entry = wait_for_log(gw, out.headers["x-amzn-requestid"])
        assert (entry["decision"], entry["path"]) == ("ExplicitDeny", f"/prod/{v.judged}"), why
    elif v.expect == UNMATCHED:
        assert out.status == 403, (why, out)
        assert out.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException", why
    elif v.expect == BAD:
        assert out.status == 400, (why, out)
        assert out.headers["x-amzn-errortype"] == "BadRequestException", why
        if v.reason is not None:
            assert v.reason in out.json()["message"], (why, out.body)
    else:
        assert v.expect == FORWARDED
        assert (out.status, out.body) == (200, b"ok"), (why, out)
        assert out.received == [v.forwarded], why
    if v.case_note:
        # documented, not protected: a case-insensitive backend would read a path the policy denies
        assert v.forwarded is not None
        assert forbidden(lenient_segments(v.forwarded, casefold=True), method), why
    return out


@pytest.mark.parametrize("variant", [pytest.param(v, id=v.id) for v in CORPUS])
def test_path_attack(gateway: Gateway, backend: Backend, variant: V) -> None:
    check(gateway, backend, variant)


def test_corpus_covers_every_outcome() -> None:
    assert len(CORPUS) >= 40
    assert {v.expect for v in CORPUS} == {DENIED, UNMATCHED, BAD, FORWARDED}


# --- with allow_semicolon_in_path: the operator says the backend keeps ';' in segments -----------

# fmt: off
SEMICOLON_CORPUS: list[V] = [
    V("param-kept", b"/prod/admin;jsessionid=x", FORWARDED,
      "with the switch on, 'admin;jsessionid=x' is its own resource and is forwarded as judged; a "
      "param-stripping backend (Tomcat) would serve /admin: the switch is only for backends that keep ';'",
      forwarded="/admin;jsessionid=x"),
    V("dotdot-param", b"/prod/x/..;/admin", BAD,
      "Tomcat's '..;' traversal is refused even with the switch on", reason="before a ';'"),
    V("dotdot-param-secret", b"/prod/secret/x/..;", BAD, "'..;' that would climb back into the exact deny",
      reason="before a ';'"),
    V("empty-param-segment", b"/prod/;x/admin", BAD, "a segment that is only a parameter",
      reason="before a ';'"),
    V("encoded-param-dotdot", b"/prod/x/%2e%2e;/admin", BAD, "an encoded '..;'", reason="before a ';'"),
]
# fmt: on


@pytest.fixture(scope="module")
def semicolon_gateway(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = simple_config(backend.url, policy=POLICY, gateway={"allow_semicolon_in_path": True})
    gw = start_gateway(tmp_path_factory.mktemp("semicolon"), config)
    yield gw
    gw.stop()


@pytest.mark.parametrize("variant", [pytest.param(v, id=v.id) for v in SEMICOLON_CORPUS])
def test_path_attack_with_semicolons_allowed(
    semicolon_gateway: Gateway, backend: Backend, variant: V
) -> None:
    out = check(semicolon_gateway, backend, variant, strip_params=False)
    if variant.id == "param-kept":  # the hazard docs/security.md warns about
        assert forbidden(lenient_segments(out.received[0], strip_params=True), "GET")


# --- headers some backends read as the path ---------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"X-Original-URL",
        b"X-Rewrite-URL",
        b"X-HTTP-Method-Override",
        b"X-Method-Override",
        b"X-Original-URI",
        b"X-Forwarded-Uri",
        b"X-Forwarded-Path",
        b"X-Forwarded-Prefix",
        b"X-Envoy-Original-Path",
        b"X-Rewrite-Path",
    ],
)
def test_path_override_headers_never_reach_the_backend(
    gateway: Gateway, backend: Backend, header: bytes
) -> None:
    tag = f"override-{header.decode().lower()}"
    out = send(gateway, backend, b"GET", b"/prod/pets", tag, header + b": /admin")
    assert out.status == 400 or out.received == ["/pets"]  # refused, or forwarded ...
    if out.received:
        received = next(r for r in backend.requests if r.header("X-Attack-Id") == tag)
        assert received.header(header.decode()) is None  # ... without the override
