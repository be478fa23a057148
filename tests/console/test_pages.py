"""The console on a real admin server over a store: sign-in, sessions, CSRF, the sign-in limit,
authorization by identity policies, escaping, static files, and a gateway without a store."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from iamgate.config.load import parse_config
from iamgate.console.app import ROUTES
from iamgate.console.ratelimit import BURST
from iamgate.store.base import StoreError
from tests.console.conftest import Client, client_of
from tests.management.conftest import (
    ADMIN,
    NOBODY,
    READER,
    AdminHandle,
    Credentials,
    config_text,
    gateway_config,
    serve_admin,
)
from tests.store.conftest import pg_backend

XSS = "<script>alert(1)</script>"


def deployed_api(c: Any, name: str = "petstore", description: str = "") -> str:
    """An API with GET /pets (MOCK) deployed to the stage ``prod``: its id."""
    api_id: str = c.create_rest_api(
        name=name, description=description or "pets", endpointConfiguration={"types": ["REGIONAL"]}
    )["id"]
    root = next(r["id"] for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    pets = c.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    c.put_method(restApiId=api_id, resourceId=pets, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    c.create_deployment(restApiId=api_id, stageName="prod", description="first")
    return api_id


def test_sign_in_then_the_overview_shows_the_apis_stages_and_deployments(console: AdminHandle) -> None:
    api_id = deployed_api(console.boto3())
    deployment = console.boto3().get_stage(restApiId=api_id, stageName="prod")["deploymentId"]
    browser = client_of(console)
    signed = browser.sign_in()
    assert signed.status == 303
    assert signed.location == "/console/"
    session_cookie = next(c for c in signed.cookies if c.startswith("iamgate_console="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=Strict" in session_cookie
    assert "Path=/console" in session_cookie
    assert "Max-Age=" in session_cookie
    assert "Secure" not in session_cookie  # the port speaks plain HTTP here
    page = browser.get("/console/")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "petstore" in page.body
    assert api_id in page.body
    assert "prod" in page.body
    assert deployment in page.body
    assert "SQLite" in page.body
    assert "store.db" not in page.body  # the store's kind, never its URL
    assert ADMIN.arn in page.body
    assert "Read-only" not in page.body


def test_the_overview_on_postgresql(tmp_path: Path, pg_admin: Any) -> None:
    for backend in pg_backend(pg_admin):
        with serve_admin(tmp_path, gateway_config(), store_url=backend.url, console=True) as handle:
            api_id = deployed_api(handle.boto3(), name="on-postgres")
            browser = client_of(handle)
            browser.sign_in()
            page = browser.get("/console/")
            assert page.status == 200
            assert "on-postgres" in page.body
            assert api_id in page.body
            assert "PostgreSQL" in page.body
            assert backend.url not in page.body


def test_names_and_descriptions_with_html_are_shown_escaped(console: AdminHandle) -> None:
    deployed_api(console.boto3(), name=XSS, description='"><img src=x onerror=alert(2)>')
    browser = client_of(console)
    browser.sign_in()
    page = browser.get("/console/")
    assert page.status == 200
    assert XSS not in page.body
    assert html.escape(XSS) in page.body
    assert "<img src=x" not in page.body
    assert "&lt;img src=x onerror=alert(2)&gt;" in page.body


def test_a_reader_sees_the_overview_and_nobody_gets_a_403_page_without_data(console: AdminHandle) -> None:
    deployed_api(console.boto3(), name="secret-api")
    reader = client_of(console)
    assert reader.sign_in(READER).status == 303
    assert "secret-api" in reader.get("/console/").body
    nobody = client_of(console)
    assert nobody.sign_in(NOBODY).status == 303
    page = nobody.get("/console/")
    assert page.status == 403
    assert "secret-api" not in page.body
    assert "apigateway:GET" in page.body
    assert "arn:aws:apigateway:us-east-1::/restapis" in page.body


def test_a_part_the_caller_may_not_read_says_so(tmp_path: Path) -> None:
    """Allowed to list the APIs but not their stages or deployments: the API is listed, its
    stages and deployments are not (a note says why)."""
    listing = Credentials("AKIAIAMGATELISTER001", "lister/Secret+Key000000000000000000000000", "")
    arn = "arn:aws:iam::123456789012:user/lister"
    users = f"""    - arn: {arn}
      policies:
        - Version: "2012-10-17"
          Statement:
            - {{Effect: Allow, Action: "apigateway:GET", Resource: "arn:aws:apigateway:us-east-1::/restapis"}}
