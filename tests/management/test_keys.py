"""API keys, usage plans, usage-plan keys and GetUsage through the real AWS clients.

Every operation goes through boto3 (and some through the AWS CLI) against the management API
served on a loopback admin port over a fresh SQLite store; documents are then read back from the
store to check they are exactly the configuration file's ``api_keys`` / ``usage_plans`` entries,
and the gateway's own configuration loader accepts what the store composes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from iamgate.config.load import parse_config
from iamgate.config.snapshot import build_snapshot
from iamgate.store import Store
from iamgate.store.compose import compose
from iamgate.throttle.memory import MemoryBackend
from iamgate.throttle.usage import get_usage
from tests.management.conftest import AdminHandle as Admin

API = "k1e2y3s4a5"


def put_stage(store: Store, api_id: str, stage: str) -> None:
    """An API draft, a deployment and a stage serving it, written directly (core's operations)."""
    route = {"path": "/pets", "method": "GET", "integration": {"type": "MOCK", "status": 200, "body": "{}"}}
    with store.transaction() as tx:
        if tx.get("restapi", "", api_id) is None:
            tx.put("restapi", "", api_id, {"restApi": {"id": api_id, "name": api_id}, "resources": {}})
        definition = {"name": api_id, "routes": [route]}
        tx.put("deployment", api_id, "d1", {"id": "d1", "createdDate": 0, "definition": definition})
        tx.put("stage", api_id, stage, {"stageName": stage, "deploymentId": "d1", "config": {}})


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def composed_config_ok(admin: Admin) -> None:
    """What the gateway would serve from this store passes the gateway's own loader."""
    document, _ = compose({"apis": []}, admin.store.served())
    config, diags = parse_config(json.dumps(document), source="store")
    assert config is not None, [d.message for d in diags]


@pytest.fixture
def admin(admin_server: Admin) -> Admin:
    """Core's admin server, with two stages, and GetUsage answered as the gateway answers it:
    :func:`iamgate.throttle.usage.get_usage` over what the gateway would serve from the store now
    (a real memory throttle backend, with no traffic in these tests)."""
    put_stage(admin_server.store, API, "prod")
    put_stage(admin_server.store, API, "beta")
    backend = MemoryBackend()

    async def usage(query: dict[str, str]) -> dict[str, Any]:
        document, _ = compose({"apis": []}, admin_server.store.served())
        served, _ = parse_config(json.dumps(document), source="store")
        assert served is not None
        return await get_usage(build_snapshot(served), backend, query)

    admin_server.app.context.usage = usage
    return admin_server


def test_api_key_lifecycle(admin: Admin) -> None:
    c = admin.boto3()
    created = c.create_api_key(
        name="partner", description="for the partner", enabled=True, tags={"team": "a"}
    )
    assert len(created["value"]) == 40
    assert created["value"].isalnum()
    assert created["enabled"] is True
    assert created["name"] == "partner"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    key_id = created["id"]

    fetched = c.get_api_key(apiKey=key_id)
    assert "value" not in fetched  # only with includeValue
    assert c.get_api_key(apiKey=key_id, includeValue=True)["value"] == created["value"]
    assert fetched["createdDate"].timestamp() == pytest.approx(time.time(), abs=60)

    # the store holds the configuration file's api_keys entry plus AWS metadata
    with admin.store.transaction() as tx:
        doc = tx.get("apikey", "", key_id)
    assert doc is not None
    assert {k: doc[k] for k in ("id", "name", "value", "enabled")} == {
        "id": key_id,
        "name": "partner",
        "value": created["value"],
        "enabled": True,
    }
    assert doc["description"] == "for the partner"
    assert doc["tags"] == {"team": "a"}

    updated = c.update_api_key(
        apiKey=key_id,
        patchOperations=[
            {"op": "replace", "path": "/enabled", "value": "false"},
            {"op": "replace", "path": "/name", "value": "renamed"},
        ],
    )
    assert updated["enabled"] is False
    assert updated["name"] == "renamed"
    listed = c.get_api_keys(includeValues=True)["items"]
    assert [(k["id"], k["value"]) for k in listed] == [(key_id, created["value"])]
    assert c.get_api_keys(nameQuery="other")["items"] == []

    c.delete_api_key(apiKey=key_id)
    with pytest.raises(ClientError) as exc:
        c.get_api_key(apiKey=key_id)
    assert error_of(exc)[0] == "NotFoundException"
    assert key_id in error_of(exc)[1]
    composed_config_ok(admin)


def test_api_key_values_defaults_and_errors(admin: Admin) -> None:
    c = admin.boto3()
    given = "a" * 19 + "-_" + "Z" * 10
    key = c.create_api_key(name="given", value=given)
    assert key["value"] == given
    assert key["enabled"] is False  # API Gateway: a key is disabled unless created enabled
    with pytest.raises(ClientError) as exc:
        c.create_api_key(name="short", value="tooshort")
    code, message, status = error_of(exc)
    assert (code, status) == ("BadRequestException", 400)
    assert "20 to 128" in message
    assert "8 characters" in message
    with pytest.raises(ClientError) as exc:
        c.create_api_key(name="bad chars", value="x" * 25 + "!")
    assert error_of(exc)[0] == "BadRequestException"
    with pytest.raises(ClientError) as exc:
        c.create_api_key(name="same", value=given)
    assert error_of(exc)[0] == "ConflictException"
    assert key["id"] in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.update_api_key(
            apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/value", "value": "x"}]
        )
    assert "cannot be changed" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.update_api_key(apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/nope", "value": "x"}])
    code, message, _ = error_of(exc)
    assert code == "BadRequestException"
    assert "/nope" in message
    assert "/enabled" in message
    with pytest.raises(ClientError) as exc:
        c.update_api_key(
            apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "yes"}]
        )
    assert "true or false" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.delete_api_key(apiKey="nosuchkey0")
    assert error_of(exc)[:1] == ("NotFoundException",)


