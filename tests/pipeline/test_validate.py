"""The validate stage on its own (issue 17, request validation): hand-built exchanges on a real
snapshot, the stages before it run for real; the bodies the connection would buffer are set on
the exchange as it sets them. Plus the property: validation never raises, on any JSON value and
on any bytes."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgate.config.snapshot import Snapshot
from iamgate.pipeline import responses as R
from iamgate.pipeline.chain import NAMES
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.later import NEED_BODY
from iamgate.pipeline.validate import describe_errors, parse_body, validate
from tests.pipeline.stage_support import make_exchange, make_services, make_snapshot, run_before, run_to

CONFIG = """
gateway: {region: us-east-1, account_id: "111122223333"}
apis:
  - id: a1b2c3d4e5
    stages: {prod: {}}
    models:
      Pet:
        schema:
          $schema: "http://json-schema.org/draft-04/schema#"
          type: object
          required: [name, price]
          properties:
            name: {type: string, minLength: 2}
            price: {type: number, minimum: 0, maximum: 100}
            kind: {enum: [dog, cat]}
            tag: {type: string, pattern: "^[a-z]+$"}
            owner: {$ref: "https://apigateway.amazonaws.com/restapis/a1b2c3d4e5/models/Owner"}
      Owner:
        schema: '{"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"},
          "pets": {"type": "array", "items": {"$ref": "https://apigateway.amazonaws.com/restapis/a1b2c3d4e5/models/Pet"}}}}'
      Anything:
        schema: {}
      Deep:
        schema:
          type: [array, object, integer]
          items: {$ref: "#"}
          additionalProperties: {$ref: "#"}
    request_validators:
      all: {validate_request_body: true, validate_request_parameters: true}
      params: {validate_request_parameters: true}
      body: {validate_request_body: true}
      none: {}
    routes:
      - path: /pets/{id}
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/pets/{id}"}
        request_validator: all
        request_models: {application/json: Pet, text/x-owner: Owner}
        request_parameters:
          method.request.querystring.limit: true
          method.request.header.X-Token: true
          method.request.path.id: true
          method.request.querystring.optional: false
      - path: /params
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/params"}
        request_validator: params
        request_models: {application/json: Pet}
        request_parameters: {method.request.header.b-header: true, method.request.querystring.a: true}
      - path: /multi
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/multi"}
        request_validator: params
        request_parameters:
          method.request.multivaluequerystring.tag: true
          method.request.multivalueheader.X-Trace: true
      - path: /body
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/body"}
        request_validator: body
        request_models: {$default: Pet}
        request_parameters: {method.request.querystring.ignored: true}
      - path: /deep
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/deep"}
        request_validator: body
        request_models: {application/json: Deep, application/x-any: Anything}
      - path: /unchecked
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/unchecked"}
        request_validator: none
        request_models: {application/json: Pet}
      - path: /open
        method: POST
        integration: {type: HTTP_PROXY, uri: "http://127.0.0.1:9/open"}
        request_models: {application/json: Pet}
