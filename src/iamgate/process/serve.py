"""``iamgate serve``: validate, bind, then run one worker in-process or a supervisor.

The configuration is validated and the listening socket and the admin port are bound once
(a bad configuration, or either port in use: exit 2 before anything starts). Then one
:class:`~iamgate.process.worker.Worker` serves in this process, or (``--workers N``) a
:class:`~iamgate.process.supervisor.Supervisor` starts N worker processes that inherit the one
listening socket. The process that owns the admin port (the only worker, or the supervisor)
answers ``/healthz``, ``/readyz`` and ``/metrics``; with workers it asks each over its control
socket and merges their metrics.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import resource
import socket
from collections.abc import Callable

from iamgate._compiled import state as compiled_state
from iamgate.observe.drain import install_process_log, to_stderr
from iamgate.process import reload, signals
from iamgate.process.options import ServeOptions
from iamgate.process.supervisor import Supervisor
from iamgate.process.worker import Worker
from iamgate.store.link import StoreLink

__all__ = ["ServeOptions", "serve"]

log = logging.getLogger("iamgate")


def serve(options: ServeOptions, *, on_ready: Callable[[], None] | None = None) -> int:
    """Run the gateway until drained. Returns the process exit status."""
    # to stderr through a drain: a stalled stderr reader drops lines, never stalls the loop
    install_process_log("%(asctime)s %(name)s %(levelname)s %(message)s")
    with signals.blocked():  # until the handlers are in place
        return _serve(options, on_ready)


def _serve(options: ServeOptions, on_ready: Callable[[], None] | None) -> int:
    link = StoreLink(options.store)
    try:
        return _serve_with(options, on_ready, link)
    finally:
        link.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket. No ``SO_REUSEPORT``: workers share this one socket, and a second
    gateway started on a port already served must fail, not silently share the traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def raise_file_limit() -> None:
    """Raise the soft open-file limit to the hard one (as Go's runtime and nginx's
    worker_rlimit_nofile do): every client and backend connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve_with(options: ServeOptions, on_ready: Callable[[], None] | None, link: StoreLink) -> int:
    server = _first_load(options, on_ready, link)
    if isinstance(server, int):
        return server
    if isinstance(server, Worker):
        signals.run(server.run())
        return 0
    try:
        signals.run(server.run())
    finally:
        server.close()
    return 0


def _first_load(
    options: ServeOptions, on_ready: Callable[[], None] | None, link: StoreLink
) -> Worker | Supervisor | int:
    """What serves (this process as the only worker, or the supervisor of several), or the exit
    status when nothing can. A function of its own so that what the first load read and built
    is freed once the server has what it keeps: as locals of the function that runs the server,
    they lived as long as the process (the first snapshot, and with it every API a redeploy
    later replaced)."""
    raise_file_limit()  # before the workers start: they inherit it
    config, diags, sources = reload.load(options.config, link=link, store=options.store)
    built, diags = reload.checked(config, diags, options.config)
    reload.report(diags)
    if config is None or built is None:
        to_stderr(f"iamgate: {reload.blamed(diags, options.config)} has errors; not starting\n")
        return 2
    try:
        sock = bind(options.host, options.port)
    except OSError as exc:
        to_stderr(f"iamgate: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}\n")
        return 2
    admin_sock = None
    if options.admin_port is not None:
        try:
            admin_sock = bind(options.admin_host, options.admin_port)
        except OSError as exc:
            sock.close()
            to_stderr(
                f"iamgate: cannot listen on {options.admin_host}:{options.admin_port} (--admin-port): "
                f"{exc.strerror or exc}\n"
            )
            return 2
    log.info(
        "listening on %s://%s:%d (%d worker(s), %d API(s)); request path: %s",
        "http" if config.settings.tls is None else "https",
        options.host,
        sock.getsockname()[1],
        options.workers,
        len(config.apis),
        compiled_state(),
    )
    if config.settings.tls is None and not _loopback(options.host):
        log.warning(
            "the data port speaks plain HTTP on %s (no gateway.tls): put TLS in front of it, or "
            "configure gateway.tls (docs/tls.md)",
            options.host,
        )
    if on_ready is not None:
        on_ready()
    if options.workers <= 1:
        return Worker(
            options, built, sock, admin_sock=admin_sock, control=None, stamps=sources.stamps, link=link
        )
    return Supervisor(options, config, sources, sock, admin_sock, link)