def test_api_keys_are_paged(admin: Admin) -> None:
    c = admin.boto3()
    ids = sorted(c.create_api_key(name=f"k{i}")["id"] for i in range(5))
    first = c.get_api_keys(limit=2)
    assert [k["id"] for k in first["items"]] == ids[:2]
    second = c.get_api_keys(limit=2, position=first["position"])
    assert [k["id"] for k in second["items"]] == ids[2:4]
    pages = c.get_paginator("get_api_keys").paginate(PaginationConfig={"PageSize": 2})
    assert [k["id"] for page in pages for k in page["items"]] == ids


def plan_args(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "basic",
        "description": "the basic plan",
        "apiStages": [
            {"apiId": API, "stage": "prod", "throttle": {"/pets/GET": {"rateLimit": 1.5, "burstLimit": 2}}}
        ],
        "throttle": {"rateLimit": 10, "burstLimit": 20},
        "quota": {"limit": 1000, "period": "WEEK", "offset": 1},
    }
    args.update(over)
    return args


def test_usage_plan_lifecycle_and_store_shape(admin: Admin) -> None:
    c = admin.boto3()
    plan = c.create_usage_plan(**plan_args())
    assert plan["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert plan["throttle"] == {"rateLimit": 10.0, "burstLimit": 20}
    assert plan["quota"] == {"limit": 1000, "period": "WEEK", "offset": 1}
    assert plan["apiStages"] == [
        {"apiId": API, "stage": "prod", "throttle": {"/pets/GET": {"rateLimit": 1.5, "burstLimit": 2}}}
    ]
    key = c.create_api_key(name="k", enabled=True)
    added = c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert added == {**added, "id": key["id"], "type": "API_KEY", "value": key["value"], "name": "k"}

    with admin.store.transaction() as tx:
        doc = tx.get("usageplan", "", plan["id"])
    # exactly the configuration file's usage_plans entry (docs/throttling.md) plus description
    assert doc == {
        "id": plan["id"],
        "name": "basic",
        "description": "the basic plan",
        "api_stages": [{"api": API, "stage": "prod", "throttle": {"/pets/GET": {"rate": 1.5, "burst": 2}}}],
        "throttle": {"rate": 10.0, "burst": 20},
        "quota": {"limit": 1000, "period": "WEEK", "offset": 1},
        "keys": [key["id"]],
    }
    composed_config_ok(admin)

    assert [p["id"] for p in c.get_usage_plans(keyId=key["id"])["items"]] == [plan["id"]]
    assert c.get_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])["value"] == key["value"]
    assert [k["id"] for k in c.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [key["id"]]

    updated = c.update_usage_plan(
        usagePlanId=plan["id"],
        patchOperations=[
            {"op": "replace", "path": "/throttle/rateLimit", "value": "5"},
            {"op": "replace", "path": "/quota/limit", "value": "50"},
            {"op": "replace", "path": "/quota/period", "value": "MONTH"},
            {"op": "replace", "path": "/quota/offset", "value": "0"},
            {"op": "add", "path": "/apiStages", "value": f"{API}:beta"},
            {"op": "replace", "path": f"/apiStages/{API}:prod/throttle/~1pets/GET/rateLimit", "value": "3"},
            {"op": "replace", "path": f"/apiStages/{API}:beta/throttle/~1/GET/rateLimit", "value": "7"},
            {"op": "replace", "path": f"/apiStages/{API}:beta/throttle/~1/GET/burstLimit", "value": "8"},
            {"op": "replace", "path": "/name", "value": "renamed"},
        ],
    )
    assert updated["name"] == "renamed"
    assert updated["throttle"] == {"rateLimit": 5.0, "burstLimit": 20}
    assert updated["quota"] == {"limit": 50, "period": "MONTH", "offset": 0}
    stages = {s["stage"]: s for s in updated["apiStages"]}
    assert stages["prod"]["throttle"] == {"/pets/GET": {"rateLimit": 3.0, "burstLimit": 2}}
    assert stages["beta"]["throttle"] == {"//GET": {"rateLimit": 7.0, "burstLimit": 8}}
    composed_config_ok(admin)

    removed = c.update_usage_plan(
        usagePlanId=plan["id"],
        patchOperations=[
            {"op": "remove", "path": "/apiStages", "value": f"{API}:beta"},
            {"op": "remove", "path": f"/apiStages/{API}:prod/throttle/~1pets/GET"},
            {"op": "remove", "path": "/quota"},
        ],
    )
    assert removed["apiStages"] == [{"apiId": API, "stage": "prod"}]
    assert "quota" not in removed

    c.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
    assert c.get_usage_plan_keys(usagePlanId=plan["id"])["items"] == []
    c.delete_usage_plan(usagePlanId=plan["id"])
    with pytest.raises(ClientError) as exc:
        c.get_usage_plan(usagePlanId=plan["id"])
    assert error_of(exc)[0] == "NotFoundException"


def test_usage_plan_errors(admin: Admin) -> None:
    c = admin.boto3()
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan(**plan_args(apiStages=[{"apiId": "nosuchapi0", "stage": "prod"}]))
    code, message, status = error_of(exc)
    assert (code, status) == ("NotFoundException", 404)
    assert "nosuchapi0" in message
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan(**plan_args(apiStages=[{"apiId": API, "stage": "gamma"}]))
    assert error_of(exc)[0] == "NotFoundException"
    assert "gamma" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan(**plan_args(quota={"limit": 10, "period": "YEAR"}))
    assert "DAY, WEEK, MONTH" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan(**plan_args(quota={"limit": 10, "period": "WEEK", "offset": 7}))
    assert "0 (Sunday) to 6" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan(**plan_args(throttle={"rateLimit": 5}))
    assert "burstLimit" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan(
            **plan_args(
                apiStages=[
                    {"apiId": API, "stage": "prod", "throttle": {"pets": {"rateLimit": 1, "burstLimit": 1}}}
                ]
            )
        )
    assert "'pets' is not a resource path and method" in error_of(exc)[1]
    plan = c.create_usage_plan(**plan_args())
    with pytest.raises(ClientError) as exc:
        c.update_usage_plan(
            usagePlanId=plan["id"], patchOperations=[{"op": "replace", "path": "/bogus", "value": "1"}]
        )
    assert "/bogus" in error_of(exc)[1]
    assert "/quota/limit" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.update_usage_plan(
            usagePlanId=plan["id"],
            patchOperations=[{"op": "replace", "path": "/throttle/rateLimit", "value": "x"}],
        )
    assert "not a number" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan_key(usagePlanId=plan["id"], keyId="nosuchkey0", keyType="API_KEY")
    assert error_of(exc)[0] == "NotFoundException"
    key = c.create_api_key(name="k")
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="OTHER")
    assert "API_KEY" in error_of(exc)[1]
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert error_of(exc)[0] == "ConflictException"
    # a key may be in one usage plan per API stage, as the gateway enforces
    other = c.create_usage_plan(**plan_args(name="other", apiStages=[{"apiId": API, "stage": "prod"}]))
    with pytest.raises(ClientError) as exc:
        c.create_usage_plan_key(usagePlanId=other["id"], keyId=key["id"], keyType="API_KEY")
    code, message, status = error_of(exc)
    assert (code, status) == ("ConflictException", 409)
    assert f"{API}:prod" in message
    composed_config_ok(admin)


