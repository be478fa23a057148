"""API keys, usage plans, usage-plan keys and usage reports, as API Gateway's operations.

Documents in the store (``iamgate.store.base``) are the configuration file's entries, so what
the gateway serves is composed from exactly these (``iamgate.store.compose``):

* ``apikey`` ("", id): ``{id, name, value, enabled}`` (``api_keys``) plus ``description``,
  ``customerId``, ``createdDate``, ``lastUpdatedDate`` (epoch seconds) and ``tags``;
* ``usageplan`` ("", id): ``{id, name, api_stages: [{api, stage, throttle: {"/pets/GET":
  {rate, burst}}}], throttle: {rate, burst}, quota: {limit, period, offset}, keys: [key ids]}``
  (``usage_plans``) plus ``description`` and ``tags``.

Every write validates the whole result as the configuration loader would (a store the loader
refuses would stop the gateway from picking up *any* change), and the rules the gateway
enforces: key values of 20-128 letters, digits, ``-`` or ``_``, unique; a key in at most one
usage plan per API stage; API stages that exist. Updates apply AWS's patch operations to the
AWS shape, then validate that shape as a create would.
"""

from __future__ import annotations

import calendar
import re
import secrets
import string
import time
from typing import Any

from iamgate.management.core import ApiError, Call, Reply, Route, bad_request, conflict, not_found
from iamgate.management.drafts import api_not_found, page
from iamgate.management.ids import new_id
from iamgate.management.patch import PatchOp, invalid_op, invalid_path, operations
from iamgate.store.base import ConflictError, Doc, Transaction

__all__ = ["ROUTES"]

