"""Load and validate the gateway's YAML configuration (docs/configuration.md).

Every problem is a :class:`~iamgate.policy.Diagnostic` with the file, line and column, what is
wrong and the valid choices; all problems are reported at once; a file with any error yields no
configuration at all (the gateway never starts half-configured, and a reload keeps the old one).

Validation is written by hand rather than with a schema library so that each message can name
the bad value, give a did-you-mean and point at the line of the YAML node (the schema is small).
This module reads the document and assembles a :class:`~iamgate.config.model.GatewayConfig`
from its sections, each read by its own module: ``read_gateway`` (``gateway``), ``auth``
(``identities``, ``api_keys``), ``read_throttle`` (``throttling``, ``usage_plans``), ``read_store``
(``store``, ``management``) and ``read_api`` (``apis``: each API's policy in ``read_policy``,
stages in ``read_stages``, routes in ``read_routes``, integrations in ``read_integration``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from iamgate.config._reader import Reader
from iamgate.config._yaml import load_yaml
from iamgate.config.auth import AuthSettings, read_api_keys, read_identities
from iamgate.config.model import GatewayConfig
from iamgate.config.read_api import ApiMemo, read_apis
from iamgate.config.read_gateway import read_gateway
from iamgate.config.read_store import read_management, read_store
from iamgate.config.read_throttle import read_throttling, read_usage_plans
from iamgate.config.read_tls import check_domains, read_domains, read_tls
from iamgate.policy import Diagnostic, Location, Severity

__all__ = ["Extend", "ExtendError", "gc_paused", "load_config", "parse_config"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a configuration is read or built.

    Reading allocates about a hundred objects per route and policy statement, nearly all of them
    kept, and each full collection on the way walks every one of them again: at 1,000 APIs the
    collector took 60 % of the load (2 of 3.3 s). What a load leaves behind is freed by reference
    counting (no cycles: the YAML reader breaks its own), so nothing waits for the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ExtendError(Exception):
    """An ``extend`` step could not supply its part (e.g. the store is unreachable). ``source``
    names what is to blame when it is not the configuration file (``--store``)."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


# document -> (the document with more in it, pointer prefix -> where that part came from)
Extend = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    reader: Callable[[Path], bytes] | None = None,
    extend: Extend | None = None,
    memo: ApiMemo | None = None,
) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    """Validate configuration text. The config is None when there is any error.

    Relative file names (``policy_file``, the access log) are relative to ``base_dir`` (default:
    the working directory); ``reader`` reads policy files (default: from disk). ``extend`` adds to
    the document before validation (a store's APIs, keys and plans, appended after the file's own
    so that the file's parts keep their positions); diagnostics about what it added name where it
    came from instead of a line. ``memo`` (a serving process's) keeps the API entries read, for
    the next read to reuse those that did not change."""
    origins: dict[str, str] = {}
    with gc_paused():
        config, diags = _parse_document(text, source, base_dir, reader, extend, origins, memo)
    if origins:
        diags = _relocate(diags, origins)
    return config, diags


def _relocate(diags: list[Diagnostic], origins: dict[str, str]) -> list[Diagnostic]:
    out = []
    for d in diags:
        pointer = d.location.pointer
        prefix = next((p for p in origins if pointer == p or pointer.startswith(p + "/")), None)
        if prefix is None:
            out.append(d)
            continue
        inner = pointer[len(prefix) :] or "/"
        message = f"{origins[prefix]}: {d.message}"
        out.append(Diagnostic(d.code, d.severity, message, Location(inner), d.help, "store"))
    return out


