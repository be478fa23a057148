#!/usr/bin/env python3
"""What the server's SSL object costs per request and response: ``ssl.SSLObject``'s Python
``read``/``write``/``pending`` against the C object's own (``iamgate.tls.contexts``'s
``_DirectSSLObject``), over memory BIOs on one TLS 1.3 connection (200-byte records): per
exchange the server reads the request (twice: data, then SSLWantReadError), asks ``pending`` and
writes the response, as uvloop's TLS transport does.

    python bench/sslobject_calls.py --count      # instructions per exchange, by callgrind (A/B)
    python bench/sslobject_calls.py --time       # µs per exchange, both alternated (noisy)

Counting runs each variant under ``valgrind --tool=callgrind`` with N and 2N exchanges and reports
the difference divided by N: set-up and handshake cancel out.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

from iamgate.tls.contexts import _DirectSSLObject  # what is measured (a private class)


def _pair(
    direct: bool,
) -> tuple[ssl.SSLObject, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO, ssl.MemoryBIO, ssl.MemoryBIO]:
    ca = trustme.CA()
    leaf = ca.issue_cert("bench.test")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server)
    if direct:
        server.sslobject_class = _DirectSSLObject
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_hostname="bench.test")
    for _ in range(10):
        for end in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return s, c, s_in, s_out, c_in, c_out


def run(direct: bool, n: int) -> float:
    s, c, s_in, s_out, c_in, c_out = _pair(direct)
    read, write, pending = s.read, s.write, s.pending
    payload = b"x" * 200
    start = time.perf_counter()
    for _ in range(n):
        c.write(payload)
        s_in.write(c_out.read())
        read(65536)
        pending()
        with contextlib.suppress(ssl.SSLWantReadError):
            read(65536)
        write(payload)
        c_in.write(s_out.read())
        c.read(65536)
    return (time.perf_counter() - start) / n * 1e6


def _instructions(variant: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        done = subprocess.run([*cmd, "--one", variant, str(n)], capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", action="store_true")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--one", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run(args.one[0] == "direct", int(args.one[1]))
        return
    if args.time:
        for i in range(5):
            wrapped, direct = run(False, 20 * args.n), run(True, 20 * args.n)
            print(f"round {i + 1}: ssl.SSLObject {wrapped:.2f} µs/exchange, direct {direct:.2f} µs")
    if args.count or not args.time:
        for variant in ("wrapped", "direct"):
            per = (_instructions(variant, 2 * args.n) - _instructions(variant, args.n)) / args.n
            print(f"{variant:8} {per:,.0f} instructions/exchange")


if __name__ == "__main__":
    main()
