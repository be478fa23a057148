#!/usr/bin/env python3
"""Socket-level proxy benchmark: iamgate side by side with nginx and a minimal Python proxy.

Every row is a server under test (SUT) that answers ``GET <path>`` on 127.0.0.1 by proxying it
to one shared backend (nginx, one worker, answering ``200 ok`` on any path); wrk loads it with
``-t1 -c64`` and a Lua script (bench/wrk_report.lua) that prints one parseable line. Rows run
in interleaved rounds (round 1: every row once, then round 2 ...) so that a machine that speeds
up or slows down during the run affects every row alike, and every ratio is taken between rows
of the same round. Only ratios within one run are meant to be compared: on a shared 2-core VM
two runs half an hour apart differ by a third.

    python bench/proxy_bench.py --list                      # the built-in rows and their commands
    python bench/proxy_bench.py                             # default rows, 5 pinned rounds of 10 s
    python bench/proxy_bench.py -r 1 -d 3 -w 1 --rows direct,nginx-proxy,floor,iamgate-small  # smoke
    python bench/proxy_bench.py -r 8 -d 6 --rows nginx-proxy,iamgate-small,base-small --add \\
      "base-small|/tmp/old/bin/python {BENCH}/gateway_row.py {PORT} {UPSTREAM} small --log off --run {RUN}"

The last one adds an older build, installed in its own venv (/tmp/old), as a row serving the
same config: gateway_row.py runs the ``iamgate`` next to the interpreter that runs it.

TLS (docs/benchmarks.md, "TLS (issue 16)"): rows with a ``tls`` part in their name
(``nginx-tls-proxy``, ``iamgate-tls-small``, ``floor-tls``) are loaded over https with a
certificate made for the run (run/tls/: ECDSA P-256, localhost and 127.0.0.1), and compared with
their plain twins (the name without ``tls``) and with ``nginx-tls-proxy``. ``--load`` chooses how
wrk uses connections, each load run in every round: ``keepalive``; ``close`` (``Connection:
close``: a new connection per request, so req/s is also connections, and handshakes, per second;
wrk then resumes TLS sessions); ``close-full`` (the same, every handshake a full one, by
bench/wrk_tls_shim.c preloaded into wrk, which the harness builds with ``cc``):

    python bench/proxy_bench.py -r 3 -d 8 -w 2 -l keepalive,close,close-full \\
      --rows nginx-proxy,nginx-tls-proxy,iamgate-small,iamgate-tls-small

Rows with an ``iam`` part (``iamgate-small-iam``, ``iamgate-small-log-iam``) serve an ``AWS_IAM``
route: the readiness check and wrk send ``GET <path>`` signed with SigV4 by botocore (the same
signature for every request of one wrk run, made just before it), as a same-account user.

Needs wrk and nginx on PATH (Debian: ``apt-get install wrk nginx-light``), and redis-server for
the ``*-thr-redis`` rows. Run it from the venv iamgate is installed in (the iamgate rows use this
interpreter's ``iamgate``) or give ``--python``.

One measurement: start the row's command in a new session (its own process group, pinned to
cpu1 in pinned mode), wait until the path answers ``200 ok``, warm up with wrk for
``-w`` s, read the CPU counters, run wrk for ``-d`` s, read them again, stop the process group
(SIGTERM, SIGKILL after 5 s). CPU counters: the utime+stime of every process in the SUT's and the
backend's process groups (/proc/<pid>/stat) and each core's busy and steal ticks (/proc/stat), so
the summary shows the SUT's CPU time per request, the least noisy figure, and whether the load
generator's core was saturated.

Modes: ``pinned`` (default): the SUT alone on cpu1, wrk, the backend and Redis on cpu0; a Python
SUT is then the bottleneck, and nginx rows are bounded by cpu0 (their figures are lower bounds).
``shared``: nothing pinned (rows named ``*-w2``, with two workers, make sense only here).

Outputs in ``--out`` (default /tmp/iamgate-bench/proxy-<timestamp>/): results.tsv (one line per
measurement), summary.md (per mode and load: medians, ranges, per-round ratios to ``direct`` and
to ``nginx-proxy``, or ``nginx-tls-proxy`` for a TLS row; for TLS rows, the TLS ratio against the
plain ratio round by round), env.txt (versions and parameters), logs/ (each server's output and
wrk's), run/ (the configurations and the TLS material).
Everything listens on 127.0.0.1; the harness stops only the process groups it started.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import http.client
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway_row import sign_get

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "wrk_report.lua"
MAX_DURATION = 15  # seconds per wrk run: every load run is bounded

BACKEND_CONF = """\
# the benchmark backend: 200 "ok" on any path
worker_processes 1;
daemon off;
pid {run}/nginx-{port}.pid;
error_log {run}/nginx-{port}.err warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
{temp}
    keepalive_requests 1000000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "ok"; }}
    }}
}}
"""

PROXY_CONF = """\
# the nginx reverse-proxy row: keep-alive connections to the backend, only 127.0.0.1 allowed
worker_processes {workers};
daemon off;
pid {run}/nginx-{port}.pid;
error_log {run}/nginx-{port}.err warn;
events {{ worker_connections 8192; }}
http {{
{log}
{temp}
    keepalive_requests 1000000000;
    keepalive_timeout 120s;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 256;
        keepalive_requests 1000000000;
    }}
    server {{
        listen 127.0.0.1:{port}{ssl} backlog=4096;
{tls}
        location / {{
            allow 127.0.0.1;
            deny all;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""

NO_LOG = "    access_log off;"
# the TLS rows' server: nginx 1.22's default protocols leave out TLS 1.3; session tickets and the
# session cache are nginx's defaults (tickets on, `ssl_session_cache none`); ciphers its default
TLS_SERVER = """\
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {tls_dir}/chain.pem;
        ssl_certificate_key {tls_dir}/key.pem;"""
JSON_LOG = """\
    log_format lines escape=json '{{"requestTime":"$time_iso8601","ip":"$remote_addr",'
                                 '"httpMethod":"$request_method","path":"$uri","status":$status,'
                                 '"responseLength":$body_bytes_sent,"latency":$request_time}}';
    access_log {run}/nginx-{port}-access.log lines;"""


def temp_paths(run: Path, port: int) -> str:
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    return "\n".join(f"    {k}_temp_path {run}/nginx-{port}-{k};" for k in kinds)


def gateway(policy: str, *flags: str) -> str:
    return f"{{PY}} {{BENCH}}/gateway_row.py {{PORT}} {{UPSTREAM}} {policy} {' '.join(flags)} --run {{RUN}}"


# name -> command; placeholders: {PORT} {UPSTREAM} {RUN} {PY} {BENCH} {ROOT} {REDIS} {TLS};
# a row whose name has a part "tls" (nginx-tls-proxy, floor-tls) speaks TLS: it is loaded over
# https, its server finds chain.pem and key.pem in {TLS}, and its plain twin is the same name
# without that part (nginx-proxy, floor)
BUILTIN: dict[str, str] = {
    "direct": "nginx -c {RUN}/backend-{PORT}.conf",  # the backend itself, no proxy hop
    "nginx-proxy": "nginx -c {RUN}/proxy-{PORT}.conf",
    "nginx-proxy-log": "nginx -c {RUN}/proxy-log-{PORT}.conf",  # one JSON line per request to a file
    "nginx-proxy-w2": "nginx -c {RUN}/proxy-w2-{PORT}.conf",
    "nginx-proxy-log-w2": "nginx -c {RUN}/proxy-log-w2-{PORT}.conf",  # 2 workers, each logging
    "nginx-tls-proxy": "nginx -c {RUN}/proxy-tls-{PORT}.conf",  # nginx-proxy terminating TLS
    "floor": "{PY} {BENCH}/floor_proxy.py {PORT} {UPSTREAM}",
    "floor-tls": "{PY} {BENCH}/floor_proxy.py {PORT} {UPSTREAM} --tls {TLS}",
    "iamgate-allow-all": gateway("allow-all", "--log off"),
    "iamgate-small": gateway("small", "--log off"),
    "iamgate-large": gateway("large", "--log off"),
    "iamgate-small-log": gateway("small", "--log on"),
    "iamgate-small-pure": "env IAMGATE_PURE_PYTHON=1 " + gateway("small", "--log off"),
    "iamgate-small-thr-mem": gateway("small", "--log off", "--throttle memory"),
    "iamgate-small-thr-redis": "env IAMGATE_BENCH_REDIS={REDIS} "
    + gateway("small", "--log off", "--throttle redis"),
    "iamgate-small-w2": gateway("small", "--log off", "--workers 2"),
    "iamgate-small-log-w2": gateway("small", "--log on", "--workers 2"),
    "iamgate-tls-small": gateway("small", "--log off", "--tls {TLS}"),
    # AWS_IAM: every request signed with SigV4 (botocore, signed again for every wrk run)
    "iamgate-small-iam": gateway("small", "--log off", "--auth iam"),
    "iamgate-small-log-iam": gateway("small", "--log on", "--auth iam"),
}
DEFAULT_ROWS = {
    "pinned": "direct,nginx-proxy,floor,iamgate-allow-all,iamgate-small,iamgate-large,iamgate-small-log",
    "shared": "direct,nginx-proxy,nginx-proxy-w2,floor,iamgate-small,iamgate-small-w2",
}
LOADS = {  # --load: how wrk uses its connections
    "keepalive": "keep-alive connections",
    "close": "a new connection per request (`Connection: close`); wrk resumes TLS sessions",
    "close-full": "a new connection per request, every TLS handshake a full one",
}
COLUMNS = [
    *("mode", "load", "round", "row", "rps", "p50_us", "p90_us", "p99_us", "max_us", "requests"),
    *("errors", "sut_cpu_s", "backend_cpu_s", "cpu0_busy", "cpu1_busy", "steal", "wall_s"),
    *("conns", "tls_closed", "tls_resumed", "tls"),
]


@dataclass
class Settings:
    mode: str
    rounds: int
    duration: int
    warmup: int
    connections: int
    threads: int
    path: str
    python: str
    run: Path
    logs: Path
    backend_port: int
    base_port: int
    redis_port: int
    sut_cpus: str | None
    load_cpus: str | None
    tls_dir: Path
    shim: Path | None  # wrk's LD_PRELOAD shim (bench/wrk_tls_shim.c), built when a TLS row runs


def is_tls(row: str) -> bool:
    return "tls" in row.split("-")


def is_iam(row: str) -> bool:
    """A row whose route is ``AWS_IAM``: its requests carry a SigV4 signature."""
    return "iam" in row.split("-")


def request_headers(row: str, port: int, path: str) -> dict[str, str]:
    """What a request to the row carries besides what wrk and http.client send: for an iam row,
    botocore's signature of ``GET path`` made now (valid for the gateway's 5-minute skew)."""
    if not is_iam(row):
        return {}
    scheme = "https" if is_tls(row) else "http"
    return sign_get(f"{scheme}://127.0.0.1:{port}{path}")


def plain_twin(row: str) -> str:
    return "-".join(part for part in row.split("-") if part != "tls")


# --- processes ------------------------------------------------------------------------------

STARTED: list[int] = []  # process-group ids this harness started and has not stopped yet


def start(command: str, log: Path, cpus: str | None) -> int:
    """Start a command in a new session (pgid = pid), optionally pinned; returns the pgid."""
    argv = ["bash", "-c", f"exec {command}"]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    STARTED.append(proc.pid)
    return proc.pid


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pgid: int) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 5 s, reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while group_alive(pgid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pgid, os.WNOHANG)
            time.sleep(0.05)
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, 0)
    if pgid in STARTED:
        STARTED.remove(pgid)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port_free(port: int, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while port_in_use(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def client_context(tls_dir: Path) -> ssl.SSLContext:
    """The readiness check's TLS client: trusts only the run's CA, checks the name 127.0.0.1."""
    return ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))


def answers_ok(
    port: int, path: str, tls: ssl.SSLContext | None = None, headers: dict[str, str] | None = None
) -> str | None:
    """None unless ``GET path`` (with ``headers``) answers ``200 ok``; then "-" or, over TLS, the
    negotiated protocol and cipher suite."""
    try:
        if tls is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        else:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=tls)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        ok = response.status == 200 and response.read() == b"ok"
        sock = conn.sock
        negotiated = (
            f"{sock.version()}/{sock.cipher()[0]}"
            if isinstance(sock, ssl.SSLSocket) and sock.cipher() is not None
            else "-"
        )
        conn.close()
    except (OSError, http.client.HTTPException):
        return None
    return negotiated if ok else None


def wait_ready(
    port: int,
    path: str,
    pgid: int,
    seconds: float = 15,
    tls: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return None
        negotiated = answers_ok(port, path, tls, headers)
        if negotiated is not None:
            return negotiated
        time.sleep(0.1)
    return None


# --- TLS material -------------------------------------------------------------------------


def make_certificate(tls_dir: Path) -> None:
    """A CA and a server certificate for localhost and 127.0.0.1 (ECDSA P-256, valid for 30
    days: iamgate warns under 14), made per run: chain.pem (the leaf), key.pem (its key,
    PKCS#8), ca.pem (the CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def certificate(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name | None,
        signer: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("iamgate bench CA", ca_key, None, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate("localhost", key, ca.subject, ca_key)
    tls_dir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (tls_dir / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tls_dir / "chain.pem").write_bytes(leaf.public_bytes(pem))
    key_path = tls_dir / "key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def build_shim(run: Path) -> Path | None:
    """bench/wrk_tls_shim.c built into the run directory; None (with a warning) without a compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    out = run / "wrk_tls_shim.so"
    if cc is not None:
        argv = [cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(BENCH / "wrk_tls_shim.c"), "-ldl"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return out
        print(f"building the wrk shim failed: {done.stderr.strip()[:300]}", file=sys.stderr)
    else:
        print("no C compiler: no TLS resumption counts and no close-full load", file=sys.stderr)
    return None


# --- CPU counters ---------------------------------------------------------------------------


def group_ticks(pgids: list[int]) -> list[int]:
    """utime + stime (clock ticks) of every live process in each process group."""
    ticks = dict.fromkeys(pgids, 0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # fields from the state on (field 3)
        pgrp = int(fields[2])
        if pgrp in ticks:
            ticks[pgrp] += int(fields[11]) + int(fields[12])
    return [ticks[p] for p in pgids]


def core_ticks() -> dict[str, tuple[int, int, int]]:
    """Per core: (busy, total, steal) ticks; busy leaves out idle, iowait and steal."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in values[:8]]
            total = sum(v)
            out[name] = (total - v[3] - v[4] - v[7], total, v[7])
    return out


def passive_opens() -> int:
    """TCP connections accepted on this host so far (/proc/net/snmp, Tcp: PassiveOpens): the
    harness counts the connections wrk opens with it (the servers' backend connections are kept
    alive, so they hardly add any)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Tcp:")]
    return int(lines[1][lines[0].index("PassiveOpens")])


@dataclass
class Sample:
    groups: list[int]
    cores: dict[str, tuple[int, int, int]]
    at: float
    accepted: int


def sample(pgids: list[int]) -> Sample:
    return Sample(group_ticks(pgids), core_ticks(), time.monotonic(), passive_opens())


# --- one measurement ------------------------------------------------------------------------


def write_nginx_configs(s: Settings, port: int) -> None:
    common = {"run": s.run, "port": port, "temp": temp_paths(s.run, port), "backend": s.backend_port}
    plain = {"ssl": "", "tls": "", **common}
    (s.run / f"backend-{port}.conf").write_text(BACKEND_CONF.format(**common))
    (s.run / f"proxy-{port}.conf").write_text(PROXY_CONF.format(workers=1, log=NO_LOG, **plain))
    (s.run / f"proxy-w2-{port}.conf").write_text(PROXY_CONF.format(workers=2, log=NO_LOG, **plain))
    log = JSON_LOG.format(run=s.run, port=port)
    (s.run / f"proxy-log-{port}.conf").write_text(PROXY_CONF.format(workers=1, log=log, **plain))
    (s.run / f"proxy-log-w2-{port}.conf").write_text(PROXY_CONF.format(workers=2, log=log, **plain))
    tls = TLS_SERVER.format(tls_dir=s.tls_dir)
    (s.run / f"proxy-tls-{port}.conf").write_text(
        PROXY_CONF.format(workers=1, log=NO_LOG, ssl=" ssl", tls=tls, **common)
    )


def fill(command: str, s: Settings, port: int) -> str:
    values = {
        "PORT": str(port),
        "UPSTREAM": f"http://127.0.0.1:{s.backend_port}",
        "RUN": str(s.run),
        "PY": shlex.quote(s.python),
        "BENCH": str(BENCH),
        "ROOT": str(ROOT),
        "REDIS": f"redis://127.0.0.1:{s.redis_port}/0",
        "TLS": str(s.tls_dir),
    }
    return re.sub(r"\{([A-Z]+)\}", lambda m: values.get(m.group(1), m.group(0)), command)


def wrk_argv(s: Settings, load: str, row: str, port: int, seconds: int) -> list[str]:
    argv = ["wrk", f"-t{s.threads}", f"-c{s.connections}", f"-d{seconds}s", "--latency", "-s", str(LUA)]
    for name, value in request_headers(row, port, s.path).items():
        argv += ["-H", f"{name}: {value}"]
    if load != "keepalive":
        # wrk reconnects after a response that says `Connection: close`, which servers send back
        argv += ["-H", "Connection: close"]
    argv.append(f"{'https' if is_tls(row) else 'http'}://127.0.0.1:{port}{s.path}")
    return ["taskset", "-c", s.load_cpus, *argv] if s.load_cpus is not None else argv


def wrk_env(s: Settings, load: str, row: str) -> dict[str, str] | None:
    """wrk's environment: the shim preloaded for a TLS row (counting resumed handshakes; with
    the close-full load, making every handshake a full one)."""
    if s.shim is None or not is_tls(row):
        return None
    return {**os.environ, "LD_PRELOAD": str(s.shim), "WRK_TLS_FRESH": "1" if load == "close-full" else "0"}


def measure(
    s: Settings, load: str, rnd: int, row: str, command: str, port: int, backend_pg: int
) -> dict[str, str] | None:
    tag = f"[{s.mode} {load} r{rnd}] {row}"
    if not wait_port_free(port):
        print(f"{tag}: port {port} is busy, skipped", file=sys.stderr)
        return None
    write_nginx_configs(s, port)
    name = f"{s.mode}-{load}-r{rnd}-{row}"
    log = s.logs / f"{name}.log"
    pg = start(fill(command, s, port), log, s.sut_cpus)
    env = wrk_env(s, load, row)
    try:
        negotiated = wait_ready(
            port,
            s.path,
            pg,
            tls=client_context(s.tls_dir) if is_tls(row) else None,
            headers=request_headers(row, port, s.path),
        )
        if negotiated is None:
            print(f"{tag}: never answered 200 ok on {s.path} (see {log})", file=sys.stderr)
            return None
        warm = wrk_argv(s, load, row, port, s.warmup)
        subprocess.run(warm, capture_output=True, check=False, env=env)
        before = sample([pg, backend_pg])
        argv = wrk_argv(s, load, row, port, s.duration)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        after = sample([pg, backend_pg])
    finally:
        stop(pg)
    (s.logs / f"{name}.wrk").write_text(shlex.join(argv) + "\n" + done.stdout + done.stderr)
    found = re.search(r"^BENCH (.*)$", done.stdout, re.MULTILINE)
    shim = re.search(r"^TLSSHIM closed=(\d+) resumed=(\d+)", done.stderr, re.MULTILINE)
    if found is None:
        print(
            f"{tag}: wrk gave no result (exit {done.returncode}): {done.stderr.strip()[:200]}",
            file=sys.stderr,
        )
        return None
    kv = dict(item.split("=", 1) for item in found.group(1).split())
    hz = os.sysconf("SC_CLK_TCK")
    busy = {}
    steal_ticks = total_ticks = 0
    for core, (b1, t1, s1) in after.cores.items():
        b0, t0, s0 = before.cores.get(core, (b1, t1, s1))
        busy[core] = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        steal_ticks += s1 - s0
        total_ticks += t1 - t0
    result = {
        "mode": s.mode,
        "load": load,
        "round": str(rnd),
        "row": row,
        "rps": kv["rps"],
        "p50_us": kv["p50_us"],
        "p90_us": kv["p90_us"],
        "p99_us": kv["p99_us"],
        "max_us": kv["max_us"],
        "requests": kv["requests"],
        "errors": str(sum(int(v) for k, v in kv.items() if k.startswith("err_"))),
        "sut_cpu_s": f"{(after.groups[0] - before.groups[0]) / hz:.2f}",
        "backend_cpu_s": f"{(after.groups[1] - before.groups[1]) / hz:.2f}",
        "cpu0_busy": f"{busy.get('cpu0', 0.0):.3f}",
        "cpu1_busy": f"{busy.get('cpu1', 0.0):.3f}",
        "steal": f"{steal_ticks / total_ticks if total_ticks else 0.0:.3f}",
        "wall_s": f"{after.at - before.at:.2f}",
        "conns": str(after.accepted - before.accepted),
        "tls_closed": shim.group(1) if shim else "-",
        "tls_resumed": shim.group(2) if shim else "-",
        "tls": negotiated,
    }
    requests = max(1, int(result["requests"]))
    cpu_us = float(result["sut_cpu_s"]) * 1e6 / requests
    print(
        f"{tag:<44} {float(result['rps']):>9,.0f} req/s  p50 {int(result['p50_us']) / 1000:6.2f} ms  "
        f"p99 {int(result['p99_us']) / 1000:6.2f} ms  errors {result['errors']}  "
        f"SUT {cpu_us:5.1f} µs CPU/request  {int(result['conns']) / requests:.2f} conns/request"
        + (f"  resumed {resumed_share(result)}" if shim else ""),
        flush=True,
    )
    return result


# --- summary --------------------------------------------------------------------------------


def ratio_text(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def cpu_per_request(r: dict[str, str]) -> float:
    """The server's CPU time per request, µs."""
    return float(r["sut_cpu_s"]) * 1e6 / max(1, int(r["requests"]))


def resumed_share(*runs: dict[str, str]) -> str:
    """The share of wrk's TLS connections that resumed a session (from the shim), or "-"."""
    closed = sum(int(r["tls_closed"]) for r in runs if r["tls_closed"] != "-")
    resumed = sum(int(r["tls_resumed"]) for r in runs if r["tls_resumed"] != "-")
    return f"{resumed / closed:.0%}" if closed else "-"


def reference(row: str) -> str:
    """The nginx row a row is compared with: the TLS one for a TLS row."""
    return "nginx-tls-proxy" if is_tls(row) else "nginx-proxy"


def tls_tables(mine: list[dict[str, str]], names: list[str]) -> list[str]:
    """TLS rows against their plain twins, and each TLS ratio to nginx against the plain ratio
    of the same round (issue 16's target: TLS costs iamgate no more, relatively, than nginx)."""
    by = {(r["round"], r["row"]): r for r in mine}
    rounds = list(dict.fromkeys(r["round"] for r in mine))
    pairs = [(n, plain_twin(n)) for n in names if is_tls(n) and plain_twin(n) in names]
    if not pairs:
        return []
    out = [
        "TLS against plain, row by row (each round's req/s of the TLS row over its plain twin's; "
        "CPU µs per request: medians):",
        "",
        "| TLS row | plain twin | TLS ÷ plain req/s | CPU µs/request plain | TLS | TLS adds |",
        "|---|---|---|---|---|---|",
    ]
    for row, twin in pairs:
        both = [(by[(n, row)], by[(n, twin)]) for n in rounds if (n, row) in by and (n, twin) in by]
        plain_cpu = statistics.median(cpu_per_request(p) for _, p in both) if both else 0.0
        tls_cpu = statistics.median(cpu_per_request(t) for t, _ in both) if both else 0.0
        out.append(
            f"| {row} | {twin} | {ratio_text([float(t['rps']) / float(p['rps']) for t, p in both])} "
            f"| {plain_cpu:.1f} | {tls_cpu:.1f} | {tls_cpu - plain_cpu:+.1f} |"
        )
    out.append("")
    refs = ("nginx-proxy", "nginx-tls-proxy")
    for row, twin in pairs:
        if row in refs or not all(ref in names for ref in refs):
            continue
        out += [
            f"`{row}` against nginx, round by round: the plain ratio ({twin} ÷ nginx-proxy) and the TLS "
            f"ratio ({row} ÷ nginx-tls-proxy), by req/s and by CPU per request (nginx's µs ÷ the row's):",
            "",
            "| round | req/s: plain ratio | TLS ratio | TLS ÷ plain "
            "| CPU: plain ratio | TLS ratio | TLS ÷ plain |",
            "|---|---|---|---|---|---|---|",
        ]
        columns: list[list[float]] = [[] for _ in range(6)]
        for n in rounds:
            got = [by.get((n, name)) for name in (row, twin, *refs)]
            if any(r is None for r in got):
                continue
            t, p, ngx, ngx_tls = (r for r in got if r is not None)
            plain = float(p["rps"]) / float(ngx["rps"])
            tls = float(t["rps"]) / float(ngx_tls["rps"])
            cpu_plain = cpu_per_request(ngx) / cpu_per_request(p)
            cpu_tls = cpu_per_request(ngx_tls) / cpu_per_request(t)
            values = (plain, tls, tls / plain, cpu_plain, cpu_tls, cpu_tls / cpu_plain)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            out.append(f"| {n} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
        if columns[0]:
            out.append("| median | " + " | ".join(f"**{statistics.median(c):.3f}**" for c in columns) + " |")
        out.append("")
    return out


def summarize(rows: list[dict[str, str]]) -> str:
    out = []
    for mode, load in dict.fromkeys((r["mode"], r["load"]) for r in rows):
        mine = [r for r in rows if r["mode"] == mode and r["load"] == load]
        names = list(dict.fromkeys(r["row"] for r in mine))
        rps_of = {(r["round"], r["row"]): float(r["rps"]) for r in mine}
        where = {
            "pinned": "the server under test alone on cpu1; wrk, the backend and Redis on cpu0",
            "shared": "nothing pinned",
        }.get(mode, mode)
        out += [
            f"### mode `{mode}` ({where}), load `{load}` ({LOADS.get(load, load)})",
            "",
            "| row | rounds | req/s median | min-max | spread | p50 ms | p99 ms | errors | SUT cores "
            "| SUT CPU µs/request | cpu0/cpu1 busy | steal (max) | new conns/request | TLS resumed "
            "| × direct | × nginx |",
            "|" + "---|" * 16,
        ]
        for name in names:
            runs = [r for r in mine if r["row"] == name]
            rps = [float(r["rps"]) for r in runs]
            median = statistics.median(rps)
            p50 = statistics.median(int(r["p50_us"]) for r in runs) / 1000
            p99 = statistics.median(int(r["p99_us"]) for r in runs) / 1000
            cores = statistics.median(float(r["sut_cpu_s"]) / float(r["wall_s"]) for r in runs)
            per_request = statistics.median(cpu_per_request(r) for r in runs)
            cpu0 = statistics.median(float(r["cpu0_busy"]) for r in runs)
            cpu1 = statistics.median(float(r["cpu1_busy"]) for r in runs)
            conns = statistics.median(int(r["conns"]) / max(1, int(r["requests"])) for r in runs)
            ratios = {}
            for ref in ("direct", reference(name)):
                per_round = [
                    float(r["rps"]) / rps_of[(r["round"], ref)] for r in runs if rps_of.get((r["round"], ref))
                ]
                ratios[ref] = ratio_text(per_round)
            out.append(
                f"| {name} | {len(runs)} | {median:,.0f} | {min(rps):,.0f}-{max(rps):,.0f} "
                f"| {(max(rps) - min(rps)) / median:.0%} | {p50:.2f} | {p99:.2f} "
                f"| {sum(int(r['errors']) for r in runs)} | {cores:.2f} | {per_request:.1f} "
                f"| {cpu0:.0%}/{cpu1:.0%} | {max(float(r['steal']) for r in runs):.1%} "
                f"| {conns:.2f} | {resumed_share(*runs)} "
                f"| {ratios['direct']} | {ratios[reference(name)]} |"
            )
        out.append("")
        negotiated = sorted({r["tls"] for r in mine if r["tls"] != "-"})
        if negotiated:
            out += [f"TLS as the readiness check negotiated it: {', '.join(negotiated)}", ""]
        out += tls_tables(mine, names)
    out.append(
        "Medians over the rounds. spread = (max - min) / median of req/s. Ratios: each round's req/s "
        "divided by the reference row's in the same round, then their median (min-max); × nginx is "
        "× nginx-proxy, and for a TLS row × nginx-tls-proxy. SUT cores: "
        "CPU time of the server's process group over the wrk run's wall time; µs/request: that CPU "
        "time per request. Busy shares leave out steal (time the hypervisor gave to other guests). "
        "new conns/request: TCP connections the host accepted during the run (PassiveOpens) per "
        "request, about 1.00 when every request has its own connection (then req/s is connections, "
        "and for a TLS row handshakes, per second). TLS resumed: the share of wrk's TLS connections "
        "that resumed a session (bench/wrk_tls_shim.c)."
    )
    return "\n".join(out) + "\n"


# --- main -----------------------------------------------------------------------------------


def environment(s: Settings, loads: list[str], rows: list[str], commands: dict[str, str]) -> str:
    def run(*argv: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return (
            (done.stdout + done.stderr).strip().splitlines()[0]
            if (done.stdout + done.stderr).strip()
            else "?"
        )

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?"
    )
    lines = [
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"host: {' '.join(os.uname()[i] for i in (0, 2, 4))}; {os.cpu_count()} cpus; {model}",
        f"nginx: {run('nginx', '-v')}",
        f"wrk: {run('wrk', '-v')}",
        f"python: {run(s.python, '-VV')}",
        f"iamgate: git {run('git', '-C', str(ROOT), 'describe', '--always', '--dirty')}",
        f"openssl: {run('openssl', 'version')}; wrk shim: {s.shim or '-'}",
        f"params: mode={s.mode} loads={','.join(loads)} rounds={s.rounds} duration={s.duration}s "
        f"warmup={s.warmup}s "
        f"connections={s.connections} threads={s.threads} path={s.path} sut_cpus={s.sut_cpus} "
        f"load_cpus={s.load_cpus}",
        "rows:",
        *(f"  {r}: {commands[r]}" for r in rows),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--mode", choices=("pinned", "shared"), default="pinned")
    ap.add_argument(
        "-l",
        "--load",
        default="keepalive",
        help=f"comma-separated loads, each run in every round: {', '.join(LOADS)} (default keepalive)",
    )
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument(
        "-d", "--duration", type=int, default=10, help=f"seconds of each measured run (<= {MAX_DURATION})"
    )
    ap.add_argument("-w", "--warmup", type=int, default=2, help="seconds of wrk before each measured run")
    ap.add_argument("-c", "--connections", type=int, default=64)
    ap.add_argument("-t", "--threads", type=int, default=1)
    ap.add_argument(
        "-p", "--path", default="/prod/pets/123", help="the request path (the nginx rows answer any)"
    )
    ap.add_argument("--rows", help="comma-separated rows, in this order (default: the mode's set)")
    ap.add_argument(
        "--add", action="append", default=[], metavar="NAME|COMMAND", help="an extra row (repeatable)"
    )
    ap.add_argument("--python", default=sys.executable, help="interpreter of the Python rows")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--backend-port", type=int, default=18080)
    ap.add_argument("--base-port", type=int, default=18100, help="row N listens on base + N")
    ap.add_argument("--redis-port", type=int, default=6391, help="the private redis-server of the Redis rows")
    ap.add_argument("--list", action="store_true", help="print the built-in rows and exit")
    args = ap.parse_args()

    commands = dict(BUILTIN)
    for spec in args.add:
        name, sep, command = spec.partition("|")
        if not (sep and name and command):
            ap.error(f"--add wants NAME|COMMAND, got {spec!r}")
        commands[name] = command
    if args.list:
        for name, command in commands.items():
            print(f"{name:<26} {command}")
        return 0
    rows = (args.rows or DEFAULT_ROWS[args.mode]).split(",")
    unknown = [r for r in rows if r not in commands]
    if unknown:
        ap.error(f"unknown rows {unknown} (see --list)")
    missing = [tool for tool in ("wrk", "nginx", "taskset") if shutil.which(tool) is None]
    if any("redis" in r for r in rows) and shutil.which("redis-server") is None:
        missing.append("redis-server")
    if missing:
        print(f"missing on PATH: {', '.join(missing)}", file=sys.stderr)
        return 2
    loads = args.load.split(",")
    if any(load not in LOADS for load in loads):
        ap.error(f"--load wants some of {', '.join(LOADS)}, got {args.load!r}")
    if args.duration > MAX_DURATION:
        print(f"duration capped at {MAX_DURATION} s", file=sys.stderr)
        args.duration = MAX_DURATION

    out: Path = args.out or Path("/tmp/iamgate-bench") / f"proxy-{dt.datetime.now():%Y%m%d-%H%M%S}"
    pinned = args.mode == "pinned"
    s = Settings(
        mode=args.mode,
        rounds=args.rounds,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        path=args.path,
        python=args.python,
        run=out / "run",
        logs=out / "logs",
        backend_port=args.backend_port,
        base_port=args.base_port,
        redis_port=args.redis_port,
        sut_cpus="1" if pinned else None,
        load_cpus="0" if pinned else None,
        tls_dir=out / "run" / "tls",
        shim=None,
    )
    s.run.mkdir(parents=True, exist_ok=True)
    s.logs.mkdir(parents=True, exist_ok=True)
    if any(is_tls(r) for r in rows):
        make_certificate(s.tls_dir)
        s.shim = build_shim(s.run)
        if s.shim is None and "close-full" in loads:
            print("the close-full load needs the wrk shim (a C compiler)", file=sys.stderr)
            return 2
    (out / "env.txt").write_text(environment(s, loads, rows, commands))
    print(
        f"# {len(rows)} rows x {len(loads)} loads x {s.rounds} rounds x ({s.warmup} + {s.duration}) s, "
        f"mode {s.mode}; output {out}"
    )

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, interrupted)
    results: list[dict[str, str]] = []
    tsv = out / "results.tsv"
    rc = 0
    try:
        write_nginx_configs(s, s.backend_port)
        for port in (s.backend_port, s.redis_port):
            if port_in_use(port):
                print(f"port {port} is already in use", file=sys.stderr)
                return 1
        backend = start(
            f"nginx -c {s.run}/backend-{s.backend_port}.conf", s.logs / "backend.log", s.load_cpus
        )
        if not wait_ready(s.backend_port, s.path, backend):
            print("the backend did not start (see logs/backend.log)", file=sys.stderr)
            return 1
        if any("redis" in r for r in rows):
            redis = f"redis-server --port {s.redis_port} --bind 127.0.0.1 --save '' --appendonly no"
            start(redis, s.logs / "redis.log", s.load_cpus)
        for rnd in range(1, s.rounds + 1):
            for load in loads:
                for index, row in enumerate(rows, start=1):
                    result = measure(s, load, rnd, row, commands[row], s.base_port + index, backend)
                    if result is not None:
                        results.append(result)
                        with tsv.open("w", newline="") as f:
                            writer = csv.DictWriter(f, COLUMNS, delimiter="\t")
                            writer.writeheader()
                            writer.writerows(results)
    except KeyboardInterrupt:
        print("interrupted: stopping what was started", file=sys.stderr)
        rc = 130
    finally:
        for pgid in list(reversed(STARTED)):
            stop(pgid)
    if results:
        summary = summarize(results)
        (out / "summary.md").write_text(summary)
        print("\n" + summary)
        print(f"results: {tsv}\nsummary: {out / 'summary.md'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
