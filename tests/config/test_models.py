"""Request validation in the configuration (issue 17): models, request validators and a route's
validator, models and parameters. Every mistake is a located diagnostic with a stable code;
cases compare (code, line, column), and a few the pointer inside a schema written as a string.
The reader functions are pure functions of the YAML data: called on their own, they report the
same things.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iamgate.config._reader import Reader
from iamgate.config._yaml import Positions
from iamgate.config.load import parse_config
from iamgate.config.model import ModelConfig, RequestValidatorConfig
from iamgate.config.read_models import (
    read_models,
    read_request_models,
    read_request_parameters,
    read_request_validators,
)
from iamgate.config.schemas import check_models, model_url
from iamgate.config.snapshot import build_snapshot

URL = "https://apigateway.amazonaws.com/restapis/a1b2c3d4e5/models"
ALL = "      all: {validate_request_body: true, validate_request_parameters: true}"


def document(models: str = "", validators: str = "", route: str = "") -> str:
    """One API: models from line 5, validators after them, one route last."""
    return (
        "apis:\n"
        "  - id: a1b2c3d4e5\n"
        "    stages: {prod: {}}\n"
        f"    models:\n{models or '      Pet: {schema: {type: object}}'}\n"
        f"    request_validators:\n{validators or ALL}\n"
        "    routes:\n"
        "      - path: /pets/{id}\n"
        "        method: POST\n"
        "        integration: {type: MOCK}\n"
        f"{route}"
    )


def found(text: str) -> list[tuple[str, int | None, int | None]]:
    config, diags = parse_config(text)
    errors = [(d.code, d.location.line, d.location.column) for d in diags if d.is_error]
    assert (config is None) == bool(errors)
    return errors


def test_a_valid_configuration_reads_into_the_model() -> None:
    text = document(
        models=(
            "      Pet:\n"
            "        content_type: application/json\n"
            "        description: a pet\n"
            "        schema: {type: object, required: [name], properties: {owner: {$ref: "
            f'"{URL}/Owner"}}}}}}\n'
            "      Owner:\n"
            '        schema: \'{"type": "object", "properties": '
            f'{{"pets": {{"items": {{"$ref": "{URL}/Pet"}}}}}}}}\'\n'
        ),
        route=(
            "        request_validator: all\n"
            "        request_models: {Application/JSON: Pet, $default: Owner}\n"
            "        request_parameters: {method.request.path.id: true, method.request.header.X-A: false}\n"
        ),
    )
    config, diags = parse_config(text)
    assert config is not None, [d.render() for d in diags]
    api = config.apis[0]
    assert set(api.models) == {"Pet", "Owner"}
    pet = api.models["Pet"]
    assert pet.description == "a pet"
    assert json.loads(pet.schema)["required"] == ["name"]  # a mapping is kept as JSON text
    assert api.request_validators["all"] == RequestValidatorConfig("all", True, True)
    route = api.routes[0]
    assert route.request_validator == "all"
    assert route.request_models == (("Application/JSON", "Pet"), ("$default", "Owner"))
    assert route.request_parameters == (  # sorted by expression
        ("method.request.header.X-A", False),
        ("method.request.path.id", True),
    )
    check = build_snapshot(config).apis["a1b2c3d4e5"].tree.match(("pets", "1"), "POST").target.check  # type: ignore[union-attr]
    assert check is not None
    assert check.parameters == (("path", "id", b"id"),)
    assert set(check.models) == {"application/json", "$default"}


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        # a type that is not one of JSON Schema's: at the value, inside the mapping
        ("      Pet: {schema: {properties: {name: {type: strin}}}}", [("config.invalid-schema", 5, 48)]),
        ("      Pet: {schema: {required: []}}", [("config.invalid-schema", 5, 32)]),  # draft 4: minItems 1
        ("      Pet: {schema: {minimum: x}}", [("config.invalid-schema", 5, 31)]),
        ("      Pet: {schema: {pattern: '(['}}", [("config.invalid-schema", 5, 31)]),
        ("      Pet: {schema: '{\"type\": '}", [("config.invalid-json", 5, 21)]),
        ("      Pet: {schema: '[1, 2]'}", [("config.invalid-schema", 5, 21)]),
        ("      Pet: {schema: 5}", [("config.wrong-type", 5, 21)]),
        ("      Pet: {schema: {maximum: .inf}}", [("config.invalid-schema", 5, 21)]),
        ("      Pet: {}", [("config.missing-key", 5, 12)]),
        ("      Pet: {schema: {}, content: x}", [("config.unknown-key", 5, 25)]),
        ("      Pet-1: {schema: {}}", [("config.invalid-value", 5, 7)]),
        # references: to nothing in the schema, to an undefined model, to anything else, to
        # another API's model, to a model that has errors
        ("      Pet: {schema: {$ref: '#/definitions/nope'}}", [("config.invalid-ref", 5, 28)]),
        (f"      Pet: {{schema: {{$ref: '{URL}/Nope'}}}}", [("config.unknown-model", 5, 28)]),
        ("      Pet: {schema: {$ref: 'http://example.com/s.json'}}", [("config.invalid-ref", 5, 28)]),
        (
            "      Pet: {schema: {$ref: 'https://apigateway.amazonaws.com/restapis/other/models/Pet'}}",
            [("config.invalid-ref", 5, 28)],
        ),
        (
            f"      Pet: {{schema: {{$ref: '{URL}/Owner'}}}}\n      Owner: {{schema: {{type: 5}}}}",
            [("config.invalid-ref", 5, 21), ("config.invalid-schema", 6, 30)],
        ),
        (
            f"      Pet: {{schema: {{$ref: '{URL}/Owner#/definitions/x'}}}}\n      Owner: {{schema: {{}}}}",
            [("config.invalid-ref", 5, 28)],
        ),
    ],
)
def test_model_mistakes(models: str, expected: list[tuple[str, int, int]]) -> None:
    assert sorted(found(document(models=models))) == sorted(expected)


def test_a_schema_string_is_located_at_the_string_and_names_the_place_inside() -> None:
    config, diags = parse_config(
        document(models='      Pet: {schema: \'{"properties": {"a": {"minimum": "x"}}}\'}')
    )
    assert config is None
    (diag,) = diags
    assert diag.code == "config.invalid-schema"
    assert (diag.location.line, diag.location.column) == (5, 21)
    assert "/properties/a/minimum" in diag.message


def test_models_may_refer_to_each_other_in_a_cycle() -> None:
    models = (
        f"      Pet: {{schema: {{properties: {{owner: {{$ref: '{URL}/Owner'}}}}}}}}\n"
        f"      Owner: {{schema: {{properties: {{pet: {{$ref: '{URL}/Pet'}}}}}}}}\n"
        f"      Loop: {{schema: {{$ref: '{URL}/Loop'}}}}"
    )
    assert found(document(models=models)) == []


@pytest.mark.parametrize(
    ("validators", "route", "expected"),
    [
        ("      all: {validate_body: true}", "", [("config.unknown-key", 7, 13)]),
        ("      all: {validate_request_body: yes-please}", "", [("config.wrong-type", 7, 36)]),
        ("      all: []", "", [("config.wrong-type", 7, 12)]),
        ("", "        request_validator: al\n", [("config.unknown-validator", 12, 28)]),
        ("", "        request_models: {application/json: Pett}\n", [("config.unknown-model", 12, 44)]),
        ("", "        request_models: {not-a-type: Pet}\n", [("config.invalid-value", 12, 26)]),
        ("", "        request_models: [Pet]\n", [("config.wrong-type", 12, 25)]),
        (
            "",
            "        request_models: {application/json: Pet, Application/JSON: Pet}\n",
            [("config.invalid-value", 12, 49)],
        ),
        (
            "",
            "        request_parameters: {method.request.body.x: true}\n",
            [("config.invalid-parameter", 12, 30)],
        ),
        (
            "",
            "        request_parameters: {method.request.header: true}\n",
            [("config.invalid-parameter", 12, 30)],
        ),
        (
            "",
            "        request_parameters: {method.request.path.other: true}\n",
            [("config.unknown-path-parameter", 12, 30)],
        ),
        (
            "",
            "        request_parameters: {method.request.querystring.x: 1}\n",
            [("config.wrong-type", 12, 60)],
        ),
    ],
)
def test_validator_and_route_mistakes(
    validators: str, route: str, expected: list[tuple[str, int, int]]
) -> None:
    assert found(document(validators=validators, route=route)) == expected


def _reader() -> Reader:
    return Reader(Positions(), "<test>", Path("."), lambda p: b"")


def test_the_reader_functions_are_pure_functions_of_the_data() -> None:
    r = _reader()
    models = read_models(
        r,
        {"Pet": {"schema": {"type": "object"}}, "Bad": {"schema": '{"type": "nope"}'}},
        "/models",
        "abc",
    )
    assert set(models) == {"Pet", "Bad"}
    assert [d.code for d in r.diags] == ["config.invalid-schema"]
    assert r.diags[0].location.pointer == "/models/Bad/schema"
    r = _reader()
    assert read_request_validators(r, {"v": {"validate_request_parameters": True}}, "/v") == {
        "v": RequestValidatorConfig("v", False, True)
    }
    model = ModelConfig("Pet", "{}")
    assert read_request_models(r, {"$default": "Pet"}, "/m", {"Pet": model}) == (("$default", "Pet"),)
    assert read_request_parameters(r, {"method.request.path.proxy": True}, "/p", set(), "proxy") == (
        ("method.request.path.proxy", True),
    )
    assert r.diags == []


def test_check_models_without_a_reader() -> None:
    problems = check_models("abc", {"A": {"$ref": model_url("abc", "B")}, "B": {"type": "strin"}})
    assert [p.code for p in problems["A"]] == ["invalid-ref"]
    assert [(p.code, p.pointer) for p in problems["B"]] == [("invalid-schema", "/type")]