"""

SNAP: Snapshot = make_snapshot(CONFIG)
SERVICES = make_services()
GOOD = {"name": "Rex", "price": 10}
ALL_PARAMS = "?limit=5"
TOKEN = {"X-Token": "t"}


def exchange(target: str, headers: dict[str, str] | None = None, body: Any = None) -> Exchange:
    ex = make_exchange(SNAP, SERVICES, "POST", f"/prod{target}", headers)
    if body is not None:
        ex.body = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ex


def answer(ex: Exchange) -> Any:
    return run_to("validate", ex)


def test_validate_runs_after_throttle() -> None:
    assert NAMES[-2:] == ("throttle", "validate")


def test_a_route_without_a_validator_or_one_that_checks_nothing_has_no_check() -> None:
    for path in ("/unchecked", "/open"):
        ex = exchange(path, body=b"not json")
        run_before("validate", ex)
        assert ex.route is not None
        assert ex.route.check is None
        assert validate(ex) is None


@pytest.mark.parametrize(
    ("target", "headers", "missing"),
    [
        ("/pets/1", {}, "X-Token, limit"),  # sorted by expression: header before querystring
        ("/pets/1?limit=", TOKEN, "limit"),  # empty
        ("/pets/1?limit", TOKEN, "limit"),  # no value at all
        ("/pets/1?other=1", TOKEN, "limit"),
        ("/pets/1?limit=5", {"X-Token": ""}, "X-Token"),  # an empty header
        ("/pets/1?limit=5", {"X-Token": "   "}, "X-Token"),
        ("/params", {}, "b-header, a"),
        ("/params?a=1", {}, "b-header"),
    ],
)
def test_missing_or_empty_required_parameters(target: str, headers: dict[str, str], missing: str) -> None:
    ex = exchange(target, headers)
    result = answer(ex)
    assert isinstance(result, R.GatewayResponse)
    assert result.status == 400
    assert result.response_type == "BAD_REQUEST_PARAMETERS"
    assert result.error_type == "BadRequestException"
    assert json.loads(result.body) == {"message": f"Missing required request parameters: [{missing}]"}
    assert ex.validation_error == f"Missing required request parameters: [{missing}]"


def test_multi_value_parameters_are_required_as_the_single_forms() -> None:
    ex = exchange("/multi")
    result = answer(ex)
    assert isinstance(result, R.GatewayResponse)
    assert json.loads(result.body) == {"message": "Missing required request parameters: [X-Trace, tag]"}
    assert answer(exchange("/multi?tag=a&tag=b", {"x-trace": "1"})) is None


def test_header_names_are_case_insensitive_and_encoded_query_names_count() -> None:
    ex = exchange("/pets/1?li%6Dit=5", {"x-TOKEN": "t"})
    assert answer(ex) is NEED_BODY
    ex = exchange("/params?a=1", {"B-Header": "x"})
    assert answer(ex) is None  # a parameters-only validator never asks for the body


def test_a_body_only_validator_does_not_check_parameters() -> None:
    assert answer(exchange("/body", body=GOOD)) is None


def test_the_body_is_asked_for_when_a_model_applies() -> None:
    ex = exchange("/pets/1" + ALL_PARAMS, TOKEN)
    assert answer(ex) is NEED_BODY
    ex.body = json.dumps(GOOD).encode()
    assert validate(ex) is None
    assert ex.validation_error is None


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (None, GOOD, None),  # no Content-Type: application/json, as API Gateway assumes
        ("application/json", GOOD, None),
        ("Application/JSON; charset=utf-8", GOOD, None),
        ("application/json;charset=UTF-8", {"name": "R"}, 400),
        ("text/x-owner", {"id": 1, "pets": [GOOD]}, None),
        ("text/x-owner", {"id": 1, "pets": [{"name": "Rex"}]}, 400),  # Pet inside Owner, by $ref
        ("text/plain", b"anything at all", None),  # no model for this type, no $default: not validated
        ("application/xml", b"<pet/>", None),
    ],
)
def test_the_model_is_chosen_by_content_type(
    content_type: str | None, body: Any, expected: int | None
) -> None:
    headers = dict(TOKEN)
    if content_type is not None:
        headers["Content-Type"] = content_type
    ex = exchange("/pets/1" + ALL_PARAMS, headers, body)
    result = answer(ex)
    if expected is None:
        assert result is None
    else:
        assert isinstance(result, R.GatewayResponse)
        assert result.status == expected


def test_default_model_applies_to_any_content_type() -> None:
    result = answer(exchange("/body", {"Content-Type": "text/plain"}, b"hello"))
    assert isinstance(result, R.GatewayResponse)
    assert result.response_type == "BAD_REQUEST_BODY"
    assert answer(exchange("/body", {"Content-Type": "text/plain"}, GOOD)) is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({}, '[object has missing required properties (["name","price"])]'),
        (b"", '[object has missing required properties (["name","price"])]'),  # empty: {}
        (
            {"name": 5, "price": 1},
            '[instance type (integer) does not match any allowed primitive type (allowed: ["string"])]',
        ),
        ({"name": "R", "price": 1}, '[string "R" is too short (length: 1, required minimum: 2)]'),
        (
            {"name": "Rex", "price": -1},
            "[numeric instance is lower than the required minimum (minimum: 0, found: -1)]",
        ),
        (
            {"name": "Rex", "price": 101},
            "[numeric instance is greater than the required maximum (maximum: 100, found: 101)]",
        ),
        (
            {"name": "Rex", "price": 1, "kind": "fish"},
            '[instance value ("fish") not found in enum (possible values: ["dog","cat"])]',
        ),
        (
            {"name": "Rex", "price": 1, "tag": "A"},
            '[ECMA 262 regex "^[a-z]+$" does not match input string "A"]',
        ),
        ([], '[instance type (array) does not match any allowed primitive type (allowed: ["object"])]'),
        (
            {"price": "x"},
            '[object has missing required properties (["name"]), instance type (string) does not match '
            'any allowed primitive type (allowed: ["number"])]',
        ),
    ],
)
def test_invalid_bodies_are_refused_with_the_validation_error_string(body: Any, why: str) -> None:
    ex = exchange("/pets/1" + ALL_PARAMS, TOKEN, body)
    result = answer(ex)
    assert isinstance(result, R.GatewayResponse)
    assert result.status == 400
    assert result.response_type == "BAD_REQUEST_BODY"
    assert json.loads(result.body) == {"message": "Invalid request body"}
    assert ex.validation_error == why


@pytest.mark.parametrize(
    "body", [b"{", b"not json", b"\xff\xfe", b'{"name": "a"} trailing', b"[" * 1025 + b"]" * 1025]
)
def test_bodies_that_are_not_json_are_invalid(body: bytes) -> None:
    ex = exchange("/pets/1" + ALL_PARAMS, TOKEN, body)
    result = answer(ex)
    assert isinstance(result, R.GatewayResponse)
    assert result.response_type == "BAD_REQUEST_BODY"
    assert ex.validation_error is not None
    assert ex.validation_error.startswith("[Invalid JSON: ")


def test_deep_bodies_within_the_parser_limit_are_validated_against_a_recursive_schema() -> None:
    for depth in (100, 1000, 1024):
        body = b"[" * depth + b"]" * depth
        assert answer(exchange("/deep", body=body)) is None
        body = b"[" * depth + b'"x"' + b"]" * depth  # a string at the bottom: not allowed
        result = answer(exchange("/deep", body=body))
        assert isinstance(result, R.GatewayResponse)
        assert result.response_type == "BAD_REQUEST_BODY"


def test_many_errors_are_described_up_to_a_bound() -> None:
    validator = SNAP.apis["a1b2c3d4e5"].tree.match(("deep",), "POST").target.check.models["application/json"]  # type: ignore[union-attr]
    why = describe_errors(validator, ["x"] * 1000)
    assert why.count("instance type") == 10


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)
PET_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "name": JSON,
        "price": JSON,
        "kind": JSON,
        "tag": JSON,
        "owner": st.fixed_dictionaries({}, optional={"id": JSON, "pets": st.lists(JSON, max_size=3)}),
    },
)


def _check(body: bytes, path: str, content_type: str = "application/json") -> None:
    ex = exchange(
        path + (ALL_PARAMS if path.startswith("/pets") else ""), {**TOKEN, "Content-Type": content_type}, body
    )
    result = answer(ex)
    if result is None:
        _, why = parse_body(body)
        assert why is None
    else:
        assert isinstance(result, R.GatewayResponse)
        assert result.response_type == "BAD_REQUEST_BODY"
        assert isinstance(ex.validation_error, str)
        assert ex.validation_error.startswith("[")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON | PET_LIKE)
def test_validation_never_raises_on_any_json_value(value: Any) -> None:
    for path in ("/pets/1", "/deep", "/body"):
        _check(json.dumps(value).encode(), path)
    _check(json.dumps(value).encode(), "/pets/1", "text/x-owner")


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_validation_never_raises_on_any_bytes(body: bytes) -> None:
    _check(body, "/pets/1")
    _check(body, "/deep")


def test_numbers_beyond_what_the_parser_reads_are_an_invalid_body_not_a_crash() -> None:
    for body in (
        b'{"name": "Rex", "price": 1e400}',
        b'{"name": "Rex", "price": 123456789012345678901234567890}',
    ):
        ex = exchange("/pets/1" + ALL_PARAMS, TOKEN, body)
        result = answer(ex)
        assert result is None or (isinstance(result, R.GatewayResponse) and result.status == 400)
    assert orjson.loads(b"1") == 1


def test_an_empty_path_parameter_is_missing() -> None:
    # routing never matches {id} to an empty segment; the stage still checks what it is given
    ex = exchange("/pets/1" + ALL_PARAMS, TOKEN)
    run_before("validate", ex)
    ex.params = {"id": ""}
    result = validate(ex)
    assert isinstance(result, R.GatewayResponse)
    assert json.loads(result.body) == {"message": "Missing required request parameters: [id]"}


def test_values_quoted_in_the_validation_error_string_are_cut() -> None:
    ex = exchange("/pets/1" + ALL_PARAMS, TOKEN, {"name": "Rex", "price": 1, "tag": "A" * 100_000})
    assert isinstance(answer(ex), R.GatewayResponse)
    assert ex.validation_error is not None
    assert len(ex.validation_error) < 400
    assert ex.validation_error.startswith('[ECMA 262 regex "^[a-z]+$" does not match input string "AAAA')
