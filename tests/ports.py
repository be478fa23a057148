"""Ports for servers a test starts.

A port found by binding to port 0 comes from the kernel's ephemeral range, the same range every
outgoing connection (a browser, a database client, the gateway's own backend pool) takes its
local port from. Between the moment the port is released and the moment the server binds it, a
connection made by anything on the machine can take it, and the server then fails with "Address
already in use" (seen in CI: a Chromium test lost its gateway's admin port this way).

So the ports handed out here come from below the ephemeral range, where the kernel never
assigns ports on its own: only another program asking for that exact port can collide, and a
per-process cursor keeps one test run from handing out the same port twice.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

HOST = "127.0.0.1"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_LOW = 20000
_HIGH = max(_LOW + 1000, min(_ephemeral_low(), 32768))
# Start each process somewhere else, so two test runs on one machine rarely walk the same ports.
_cursor = itertools.count(random.Random(os.getpid()).randrange(_HIGH - _LOW))


def free_port() -> int:
    """A loopback TCP port that is free now and that the kernel will not hand out by itself."""
    for _ in range(_HIGH - _LOW):
        port = _LOW + next(_cursor) % (_HIGH - _LOW)
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_LOW}-{_HIGH}")
