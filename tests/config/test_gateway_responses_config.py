"""An API's gateway_responses in the configuration file: every mistake a located diagnostic with
a stable code, and a good entry read into the model (sorted, statuses as integers)."""

from __future__ import annotations

import pytest

from iamgate.config.load import parse_config
from iamgate.config.model import GatewayResponseConfig
from iamgate.config.read_responses import parameter_problem, template_problem

HEAD = """
apis:
  - id: a1b2c3d4e5
    stages: {prod: {}}
    routes:
      - {path: /pets, method: GET, integration: {type: MOCK, status: 200, body: ok}}
    gateway_responses:
"""


def read(body: str) -> tuple[dict[str, GatewayResponseConfig] | None, list[tuple[str, str, str]]]:
    config, diags = parse_config(HEAD + body, source="gw.yaml")
    found = [
        (d.code, d.location.pointer if d.location else "", f"{d.message} ({d.help})")
        for d in diags
        if d.is_error
    ]
    return (config.apis[0].gateway_responses if config else None), found


def test_a_good_section_is_read_into_the_model() -> None:
    responses, errors = read(
        """
      DEFAULT_4XX:
        response_parameters:
          gatewayresponse.header.x-b: "'2'"
          gatewayresponse.header.Access-Control-Allow-Origin: "'*'"
      MISSING_AUTHENTICATION_TOKEN: {status_code: "404", response_templates: {application/json: '{"m":1}'}}
      THROTTLED:
"""
    )
    assert errors == []
    assert responses == {
        "DEFAULT_4XX": GatewayResponseConfig(
            "DEFAULT_4XX",
            None,
            (
                ("gatewayresponse.header.Access-Control-Allow-Origin", "'*'"),
                ("gatewayresponse.header.x-b", "'2'"),
            ),
        ),
        "MISSING_AUTHENTICATION_TOKEN": GatewayResponseConfig(
            "MISSING_AUTHENTICATION_TOKEN", 404, (), (("application/json", '{"m":1}'),)
        ),
        "THROTTLED": GatewayResponseConfig("THROTTLED"),
    }


@pytest.mark.parametrize(
    ("body", "pointer", "words"),
    [
        ("      ACCESS_DENY: {}\n", "/apis/0/gateway_responses/ACCESS_DENY", "did you mean 'ACCESS_DENIED'"),
        # a 1xx is an interim answer: as the final one, the client would wait for another forever
        (
            "      DEFAULT_4XX: {status_code: 101}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/status_code",
            "out of range",
        ),
        (
            "      DEFAULT_4XX: {status_code: 700}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/status_code",
            "out of range",
        ),
        (
            "      DEFAULT_4XX: {status_code: abc}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/status_code",
            "integer",
        ),
        ("      DEFAULT_4XX: {status: 400}\n", "/apis/0/gateway_responses/DEFAULT_4XX/status", "unknown key"),
        (
            "      DEFAULT_4XX: {response_parameters: {method.response.header.x: \"'1'\"}}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/response_parameters/method.response.header.x",
            "gatewayresponse.header.NAME",
        ),
        (
            '      DEFAULT_4XX: {response_parameters: {gatewayresponse.header.x: "*"}}\n',
            "/apis/0/gateway_responses/DEFAULT_4XX/response_parameters/gatewayresponse.header.x",
            "not a valid source",
        ),
        (
            "      DEFAULT_4XX: {response_parameters: {gatewayresponse.header.Content-Length: \"'1'\"}}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/response_parameters/gatewayresponse.header.Content-Length",
            "writes the Content-Length header itself",
        ),
        (
            "      DEFAULT_4XX: {response_templates: {json: '{}'}}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/response_templates/json",
            "not a content type",
        ),
        (
            "      DEFAULT_4XX: {response_templates: {application/json: [1]}}\n",
            "/apis/0/gateway_responses/DEFAULT_4XX/response_templates/application~1json",
            "must be a string",
        ),
        ("      - DEFAULT_4XX\n", "/apis/0/gateway_responses", "must be a mapping"),
    ],
)
def test_each_mistake_is_located(body: str, pointer: str, words: str) -> None:
    responses, errors = read(body)
    assert responses is None  # a file with an error gives no configuration at all
    assert len(errors) == 1, errors
    code, where, message = errors[0]
    assert code in ("config.invalid-value", "config.wrong-type", "config.unknown-key")
    assert where == pointer
    assert words in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gatewayresponse.header.A", "'x'"),
        ("gatewayresponse.header.A", "method.request.header.x-y"),
        ("gatewayresponse.header.A", "method.request.querystring.q"),
        ("gatewayresponse.header.A", "method.request.path.id"),
        ("gatewayresponse.header.A", "method.request.multivalueheader.x"),
        ("gatewayresponse.header.A", "method.request.multivaluequerystring.q"),
        ("gatewayresponse.header.A", "stageVariables.colour"),
        ("gatewayresponse.header.A", "context.authorizer.principalId"),
    ],
)
def test_every_source_api_gateway_accepts_is_accepted(key: str, value: str) -> None:
    assert parameter_problem(key, value) is None


@pytest.mark.parametrize(
    "value", ["'a\r\nb'", "'unclosed", "method.request.body.x", "context.", "header.x", "'x' ", 5, None]
)
def test_sources_that_are_not_sources_are_refused(value: object) -> None:
    assert parameter_problem("gatewayresponse.header.A", value) is not None


def test_templates_need_a_content_type_and_text() -> None:
    assert template_problem("application/json", "{}") is None
    assert template_problem("text/html", "<p>$context.error.message</p>") is None
    assert template_problem("", "{}") is not None
    assert template_problem("application/json", "a\x00b") is not None
