"""``iamgate apply`` and ``iamgate export``: a configuration file into a store, and back.

``apply`` validates the file exactly as ``iamgate serve`` does, then writes, in **one store
transaction**, each API's draft, one deployment per ``apis`` entry (its definition: the entry
without ``stages``) and the entry's stages pointing at it, plus ``api_keys`` and
``usage_plans``. A deployment's id is the entry's ``deployment``, or else derived from its
definition, so applying an unchanged file again reuses the deployments it made (deployments are
immutable: an id given in the file that already holds a different definition is refused).
``--prune`` also deletes what the file does not name: other APIs, stages, deployments, API keys
and usage plans. ``export`` writes what the store serves (stages and the deployments they serve,
API keys, usage plans) as a configuration file; ``export`` of an ``apply`` parses to the same
configuration, and exporting again what that export applies gives the same bytes.

The ``gateway``, ``identities`` and ``throttling`` sections stay in the gateway's own
configuration file: the store holds APIs, keys and plans.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml

from iamgate.cli.redact import REDACTED, Redacted
from iamgate.cli.redact import redact as redact_document
from iamgate.cli.store_flag import StoreOrigin, check_url, fail, open_named
from iamgate.config.load import load_config
from iamgate.config.model import GatewayConfig
from iamgate.management.convert import definition_to_draft
from iamgate.management.entries import api_definition, api_key_entry, stage_entry, usage_plan_entry
from iamgate.management.stages import new_stage
from iamgate.policy.parse import STATEMENT_KEYS, TOP_KEYS
from iamgate.store import Store, StoreError
from iamgate.store.base import Doc, Transaction, mask

__all__ = ["apply", "export"]

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
KEY_FIELDS = ("id", "name", "value", "enabled")
PLAN_FIELDS = ("id", "name", "api_stages", "throttle", "quota", "keys", "on_backend_error")
API_ORDER = (
    "id",
    "deployment",
    "name",
    "endpoint_type",
    "policy",
    "policy_mode",
    "api_key_source",
    "disable_execute_api_endpoint",
)
ROUTE_ORDER = ("path", "method", "authorization", "authorizer", "authorization_scopes", "api_key_required")


class ApplyError(Exception):
    """The file cannot be applied to this store as it is (nothing was written)."""


def deployment_id(api_id: str, definition: dict[str, Any]) -> str:
    """A deployment id derived from the definition: the same definition, the same id."""
    digest = hashlib.sha256(f"{api_id}\n{json.dumps(definition, sort_keys=True)}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    out = ""
    for _ in range(6):
        number, digit = divmod(number, 36)
        out += _ALPHABET[digit]
    return out


def _origin(url: str | None, config: GatewayConfig, file: Path) -> StoreOrigin:
    if url is not None:
        return StoreOrigin(url)
    if not config.store:
        raise click.UsageError("no store: give --store URL (or a store: line in the file)")
    return StoreOrigin(config.store, file)


def _write(tx: Transaction, config: GatewayConfig, prune: bool) -> dict[str, int]:
    counts = {"apis": 0, "deployments": 0, "new deployments": 0, "stages": 0, "pruned": 0}
    settings = config.settings
    last: dict[str, dict[str, Any]] = {}
    wanted_deployments: dict[str, set[str]] = {}
    wanted_stages: dict[str, set[str]] = {}
    for api in config.apis:
        definition = api_definition(api)
        dep = api.deployment or deployment_id(api.id, definition)
        last[api.id] = definition
        wanted_deployments.setdefault(api.id, set()).add(dep)
        existing = tx.get("deployment", api.id, dep)
        if existing is not None and existing.get("definition") != definition:
            raise ApplyError(
                f"API {api.id}: deployment {dep} already exists with a different definition; "
                "deployments are immutable: give the changed entry a new 'deployment' id (or leave it "
                "out to have one made)"
            )
        if existing is None:
            doc = {"id": dep, "createdDate": _now(), "definition": definition, "description": "iamgate apply"}
            tx.insert("deployment", api.id, dep, doc)
            counts["new deployments"] += 1
        counts["deployments"] += 1
        for name, stage in api.stages.items():
            previous = tx.get("stage", api.id, name)
            tx.put("stage", api.id, name, new_stage(name, dep, entry=stage_entry(stage), previous=previous))
            wanted_stages.setdefault(api.id, set()).add(name)
            counts["stages"] += 1
    for api_id, definition in last.items():
        previous = tx.get("restapi", "", api_id)
        try:
            draft = definition_to_draft(definition, api_id, settings=settings, previous=previous)
        except ValueError as exc:
            raise ApplyError(str(exc)) from None
        tx.put("restapi", "", api_id, draft)
        counts["apis"] += 1
    stamp = _now()
    for key in config.auth.api_keys:
        old = tx.get("apikey", "", key.id) or {}
        entry = api_key_entry(key)
        entry.setdefault("enabled", True)
        doc = {
            **{k: v for k, v in old.items() if k not in KEY_FIELDS},
            **entry,
            "createdDate": old.get("createdDate", stamp),
            "lastUpdatedDate": stamp,
        }
        tx.put("apikey", "", key.id, doc)
    for plan in config.usage_plans:
        old = tx.get("usageplan", "", plan.id) or {}
        tx.put(
            "usageplan", "", plan.id, {"description": old.get("description", ""), **usage_plan_entry(plan)}
        )
    if prune:
        counts["pruned"] = _prune(tx, config, wanted_deployments, wanted_stages)
    return counts


def _prune(
    tx: Transaction, config: GatewayConfig, deployments: dict[str, set[str]], stages: dict[str, set[str]]
) -> int:
    removed = 0
    for _, api_id, _ in tx.list("restapi"):
        if api_id not in deployments:
            removed += tx.delete_api(api_id)
    for api_id, name, _ in tx.list("stage"):
        if name not in stages.get(api_id, set()):
            removed += tx.delete("stage", api_id, name)
    for api_id, dep, _ in tx.list("deployment"):
        if dep not in deployments.get(api_id, set()):
            removed += tx.delete("deployment", api_id, dep)
    keys = {k.id for k in config.auth.api_keys}
    for _, key_id, _ in tx.list("apikey"):
        if key_id not in keys:
            removed += tx.delete("apikey", "", key_id)
    plans = {p.id for p in config.usage_plans}
    for _, plan_id, _ in tx.list("usageplan"):
        if plan_id not in plans:
            removed += tx.delete("usageplan", "", plan_id)
    return removed


def _now() -> int:
    return int(time.time())


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--store",
    "store_url",
    callback=check_url,
    help="The store: sqlite:///FILE or postgresql://... [default: the file's store:]",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete APIs, stages, deployments, keys and plans the file does not name.",
)
def apply(file: Path, store_url: str | None, prune: bool) -> None:
    """Load a configuration file's APIs, API keys and usage plans into a store.

    Everything is validated first (as `iamgate serve` does); with any error nothing is written,
    every diagnostic is printed and the exit status is 1. Exit 2 when the store cannot be used.
    """
    config, diagnostics = load_config(file)
    for d in diagnostics:
        click.echo(d.render(), err=True)
    if config is None:
        click.echo(f"{file}: invalid, nothing applied", err=True)
        sys.exit(1)
    origin = _origin(store_url, config, file)
    store = open_named(origin, Path.cwd() if origin.file is None else file.parent)
    try:
        with store.transaction() as tx:
            counts = _write(tx, config, prune)
    except ApplyError as exc:
        click.echo(f"{file}: {exc}; nothing applied", err=True)
        sys.exit(1)
    except StoreError as exc:
        fail(origin, exc)
    finally:
        store.close()
    summary = (
        f"{counts['apis']} API(s), {counts['deployments']} deployment(s) ({counts['new deployments']} new), "
        f"{counts['stages']} stage(s), {len(config.auth.api_keys)} API key(s), "
        f"{len(config.usage_plans)} usage plan(s)"
    )
    pruned = f"; {counts['pruned']} object(s) pruned" if prune else ""
    click.echo(f"applied {file} to {mask(store.url)}: {summary}{pruned}")


def _ordered(mapping: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    out = {k: mapping[k] for k in first if k in mapping}
    out.update({k: v for k, v in sorted(mapping.items()) if k not in out})
    return out


def _policy(policy: dict[str, Any]) -> dict[str, Any]:
    out = _ordered(policy, TOP_KEYS)
    statements = out.get("Statement")
    if isinstance(statements, list):
        out["Statement"] = [_ordered(s, STATEMENT_KEYS) if isinstance(s, dict) else s for s in statements]
    elif isinstance(statements, dict):
        out["Statement"] = _ordered(statements, STATEMENT_KEYS)
    return out


def _route(route: dict[str, Any]) -> dict[str, Any]:
    out = _ordered({k: v for k, v in route.items() if k != "integration"}, ROUTE_ORDER)
    out["integration"] = _ordered(
        route["integration"], ("type", "uri", "timeout", "status", "headers", "body")
    )
    return out


def export_document(store: Store) -> dict[str, Any]:
    """What ``store`` serves, as a configuration document (APIs, API keys, usage plans)."""
    served = store.served()
    groups: dict[tuple[str, str], list[tuple[str, Doc]]] = {}
    for api_id, name, stage in served.stages:
        groups.setdefault((api_id, str(stage.get("deploymentId") or "")), []).append((name, stage))
    by_api: dict[str, int] = {}
    for api_id, _ in groups:
        by_api[api_id] = by_api.get(api_id, 0) + 1
    apis = []
    for (api_id, dep), stages in sorted(groups.items()):
        found = served.deployments.get((api_id, dep))
        if found is None:
            click.echo(
                f"iamgate: stage(s) of API {api_id} point at missing deployment {dep!r}: left out", err=True
            )
            continue
        definition = dict(found.get("definition") or {})
        entry = _ordered({**definition, "id": api_id}, API_ORDER)
        if by_api[api_id] > 1:
            entry["deployment"] = dep
            entry = _ordered(entry, API_ORDER)
        if "policy" in entry:
            entry["policy"] = _policy(entry["policy"])
        routes = entry.pop("routes", [])
        authorizers = entry.pop("authorizers", None)
        entry["stages"] = {name: doc.get("config") or {} for name, doc in sorted(stages)}
        if authorizers:
            entry["authorizers"] = [_ordered(a, ("name", "type")) for a in authorizers]
        entry["routes"] = [_route(r) for r in routes]
        apis.append(entry)
    document: dict[str, Any] = {"apis": apis}
    keys = [
        {k: doc[k] for k in KEY_FIELDS if k in doc and not (k == "enabled" and doc[k])}
        for doc in served.api_keys
    ]
    if keys:
        document["api_keys"] = sorted(keys, key=lambda k: str(k["id"]))
    plans = [
        {k: doc[k] for k in PLAN_FIELDS if doc.get(k) not in (None, [], {})} for doc in served.usage_plans
    ]
    if plans:
        document["usage_plans"] = sorted(plans, key=lambda p: str(p["id"]))
    return document


def render(document: dict[str, Any], redacted: Redacted | None = None) -> str:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    if redacted is None:
        return "# written by iamgate export: the APIs, API keys and usage plans a store serves\n" + text
    head = ["# written by iamgate export --redact: the APIs, API keys and usage plans a store serves,"]
    head.append("# without their secrets (docs/management.md#apply-and-export)")
    if redacted.key_variables:
        head.append(
            "# API key values come from these environment variables (value_env); set them to apply it:"
        )
        head.extend(f"#   {name} (API key {key})" for key, name in redacted.key_variables.items())
    if redacted.places:
        head.append(f"# other secrets read {REDACTED}: put the real values back to apply it:")
        head.extend(f"#   {place}" for place in redacted.places)
    return "\n".join(head) + "\n" + text


@click.command()
@click.option(
    "--store",
    "store_url",
    required=True,
    callback=check_url,
    help="The store: sqlite:///FILE or postgresql://...",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output.",
)
@click.option(
    "--redact",
    is_flag=True,
    help="Leave the secrets out (API key values, passwords in URLs, credentials sent to backends), "
    "to share the file for review; see docs/management.md.",
)
def export(store_url: str, output: Path | None, redact: bool) -> None:
    """Write what a store serves as a configuration file (YAML).

    Stages are grouped by the deployment they serve: an API whose stages all serve one
    deployment is one `apis` entry without `deployment:`; otherwise one entry per deployment.
    Drafts that no stage serves are not written. Exit 2 when the store cannot be read.

    With --redact, API key values become value_env: IAMGATE_API_KEY_<ID> and other secrets
    <redacted by iamgate export>, which the loader refuses: the file applies only once the
    variables are set and the other values put back.
    """
    origin = StoreOrigin(store_url)
    store = open_named(origin)
    try:
        document = export_document(store)
        text = render(*redact_document(document)) if redact else render(document)
    except StoreError as exc:
        fail(origin, exc)
    finally:
        store.close()
    if output is None:
        click.echo(text, nl=False)
    else:
        # the file holds API key values: a new one is readable by its owner only (unless redacted)
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644 if redact else 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            click.echo(f"iamgate: cannot write {output}: {exc.strerror}", err=True)
            sys.exit(2)
