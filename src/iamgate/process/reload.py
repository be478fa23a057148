"""Reading the configuration and deciding a reload.

The configuration file and the policy files it names are read once (:class:`Sources` keeps the
bytes as read) and, with the store's objects, validated completely (:func:`load`), then built
into a snapshot (:func:`checked`). If anything is wrong the current configuration keeps serving:
:func:`refuse` logs why, prints the diagnostics and counts
``iamgate_config_reloads_total{result="failed"}``. A worker under a supervisor never reads the
files or the store itself: it loads the very bytes the supervisor read and validated
(``given``), so workers cannot diverge.

What starts a reload besides ``SIGHUP``: a watched file changed (:class:`Watcher`, polled every
:data:`WATCH_INTERVAL` seconds) or the store's generation moved (:func:`follow_store`, which also
keeps the management API on the admin port in step with the configuration).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from iamgate.admin import AdminServer
from iamgate.config.load import gc_paused, load_config
from iamgate.config.model import GatewayConfig
from iamgate.config.read_api import ApiMemo
from iamgate.config.snapshot import Reuse, Snapshot, build_snapshot
from iamgate.management.app import ManagementApp
from iamgate.management.core import GatewayContext
from iamgate.observe.drain import to_stderr
from iamgate.observe.metrics import Metrics
from iamgate.policy import Diagnostic, Location, Severity
from iamgate.process.options import ServeOptions
from iamgate.store.base import mask
from iamgate.store.link import FLAG, StoreLink, extend_from_files

__all__ = [
    "WATCH_INTERVAL",
    "Sources",
    "Stamp",
    "Watcher",
    "blamed",
    "build",
    "checked",
    "follow_store",
    "load",
    "rebuilt",
    "refuse",
    "release_memory",
    "report",
]

log = logging.getLogger("iamgate")
WATCH_INTERVAL = 1.0

# This process's last configuration, kept for the next reload: the API entries that did not
# change are neither read nor built again (a redeploy of one API among a thousand rebuilds one)
MEMO = ApiMemo()
REUSE = Reuse()

Stamp = tuple[float, int] | None


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Give the memory a reload freed back to the system (glibc's ``malloc_trim``; nothing
    where the C library has none).

    A reload handles the store's whole state several times over in buffers of megabytes (read,
    sent to each worker, decoded), and glibc keeps what they leave behind in its heap, unevenly:
    with 1,000 APIs a worker's RSS crept up about 0.07 MB per redeploy, Python's own objects
    constant (docs/benchmarks.md "Scale"); trimmed after each reload, it stays flat. Called by
    hand through ctypes because neither the standard library nor a maintained package offers
    it."""
    if _TRIM is not None:
        _TRIM(0)


def rebuilt(config: GatewayConfig) -> str:
    """How much of the last configuration loaded was read and built again, for the log: a
    reload that reused the unchanged APIs says so (``1 of 1000 API(s) rebuilt``)."""
    total = len(config.apis)
    return f"{total - min(MEMO.hits, REUSE.reused)} of {total} API(s) rebuilt"


def report(diags: list[Diagnostic]) -> None:
    """The diagnostics on stderr (through the process log's drain: a reload's warnings never
    wait for a stalled stderr)."""
    if diags:
        to_stderr("".join(d.render() + "\n" for d in diags))


def _stamp(name: str) -> Stamp:
    try:
        st = os.stat(name)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


class Sources:
    """Reads the configuration's files for the loader and remembers each one's bytes and its
    (mtime, size) taken *before* reading, so a change made while loading is still noticed.
    With ``given`` (a worker), the files come from the supervisor, not the disk."""

    def __init__(self, given: dict[str, bytes] | None = None) -> None:
        self.given = given
        self.data: dict[str, bytes] = {}
        self.stamps: dict[str, Stamp] = {}

    def __call__(self, path: Path) -> bytes:
        name = str(path)
        if self.given is not None:
            if name not in self.given:
                raise FileNotFoundError(errno.ENOENT, "not sent by the supervisor", name)
            data = self.given[name]
        else:
            self.stamps[name] = _stamp(name)
            data = path.read_bytes()
        self.data[name] = data
        return data


def load(
    path: Path, given: dict[str, bytes] | None = None, link: StoreLink | None = None, store: str | None = None
) -> tuple[GatewayConfig | None, list[Diagnostic], Sources]:
    """Read and validate the configuration: from disk and the store (``link``), or (a worker)
    exactly as the supervisor read them (``given``)."""
    sources = Sources(given)
    if given is not None:
        extend = extend_from_files(given, store)
    else:
        extend = (link or StoreLink(store)).extend(path.parent, sources.data)
    config, diags = load_config(path, reader=sources, extend=extend, memo=MEMO)
    return config, diags, sources


