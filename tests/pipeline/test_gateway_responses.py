"""The gateway-response table on hand-built exchanges: inheritance, templates, and what a
template makes of values that are absent, null or hostile."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.config.gateway_responses import ResponseTable, Template
from iamgate.config.model import GatewayResponseConfig
from iamgate.pipeline import responses as R
from iamgate.serving.gateway_responses import customise
from tests.pipeline.stage_support import make_exchange, make_services, make_snapshot, run_before

CONFIG = """
apis:
  - id: a1b2c3d4e5
    stages: {prod: {variables: {colour: teal}}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK, status: 200, body: ok}}
    gateway_responses:
      DEFAULT_5XX:
        response_templates:
          application/json: >-
            {"m":$context.error.messageString,"raw":"$context.error.message",
            "c":"${stageVariables.colour}","x":"$context.nothing.here"}
      UNAUTHORIZED:
        status_code: 418
"""


def exchange(target: str = "/prod/pets"):
    snap = make_snapshot(CONFIG)
    ex = make_exchange(snap, make_services(), "GET", target)
    run_before("authenticate", ex)
    return ex


def test_a_null_message_renders_as_json_null_and_unknown_variables_as_nothing() -> None:
    ex = exchange()
    assert ex.api is not None
    assert ex.api.responses is not None
    out = customise(ex.api.responses, ex, R.gateway_error(R.AUTHORIZER_CONFIGURATION_ERROR, None))
    assert out.status == 500
    assert json.loads(out.body) == {"m": None, "raw": "", "c": "teal", "x": ""}
    assert out.error_type == "AuthorizerConfigurationException"
    assert out.response_type == "AUTHORIZER_CONFIGURATION_ERROR"


def test_message_string_is_json_quoted_and_message_is_raw_as_on_aws() -> None:
    ex = exchange()
    assert ex.api is not None
    assert ex.api.responses is not None
    out = customise(ex.api.responses, ex, R.gateway_error(R.INTEGRATION_FAILURE, 'bad "backend"\n'))
    assert out.body.startswith(b'{"m":"bad \\"backend\\"\\n","raw":"bad "backend"\n",')


def test_only_customised_types_change_and_answers_without_a_type_never() -> None:
    ex = exchange()
    table = ex.api.responses if ex.api else None
    assert table is not None
    teapot = customise(table, ex, R.gateway_error(R.UNAUTHORIZED))
    assert (teapot.status, teapot.body) == (418, b'{"message":"Unauthorized"}')
    throttled = R.gateway_error(R.THROTTLED)  # a 4XX: DEFAULT_4XX is not customised
    assert customise(table, ex, throttled) is throttled
    mock = R.GatewayResponse(500, b"backend said so")  # a MOCK integration's answer: no type
    assert customise(table, ex, mock) is mock
    forbidden = R.gateway_error(R.FORBIDDEN)  # before the API is reached: not API Gateway's type
    assert customise(table, ex, forbidden) is forbidden


def test_an_api_without_customisations_has_no_table() -> None:
    assert ResponseTable.build({}) is None


def test_template_variables_in_both_forms() -> None:
    t = Template("a $context.requestId b ${context.authorizer.claims.cognito:groups} $stageVariables.x.")
    out = t.render({"requestId": "r-1", "authorizer.claims.cognito:groups": "admins"}, {"x": "X"})
    assert out == "a r-1 b admins X."
    assert Template("$$context").render({}, {}) == "$$context"  # a lone '$' is text


_SOURCES = st.one_of(
    st.sampled_from(
        [
            "method.request.header.x-a",
            "method.request.querystring.q",
            "method.request.multivaluequerystring.q",
            "method.request.path.id",
            "stageVariables.colour",
            "context.requestId",
            "context.error.messageString",
            "context.authorizer.claims.sub",
            "context.identity.sourceIp",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_characters="'\r\n\x00"), max_size=8).map(lambda t: f"'{t}'"),
)


@settings(max_examples=200, deadline=None)
@given(
    template=st.text(max_size=60),
    source=_SOURCES,
    header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=20),
    query=st.binary(max_size=30),
    accept=st.binary(max_size=30),
)
def test_any_template_and_hostile_request_give_a_well_formed_answer(
    template: str, source: str, header: str, query: bytes, accept: bytes
) -> None:
    """Whatever the owner's template and whatever the client sends, customising never raises and
    never yields a header value that could end the header line."""
    table = ResponseTable(
        {
            "DEFAULT_4XX": GatewayResponseConfig(
                "DEFAULT_4XX",
                401,
                (("gatewayresponse.header.x-out", source),),
                (("application/json", template),),
            )
        }
    )
    snap = make_snapshot(CONFIG)
    ex = make_exchange(snap, make_services(), "GET", "/prod/pets", {"x-a": header})
    run_before("authenticate", ex)
    ex.query = query
    ex.hmap[b"accept"] = accept
    out = customise(table, ex, R.gateway_error(R.THROTTLED))
    assert out.status == 401
    assert isinstance(out.body, bytes)
    for name, value in out.headers:
        assert not any(c in value for c in "\r\n\x00"), (name, value)
