"""The console as one object the admin server calls: ``await console.handle(...)`` -> Reply.

Served on the admin port under ``/console/`` (docs/console.md). Per request, in this order: the
static files (public: the sign-in page needs its stylesheet); the route table :data:`ROUTES`
(a path not in it answers like a page that needs a session, so nothing tells what exists);
the session (every route but the sign-in form's two needs one: a page redirects to the sign-in
form, a form post is refused); for a POST, the ``Origin`` header (when sent, it must be this
port's own) and the CSRF token; the handler. Every answer carries the same security headers (a
strict Content-Security-Policy: scripts only from the console's own static files (the vendored
htmx and uPlot and the console's own), never inline; no framing, no referrer to other sites).

Errors never show a traceback: a denied management operation is a 403 page naming the action
and resource, a store that cannot be reached a 503 page, anything unexpected is logged and
answered with a 500 page naming a request id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from iamgate.admin import Streamed
from iamgate.auth.identities import Identity
from iamgate.config.model import GatewayConfig
from iamgate.console import live
from iamgate.console.api_screen import deploy, read_api_screen, read_diff
from iamgate.console.assets import StaticFile, Templates, load_static
from iamgate.console.feed import Feed, local_feed
from iamgate.console.overview import read_overview
from iamgate.console.playground import decide, read_asked
from iamgate.console.policy_editor import StaleDraft, Stored, check, read_stored, save
from iamgate.console.ratelimit import SignInLimiter
from iamgate.console.sessions import (
    ACCESS_KEY,
    CONSOLE_USER,
    COOKIE,
    LIFETIME,
    SIGNIN_COOKIE,
    Session,
    SessionTable,
    cookie_header,
    parse_cookies,
    same_token,
    secret_digest,
)
from iamgate.console.signin import MAX_FIELD, check_credentials, check_password
from iamgate.console.usage_screen import read_key_value, read_usage, throttled_counts
from iamgate.management import access
from iamgate.management.app import ManagementApp
from iamgate.management.core import ApiError, Reply
from iamgate.observe.decisions import DecisionLog
from iamgate.observe.metrics import Metrics
from iamgate.policy.names import HTTP_METHODS
from iamgate.store.base import StoreError

__all__ = ["PREFIX", "ROUTES", "ConsoleApp", "Page", "claims"]

log = logging.getLogger("iamgate.console")

PREFIX = "/console"
STATIC = PREFIX + "/static/"
MAX_FORM = 256 * 1024  # the largest form body the console reads (a policy is up to 64 KiB, escaped)
HTML = "text/html; charset=utf-8"
BAD_CREDENTIALS = "These credentials are not valid."
ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")  # what a console user's name can never be
STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),  # no-referrer would make forms send "Origin: null"
]


def claims(path: bytes) -> bool:
    """Whether a request path (without its query) is the console's."""
    return path == PREFIX.encode() or path.startswith(PREFIX.encode() + b"/")


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    peer: str | None
    secure: bool
    now: float
    config: GatewayConfig
    management: ManagementApp | None
    cookies: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)  # the first value of each parameter
    params: dict[str, str] = field(default_factory=dict)  # the route's {name} segments
    session: Session | None = None
    caller: access.Caller | None = None

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    def form(self) -> dict[str, str]:
        """The url-encoded form (the first value of each field); {} when there is none."""
        try:
            fields = parse_qs(self.body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return {}
        return {name: values[0] for name, values in fields.items() if values}


Handler = Callable[["ConsoleApp", Request], Awaitable[Reply | Streamed]]


@dataclass(frozen=True, slots=True)
class Page:
    """One console route. ``path`` is exact, or holds ``{name}`` segments, each matching one
    non-empty path segment (percent-decoded into ``Request.params``)."""

    method: str
    path: str
    handler: Handler
    public: bool = False  # reachable without a session (only the sign-in form)

    def match(self, path: str) -> dict[str, str] | None:
        """The ``{name}`` values when ``path`` is this route's, else None."""
        if "{" not in self.path:
            return {} if path == self.path else None
        want = self.path.split("/")
        got = path.split("/")
        if len(want) != len(got):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(want, got, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                value = unquote(part)
                if not value or "/" in value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != part:
                return None
        return params


class ConsoleApp:
    """The console over ``config()``, the configuration being served (its identities sign in,
    its region names the management resources, ``management.enabled: false`` turns the console
    off too)."""

    def __init__(
        self,
        config: Callable[[], GatewayConfig],
        *,
        clock: Callable[[], float] = time.time,
        feed: Feed | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        # the decision stream and rates (live.py): the serving processes' (a lone console: none)
        idle = Metrics()
        self.feed = feed if feed is not None else local_feed(DecisionLog(keep=False), lambda: idle)
        self.sessions = SessionTable()
        self.limiter = SignInLimiter()
        self.templates = Templates()
        self.static: dict[str, StaticFile] = load_static()
        # the gateway's metrics in Prometheus text (set by the admin server that serves the console)
        self.metrics: Callable[[], Awaitable[str]] | None = None
        # GetUsage from the gateway's own counters (/usage of the admin port), without a store
        self.usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]] | None = None

    async def handle(
        self,
        method: str,
        raw_target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        peer: str | None,
        management: ManagementApp | None,
        secure: bool,
    ) -> Reply | Streamed:
        request_id = str(uuid.uuid4())
        reply: Reply | Streamed
        try:
            reply = await self._handle(method, raw_target, headers, body, peer, management, secure)
        except Exception:
            log.exception("console request %s (%s %r) failed", request_id, method, raw_target[:200])
            reply = self.error(
                None, 500, "Something went wrong", f"The console failed (request {request_id})."
            )
        reply.headers.extend(SECURITY_HEADERS)
        reply.headers.append(("x-amzn-RequestId", request_id))
        return reply

    async def _handle(
        self,
        method: str,
        raw_target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        peer: str | None,
        management: ManagementApp | None,
        secure: bool,
    ) -> Reply | Streamed:
        config = self.config()
        raw_path, _, raw_query = raw_target.partition(b"?")
        path = raw_path.decode("latin-1")
        if not config.management.enabled:
            return self.error(
                None, 404, "Not found", "The console is turned off (management.enabled: false)."
            )
        if path.startswith(STATIC):
            return self._static(method, path[len(STATIC) :])
        request = Request(
            method,
            path,
            headers,
            body,
            peer,
            secure,
            self.clock(),
            config,
            management,
            parse_cookies(headers),
            _query(raw_query),
        )
        if len(body) > MAX_FORM:
            return self.error(None, 413, "Too large", "The form is larger than the console reads.")
        pages = [(p, found) for p in ROUTES if (found := p.match(path)) is not None]
        page, request.params = next(
            (
                (p, found)
                for p, found in pages
                if p.method == method or (method == "HEAD" and p.method == "GET")
            ),
            (None, {}),
        )
        if page is None or not page.public:
            self.resume(request)
            if request.session is None:
                return self._no_session(request)
        if page is None:
            if pages:
                reply = self.error(request, 405, "Method not allowed", f"{method} is not allowed here.")
                reply.headers.append(("Allow", ", ".join(sorted({p.method for p, _ in pages}))))
                return reply
            return self.error(request, 404, "Not found", "There is no console page at this address.")
        if method == "POST":
            refused = self._refuse_post(request, page)
            if refused is not None:
                return refused
        try:
            return await page.handler(self, request)
        except ApiError as exc:
            if exc.status == 403:
                return self.error(request, 403, "Not authorized", exc.message)
            return self.error(request, exc.status, "The management API refused", exc.message)
        except StoreError as exc:
            log.error("console: the store failed: %s", exc)
            return self.error(
                request, 503, "The store is unavailable", "The store did not answer; try again."
            )

    # --- sessions and checks --------------------------------------------------------------------
    def resume(self, request: Request) -> None:
        """Find the request's session and check its access key (or console user) still stands as
        it was."""
        session = self.sessions.find(request.cookies.get(COOKIE), request.now)
        if session is None:
            return
        identities = request.config.auth.store
        owner: object = None
        current = ""
        if session.kind == ACCESS_KEY:
            credential = identities.lookup(session.login)
            if credential is not None:
                owner, current = credential.owner, credential.secret_access_key
        else:
            user = identities.console_user(session.login)
            if user is not None:
                owner, current = user.identity, user.password_hash
        if not isinstance(owner, Identity) or secret_digest(current) != session.secret_digest:
            self.sessions.close(session.id)  # removed, disabled, or a new secret or password
            return
        request.session = session
        request.caller = access.caller_of(
            owner,
            region=request.config.settings.region,
            now=request.now,
            peer=request.peer,
            user_agent=request.header(b"user-agent"),
            secure=request.secure,
        )

    def still_signed_in(self, request: Request) -> bool:
        """Whether a long request's (a stream's) session still stands, as :meth:`resume` finds
        it now (with the configuration served now)."""
        request.session = request.caller = None
        request.now = self.clock()
        request.config = self.config()
        self.resume(request)
        return request.session is not None

    def _no_session(self, request: Request) -> Reply:
        if request.method in ("GET", "HEAD"):
            return _redirect(PREFIX + "/signin")
        return self.error(None, 403, "Signed out", "Your session has ended: sign in again.")

    def _refuse_post(self, request: Request, page: Page) -> Reply | None:
        origin = request.header(b"origin")
        host = request.header(b"host")
        scheme = "https" if request.secure else "http"
        if origin is not None and (host is None or origin != f"{scheme}://{host}"):
            return self.error(request, 403, "Refused", "The form was sent from another site.")
        sent = request.form().get("csrf") or request.header(b"x-csrf-token")
        if page.public:  # the sign-in form: its token is also in a cookie (no session yet)
            expected = request.cookies.get(SIGNIN_COOKIE, "")
        else:
            assert request.session is not None  # non-public pages are reached with a session only
            expected = request.session.csrf
        if not same_token(sent, expected):
            return self.error(
                request, 403, "Refused", "The form's security token is missing or stale: reload the page."
            )
        return None

    # --- rendering --------------------------------------------------------------------------------
    def render(self, request: Request | None, name: str, status: int = 200, **values: Any) -> Reply:
        common = {
            "signed_in": request.caller.arn if request is not None and request.caller is not None else None,
            "csrf": request.session.csrf if request is not None and request.session is not None else "",
            "no_store": request is not None and request.management is None,
            "screens": SCREENS,
            "current": request.path if request is not None else "",
        }
        return Reply(
            status, self.templates.render(name, **common, **values), [("Cache-Control", "no-store")], HTML
        )

    def error(self, request: Request | None, status: int, title: str, message: str) -> Reply:
        return self.render(request, "error.html", status, title=title, message=message, code=status)

    def _static(self, method: str, name: str) -> Reply:
        if method not in ("GET", "HEAD"):
            return Reply(405, b"", [("Allow", "GET, HEAD")], "")
        found = self.static.get(name)
        if found is None:
            return Reply(404, b"Not found\n", [], "text/plain; charset=utf-8")
        return Reply(
            200, found.body, [("Cache-Control", "no-cache"), ("ETag", found.etag)], found.content_type
        )


def _query(raw: bytes) -> dict[str, str]:
    """A query string's parameters (the first value of each); {} when it cannot be read."""
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items() if values}


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(303, b"", [("Location", location), ("Cache-Control", "no-store"), *(headers or [])], "")