def blamed(diags: list[Diagnostic], path: Path) -> str:
    """What has the errors: the configuration file, or (when every error is its) --store."""
    errors = [d for d in diags if d.is_error]
    return FLAG if errors and all(d.source == FLAG for d in errors) else str(path)


def build(config: GatewayConfig, path: Path) -> Snapshot | Diagnostic:
    """The runtime snapshot, or (a gap in validation) a diagnostic instead of a crash."""
    try:
        with gc_paused():
            return build_snapshot(config, REUSE)
    except Exception as exc:
        log.exception("building the configuration of %s failed", path)
        return Diagnostic(
            "config.internal",
            Severity.ERROR,
            f"cannot build the configuration: {exc}",
            Location(""),
            None,
            str(path),
        )


def checked(
    config: GatewayConfig | None, diags: list[Diagnostic], path: Path, previous: GatewayConfig | None = None
) -> tuple[Snapshot | None, list[Diagnostic]]:
    """The snapshot of a configuration that loaded, or ``None``; with every diagnostic (a failed
    build's among them). With ``previous`` (the configuration being served), a reload that
    would turn TLS on or off on a port is refused: that takes a restart."""
    if config is None:
        return None, diags
    if previous is not None:
        for key, port in (("tls", "data"), ("admin_tls", "admin")):
            before, after = getattr(previous.settings, key), getattr(config.settings, key)
            if (before is None) != (after is None):
                turned = "off" if after is None else "on"
                message = f"gateway.{key} turns TLS {turned} on the {port} port: restart the gateway for that"
                failed = Diagnostic(
                    "config.needs-restart", Severity.ERROR, message, Location(f"/gateway/{key}")
                )
                return None, [*diags, failed.with_source(str(path))]
    built = build(config, path)
    if isinstance(built, Diagnostic):
        return None, [*diags, built]
    return built, diags


def refuse(metrics: Metrics, reason: str, diags: list[Diagnostic], path: Path, keeping: str) -> None:
    """A reload refused: counted, logged (with what keeps serving) and its diagnostics printed."""
    metrics.inc("iamgate_config_reloads_total", (("result", "failed"),))
    log.error("reload (%s) refused: %s has errors; %s", reason, blamed(diags, path), keeping)
    report(diags)


class Watcher:
    """Polls the configuration file and the policy files it names (also those of a refused
    configuration, so that fixing the file it names reloads)."""

    def __init__(self, stamps: dict[str, Stamp]) -> None:
        self.seen = dict(stamps)

    def changed(self) -> bool:
        now = {name: _stamp(name) for name in self.seen}
        if now != self.seen:
            self.seen = now
            return True
        return False


def follow_store(
    link: StoreLink | None,
    on_change: Callable[[int], None],
    admin: AdminServer | None,
    config: Callable[[], GatewayConfig],
    usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]],
    options: ServeOptions,
) -> None:
    """Reload when the store changes (its URL may have changed with the configuration): the
    store's watcher thread hands each new generation to the event loop; and keep the management
    API on the current store."""
    if link is None:
        return
    loop = asyncio.get_running_loop()

    def changed(generation: int) -> None:  # on the store's watcher thread
        loop.call_soon_threadsafe(on_change, generation)

    link.follow(changed)
    _attach_management(admin, link, config, usage, options)


def _attach_management(
    admin: AdminServer | None,
    link: StoreLink | None,
    config: Callable[[], GatewayConfig],
    usage: Callable[[dict[str, str]], Awaitable[dict[str, Any]]],
    options: ServeOptions,
) -> None:
    """Serve the management API on the admin port while a store is configured and the
    management API is enabled (follows reloads: a new store URL, management turned on or off)."""
    if admin is None:
        return
    store = link.store if link is not None else None
    if store is None or not config().management.enabled:
        if admin.management is not None:
            log.info("management API off")
        admin.management = None
        return
    if admin.management is not None and admin.management.store is store:
        return
    context = GatewayContext(config=config, usage=usage, base_dir=options.config.parent)
    admin.management = ManagementApp(store, context, admin_host=options.admin_host)
    log.info("management API on the admin port (store %s)", mask(link.url or "") if link else "")