def _parse_document(
    text: str,
    source: str,
    base_dir: Path | None,
    reader: Callable[[Path], bytes] | None,
    extend: Extend | None,
    origins: dict[str, str],
    memo: ApiMemo | None,
) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    doc = load_yaml(text)
    diags = [d.with_source(source) for d in doc.diagnostics]
    if doc.data is None:
        if not diags:
            diags.append(
                Diagnostic(
                    "config.empty",
                    Severity.ERROR,
                    "the configuration file is empty",
                    Location(""),
                    "start from examples/quickstart.yaml",
                    source,
                )
            )
        return None, diags
    data = doc.data
    if extend is not None and isinstance(data, dict):
        try:
            data, added = extend(data)
        except ExtendError as exc:
            # blamed on the file's store: line, or on what the step names (a command-line flag)
            pointer = "" if exc.source else "/store"
            blamed = exc.source or source
            failed = Diagnostic("config.store", Severity.ERROR, str(exc), Location(pointer), None, blamed)
            return None, [*diags, failed]
        origins.update(added)
    r = Reader(doc.positions, source, base_dir or Path.cwd(), reader or Path.read_bytes)
    if memo is not None:
        r.earlier = memo.policies
    top = r.mapping(
        data,
        "",
        "the configuration",
        {
            "gateway": False,
            "apis": False,  # required unless a store serves the APIs (checked below)
            "identities": False,
            "api_keys": False,
            "throttling": False,
            "usage_plans": False,
            "store": False,
            "management": False,
            "domains": False,
        },
    )
    if top is None:
        return None, diags + r.diags
    watched: list[str] = []
    settings = read_gateway(r, top.get("gateway"))
    gateway = top.get("gateway")
    if isinstance(gateway, dict):
        tls = read_tls(r, gateway.get("tls"), "/gateway/tls", watched, admin=False)
        admin_tls = read_tls(r, gateway.get("admin_tls"), "/gateway/admin_tls", watched, admin=True)
        settings = dataclasses.replace(settings, tls=tls, admin_tls=admin_tls)
    identities = read_identities(r, top.get("identities"), r.base_dir, settings.max_policy_chars)
    api_keys = read_api_keys(r, top.get("api_keys"), r.base_dir)
    throttling = read_throttling(r, top.get("throttling"))
    store = read_store(r, top.get("store"))
    management = read_management(r, top.get("management"))
    plans = read_usage_plans(r, top.get("usage_plans"), {k.id for k in api_keys})
    if "apis" not in top and top.get("store") is None:
        r.report(
            "missing-key",
            "",
            "the configuration is missing 'apis'",
            "list the APIs to serve, or name a store (store: sqlite:///iamgate.db) that holds them",
        )
    elif top.get("apis") == [] and top.get("store") is None:
        r.warn("no-apis", "/apis", "no API is configured: every request will be answered 403")
    apis = read_apis(r, top.get("apis", []), settings, watched, memo)
    if memo is not None:
        memo.policies = r.compiled  # what this read compiled, and nothing older
    domains = read_domains(r, top.get("domains"), watched)
    check_domains(r, domains, apis, settings.tls)
    stage_names = {(api.id, stage) for api in apis for stage in api.stages}
    for i, plan in enumerate(plans):
        for j, st in enumerate(plan.stages):
            if (st.api, st.stage) not in stage_names:
                r.report(
                    "invalid-value",
                    f"/usage_plans/{i}/api_stages/{j}",
                    f"usage plan '{plan.id}' names {st.api}/{st.stage}, which is not a configured API stage",
                )
    diags += r.diags
    if any(d.is_error for d in diags):
        return None, diags
    uses_iam = any(route.authorization == "AWS_IAM" for api in apis for route in api.routes)
    if uses_iam and not len(identities):
        diags.append(
            Diagnostic(
                "config.no-identities",
                Severity.WARNING,
                "routes use AWS_IAM but no access key is configured: every call will be refused",
                Location("/identities"),
                "describe callers under identities",
                source,
            )
        )
    config = GatewayConfig(
        settings,
        tuple(apis),
        source,
        (source, *watched),
        AuthSettings(identities, api_keys),
        throttling,
        plans,
        store,
        management,
        tuple(d for _, d in domains),
    )
    return config, diags


def load_config(
    path: str | Path,
    reader: Callable[[Path], bytes] | None = None,
    extend: Extend | None = None,
    memo: ApiMemo | None = None,
) -> tuple[GatewayConfig | None, list[Diagnostic]]:
    """Read and validate a configuration file; ``reader`` reads it and the policy files it names,
    ``extend`` adds a store's objects (see :func:`parse_config`)."""
    p = Path(path)
    try:
        data = (reader or Path.read_bytes)(p)
    except OSError as exc:
        return None, [
            Diagnostic(
                "config.unreadable",
                Severity.ERROR,
                f"cannot read {p}: {exc.strerror or exc}",
                Location(""),
                None,
                str(p),
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Diagnostic(
                "config.invalid-utf8",
                Severity.ERROR,
                f"{p} is not UTF-8 (byte offset {exc.start})",
                Location(""),
                None,
                str(p),
            )
        ]
    return parse_config(text, source=str(p), base_dir=p.parent, reader=reader, extend=extend, memo=memo)
