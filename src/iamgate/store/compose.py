"""What the gateway serves from a store: the configuration file's document plus the store's
stages (each with the deployment it serves), API keys and usage plans, as one configuration
document that goes through the same validation as a file (``parse_config``).

An API whose stages serve different deployments becomes one ``apis`` entry per deployment
(``deployment: ID`` and the stages that serve it); drafts are never served.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from iamgate.config.read_api import Deferred
from iamgate.store.base import Doc, Served
from iamgate.tls.contexts import DEFAULT_POLICY

__all__ = ["STORE_FILE", "compose", "decode_served", "domain_entry", "encode_served"]

# the name under which the store's state travels with the configuration files (supervisor ->
# workers): workers never open the store themselves, so they serve exactly what was validated
STORE_FILE = "<store>"

_KEY_FIELDS = ("id", "name", "value", "enabled")
_PLAN_FIELDS = ("id", "name", "api_stages", "throttle", "quota", "keys", "on_backend_error")


def encode_served(served: Served) -> bytes:
    texts = [[a, i, json.dumps(d, sort_keys=True)] for (a, i), d in served.deployments.items()]
    texts += [[a, i, t] for (a, i), t in served.texts.items()]
    return json.dumps(
        {
            "generation": served.generation,
            "stages": [list(item) for item in served.stages],
            # each as its own text: a worker decodes only those its reload needs
            "deployments": texts,
            "api_keys": served.api_keys,
            "usage_plans": served.usage_plans,
            "domains": served.domains,
        },
        sort_keys=True,
    ).encode()


def decode_served(data: bytes) -> Served:
    raw = json.loads(data)
    return Served(
        int(raw["generation"]),
        [(a, n, d) for a, n, d in raw["stages"]],
        {},
        list(raw["api_keys"]),
        list(raw["usage_plans"]),
        list(raw.get("domains") or []),
        texts={(a, i): t for a, i, t in raw["deployments"]},
    )


def compose(
    document: dict[str, Any], served: Served, *, deferred: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration document to serve, and where its store-made parts came from (JSON
    pointer prefix -> description, for diagnostics). With ``deferred`` (a serving worker, whose
    state came with the deployments as texts), each store-made API entry is a
    :class:`~iamgate.config.read_api.Deferred`, keyed by the deployment's text and its stages:
    decoded only if the reload's memo does not have it."""
    out = dict(document)
    origins: dict[str, str] = {}
    apis = list(out.get("apis") or [])
    groups: dict[tuple[str, str], list[tuple[str, Doc]]] = defaultdict(list)
    for api_id, name, stage in served.stages:
        deployment = str(stage.get("deploymentId") or "")
        groups[(api_id, deployment)].append((name, stage))
    for (api_id, deployment), stages in sorted(groups.items()):
        names = ", ".join(name for name, _ in stages)
        where = f"the store's API {api_id}, deployment {deployment or '(none)'} (stage(s) {names})"
        origins[f"/apis/{len(apis)}"] = where
        configs = {name: stage.get("config") or {} for name, stage in stages}
        text = served.texts.get((api_id, deployment))
        found = served.deployments.get((api_id, deployment))
        if text is not None and deferred:
            key = _key(api_id, deployment, text, configs)
            apis.append(Deferred(key, _later(api_id, deployment, text, configs)))
            continue
        if text is not None:
            found = json.loads(text)
        if found is None:
            # a stage pointing nowhere: keep the entry so validation reports it, located
            apis.append({"id": api_id, "deployment": deployment or "missing", "stages": {}, "routes": []})
            continue
        apis.append(_entry(api_id, deployment, found, configs))
    out["apis"] = apis
    keys = list(out.get("api_keys") or [])
    for doc in served.api_keys:
        origins[f"/api_keys/{len(keys)}"] = f"the store's API key {doc.get('id')}"
        keys.append({k: doc[k] for k in _KEY_FIELDS if k in doc})
    if keys:
        out["api_keys"] = keys
    plans = list(out.get("usage_plans") or [])
    for doc in served.usage_plans:
        origins[f"/usage_plans/{len(plans)}"] = f"the store's usage plan {doc.get('id')}"
        plans.append({k: doc[k] for k in _PLAN_FIELDS if k in doc})
    if plans:
        out["usage_plans"] = plans
    domains = list(out.get("domains") or [])
    for doc in served.domains:
        origins[f"/domains/{len(domains)}"] = f"the store's domain name {doc.get('domainName')}"
        domains.append(domain_entry(doc))
    if domains:
        out["domains"] = domains
    return out, origins


def _entry(api_id: str, deployment: str, found: Doc, configs: dict[str, Any]) -> dict[str, Any]:
    entry = dict(found.get("definition") or {})
    entry["id"] = api_id
    entry["deployment"] = deployment
    entry["stages"] = configs
    return entry


def _key(api_id: str, deployment: str, text: str, configs: dict[str, Any]) -> str:
    """What a store-made API entry is made of, as one digest: the deployment's text (a
    deployment's definition never changes, its description may) and its stages' settings."""
    stages = json.dumps(configs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    parts = "\0".join(("store", api_id, deployment, stages, text))
    return hashlib.sha256(parts.encode("utf-8", "surrogatepass")).hexdigest()


def _later(api_id: str, deployment: str, text: str, configs: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: _entry(api_id, deployment, json.loads(text), configs)


def domain_entry(doc: Doc) -> dict[str, Any]:
    """The configuration's ``domains`` entry of a stored domain (``iamgate.management.domains``
    writes them; docs/configuration.md): a file's path where the certificate or truststore was
    given as a ``file://`` URI (so the gateway watches it), else the PEM text."""
    entry: dict[str, Any] = {
        "name": doc["domainName"],
        "security_policy": doc.get("securityPolicy", DEFAULT_POLICY),
        "endpoint_type": (doc.get("endpointConfiguration") or {}).get("types", ["REGIONAL"])[0],
    }
    if doc.get("certificateFile"):
        entry["certificate"] = entry["key"] = doc["certificateFile"]
    elif doc.get("certificatePem"):
        entry["certificate_pem"] = doc["certificatePem"]
        entry["key_pem"] = doc["privateKeyPem"]
    mtls = doc.get("mutualTlsAuthentication")
    if mtls:
        trust: dict[str, Any] = {}
        if mtls.get("truststoreFile"):
            trust["truststore"] = mtls["truststoreFile"]
        else:
            trust["truststore_pem"] = mtls.get("truststorePem", "")
        if mtls.get("truststoreVersion"):
            trust["truststore_version"] = mtls["truststoreVersion"]
        entry["mutual_tls"] = trust
    entry["mappings"] = [
        {"base_path": m["basePath"] or "(none)", "api": m["restApiId"], "stage": m.get("stage") or "(none)"}
        for m in doc.get("mappings") or []
    ]
    return entry
