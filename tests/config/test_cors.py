"""An API's ``cors`` block (docs/cors.md): what it expands into (the objects API Gateway's console
"Enable CORS" writes) and the located errors for values browsers would never accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.config._reader import Reader
from iamgate.config._yaml import load_yaml
from iamgate.config.load import parse_config
from iamgate.config.model import (
    ApiConfig,
    GatewayResponseConfig,
    HttpProxyIntegration,
    MockIntegration,
    RouteConfig,
)
from iamgate.config.read_cors import DEFAULT_ALLOW_HEADERS, CorsSettings, apply_cors
from iamgate.config.read_responses import parameter_problem

CONSOLE_HEADERS = "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token"
ROUTES = """\
      - {path: /pets, method: GET, integration: {type: MOCK, body: '[]'}}
      - {path: /pets, method: POST, integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/pets"}}
      - {path: "/pets/{id}", method: ANY, integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/p/{id}"}}
      - {path: /own, method: GET, integration: {type: MOCK, headers: {access-control-allow-origin: x}}}
      - {path: /own, method: OPTIONS, integration: {type: MOCK, status: 204}}
"""


def document(cors: str, routes: str = ROUTES) -> str:
    """One API whose cors block is ``cors`` (lines at indent 6), starting at line 4."""
    return f"apis:\n  - id: a1b2c3d4e5\n    cors:\n{cors}    stages: {{prod: {{}}}}\n    routes:\n{routes}"


def api_of(text: str) -> ApiConfig:
    config, diags = parse_config(text)
    assert [d for d in diags if d.is_error] == [], diags
    assert config is not None
    return config.apis[0]


def found(text: str) -> list[tuple[str, int | None, int | None]]:
    config, diags = parse_config(text)
    assert config is None
    return [(d.code, d.location.line, d.location.column) for d in diags]


def routes_by_key(api: ApiConfig) -> dict[tuple[str, str], RouteConfig]:
    return {(r.path, r.method): r for r in api.routes}


def test_the_defaults_expand_into_what_the_console_writes() -> None:
    api = api_of(document("      allow_origin: https://app.example.com\n"))
    routes = routes_by_key(api)
    # one OPTIONS route per resource without one, authorization NONE, a MOCK 200 with an empty body
    assert routes[("/pets", "OPTIONS")] == RouteConfig(
        "/pets",
        "OPTIONS",
        MockIntegration(
            200,
            (
                ("Access-Control-Allow-Headers", CONSOLE_HEADERS),
                ("Access-Control-Allow-Methods", "GET,OPTIONS,POST"),
                ("Access-Control-Allow-Origin", "https://app.example.com"),
            ),
            b"",
        ),
        authorization="NONE",
    )
    # ANY stands for every method, listed alphabetically as the console lists them
    preflight = routes[("/pets/{id}", "OPTIONS")].integration
    assert isinstance(preflight, MockIntegration)
    assert dict(preflight.headers)["Access-Control-Allow-Methods"] == "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"
    # the API's own OPTIONS route is kept as written, and gets no other
    assert routes[("/own", "OPTIONS")].integration == MockIntegration(204, (), b"")
    assert [r.method for r in api.routes].count("OPTIONS") == 3
    # MOCK answers carry the origin; one a route sets itself is kept; HTTP_PROXY routes are untouched
    assert routes[("/pets", "GET")].integration == MockIntegration(
        200, (("Access-Control-Allow-Origin", "https://app.example.com"),), b"[]"
    )
    assert routes[("/own", "GET")].integration == MockIntegration(
        200, (("access-control-allow-origin", "x"),), b""
    )
    assert isinstance(routes[("/pets", "POST")].integration, HttpProxyIntegration)
    # DEFAULT_4XX and DEFAULT_5XX carry the headers on every error answer, the API's methods at once
    parameters = (  # sorted by key, as the gateway-responses reader keeps them
        ("gatewayresponse.header.Access-Control-Allow-Headers", f"'{CONSOLE_HEADERS}'"),
        ("gatewayresponse.header.Access-Control-Allow-Methods", "'DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT'"),
        ("gatewayresponse.header.Access-Control-Allow-Origin", "'https://app.example.com'"),
    )
    assert api.gateway_responses == {
        "DEFAULT_4XX": GatewayResponseConfig("DEFAULT_4XX", None, parameters),
        "DEFAULT_5XX": GatewayResponseConfig("DEFAULT_5XX", None, parameters),
    }


def test_every_option() -> None:
    api = api_of(
        document(
            "      allow_origin: http://localhost:3000\n"
            "      allow_methods: [get, POST]\n"
            "      allow_headers: [Content-Type, X-Trace]\n"
            "      expose_headers: [ETag, X-Request-Id]\n"
            "      max_age: 600\n"
            "      allow_credentials: true\n"
            "      gateway_responses: true\n",
            "      - {path: /a, method: GET, integration: {type: MOCK}}\n",
        )
    )
    routes = routes_by_key(api)
    assert routes[("/a", "OPTIONS")].integration == MockIntegration(
        200,
        (
            ("Access-Control-Allow-Headers", "Content-Type,X-Trace"),
            ("Access-Control-Allow-Methods", "GET,POST"),
            ("Access-Control-Allow-Origin", "http://localhost:3000"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Max-Age", "600"),
        ),
        b"",
    )
    assert routes[("/a", "GET")].integration == MockIntegration(
        200,
        (
            ("Access-Control-Allow-Origin", "http://localhost:3000"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Expose-Headers", "ETag,X-Request-Id"),
        ),
        b"",
    )
    assert api.gateway_responses["DEFAULT_4XX"].response_parameters == tuple(
        sorted(
            [
                ("gatewayresponse.header.Access-Control-Allow-Origin", "'http://localhost:3000'"),
                ("gatewayresponse.header.Access-Control-Allow-Headers", "'Content-Type,X-Trace'"),
                ("gatewayresponse.header.Access-Control-Allow-Methods", "'GET,POST'"),
                ("gatewayresponse.header.Access-Control-Allow-Credentials", "'true'"),
                ("gatewayresponse.header.Access-Control-Expose-Headers", "'ETag,X-Request-Id'"),
            ]
        )
    )


def test_without_gateway_responses_and_with_no_allowed_headers() -> None:
    api = api_of(
        document(
            "      allow_origin: '*'\n      allow_headers: []\n      gateway_responses: false\n",
            "      - {path: /, method: GET, integration: {type: MOCK}}\n",
        )
    )
    assert api.gateway_responses == {}
    assert routes_by_key(api)[("/", "OPTIONS")].integration == MockIntegration(
        200, (("Access-Control-Allow-Methods", "GET,OPTIONS"), ("Access-Control-Allow-Origin", "*")), b""
    )


def test_one_resource_written_two_ways_gets_one_options_route() -> None:
    api = api_of(
        document(
            "      allow_origin: '*'\n",
            "      - {path: '/pets/{id}', method: GET, integration: {type: MOCK}}\n"
            "      - {path: '/pets/{id}/', method: DELETE, integration: {type: MOCK}}\n",
        )
    )
    options = [r for r in api.routes if r.method == "OPTIONS"]
    assert len(options) == 1
    assert isinstance(options[0].integration, MockIntegration)
    assert dict(options[0].integration.headers)["Access-Control-Allow-Methods"] == "DELETE,GET,OPTIONS"


GOOD_ORIGINS = [
    "*",
    "https://app.example.com",
    "http://localhost:3000",
    "http://127.0.0.1:8080",
    "http://[::1]:8080",
    "https://xn--bcher-kva.example",
    "chrome-extension://abcdefghijklmnop",
]


@pytest.mark.parametrize("origin", GOOD_ORIGINS)
def test_origins_browsers_send_are_accepted(origin: str) -> None:
    api = api_of(document(f"      allow_origin: '{origin}'\n"))
    parameters = dict(api.gateway_responses["DEFAULT_4XX"].response_parameters)
    assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{origin}'"


BAD_ORIGINS = [
    "app.example.com",  # no scheme
    "https://app.example.com/",  # a trailing slash: never equal to the Origin header
    "https://app.example.com/path",
    "https://App.Example.com",  # browsers send the host in lower case
    "HTTPS://app.example.com",
    "https://app.example.com:443",  # the default port is left out of an origin
    "http://app.example.com:80",
    "https://app.example.com:99999",
    "https://app.example.com:",
    "https://user@app.example.com",
    "https://app.example.com?x=1",
    "null",
    "https://*.example.com",  # one origin, no patterns
    "https://a.example.com,https://b.example.com",
    "http://[::0001]:80",
    "http://[::1",
    "",
]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_origins_browsers_never_send_are_located_errors(origin: str) -> None:
    assert found(document(f"      allow_origin: '{origin}'\n")) == [("config.invalid-value", 4, 21)]


@pytest.mark.parametrize(
    ("cors", "expected"),
    [
        # allow_origin is required: the console's '*' is a choice to write down
        ("      max_age: 5\n", [("config.missing-key", 4, 7)]),
        ("      allow_origin: 5\n", [("config.wrong-type", 4, 21)]),
        ("      allow_origin: '*'\n      colour: red\n", [("config.unknown-key", 5, 7)]),
        ("      allow_origin: '*'\n      allow_methods: [GET, FETCH]\n", [("config.invalid-value", 5, 28)]),
        ("      allow_origin: '*'\n      allow_methods: [GET, get]\n", [("config.invalid-value", 5, 28)]),
        ("      allow_origin: '*'\n      allow_methods: [ANY]\n", [("config.invalid-value", 5, 23)]),
        ("      allow_origin: '*'\n      allow_methods: []\n", [("config.invalid-value", 5, 22)]),
        ("      allow_origin: '*'\n      allow_methods: GET\n", [("config.wrong-type", 5, 22)]),
        ("      allow_origin: '*'\n      allow_headers: ['X Y']\n", [("config.invalid-value", 5, 23)]),
        ("      allow_origin: '*'\n      allow_headers: [a, '*']\n", [("config.invalid-value", 5, 26)]),
        ("      allow_origin: '*'\n      expose_headers: [\"x'y\"]\n", [("config.invalid-value", 5, 24)]),
        ("      allow_origin: '*'\n      expose_headers: [ETag, etag]\n", [("config.invalid-value", 5, 30)]),
        ("      allow_origin: '*'\n      max_age: -1\n", [("config.invalid-value", 5, 16)]),
        ("      allow_origin: '*'\n      max_age: 1.5\n", [("config.wrong-type", 5, 16)]),
        ("      allow_origin: '*'\n      max_age: true\n", [("config.wrong-type", 5, 16)]),
        ("      allow_origin: '*'\n      max_age: '600'\n", [("config.wrong-type", 5, 16)]),
        ("      allow_origin: '*'\n      allow_credentials: yes please\n", [("config.wrong-type", 5, 26)]),
        ("      allow_origin: '*'\n      gateway_responses: 1\n", [("config.wrong-type", 5, 26)]),
        # browsers refuse credentialed answers with '*' origins, and read '*' elsewhere literally
        ("      allow_origin: '*'\n      allow_credentials: true\n", [("config.invalid-value", 5, 26)]),
        (
            "      allow_origin: https://a.example\n      allow_headers: ['*']\n"
            "      allow_credentials: true\n",
            [("config.invalid-value", 5, 22)],
        ),
    ],
)
def test_bad_values_are_located_errors(cors: str, expected: list[tuple[str, int, int]]) -> None:
    assert found(document(cors)) == expected


def test_not_a_mapping() -> None:
    assert found("apis:\n  - id: a1b2c3d4e5\n    cors: yes\n    stages: {prod: {}}\n    routes: []\n") == [
        ("config.wrong-type", 3, 11)
    ]


def test_a_declared_gateway_response_wins_and_one_without_the_origin_is_a_warning() -> None:
    text = "apis:\n  - gateway_responses:\n      DEFAULT_4XX: {}\n      ACCESS_DENIED: {}\n"
    doc = load_yaml(text)
    r = Reader(doc.positions, "<t>", Path.cwd(), Path.read_bytes)
    mine = GatewayResponseConfig(
        "DEFAULT_4XX", 418, (("gatewayresponse.header.access-control-allow-origin", "'*'"),)
    )
    denied = GatewayResponseConfig("ACCESS_DENIED", None, (("gatewayresponse.header.x", "'y'"),))
    route = RouteConfig("/a", "GET", MockIntegration(200, (), b""))
    cors = CorsSettings("*", None, DEFAULT_ALLOW_HEADERS)
    routes, responses = apply_cors(
        r, cors, "/apis/0", [route], {"DEFAULT_4XX": mine, "ACCESS_DENIED": denied}
    )
    assert responses["DEFAULT_4XX"] is mine
    assert responses["ACCESS_DENIED"] is denied
    assert dict(responses["DEFAULT_5XX"].response_parameters)[
        "gatewayresponse.header.Access-Control-Allow-Origin"
    ] == ("'*'")
    assert [(d.code, d.location.line, d.location.column) for d in r.diags] == [
        ("config.cors-gateway-response", 4, 22)
    ]
    assert [rt.method for rt in routes] == ["GET", "OPTIONS"]
    # with gateway_responses: false the API's own are all there is, and nothing is said about them
    r.diags.clear()
    off = CorsSettings("*", gateway_responses=False)
    _, responses = apply_cors(r, off, "/apis/0", [route], {"ACCESS_DENIED": denied})
    assert responses == {"ACCESS_DENIED": denied}
    assert r.diags == []


def test_declared_gateway_responses_in_yaml_win_and_are_warned_about() -> None:
    text = (
        "apis:\n"
        "  - id: a1b2c3d4e5\n"
        "    cors: {allow_origin: 'https://app.example.com'}\n"
        "    gateway_responses:\n"
        "      DEFAULT_5XX:\n"
        "        status_code: 503\n"
        "      ACCESS_DENIED:\n"
        "        response_parameters:\n"
        "          gatewayresponse.header.Access-Control-Allow-Origin: \"'https://app.example.com'\"\n"
        "    stages: {prod: {}}\n"
        "    routes:\n"
        "      - {path: /a, method: GET, integration: {type: MOCK}}\n"
    )
    config, diags = parse_config(text)
    assert config is not None
    assert [(d.code, d.location.line, d.location.column) for d in diags] == [
        ("config.cors-gateway-response", 6, 9)
    ]
    responses = config.apis[0].gateway_responses
    assert responses["DEFAULT_5XX"] == GatewayResponseConfig("DEFAULT_5XX", 503)
    assert responses["ACCESS_DENIED"].response_parameters == (
        ("gatewayresponse.header.Access-Control-Allow-Origin", "'https://app.example.com'"),
    )
    assert dict(responses["DEFAULT_4XX"].response_parameters)[
        "gatewayresponse.header.Access-Control-Allow-Origin"
    ] == ("'https://app.example.com'")


@pytest.mark.parametrize("origin", GOOD_ORIGINS)
def test_the_generated_gateway_responses_pass_the_gateway_responses_rules(origin: str) -> None:
    cors = f"      allow_origin: '{origin}'\n      expose_headers: [ETag]\n      max_age: 5\n" + (
        "      allow_credentials: true\n" if origin != "*" else ""
    )
    for response in api_of(document(cors)).gateway_responses.values():
        for key, source in response.response_parameters:
            assert parameter_problem(key, source) is None, (key, source)


def test_what_apply_stores_is_aws_s_own_objects() -> None:
    """The expanded routes reach a store as the console's objects: an OPTIONS method, authorization
    NONE, a MOCK integration whose 200 integration response maps the headers as quoted literals."""
    from iamgate.management.convert import definition_to_draft
    from iamgate.management.entries import api_definition

    api = api_of(document("      allow_origin: https://app.example.com\n      max_age: 600\n"))
    draft = definition_to_draft(api_definition(api), api.id)
    pets = next(r for r in draft["resources"].values() if r["path"] == "/pets")
    options = pets["resourceMethods"]["OPTIONS"]
    assert options["authorizationType"] == "NONE"
    integration = options["methodIntegration"]
    assert integration["type"] == "MOCK"
    assert json.loads(integration["requestTemplates"]["application/json"]) == {"statusCode": 200}
    assert integration["integrationResponses"]["200"]["responseParameters"] == {
        "method.response.header.Access-Control-Allow-Headers": f"'{CONSOLE_HEADERS}'",
        "method.response.header.Access-Control-Allow-Methods": "'GET,OPTIONS,POST'",
        "method.response.header.Access-Control-Allow-Origin": "'https://app.example.com'",
        "method.response.header.Access-Control-Max-Age": "'600'",
    }
    get = pets["resourceMethods"]["GET"]["methodIntegration"]["integrationResponses"]["200"]
    assert get["responseParameters"] == {
        "method.response.header.Access-Control-Allow-Origin": "'https://app.example.com'"
    }


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["*", "GET", "http://a.b", "https://[::1]:8", "Content-Type", "http://x:0"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_BLOCKS = st.dictionaries(st.sampled_from([*CorsSettings.__dataclass_fields__, "other"]), _VALUES, max_size=7)


@settings(max_examples=300, deadline=None)
@given(block=_BLOCKS | _VALUES)
def test_any_cors_value_is_diagnosed_never_raised(block: object) -> None:
    """Whatever the block holds, reading it gives a configuration or located diagnostics."""
    text = yaml.safe_dump(
        {
            "apis": [
                {
                    "id": "a1b2c3d4e5",
                    "cors": block,
                    "stages": {"prod": {}},
                    "routes": [{"path": "/{proxy+}", "method": "ANY", "integration": {"type": "MOCK"}}],
                }
            ]
        }
    )
    config, diags = parse_config(text)
    assert (config is None) == any(d.is_error for d in diags)
    if config is not None:
        methods = {(r.path, r.method) for r in config.apis[0].routes}
        assert methods == {("/{proxy+}", "ANY"), ("/{proxy+}", "OPTIONS")}
