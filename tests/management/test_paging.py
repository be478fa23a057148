"""Paged lists as API Gateway pages them (``limit``, ``position``), read one page at a time from
the store (issue 19): boto3's paginators walk every API once, in order, on SQLite and on
PostgreSQL; a position whose API was deleted in between goes on after it; a bad limit is a 400."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.management.conftest import AdminHandle


@pytest.fixture
def handle(admin_on_each_store: AdminHandle) -> AdminHandle:
    return admin_on_each_store


def _create(handle: AdminHandle, count: int) -> list[str]:
    apigw = handle.boto3()
    return sorted(apigw.create_rest_api(name=f"api-{i}")["id"] for i in range(count))


def test_the_paginator_walks_every_api_once_in_order(handle: AdminHandle) -> None:
    ids = _create(handle, 23)
    apigw = handle.boto3()
    pages = list(apigw.get_paginator("get_rest_apis").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 3]
    walked = [item["id"] for p in pages for item in p["items"]]
    assert walked == ids
    assert all("name" in item and "createdDate" in item for p in pages for item in p["items"])
    assert "position" not in pages[-1]
    # one page holding everything has no position; the default page is 25
    assert "position" not in apigw.get_rest_apis(limit=500)
    assert len(apigw.get_rest_apis()["items"]) == 23


def test_a_position_survives_the_deletion_of_the_api_it_names(handle: AdminHandle) -> None:
    ids = _create(handle, 8)
    apigw = handle.boto3()
    first = apigw.get_rest_apis(limit=3)
    assert [i["id"] for i in first["items"]] == ids[:3]
    assert first["position"] == ids[3]
    apigw.delete_rest_api(restApiId=ids[3])
    rest = apigw.get_rest_apis(limit=3, position=first["position"])
    assert [i["id"] for i in rest["items"]] == ids[4:7]
    # a position past every id: an empty page, not an error
    assert apigw.get_rest_apis(position="zzzzzzzzzzzz")["items"] == []


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
def test_a_limit_out_of_range_is_refused(handle: AdminHandle, limit: str) -> None:
    _create(handle, 1)
    status, _, body = handle.signed("GET", f"/restapis?limit={limit}")
    assert status == 400, body
    assert f"Invalid limit '{limit}'" in body.decode()


def test_a_position_is_only_a_place_in_the_list(handle: AdminHandle) -> None:
    """A hostile position (SQL, a prefix of the key space) picks a place and nothing else."""
    ids = _create(handle, 4)
    apigw = handle.boto3()
    for position in ("' OR '1'='1", "%", "_", ids[1][:3]):
        got = [i["id"] for i in apigw.get_rest_apis(position=position)["items"]]
        assert got == [i for i in ids if i >= position], position
    with pytest.raises(ClientError) as exc:
        apigw.get_rest_apis(limit=0)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