def test_deleting_a_key_removes_it_from_its_plans(admin: Admin) -> None:
    c = admin.boto3()
    plan = c.create_usage_plan(**plan_args())
    key = c.create_api_key(name="k", enabled=True)
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    c.delete_api_key(apiKey=key["id"])
    assert c.get_usage_plan_keys(usagePlanId=plan["id"])["items"] == []
    composed_config_ok(admin)


def test_get_usage_shape_and_errors(admin: Admin) -> None:
    c = admin.boto3()
    plan = c.create_usage_plan(**plan_args())
    key = c.create_api_key(name="k", enabled=True)
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    usage = c.get_usage(usagePlanId=plan["id"], startDate="2026-11-01", endDate="2026-11-03")
    assert usage["usagePlanId"] == plan["id"]
    assert (usage["startDate"], usage["endDate"]) == ("2026-11-01", "2026-11-03")
    assert usage["items"] == {key["id"]: [[0, 1000], [0, 1000], [0, 1000]]}
    with pytest.raises(ClientError) as exc:
        c.get_usage(usagePlanId=plan["id"], startDate="2026-13-01", endDate="2026-11-03")
    assert error_of(exc)[0] == "BadRequestException"
    assert "2026-13-01" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.get_usage(usagePlanId=plan["id"], startDate="2026-11-05", endDate="2026-11-03")
    assert "before" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        c.get_usage(usagePlanId="nosuch", startDate="2026-11-01", endDate="2026-11-03")
    assert error_of(exc)[0] == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        c.get_usage(usagePlanId=plan["id"], keyId="nosuchkey0", startDate="2026-11-01", endDate="2026-11-03")
    assert error_of(exc)[0] == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        c.update_usage(
            usagePlanId=plan["id"],
            keyId=key["id"],
            patchOperations=[{"op": "replace", "path": "/remaining", "value": "5"}],
        )
    assert "not supported" in error_of(exc)[1]


def test_cli_creates_a_key_and_a_plan(admin: Admin) -> None:
    key = admin.aws("create-api-key", "--name", "cli-key", "--enabled")
    assert key["enabled"] is True
    assert len(key["value"]) == 40
    plan = admin.aws(
        "create-usage-plan",
        "--name",
        "cli-plan",
        "--api-stages",
        f"apiId={API},stage=prod",
        "--throttle",
        "rateLimit=2,burstLimit=4",
        "--quota",
        "limit=10,period=DAY",
    )
    assert plan["throttle"] == {"rateLimit": 2.0, "burstLimit": 4}
    admin.aws(
        "create-usage-plan-key", "--usage-plan-id", plan["id"], "--key-id", key["id"], "--key-type", "API_KEY"
    )
    keys = admin.aws("get-usage-plan-keys", "--usage-plan-id", plan["id"])
    assert [k["value"] for k in keys["items"]] == [key["value"]]
    composed_config_ok(admin)