_VALUE = re.compile(r"[A-Za-z0-9_-]{20,128}")
_VALUE_ALPHABET = string.ascii_letters + string.digits
_METHOD_KEY = re.compile(r"(/[^\s]*)/(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|ANY|\*)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIODS = ("DAY", "WEEK", "MONTH")
_MAX_OFFSET = {"DAY": 0, "WEEK": 6, "MONTH": 27}


# --- small readers of request values ------------------------------------------------------


def _string(body: dict[str, Any], name: str, *, required: bool = False, empty: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise bad_request(f"'{name}' must not be empty")
    return value


def _required(body: dict[str, Any], name: str) -> str:
    value = _string(body, name, required=True, empty=False)
    if value is None:  # pragma: no cover - _string raised
        raise bad_request(f"'{name}' is required")
    return value


def _boolean(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false, not {value!r}")
    return value


def _tags(body: dict[str, Any]) -> dict[str, str] | None:
    tags = body.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise bad_request("'tags' must be a map of string keys to string values")
    for key in tags:
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise bad_request(f"invalid tag key '{key}': 1 to 128 characters, not starting with 'aws:'")
    return dict(tags)


def _flag(call: Call, name: str) -> bool:
    value = (call.arg(name) or "false").lower()
    if value not in ("true", "false"):
        raise bad_request(f"query parameter '{name}' must be true or false, not {call.arg(name)!r}")
    return value == "true"


def _page(call: Call, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One page, as every list answer of the management API (AWS's ``item`` list)."""
    return page(call, items, field="item")


def _patch_text(op: PatchOp) -> str | None:
    """The value of an add/replace, or None for remove."""
    if op.op == "remove":
        return None
    if op.op not in ("add", "replace"):
        raise invalid_op(("add", "remove", "replace"))
    return op.need_value()


def _now() -> int:
    return int(time.time())


# --- API keys ---------------------------------------------------------------------------


def _key_shape(doc: Doc, *, include_value: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": doc["id"],
        "enabled": bool(doc.get("enabled", True)),
        "stageKeys": [],
    }
    for name in ("name", "description", "customerId", "createdDate", "lastUpdatedDate", "tags"):
        if doc.get(name) is not None:
            out[name] = doc[name]
    if include_value:
        out["value"] = doc["value"]
    return out


def _check_value(tx: Transaction, value: str, key_id: str) -> None:
    if not _VALUE.fullmatch(value):
        raise bad_request(
            f"Invalid API key value: an API key value is 20 to 128 letters, digits, '-' or '_' "
            f"(this one has {len(value)} characters"
            + ("" if re.fullmatch(r"[A-Za-z0-9_-]*", value) else " and other characters")
            + ")"
        )
    for _, other_id, other in tx.list("apikey"):
        if other_id != key_id and other.get("value") == value:
            raise conflict(f"API key value already exists (API key {other_id} has it)")


def _find_key(tx: Transaction, key_id: str) -> Doc:
    doc = tx.get("apikey", "", key_id)
    if doc is None:
        raise not_found(f"Invalid API Key identifier specified: there is no API key '{key_id}'")
    return doc


async def create_api_key(call: Call) -> Reply:
    if call.arg("mode") == "import":
        raise bad_request(
            "ImportApiKeys (POST /apikeys?mode=import) is not supported by iamgate; "
            "create each key with CreateApiKey"
        )
    body = call.json()
    name = _string(body, "name")
    description = _string(body, "description")
    customer = _string(body, "customerId")
    value = _string(body, "value")
    enabled = _boolean(body, "enabled", False)  # AWS: a new key is disabled unless enabled=true
    _boolean(body, "generateDistinctId", False)  # ids are always distinct here
    tags = _tags(body)
    if body.get("stageKeys"):
        raise bad_request(
            "'stageKeys' are not supported (API Gateway deprecated them): add the key to a usage plan "
            "that has the API stage (CreateUsagePlanKey)"
        )
    if value is None:
        value = "".join(secrets.choice(_VALUE_ALPHABET) for _ in range(40))
    now = _now()
    key_id = new_id("apikey")
    doc: Doc = {"id": key_id, "value": value, "enabled": enabled, "createdDate": now, "lastUpdatedDate": now}
    for field, given in (("name", name), ("description", description), ("customerId", customer)):
        if given is not None:
            doc[field] = given
    if tags:
        doc["tags"] = tags

    def write() -> None:
        with call.store.transaction() as tx:
            _check_value(tx, value, key_id)
            tx.insert("apikey", "", key_id, doc)

    try:
        await call.in_store(write)
    except ConflictError as exc:
        raise conflict(str(exc)) from None
    return Reply(201, _key_shape(doc, include_value=True))


async def get_api_key(call: Call) -> Reply:
    include = _flag(call, "includeValue")

    def read() -> Doc:
        with call.store.transaction() as tx:
            return _find_key(tx, call.params["api_Key"])

    doc = await call.in_store(read)
    return Reply(200, _key_shape(doc, include_value=include))


async def get_api_keys(call: Call) -> Reply:
    include = _flag(call, "includeValues")
    name = call.arg("name")
    customer = call.arg("customerId")

    def read() -> list[Doc]:
        with call.store.transaction() as tx:
            return [d for _, _, d in tx.list("apikey")]

    docs = await call.in_store(read)
    shapes = [
        _key_shape(d, include_value=include)
        for d in docs
        if (not name or str(d.get("name") or "").startswith(name))
        and (not customer or d.get("customerId") == customer)
    ]
    return Reply(200, _page(call, shapes))


async def update_api_key(call: Call) -> Reply:
    ops = operations(call.json())
    key_id = call.params["api_Key"]
    valid = ["/name", "/description", "/enabled", "/customerId"]

    def write() -> Doc:
        with call.store.transaction() as tx:
            doc = dict(_find_key(tx, key_id))
            for op in ops:
                if op.path in ("/name", "/description", "/customerId"):
                    text = _patch_text(op)
                    if text is None:
                        doc.pop(op.path[1:], None)
                    else:
                        doc[op.path[1:]] = text
                elif op.path == "/enabled":
                    if op.op != "replace":
                        raise invalid_op()
                    doc["enabled"] = op.boolean()
                elif op.path == "/value":
                    raise bad_request("The value of an API key cannot be changed; create a new key")
                else:
                    raise invalid_path(op, valid)
            doc["lastUpdatedDate"] = _now()
            tx.put("apikey", "", key_id, doc)
            return doc

    doc = await call.in_store(write)
    return Reply(200, _key_shape(doc, include_value=False))


async def delete_api_key(call: Call) -> Reply:
    key_id = call.params["api_Key"]

    def write() -> None:
        with call.store.transaction() as tx:
            _find_key(tx, key_id)
            # a deleted key leaves every usage plan it was in, as on API Gateway
            for _, plan_id, plan in tx.list("usageplan"):
                if key_id in (plan.get("keys") or []):
                    kept = [k for k in plan["keys"] if k != key_id]
                    tx.put("usageplan", "", plan_id, {**plan, "keys": kept})
            tx.delete("apikey", "", key_id)

    await call.in_store(write)
    return Reply(202, None)


# --- usage plans ------------------------------------------------------------------------


def _limit_shape(limit: dict[str, Any]) -> dict[str, Any]:
    return {"burstLimit": int(limit["burst"]), "rateLimit": float(limit["rate"])}


def _plan_shape(doc: Doc) -> dict[str, Any]:
    out: dict[str, Any] = {"id": doc["id"], "name": doc.get("name") or doc["id"]}
    if doc.get("description") is not None:
        out["description"] = doc["description"]
    stages = []
    for st in doc.get("api_stages") or []:
        item: dict[str, Any] = {"apiId": st["api"], "stage": st["stage"]}
        if st.get("throttle"):
            item["throttle"] = {k: _limit_shape(v) for k, v in st["throttle"].items()}
        stages.append(item)
    out["apiStages"] = stages
    if doc.get("throttle"):
        out["throttle"] = _limit_shape(doc["throttle"])
    if doc.get("quota"):
        q = doc["quota"]
        out["quota"] = {"limit": int(q["limit"]), "offset": int(q.get("offset", 0)), "period": q["period"]}
    if doc.get("tags"):
        out["tags"] = doc["tags"]
    return out


def _read_limit(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be an object with rateLimit and burstLimit")
    unknown = sorted(set(raw) - {"rateLimit", "burstLimit"})
    if unknown:
        raise bad_request(f"{where}: unknown field(s) {', '.join(unknown)}; rateLimit and burstLimit")
    rate, burst = raw.get("rateLimit"), raw.get("burstLimit")
    if rate is None or burst is None:
        raise bad_request(
            f"{where} needs both rateLimit (requests per second) and burstLimit (requests); "
            "iamgate does not guess the missing one"
        )
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1e9:
        raise bad_request(f"{where}.rateLimit must be a number from 0 to 1e9, not {rate!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or not 0 <= burst <= 1_000_000_000:
        raise bad_request(f"{where}.burstLimit must be a whole number from 0 to 1e9, not {burst!r}")
    return {"rate": float(rate), "burst": int(burst)}


def _read_quota(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("quota must be an object with limit, period and optionally offset")
    unknown = sorted(set(raw) - {"limit", "period", "offset"})
    if unknown:
        raise bad_request(f"quota: unknown field(s) {', '.join(unknown)}; limit, period and offset")
    limit, period, offset = raw.get("limit"), raw.get("period"), raw.get("offset", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise bad_request(f"quota.limit must be a whole number of requests (0 or more), not {limit!r}")
    if period not in _PERIODS:
        raise bad_request(f"quota.period must be one of DAY, WEEK, MONTH, not {period!r}")
    high = _MAX_OFFSET[period]
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= high:
        what = {
            "DAY": "a DAY quota takes offset 0",
            "WEEK": "for WEEK, the day the week starts: 0 (Sunday) to 6 (Saturday)",
            "MONTH": "for MONTH, the day the month starts, less one: 0 (the 1st) to 27",
        }[period]
        raise bad_request(f"quota.offset {offset!r} is out of range: {what}")
    return {"limit": limit, "period": period, "offset": offset}


def _check_stage(call: Call, tx: Transaction, api_id: str, stage: str) -> None:
    if tx.get("restapi", "", api_id) is None:
        raise api_not_found(call, api_id)
    if tx.get("stage", api_id, stage) is None:
        raise not_found(f"Invalid stage identifier specified: REST API '{api_id}' has no stage '{stage}'")


def _plan_doc(call: Call, tx: Transaction, shape: dict[str, Any], plan_id: str, keys: list[str]) -> Doc:
    """Validate an AWS-shaped usage plan and return the store document."""
    unknown = sorted(
        set(shape) - {"id", "name", "description", "apiStages", "throttle", "quota", "tags", "productCode"}
    )
    if unknown:
        raise bad_request(f"unknown usage plan field(s): {', '.join(unknown)}")
    if shape.get("productCode") is not None:
        raise bad_request("'productCode' (AWS Marketplace) is not supported by iamgate")
    name = _required(shape, "name")
    description = _string(shape, "description")
    tags = _tags(shape)
    raw_stages = shape.get("apiStages") or []
    if not isinstance(raw_stages, list):
        raise bad_request("'apiStages' must be a list of {apiId, stage, throttle}")
    stages: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i, st in enumerate(raw_stages):
        where = f"apiStages[{i}]"
        if (
            not isinstance(st, dict)
            or not isinstance(st.get("apiId"), str)
            or not isinstance(st.get("stage"), str)
        ):
            raise bad_request(f"{where} must be an object with apiId and stage (strings)")
        extra = sorted(set(st) - {"apiId", "stage", "throttle"})
        if extra:
            raise bad_request(f"{where}: unknown field(s) {', '.join(extra)}")
        api_id, stage = st["apiId"], st["stage"]
        if (api_id, stage) in seen:
            raise bad_request(f"{where}: the API stage {api_id}:{stage} is listed twice")
        seen.add((api_id, stage))
        _check_stage(call, tx, api_id, stage)
        entry: dict[str, Any] = {"api": api_id, "stage": stage}
        methods = st.get("throttle")
        if methods:
            if not isinstance(methods, dict):
                raise bad_request(f"{where}.throttle must be a map of '/path/METHOD' to throttle settings")
            limits = {}
            for key, value in methods.items():
                if not _METHOD_KEY.fullmatch(str(key)):
                    raise bad_request(
                        f"{where}.throttle: '{key}' is not a resource path and method; for example "
                        "/pets/GET, /pets/{id}/DELETE, //GET for the root resource, /*/* for every method"
                    )
                limits[str(key)] = _read_limit(value, f"{where}.throttle['{key}']")
            entry["throttle"] = limits
        stages.append(entry)
    doc: Doc = {"id": plan_id, "name": name, "api_stages": stages, "keys": list(keys)}
    if shape.get("throttle") is not None:
        doc["throttle"] = _read_limit(shape["throttle"], "throttle")
    if shape.get("quota") is not None:
        doc["quota"] = _read_quota(shape["quota"])
    if description is not None:
        doc["description"] = description
    if tags:
        doc["tags"] = tags
    _check_one_plan_per_stage(tx, doc)
    return doc


def _check_one_plan_per_stage(tx: Transaction, plan: Doc) -> None:
    """A key may be in one usage plan per API stage (API Gateway, and the gateway's loader)."""
    mine = {(s["api"], s["stage"]) for s in plan["api_stages"]}
    for _, other_id, other in tx.list("usageplan"):
        if other_id == plan["id"]:
            continue
        shared = mine & {(s["api"], s["stage"]) for s in other.get("api_stages") or []}
        common = set(plan["keys"]) & set(other.get("keys") or [])
        if shared and common:
            api_id, stage = sorted(shared)[0]
            raise conflict(
                f"API key {sorted(common)[0]} cannot reference multiple usage plans with the same API "
                f"stage: usage plans {other_id} and {plan['id']} both have {api_id}:{stage}"
            )


def _find_plan(tx: Transaction, plan_id: str) -> Doc:
    doc = tx.get("usageplan", "", plan_id)
    if doc is None:
        raise not_found(f"Invalid Usage Plan ID specified: there is no usage plan '{plan_id}'")
    return doc


async def create_usage_plan(call: Call) -> Reply:
    body = call.json()
    plan_id = new_id("usageplan")

    def write() -> Doc:
        with call.store.transaction() as tx:
            doc = _plan_doc(call, tx, {k: v for k, v in body.items() if k != "id"}, plan_id, [])
            tx.insert("usageplan", "", plan_id, doc)
            return doc

    try:
        doc = await call.in_store(write)
    except ConflictError as exc:
        raise conflict(str(exc)) from None
    return Reply(201, _plan_shape(doc))


async def get_usage_plan(call: Call) -> Reply:
    def read() -> Doc:
        with call.store.transaction() as tx:
            return _find_plan(tx, call.params["usageplanId"])

    return Reply(200, _plan_shape(await call.in_store(read)))


async def get_usage_plans(call: Call) -> Reply:
    key_id = call.arg("keyId")

    def read() -> list[Doc]:
        with call.store.transaction() as tx:
            if key_id:
                _find_key(tx, key_id)
            return [d for _, _, d in tx.list("usageplan")]

    docs = await call.in_store(read)
    shapes = [_plan_shape(d) for d in docs if not key_id or key_id in (d.get("keys") or [])]
    return Reply(200, _page(call, shapes))


_PLAN_PATHS = [
    "/name",
    "/description",
    "/throttle",
    "/throttle/rateLimit",
    "/throttle/burstLimit",
    "/quota",
    "/quota/limit",
    "/quota/period",
    "/quota/offset",
    "/apiStages",
    "/apiStages/{apiId}:{stage}/throttle",
    "/apiStages/{apiId}:{stage}/throttle/{resourcePath}/{httpMethod}",
    "/apiStages/{apiId}:{stage}/throttle/{resourcePath}/{httpMethod}/rateLimit",
    "/apiStages/{apiId}:{stage}/throttle/{resourcePath}/{httpMethod}/burstLimit",
]


def _stage_ref(text: str | None, path: str) -> tuple[str, str]:
    api_id, sep, stage = (text or "").partition(":")
    if not sep or not api_id or not stage:
        raise bad_request(f"Invalid value for {path}: {text!r}; write the API stage as apiId:stage")
    return api_id, stage


def _apply_stage_op(shape: dict[str, Any], op: PatchOp) -> None:
    """``add``/``remove`` ``/apiStages`` with the value ``apiId:stage``."""
    if op.op not in ("add", "remove"):
        raise invalid_op(("add", "remove"))
    api_id, stage = _stage_ref(op.need_value(), op.path)
    stages: list[dict[str, Any]] = shape.setdefault("apiStages", [])
    found = [s for s in stages if (s["apiId"], s["stage"]) == (api_id, stage)]
    if op.op == "add":
        if found:
            raise conflict(f"the usage plan already has the API stage {api_id}:{stage}")
        stages.append({"apiId": api_id, "stage": stage})
    else:
        if not found:
            raise not_found(f"the usage plan has no API stage {api_id}:{stage}")
        stages.remove(found[0])


def _number(op: PatchOp, *, integer: bool) -> int | float:
    return op.integer(0, 1_000_000_000_000_000) if integer else op.number(0, 1e9)


def _apply_plan_op(shape: dict[str, Any], op: PatchOp) -> None:
    tokens = op.tokens
    if op.path == "/apiStages":
        _apply_stage_op(shape, op)
        return
    text = _patch_text(op)
    if op.path in ("/name", "/description"):
        if text is None:
            shape.pop(tokens[0], None)
        else:
            shape[tokens[0]] = text
        return
    if tokens[0] in ("throttle", "quota") and len(tokens) <= 2:
        section = tokens[0]
        if len(tokens) == 1:
            if op.op != "remove":
                raise invalid_op(("remove",))
            shape.pop(section, None)
            return
        fields = ("rateLimit", "burstLimit") if section == "throttle" else ("limit", "period", "offset")
        if tokens[1] not in fields:
            raise invalid_path(op, _PLAN_PATHS)
        current = dict(shape.get(section) or {})
        if text is None:
            current.pop(tokens[1], None)
        elif tokens[1] == "period":
            current["period"] = text.upper()
        else:
            current[tokens[1]] = _number(op, integer=tokens[1] != "rateLimit")
        shape[section] = current
        return
    if tokens[0] != "apiStages" or len(tokens) < 3 or tokens[2] != "throttle":
        raise invalid_path(op, _PLAN_PATHS)
    stages: list[dict[str, Any]] = shape.setdefault("apiStages", [])
    api_id, stage = _stage_ref(tokens[1], op.path)
    matching = [s for s in stages if (s["apiId"], s["stage"]) == (api_id, stage)]
    if not matching:
        raise not_found(f"the usage plan has no API stage {api_id}:{stage} (add it with op add /apiStages)")
    entry = matching[0]
    methods: dict[str, Any] = dict(entry.get("throttle") or {})
    rest = tokens[3:]
    if not rest:
        if op.op != "remove":
            raise invalid_op(("remove",))
        entry.pop("throttle", None)
        return
    # the resource path is one token with its '/' written ~1 (AWS), or several plain tokens
    field = rest[-1] if rest[-1] in ("rateLimit", "burstLimit") else None
    key_tokens = rest[:-1] if field else rest
    if len(key_tokens) < 2:
        raise invalid_path(op, _PLAN_PATHS)
    resource = "/".join(key_tokens[:-1])
    key = ("" if resource.startswith("/") else "/") + resource + "/" + key_tokens[-1]
    if field is None:
        if op.op != "remove":
            raise bad_request(f"op '{op.op}' on {op.path}: set {op.path}/rateLimit and {op.path}/burstLimit")
        if key not in methods:
            raise not_found(f"the API stage {api_id}:{stage} has no throttle for {key}")
        del methods[key]
    else:
        current = dict(methods.get(key) or {})
        if text is None:
            current.pop(field, None)
        else:
            current[field] = _number(op, integer=field == "burstLimit")
        methods[key] = current
    entry["throttle"] = methods


async def update_usage_plan(call: Call) -> Reply:
    ops = operations(call.json())
    plan_id = call.params["usageplanId"]

    def write() -> Doc:
        with call.store.transaction() as tx:
            doc = _find_plan(tx, plan_id)
            shape = _plan_shape(doc)
            for op in ops:
                _apply_plan_op(shape, op)
            new = _plan_doc(call, tx, shape, plan_id, list(doc.get("keys") or []))
            tx.put("usageplan", "", plan_id, new)
            return new

    return Reply(200, _plan_shape(await call.in_store(write)))


async def delete_usage_plan(call: Call) -> Reply:
    plan_id = call.params["usageplanId"]

    def write() -> None:
        with call.store.transaction() as tx:
            _find_plan(tx, plan_id)
            tx.delete("usageplan", "", plan_id)

    await call.in_store(write)
    return Reply(202, None)


# --- usage plan keys --------------------------------------------------------------------


def _plan_key_shape(doc: Doc) -> dict[str, Any]:
    out = {"id": doc["id"], "type": "API_KEY", "value": doc["value"]}
    if doc.get("name") is not None:
        out["name"] = doc["name"]
    return out


async def create_usage_plan_key(call: Call) -> Reply:
    body = call.json()
    key_id = _required(body, "keyId")
    key_type = _required(body, "keyType")
    if key_type != "API_KEY":
        raise bad_request(f"Invalid keyType {key_type!r}: the only key type is API_KEY")
    plan_id = call.params["usageplanId"]

    def write() -> Doc:
        with call.store.transaction() as tx:
            plan = dict(_find_plan(tx, plan_id))
            key = _find_key(tx, key_id)
            keys = list(plan.get("keys") or [])
            if key_id in keys:
                raise conflict(f"API key {key_id} is already in usage plan {plan_id}")
            plan["keys"] = [*keys, key_id]
            _check_one_plan_per_stage(tx, plan)
            tx.put("usageplan", "", plan_id, plan)
            return key

    return Reply(201, _plan_key_shape(await call.in_store(write)))


async def get_usage_plan_keys(call: Call) -> Reply:
    plan_id = call.params["usageplanId"]
    name = call.arg("name")

    def read() -> list[Doc]:
        with call.store.transaction() as tx:
            plan = _find_plan(tx, plan_id)
            docs = [tx.get("apikey", "", k) for k in plan.get("keys") or []]
            return sorted((d for d in docs if d is not None), key=lambda d: str(d["id"]))

    shapes = [
        _plan_key_shape(d)
        for d in await call.in_store(read)
        if not name or str(d.get("name") or "").startswith(name)
    ]
    return Reply(200, _page(call, shapes))


def _plan_key(tx: Transaction, plan_id: str, key_id: str) -> tuple[Doc, Doc]:
    plan = _find_plan(tx, plan_id)
    if key_id not in (plan.get("keys") or []):
        raise not_found(
            f"Invalid Usage Plan Key identifier specified: usage plan {plan_id} has no key {key_id}"
        )
    return plan, _find_key(tx, key_id)


async def get_usage_plan_key(call: Call) -> Reply:
    def read() -> Doc:
        with call.store.transaction() as tx:
            return _plan_key(tx, call.params["usageplanId"], call.params["keyId"])[1]

    return Reply(200, _plan_key_shape(await call.in_store(read)))


async def delete_usage_plan_key(call: Call) -> Reply:
    plan_id, key_id = call.params["usageplanId"], call.params["keyId"]

    def write() -> None:
        with call.store.transaction() as tx:
            plan = dict(_plan_key(tx, plan_id, key_id)[0])
            plan["keys"] = [k for k in plan["keys"] if k != key_id]
            tx.put("usageplan", "", plan_id, plan)

    await call.in_store(write)
    return Reply(202, None)


# --- usage --------------------------------------------------------------------------------


def _date(call: Call, name: str) -> str:
    value = call.arg(name)
    if not value:
        raise bad_request(f"'{name}' is required: a UTC date, YYYY-MM-DD")
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        time.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise bad_request(f"Invalid {name} {value!r}: a UTC date, YYYY-MM-DD (e.g. 2026-11-28)") from None
    return value


async def get_usage(call: Call) -> Reply:
    """``GetUsage``: the gateway's own report (``iamgate.throttle.usage``) in AWS's shape
    (``values``: key id -> ``[[used, remaining], ...]``, one pair per day)."""
    from iamgate.throttle.usage import UsageError  # noqa: PLC0415 - keeps management imports light

    plan_id = call.params["usageplanId"]
    start, end = _date(call, "startDate"), _date(call, "endDate")
    if end < start:
        raise bad_request(f"endDate {end} is before startDate {start}")
    key_id = call.arg("keyId")

    def read() -> Doc:
        with call.store.transaction() as tx:
            plan = _find_plan(tx, plan_id)
            if key_id:
                _plan_key(tx, plan_id, key_id)
            return plan

    plan = await call.in_store(read)
    if call.gateway.usage is None:
        raise bad_request("GetUsage needs the running gateway's throttle backend, which this server lacks")
    query = {"usagePlanId": plan_id, "startDate": start, "endDate": end}
    if key_id:
        query["keyId"] = key_id
    try:
        report = await call.gateway.usage(query)
    except UsageError as exc:
        if exc.status != 404:
            raise bad_request(str(exc)) from None
        # the plan (or key) is in the store but not yet in what the gateway serves: it has
        # admitted no request through it, so its usage is zero
        report = _zero_report(plan, start, end, key_id)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise ApiError(
            503, "ServiceUnavailableException", f"the throttle backend did not answer: {exc}"
        ) from None
    out: dict[str, Any] = {
        "usagePlanId": report["usagePlanId"],
        "startDate": report["startDate"],
        "endDate": report["endDate"],
        "values": report["items"],
    }
    if report.get("position"):
        out["position"] = report["position"]
    return Reply(200, out)


def _zero_report(plan: Doc, start: str, end: str, key_id: str | None) -> dict[str, Any]:
    first = calendar.timegm(time.strptime(start, "%Y-%m-%d"))
    last = calendar.timegm(time.strptime(end, "%Y-%m-%d"))
    days = (last - first) // 86400 + 1
    limit = (plan.get("quota") or {}).get("limit")
    keys = [key_id] if key_id else list(plan.get("keys") or [])
    return {
        "usagePlanId": plan["id"],
        "startDate": start,
        "endDate": end,
        "items": {k: [[0, limit] for _ in range(days)] for k in keys},
    }


async def update_usage(call: Call) -> Reply:
    raise bad_request(
        "UpdateUsage is not supported by iamgate: quota counters live in the throttle backend and "
        "are not edited through the management API; raise the plan's quota (UpdateUsagePlan /quota/limit) "
        "instead"
    )


ROUTES = [
    Route("POST", "/apikeys", create_api_key),
    Route("GET", "/apikeys", get_api_keys),
    Route("GET", "/apikeys/{api_Key}", get_api_key),
    Route("PATCH", "/apikeys/{api_Key}", update_api_key),
    Route("DELETE", "/apikeys/{api_Key}", delete_api_key),
    Route("POST", "/usageplans", create_usage_plan),
    Route("GET", "/usageplans", get_usage_plans),
    Route("GET", "/usageplans/{usageplanId}", get_usage_plan),
    Route("PATCH", "/usageplans/{usageplanId}", update_usage_plan),
    Route("DELETE", "/usageplans/{usageplanId}", delete_usage_plan),
    Route("POST", "/usageplans/{usageplanId}/keys", create_usage_plan_key),
    Route("GET", "/usageplans/{usageplanId}/keys", get_usage_plan_keys),
    Route("GET", "/usageplans/{usageplanId}/keys/{keyId}", get_usage_plan_key),
    Route("DELETE", "/usageplans/{usageplanId}/keys/{keyId}", delete_usage_plan_key),
    Route("GET", "/usageplans/{usageplanId}/usage", get_usage),
    Route("PATCH", "/usageplans/{usageplanId}/keys/{keyId}/usage", update_usage),
]
