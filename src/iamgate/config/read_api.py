"""Reading the ``apis`` list: each API's id, name, endpoint type, deployment, resource policy,
authorizers, API-key source, models and request validators, gateway responses, stages, routes
and CORS (expanded into routes and gateway responses); an id listed twice only as distinct
deployments."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from iamgate.config._reader import PolicyKey, Reader
from iamgate.config.auth import read_authorizers
from iamgate.config.model import ApiConfig, GatewayResponseConfig, GatewaySettings, ScopedPolicy
from iamgate.config.read_cors import apply_cors, read_cors
from iamgate.config.read_models import read_models, read_request_validators
from iamgate.config.read_policy import POLICY_MODES, read_policy, read_scoped_policy
from iamgate.config.read_responses import read_gateway_responses
from iamgate.config.read_routes import read_routes
from iamgate.config.read_stages import read_stages
from iamgate.policy import ApiRef

__all__ = ["ENDPOINT_TYPES", "POLICY_MODES", "ApiMemo", "Deferred", "read_api", "read_apis"]

ENDPOINT_TYPES = ("REGIONAL", "PRIVATE", "EDGE")
_API_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_DEPLOYMENT = re.compile(r"[A-Za-z0-9]{1,64}")


class Deferred:
    """An API entry named by its memo key, its data made only if the memo does not have that key.
    The store's state a supervisor sends its workers carries each deployment as its own text; a
    worker keys the entry by that text and its stages (``iamgate.store.compose``), so that a
    reload of 1,000 APIs of which one changed decodes one deployment, not a thousand (its time,
    and the memory a worker kept from that peak). Never made from a file: YAML and JSON give
    plain values."""

    __slots__ = ("entry", "key")

    def __init__(self, key: str, entry: Callable[[], dict[str, Any]]) -> None:
        self.key = key
        self.entry = entry


class ApiMemo:
    """The APIs of the last configuration read in this process, by the exact data each was read
    from: a reload (a store's redeploy of one API among a thousand) reads again only the entries
    that changed, and the others keep their objects (compiled policies, routes), which the
    snapshot then reuses too (``iamgate.config.snapshot``).

    Only an entry that read cleanly is kept: no diagnostic (so nothing depends on where it is
    written in the file) and no file read (a ``policy_file`` can change on disk without the
    entry changing). The memo holds the last configuration's entries only, so it never grows
    beyond one configuration. Used by the serving process's reloads only (``iamgate.process.reload``):
    other readers (a deployment's check, ``config validate``) pass none and leave it as it is."""

    def __init__(self) -> None:
        self.entries: dict[str, ApiConfig] = {}  # by the SHA-256 of the entry's text
        # what an entry's reading depends on besides its text: the ARN parts, the policy size
        # limit, and the directory relative file names are resolved in (another: none is reused)
        self.context: tuple[str, str, int | None, str] | None = None
        # the policies the last read compiled (read_policy._prepare), for entries read again
        self.policies: dict[PolicyKey, Any] = {}
        self.hits = 0  # entries reused by the last read (for tests and benchmarks)

    @staticmethod
    def key(item: object) -> str | None:
        if not isinstance(item, dict):
            return None
        try:
            text = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError):  # a YAML value JSON has no form for (a date): read it
            return None
        # kept as a SHA-256 digest: the text of a thousand entries, kept from one reload to the
        # next, left the allocator's memory fragmented (RSS crept up with every redeploy)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def read_apis(
    r: Reader, raw: object, settings: GatewaySettings, watched: list[str], memo: ApiMemo | None = None
) -> list[ApiConfig]:
    """The ``apis`` list. An API id appears more than once only as several deployments, each with
    stages of its own; policy files read are added to ``watched``."""
    apis: list[ApiConfig] = []
    ids: dict[str, int] = {}
    items = r.sequence(raw, "/apis", "apis") or []
    kept: dict[str, ApiConfig] = {}
    hits = 0
    context = (settings.region, settings.account_id, settings.max_policy_chars, str(r.base_dir))
    known = memo.entries if memo is not None and memo.context == context else {}
    for i, item in enumerate(items):
        deferred = item if isinstance(item, Deferred) else None
        key = (deferred.key if deferred is not None else ApiMemo.key(item)) if memo is not None else None
        api = known.get(key) if key is not None else None
        if api is not None:
            hits += 1
        else:
            if deferred is not None:
                item = deferred.entry()  # noqa: PLW2901 - not kept: its data, made only now
            diags, files = len(r.diags), len(watched)
            api = read_api(r, item, f"/apis/{i}", settings, watched)
            if api is not None and (len(r.diags) != diags or len(watched) != files):
                key = None
        if api is None:
            continue
        if key is not None:
            kept[key] = api
        if api.id in ids:
            clash = _deployment_clash(api, [a for a in apis if a.id == api.id])
            if clash is not None:
                r.report(
                    "duplicate-id",
                    f"/apis/{i}/id",
                    f"API id '{api.id}' is already used by API {ids[api.id]}{clash}",
                    "an API appears more than once only as several deployments: give each entry a "
                    "different 'deployment' and stages of its own",
                )
                continue
        else:
            ids[api.id] = i
        apis.append(api)
    if memo is not None:
        memo.entries, memo.context, memo.hits = kept, context, hits
    return apis