"""
    keys = f'    - {{id: {listing.access_key}, secret: "{listing.secret}", owner: {arn}}}\n'
    with serve_admin(tmp_path, gateway_config(users=users, keys=keys), console=True) as handle:
        deployed_api(handle.boto3(), name="listed")
        browser = client_of(handle)
        browser.sign_in(listing)
        page = browser.get("/console/")
        assert page.status == 200
        assert "listed" in page.body
        assert "not authorized to read this API's stages" in page.body
        assert "not authorized to read this API's deployments" in page.body
        assert "prod" not in page.body


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param((ADMIN.access_key, "wrong-secret"), id="wrong-secret"),
        pytest.param(("AKIAUNKNOWNKEY000001", ADMIN.secret), id="unknown-key"),
        pytest.param(("", ""), id="empty"),
        pytest.param((ADMIN.access_key, ADMIN.secret + "x"), id="secret-prefix"),
    ],
)
def test_bad_credentials_get_one_uniform_answer(console: AdminHandle, credentials: tuple[str, str]) -> None:
    browser = client_of(console)
    browser.get("/console/signin")
    answer = browser.post(
        "/console/signin",
        {"csrf": browser.csrf, "login": credentials[0], "secret": credentials[1]},
    )
    assert answer.status == 401
    assert "These credentials are not valid." in answer.body
    assert "iamgate_console" not in browser.jar
    assert browser.get("/console/").status == 303


def test_sign_in_attempts_are_limited_per_address(console: AdminHandle) -> None:
    browser = client_of(console)
    for _ in range(BURST):
        browser.get("/console/signin")
        form = {"csrf": browser.csrf, "login": ADMIN.access_key, "secret": "nope"}
        assert browser.post("/console/signin", form).status == 401
    browser.get("/console/signin")
    limited = browser.sign_in()  # even the right secret waits now
    assert limited.status == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in limited.body


def test_sign_out_ends_the_session(console: AdminHandle) -> None:
    browser = client_of(console)
    browser.sign_in()
    assert browser.get("/console/").status == 200
    old = dict(browser.jar)
    out = browser.post("/console/signout", {"csrf": browser.csrf})
    assert out.status == 303
    assert out.location == "/console/signin"
    assert any(c.startswith("iamgate_console=;") and "Max-Age=0" in c for c in out.cookies)
    again = browser.get("/console/")
    assert again.status == 303
    assert again.location == "/console/signin"
    replay = Client(console.host, console.port, jar=old)  # the old cookie is worth nothing now
    assert replay.get("/console/").status == 303


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"csrf": "forged"}, id="wrong-token"),
    ],
)
def test_a_post_without_the_sessions_csrf_token_is_refused(
    console: AdminHandle, form: dict[str, str]
) -> None:
    browser = client_of(console)
    browser.sign_in()
    refused = browser.post("/console/signout", form)
    assert refused.status == 403
    assert "security token" in refused.body
    assert browser.get("/console/").status == 200  # still signed in


def test_the_csrf_token_may_come_in_a_header(console: AdminHandle) -> None:
    browser = client_of(console)
    browser.sign_in()
    browser.get("/console/")
    assert browser.post("/console/signout", {}, {"X-CSRF-Token": browser.csrf}).status == 303


def test_a_post_from_another_origin_is_refused(console: AdminHandle) -> None:
    browser = client_of(console)
    browser.sign_in()
    browser.get("/console/")
    refused = browser.post("/console/signout", {"csrf": browser.csrf}, {"Origin": "https://evil.example"})
    assert refused.status == 403
    same = browser.post(
        "/console/signout", {"csrf": browser.csrf}, {"Origin": f"http://{console.host}:{console.port}"}
    )
    assert same.status == 303


def test_signing_in_needs_the_sign_in_forms_own_token(console: AdminHandle) -> None:
    """Login CSRF: a form posted from elsewhere has no sign-in cookie and token to match."""
    browser = client_of(console)
    form = {"login": ADMIN.access_key, "secret": ADMIN.secret, "csrf": "guess"}
    assert browser.post("/console/signin", form).status == 403
    browser.get("/console/signin")
    form["csrf"] = "not-the-cookies"
    assert browser.post("/console/signin", form).status == 403
    assert "iamgate_console" not in browser.jar


def _route_ids() -> list[Any]:
    return [pytest.param(p, id=f"{p.method} {p.path}") for p in ROUTES if not p.public]


@pytest.mark.parametrize("page", _route_ids())
def test_no_route_is_reachable_without_a_session(console: AdminHandle, page: Any) -> None:
    deployed_api(console.boto3(), name="hidden-api")
    browser = client_of(console)
    answer = browser.request(
        page.method, page.path, b"csrf=x", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert "hidden-api" not in answer.body
    if page.method == "GET":
        assert answer.status == 303
        assert answer.location == "/console/signin"
    else:
        assert answer.status == 403


def test_every_route_is_listed_and_only_the_sign_in_form_is_public() -> None:
    assert {(p.method, p.path) for p in ROUTES if p.public} == {
        ("GET", "/console/signin"),
        ("POST", "/console/signin"),
    }


@pytest.mark.parametrize("path", ["/console/nothing", "/console/restapis", "/console/static", "/console//"])
def test_an_unknown_path_tells_nothing_without_a_session(console: AdminHandle, path: str) -> None:
    answer = client_of(console).get(path)
    assert answer.status == 303
    assert answer.location == "/console/signin"


def test_an_unknown_path_with_a_session_is_a_404_page(console: AdminHandle) -> None:
    browser = client_of(console)
    browser.sign_in()
    answer = browser.get("/console/nothing")
    assert answer.status == 404
    assert "Traceback" not in answer.body


def _config_of(text: str) -> Any:
    config, diags = parse_config(text, source="<test>")
    assert config is not None, [d.render() for d in diags]
    return config


@pytest.mark.parametrize("change", ["removed", "new-secret"])
def test_a_session_ends_when_its_key_is_removed_or_given_a_new_secret(
    console: AdminHandle, change: str
) -> None:
    browser = client_of(console)
    browser.sign_in(READER)
    assert browser.get("/console/").status == 200
    console.config = _config_of(config_text())  # a reload that changes nothing of the key
    assert browser.get("/console/").status == 200
    if change == "removed":
        text = "\n".join(
            line for line in config_text().splitlines() if f"id: {READER.access_key}" not in line
        )
    else:
        text = config_text().replace(READER.secret, "rotated/Secret+Key00000000000000000000000")
    console.config = _config_of(text)
    assert browser.get("/console/").status == 303
    console.config = _config_of(config_text())  # the old secret back: the session stays ended
    assert browser.get("/console/").status == 303


def test_static_files_have_their_content_type_and_no_traversal(console: AdminHandle) -> None:
    browser = client_of(console)
    css = browser.get("/console/static/console.css")
    assert css.status == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["x-content-type-options"] == "nosniff"
    for path in [
        "/console/static/../app.py",
        "/console/static/%2e%2e/app.py",
        "/console/static/..%2fapp.py",
        "/console/static/../templates/base.html",
        "/console/static/",
        "/console/static/console.css/",
        "/console/static//etc/passwd",
    ]:
        assert browser.get(path).status == 404, path


def test_the_console_is_off_when_management_is_disabled(tmp_path: Path) -> None:
    config = gateway_config()
    config = dataclasses.replace(config, management=dataclasses.replace(config.management, enabled=False))
    with serve_admin(tmp_path, config, console=True) as handle:
        assert client_of(handle).get("/console/signin").status == 404


@pytest.fixture
def yaml_only(tmp_path: Path) -> Iterator[AdminHandle]:
    """A gateway without a store: one API from the YAML file."""
    extra = f"""