# --- pages ----------------------------------------------------------------------------------------
async def _root(app: ConsoleApp, request: Request) -> Reply:
    return _redirect(PREFIX + "/")


async def _api(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    api_id = request.params["api"]
    screen = await read_api_screen(request.config, request.management, request.caller, api_id)
    deployed = request.query.get("deployed", "")
    return app.render(
        request,
        "api.html",
        screen=screen,
        deployed=deployed if re.fullmatch(r"[A-Za-z0-9]{1,32}", deployed) else "",
        deployed_stage=request.query.get("stage", ""),
    )


async def _diff(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    if request.management is None:
        return app.error(request, 404, "Not found", "Without a store there are no drafts to compare.")
    stage = request.query.get("stage", "")
    if not STAGE_NAME.fullmatch(stage):
        return app.error(request, 400, "Which stage?", "Give a stage: ?stage=NAME (letters, digits, -, _).")
    api_id = request.params["api"]
    diff = await read_diff(request.management, request.caller, api_id, stage)
    return app.render(request, "diff.html", diff=diff, api_id=api_id)


async def _deploy(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    if request.management is None:
        return app.error(request, 403, "Read-only", "This gateway has no store: nothing is deployed here.")
    form = request.form()
    stage = form.get("stage", "")
    if not STAGE_NAME.fullmatch(stage):
        return app.error(request, 400, "Which stage?", "A stage name is letters, digits, - and _ (to 128).")
    api_id = request.params["api"]
    description = form.get("description", "")[:1024]
    created = await deploy(request.management, request.caller, api_id, stage, description)
    log.info("console: %s deployed %s to %s/%s", request.caller.arn, created, api_id, stage)
    target = f"{PREFIX}/apis/{quote(api_id, safe='')}?deployed={created}&stage={quote(stage, safe='')}"
    return _redirect(target)


def _editor(
    app: ConsoleApp,
    request: Request,
    stored: Stored,
    *,
    text: str | None = None,
    mode: str | None = None,
    version: str | None = None,
    status: int = 200,
    problem: str = "",
    stale: Stored | None = None,
) -> Reply:
    shown = stored.text if text is None else text
    result = check(shown, request.config, stored.api_id, stored.endpoint_type)
    deployed = request.query.get("deployed", "")
    return app.render(
        request,
        "policy.html",
        status,
        stored=stored,
        text=shown,
        mode=mode or stored.mode,
        version=version or stored.version,
        result=result,
        read_only=request.management is None,
        saved=request.query.get("saved") == "1",
        deployed=deployed if STAGE_NAME.fullmatch(deployed) else "",
        stage=request.query.get("stage", "prod")
        if STAGE_NAME.fullmatch(request.query.get("stage", "prod"))
        else "prod",
        problem=problem,
        stale=stale,
    )


async def _policy_page(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    stored = await read_stored(request.config, request.management, request.caller, request.params["api"])
    return _editor(app, request, stored)


async def _policy_check(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    api_id = request.params["api"]
    access.authorize(request.caller, "apigateway:GET", f"/restapis/{api_id}")
    text = request.form().get("policy", "")
    endpoint = "REGIONAL"
    if request.management is None:
        entry = next((a for a in request.config.apis if a.id == api_id), None)
        endpoint = entry.endpoint_type if entry is not None else endpoint
    result = check(text, request.config, api_id, endpoint)
    return app.render(request, "policy_check.html", result=result)


async def _policy_save(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    api_id = request.params["api"]
    if request.management is None:
        return app.error(request, 403, "Read-only", "This gateway has no store: change the file and reload.")
    form = request.form()
    text, version = form.get("policy", ""), form.get("version", "")
    mode = "report" if form.get("mode") == "report" else "enforce"
    stage = form.get("stage", "")
    deploying = form.get("action") == "deploy"
    if deploying and not STAGE_NAME.fullmatch(stage):
        stored = await read_stored(request.config, request.management, request.caller, api_id)
        return _editor(
            app,
            request,
            stored,
            text=text,
            mode=mode,
            version=version,
            status=400,
            problem="Which stage? A stage name is letters, digits, - and _.",
        )
    try:
        await save(request.management, request.caller, request.config, api_id, text, mode, version)
    except StaleDraft as exc:
        # the form now carries the current version: saving again, on purpose, goes through
        return _editor(app, request, exc.current, text=text, mode=mode, status=409, stale=exc.current)
    except ApiError as exc:
        if exc.status == 403:
            raise
        stored = await read_stored(request.config, request.management, request.caller, api_id)
        return _editor(
            app, request, stored, text=text, mode=mode, version=version, status=400, problem=exc.message
        )
    target = f"{PREFIX}/apis/{quote(api_id, safe='')}/policy?saved=1"
    if deploying:
        await deploy(request.management, request.caller, api_id, stage, "from the console's policy editor")
        target += f"&deployed={quote(stage, safe='')}&stage={quote(stage, safe='')}"
    log.info("console: %s saved the policy of %s", request.caller.arn, api_id)
    return _redirect(target)


async def _playground(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    overview = await read_overview(request.config, request.management, request.caller)
    apis = [(a.id, a.name) for a in overview.apis]
    query = dict(request.query)
    if not query.get("api") and apis:
        query["api"] = apis[0][0]
    asked = read_asked(query)
    stages = next((tuple(s.name for s in a.stages or ()) for a in overview.apis if a.id == asked.api_id), ())
    outcome = None
    problem = ""
    if asked.complete and "path" in request.query:
        try:
            outcome = await decide(request.config, request.management, request.caller, asked)
        except ApiError as exc:
            if exc.status == 403:
                raise
            problem = exc.message
    return app.render(
        request,
        "playground.html",
        400 if asked.problems else 200,
        apis=apis,
        stages=stages,
        methods=HTTP_METHODS,
        asked=asked,
        outcome=outcome,
        problem=problem,
    )


async def _usage(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    access.authorize(request.caller, "apigateway:GET", "/usageplans")
    today = dt.datetime.fromtimestamp(request.now, dt.UTC).date()
    screen = await read_usage(request.config, request.management, request.caller, app.usage, today)
    throttled = throttled_counts(await app.metrics()) if app.metrics is not None else ()
    chart = {
        p.id: {"days": list(p.days), "series": [[key, list(values)] for key, values in p.series]}
        for p in screen.plans or ()
    }
    return app.render(
        request,
        "usage.html",
        screen=screen,
        throttled=throttled,
        chart=json.dumps(chart).replace("<", "\\u003c"),
    )


async def _usage_key(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    key, value = await read_key_value(
        request.config, request.management, request.caller, request.params["key"]
    )
    log.info("console: %s revealed the value of API key %s", request.caller.arn, key.id)
    return app.render(request, "usage_key.html", key=key, value=value)


async def _overview(app: ConsoleApp, request: Request) -> Reply:
    assert request.caller is not None
    overview = await read_overview(request.config, request.management, request.caller)
    await app.feed.refresh(events=False)
    return app.render(request, "overview.html", overview=overview, feed=app.feed, now=time.time())


def _signin_form(app: ConsoleApp, request: Request, status: int, message: str | None) -> Reply:
    token = _new_token()
    reply = app.render(request, "signin.html", status, token=token, message=message)
    reply.headers.append(cookie_header(SIGNIN_COOKIE, token, max_age=3600, secure=request.secure))
    return reply


def _new_token() -> str:
    return secrets.token_urlsafe(32)


async def _signin_page(app: ConsoleApp, request: Request) -> Reply:
    app.resume(request)
    if request.session is not None:
        return _redirect(PREFIX + "/")
    return _signin_form(app, request, 200, None)


async def _signin(app: ConsoleApp, request: Request) -> Reply:
    wait = app.limiter.attempt(request.peer or "unknown", request.now)
    if wait > 0:
        reply = _signin_form(
            app, request, 429, f"Too many sign-in attempts from your address: try again in {int(wait) + 1} s."
        )
        reply.headers.append(("Retry-After", str(int(wait) + 1)))
        return reply
    form = request.form()
    login = form.get("login", "").strip()[: MAX_FIELD + 1]
    secret = form.get("secret", "")
    identities = request.config.auth.store
    kind = ACCESS_KEY if ACCESS_KEY_ID.fullmatch(login) else CONSOLE_USER
    if kind == ACCESS_KEY:
        found = check_credentials(identities, login, secret, request.now)
    else:  # argon2 takes about 0.1 s of CPU: not on the event loop
        found = await asyncio.to_thread(check_password, identities, login, secret)
    if found is None:
        log.info("console: a sign-in from %s was refused", request.peer or "an unknown address")
        return _signin_form(app, request, 401, BAD_CREDENTIALS)
    identity, current_secret = found
    old = request.cookies.get(COOKIE)
    if old:
        app.sessions.close(old)  # never reuse a session id that existed before signing in
    session = app.sessions.open(kind, login, current_secret, identity.caller_arn, request.now)
    log.info("console: %s signed in from %s", identity.caller_arn, request.peer or "an unknown address")
    return _redirect(
        PREFIX + "/",
        [
            cookie_header(COOKIE, session.id, max_age=int(LIFETIME), secure=request.secure),
            cookie_header(SIGNIN_COOKIE, "", max_age=0, secure=request.secure),
        ],
    )


async def _signout(app: ConsoleApp, request: Request) -> Reply:
    assert request.session is not None
    app.sessions.close(request.session.id)
    return _redirect(PREFIX + "/signin", [cookie_header(COOKIE, "", max_age=0, secure=request.secure)])


# The screens in the bar at the top of every signed-in page: (title, address).
SCREENS: tuple[tuple[str, str], ...] = (
    ("Overview", PREFIX + "/"),
    ("Live decisions", PREFIX + "/decisions"),
    ("Playground", PREFIX + "/playground"),
    ("Usage", PREFIX + "/usage"),
)

ROUTES: tuple[Page, ...] = (
    Page("GET", PREFIX, _root),
    Page("GET", PREFIX + "/", _overview),
    Page("GET", PREFIX + "/signin", _signin_page, public=True),
    Page("POST", PREFIX + "/signin", _signin, public=True),
    Page("POST", PREFIX + "/signout", _signout),
    Page("GET", PREFIX + "/apis/{api}", _api),
    Page("GET", PREFIX + "/apis/{api}/diff", _diff),
    Page("POST", PREFIX + "/apis/{api}/deploy", _deploy),
    Page("GET", PREFIX + "/apis/{api}/policy", _policy_page),
    Page("POST", PREFIX + "/apis/{api}/policy", _policy_save),
    Page("POST", PREFIX + "/apis/{api}/policy/check", _policy_check),
    Page("GET", PREFIX + "/playground", _playground),
    Page("GET", PREFIX + "/usage", _usage),
    Page("GET", PREFIX + "/usage/keys/{key}", _usage_key),
    Page("GET", PREFIX + "/decisions", live.decision_page),
    Page("GET", PREFIX + "/decisions/stream", live.stream),  # before {id}: the first match wins
    Page("GET", PREFIX + "/decisions/{id}", live.explanation_page),
    Page("GET", PREFIX + "/rates", live.rates),
)
