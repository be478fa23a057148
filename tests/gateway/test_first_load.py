"""What the first load of a serving process reads is not pinned for the process's life.

A worker's first configuration (the store's state as the supervisor sent it, the configuration,
its snapshot) once stayed referenced from the frame that runs the event loop, so after redeploys
the process kept every API the first configuration had: with 1,000 APIs, workers' RSS crept up
with every redeploy of another API (docs/benchmarks.md, "Scale (issue 19)"). The event loop is
replaced here (the seam is ``signals.run``) by a look at the frames below it, which live as long
as the server does: none may hold the first load's objects."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iamgate.config.model import GatewayConfig
from iamgate.config.snapshot import Snapshot
from iamgate.process import control, serve, worker
from iamgate.process.options import ServeOptions
from iamgate.throttle.memory import SharedMemoryBackend
from tests.gateway.conftest import ROOT_DIR
from tests.ports import free_port

PINNED = (Snapshot, GatewayConfig)


def _pinned_by_frames() -> list[str]:
    """The locals of the calling frames that hold a snapshot, a configuration, or the files
    read for them (what the running server keeps is reached through it, not held here)."""
    found = []
    frame = sys._getframe(2)
    while frame is not None:
        if "/iamgate/" not in frame.f_code.co_filename:  # the test's and pytest's frames
            frame = frame.f_back
            continue
        for name, value in frame.f_locals.items():
            files = isinstance(value, dict) and any(isinstance(v, bytes) for v in value.values())
            if (
                isinstance(value, PINNED)
                or files
                or (isinstance(value, tuple) and any(isinstance(v, dict) for v in value))
            ):
                found.append(f"{frame.f_code.co_name}: {name} ({type(value).__name__})")
        frame = frame.f_back
    return found


def _instead_of_the_loop(seen: list[list[str]]) -> Callable[[Any], None]:
    def run(main: Any) -> None:
        seen.append(_pinned_by_frames())
        server = main.cr_frame.f_locals["self"]  # the Worker or Supervisor whose run() it is
        main.close()  # never started
        for sock in (server.sock, server.admin_sock, getattr(server, "control", None)):
            if sock is not None:
                sock.close()

    return run


def _quickstart(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text((ROOT_DIR / "examples" / "quickstart.yaml").read_text())
    return path


def test_a_worker_keeps_nothing_of_its_first_load_outside_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _quickstart(tmp_path)
    listener = socket.create_server(("127.0.0.1", free_port()))
    supervisor_end, worker_end = socket.socketpair()
    request = control.load_request(1, {str(config): config.read_bytes()})
    supervisor_end.sendall(control.encode({**request, "id": 1}))
    state = tmp_path / "throttle.state"
    SharedMemoryBackend(str(state), create=True).close()
    seen: list[list[str]] = []
    monkeypatch.setattr(worker.signals, "run", _instead_of_the_loop(seen))
    argv = [
        "--config", str(config),
        "--listen-fd", str(listener.detach()),  # the worker's from here on
        "--control-fd", str(worker_end.detach()),
        "--drain-timeout", "1",
        "--throttle-state", str(state),
    ]  # fmt: skip
    try:
        assert worker.main(argv) == 0
    finally:
        supervisor_end.close()
    assert seen == [[]]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_keeps_nothing_of_its_first_load_outside_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(serve.signals, "run", _instead_of_the_loop(seen))
    options = ServeOptions(_quickstart(tmp_path), port=free_port(), admin_port=None, workers=workers)
    assert serve.serve(options) == 0
    assert seen == [[]]