apis:
  - id: yamlapi01
    name: "from yaml {XSS}"
    stages: {{prod: {{}}, beta: {{}}}}
    routes:
      - {{path: /ping, method: GET, integration: {{type: MOCK, body: pong}}}}
"""
    config = _config_of(config_text(extra=extra).replace("apis: []\n", "", 1))
    with serve_admin(tmp_path, config, console=True, management=False) as handle:
        yield handle


def test_without_a_store_the_console_is_read_only_and_says_so(yaml_only: AdminHandle) -> None:
    browser = client_of(yaml_only)
    assert browser.sign_in().status == 303
    page = browser.get("/console/")
    assert page.status == 200
    assert "Read-only" in page.body
    assert "yamlapi01" in page.body
    assert "beta" in page.body
    assert "prod" in page.body
    assert html.escape(f"from yaml {XSS}") in page.body
    assert XSS not in page.body
    assert "Deployments" not in page.body


def test_over_tls_the_cookies_are_secure_and_the_origin_is_https() -> None:
    """What the console answers when the admin port speaks TLS (``secure``), asked directly."""
    import asyncio

    from iamgate.console import ConsoleApp

    config = gateway_config()
    app = ConsoleApp(lambda: config)

    def ask(method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> Any:
        return asyncio.run(
            app.handle(method, target.encode(), headers, body, peer="127.0.0.1", management=None, secure=True)
        )

    form = ask("GET", "/console/signin", [])
    set_cookie = dict(form.headers)["Set-Cookie"]
    assert set_cookie.endswith("; Secure")
    token = set_cookie.split(";", 1)[0].split("=", 1)[1]
    body = urlencode({"csrf": token, "login": ADMIN.access_key, "secret": ADMIN.secret})
    cookie = (b"cookie", f"iamgate_console_signin={token}".encode())
    plain = ask(
        "POST",
        "/console/signin",
        [cookie, (b"host", b"admin.example:8443"), (b"origin", b"http://admin.example:8443")],
        body.encode(),
    )
    assert plain.status == 403  # over TLS the page's origin is https://
    signed = ask(
        "POST",
        "/console/signin",
        [cookie, (b"host", b"admin.example:8443"), (b"origin", b"https://admin.example:8443")],
        body.encode(),
    )
    assert signed.status == 303
    session = next(v for k, v in signed.headers if k == "Set-Cookie" and v.startswith("iamgate_console="))
    assert "; Secure" in session


@pytest.mark.parametrize(("network", "status"), [("127.0.0.0/8", 200), ("10.0.0.0/8", 403)])
def test_conditions_of_identity_policies_see_the_consoles_request(
    tmp_path: Path, network: str, status: int
) -> None:
    """The same condition keys as a signed management request: ``aws:SourceIp`` is the
    browser's address."""
    arn = "arn:aws:iam::123456789012:user/onsite"
    key = Credentials("AKIAIAMGATEONSITE001", "onsite/Secret+Key000000000000000000000000", arn)
    users = f"""    - arn: {arn}
      policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: "apigateway:GET"
              Resource: "*"
              Condition: {{IpAddress: {{"aws:SourceIp": "{network}"}}}}
"""
    keys = f'    - {{id: {key.access_key}, secret: "{key.secret}", owner: {arn}}}\n'
    with serve_admin(tmp_path, gateway_config(users=users, keys=keys), console=True) as handle:
        deployed_api(handle.boto3(), name="onsite-api")
        browser = client_of(handle)
        assert browser.sign_in(key).status == 303
        page = browser.get("/console/")
        assert page.status == status
        assert ("onsite-api" in page.body) is (status == 200)


@pytest.mark.parametrize(
    ("failure", "status", "shown"),
    [
        pytest.param(RuntimeError("secret detail in a traceback"), 500, "request ", id="a-bug"),
        pytest.param(StoreError("database is locked"), 503, "The store did not answer", id="the-store"),
    ],
)
def test_a_failure_is_a_page_never_a_traceback(
    console: AdminHandle, monkeypatch: pytest.MonkeyPatch, failure: Exception, status: int, shown: str
) -> None:
    async def broken(*args: object) -> None:
        raise failure

    monkeypatch.setattr("iamgate.console.app.read_overview", broken)
    browser = client_of(console)
    browser.sign_in()
    page = browser.get("/console/")
    assert page.status == status
    assert shown in page.body
    assert "Traceback" not in page.body
    assert "secret detail" not in page.body
    assert page.headers["content-type"] == "text/html; charset=utf-8"
