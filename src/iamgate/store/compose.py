"""What the gateway serves from a store: the configuration file's document plus the store's
stages (each with the deployment it serves), API keys and usage plans, as one configuration
document that goes through the same validation as a file (``parse_config``).

An API whose stages serve different deployments becomes one ``apis`` entry per deployment
(``deployment: ID`` and the stages that serve it); drafts are never served.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from iamgate.store.base import Doc, Served
from iamgate.tls.contexts import DEFAULT_POLICY

__all__ = ["STORE_FILE", "compose", "decode_served", "domain_entry", "encode_served"]

# the name under which the store's state travels with the configuration files (supervisor ->
# workers): workers never open the store themselves, so they serve exactly what was validated
STORE_FILE = "<store>"

_KEY_FIELDS = ("id", "name", "value", "enabled")
_PLAN_FIELDS = ("id", "name", "api_stages", "throttle", "quota", "keys", "on_backend_error")


def encode_served(served: Served) -> bytes:
    return json.dumps(
        {
            "generation": served.generation,
            "stages": [list(item) for item in served.stages],
            "deployments": [[a, i, d] for (a, i), d in served.deployments.items()],
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
        {(a, i): d for a, i, d in raw["deployments"]},
        list(raw["api_keys"]),
        list(raw["usage_plans"]),
        list(raw.get("domains") or []),
    )


def compose(document: dict[str, Any], served: Served) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration document to serve, and where its store-made parts came from (JSON
    pointer prefix -> description, for diagnostics)."""
    out = dict(document)
    origins: dict[str, str] = {}
    apis = list(out.get("apis") or [])
    groups: dict[tuple[str, str], list[tuple[str, Doc]]] = defaultdict(list)
    for api_id, name, stage in served.stages:
        deployment = str(stage.get("deploymentId") or "")
        groups[(api_id, deployment)].append((name, stage))
    for (api_id, deployment), stages in sorted(groups.items()):
        names = ", ".join(name for name, _ in stages)
        found = served.deployments.get((api_id, deployment))
        where = f"the store's API {api_id}, deployment {deployment or '(none)'} (stage(s) {names})"
        origins[f"/apis/{len(apis)}"] = where
        if found is None:
            # a stage pointing nowhere: keep the entry so validation reports it, located
            apis.append({"id": api_id, "deployment": deployment or "missing", "stages": {}, "routes": []})
            continue
        entry = dict(found.get("definition") or {})
        entry["id"] = api_id
        entry["deployment"] = deployment
        entry["stages"] = {name: stage.get("config") or {} for name, stage in stages}
        apis.append(entry)
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