def read_api(
    r: Reader, raw: object, ptr: str, settings: GatewaySettings, watched: list[str]
) -> ApiConfig | None:
    """One entry of ``apis``; None when it has any error (reported)."""
    m = r.mapping(
        raw,
        ptr,
        "an API",
        {
            "id": True,
            "name": False,
            "endpoint_type": False,
            "policy": False,
            "policy_file": False,
            "policy_mode": False,
            "stages": True,
            "routes": True,
            "authorizers": False,
            "api_key_source": False,
            "deployment": False,
            "disable_execute_api_endpoint": False,
            "gateway_responses": False,
            "cors": False,
            "models": False,
            "request_validators": False,
        },
    )
    if m is None:
        return None
    before = len([d for d in r.diags if d.is_error])
    deployment = None
    if "deployment" in m:
        deployment = r.string(
            m["deployment"],
            f"{ptr}/deployment",
            "deployment",
            pattern=_DEPLOYMENT,
            help="letters and digits, as API Gateway's deployment ids (e.g. a1b2c3)",
        )
    api_id = (
        r.string(
            m["id"],
            f"{ptr}/id",
            "API id",
            pattern=_API_ID,
            help="lower-case letters, digits and '-', e.g. a1b2c3d4e5",
        )
        if "id" in m
        else None
    )
    name = r.string(m["name"], f"{ptr}/name", "name") if "name" in m else api_id
    endpoint = "REGIONAL"
    if "endpoint_type" in m:
        endpoint = (
            r.string(m["endpoint_type"], f"{ptr}/endpoint_type", "endpoint_type", choices=ENDPOINT_TYPES)
            or endpoint
        )
    mode = "enforce"
    if "policy_mode" in m:
        mode = r.string(m["policy_mode"], f"{ptr}/policy_mode", "policy_mode", choices=POLICY_MODES) or mode
    policy, policy_text, _ = read_policy(r, m, ptr, settings, api_id, watched)
    authorizers = read_authorizers(
        r,
        m.get("authorizers"),
        f"{ptr}/authorizers",
        ApiRef(settings.region, settings.account_id, api_id or "api"),
    )
    key_source = "HEADER"
    if "api_key_source" in m:
        key_source = (
            r.string(
                m["api_key_source"],
                f"{ptr}/api_key_source",
                "api_key_source",
                choices=("HEADER", "AUTHORIZER"),
            )
            or key_source
        )
    if endpoint == "PRIVATE" and policy_text is None:
        r.report(
            "missing-key",
            ptr,
            "a PRIVATE API needs a resource policy",
            "API Gateway refuses to deploy a private API without one; add policy or policy_file",
        )
    disabled = False
    if "disable_execute_api_endpoint" in m:
        key = "disable_execute_api_endpoint"
        disabled = bool(r.boolean(m[key], f"{ptr}/{key}", key))
    responses: dict[str, GatewayResponseConfig] = {}
    if "gateway_responses" in m:
        responses = read_gateway_responses(r, m["gateway_responses"], f"{ptr}/gateway_responses")

    def scoped(sm: dict[str, Any], sp: str, label: str) -> ScopedPolicy | None:
        return read_scoped_policy(r, sm, sp, settings, api_id, watched, label)

    stages = read_stages(r, m["stages"], f"{ptr}/stages", scoped) if "stages" in m else {}
    models = read_models(r, m["models"], f"{ptr}/models", api_id) if "models" in m else {}
    validators = (
        read_request_validators(r, m["request_validators"], f"{ptr}/request_validators")
        if "request_validators" in m
        else {}
    )
    routes = (
        read_routes(r, m["routes"], f"{ptr}/routes", stages, authorizers, models, validators, scoped)
        if "routes" in m
        else []
    )
    cors = read_cors(r, m["cors"], f"{ptr}/cors") if "cors" in m else None
    if len([d for d in r.diags if d.is_error]) > before or api_id is None:
        return None
    if cors is not None:  # expanded into the objects API Gateway's console writes (docs/cors.md)
        routes, responses = apply_cors(r, cors, ptr, routes, responses)
    return ApiConfig(
        api_id,
        name or api_id,
        endpoint,
        policy,
        policy_text,
        mode,
        stages,
        tuple(routes),
        authorizers,
        key_source,
        deployment,
        disabled,
        gateway_responses=responses,
        models=models,
        request_validators=validators,
    )


def _deployment_clash(api: ApiConfig, others: list[ApiConfig]) -> str | None:
    """Why ``api`` cannot be served beside the earlier entries of its id, or None."""
    for other in others:
        if api.deployment is None or other.deployment is None:
            return ""
        if other.deployment == api.deployment:
            return f" as deployment '{api.deployment}'"
        shared = sorted(set(other.stages) & set(api.stages))
        if shared:
            return f", whose deployment '{other.deployment}' also serves stage(s) {', '.join(shared)}"
    return None
