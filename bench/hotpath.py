"""The gateway's per-request Python cost, without sockets: a development benchmark.

Drives the real protocol objects (`DownstreamConnection`, `UpstreamConnection`) with in-memory
transports: raw request bytes in, a raw backend response back, the proxied response out, over
and over on one keep-alive connection. What is left is the Python work per request (parsing,
stages, policy, header rewriting, access log, metrics) with the system calls taken out, which
the socket-level benchmark (bench/proxy_bench.py) then adds back. Reports process CPU time per
request, best of several rounds.

    python bench/hotpath.py [--policy small|large|allow-all] [--log on|off] [-n 20000] [--paths N]
                            [--throttle off|memory|redis] [--route-policy ...] [--auth none|iam]

``--auth iam`` makes the route ``AWS_IAM`` and signs the request with SigV4 (botocore, a
same-account user whose identity policy allows): the signature's verification and the
combination of the identity and resource policies (Table A) are then in the count.

``--throttle redis`` checks a never-triggering throttle in the Redis at ``IAMGATE_BENCH_REDIS``
(default ``redis://127.0.0.1:6379/15``), one request at a time: each waits for its reply before
the backend sees it, so every batch holds one check (the worst case for batching), and the
count includes the event-loop turns the Redis path needs (the Redis server's own work is not in
this process).

``--paths N`` cycles through N different request paths (``/prod/pets/0`` ... ``/prod/pets/N-1``)
instead of repeating one: with N above the gateway's memo sizes (4096) every request misses the
route and decision memos, the worst case for them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_row import ACCOUNT, iam_identities, policy_for, sign_get, throttle_for
from iamgate.config.load import parse_config
from iamgate.config.snapshot import build_snapshot
from iamgate.serving.connection import DownstreamConnection
from iamgate.serving.state import GatewayState
from iamgate.upstream.pool import UpstreamConnection

REQUEST = b"GET /prod/pets/123 HTTP/1.1\r\nHost: 127.0.0.1:18101\r\nUser-Agent: wrk\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 08:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
)


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.written: list[bytes] = []
        self.closing = False
        self.waiter: asyncio.Future[None] | None = None  # set by the first write (--throttle redis)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written.append(data)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def config_text(
    policy: str,
    log: str,
    log_path: str,
    throttle: str = "off",
    route_policy: str = "none",
    auth: str = "none",
) -> str:
    import yaml

    top, stage = throttle_for(throttle)
    api: dict[str, object] = {
        "id": "petapi",
        "stages": {"prod": stage},
        "routes": [
            {
                "path": "/pets/{id}",
                "method": "GET",
                "integration": {"type": "HTTP_PROXY", "uri": "http://127.0.0.1:18080/pets/{id}"},
            }
        ],
    }
    doc = policy_for(policy)
    if doc is not None:
        api["policy"] = doc
    own = policy_for(route_policy) if route_policy != "none" else None
    if own is not None:  # the route's own policy (iamgate's extension): a further gate
        api["routes"][0]["policy"] = own  # type: ignore[index]
    gateway = {
        "region": "us-east-1",
        "account_id": ACCOUNT,
        "max_policy_chars": None,
        "access_log": {"destination": log_path} if log == "on" else None,
    }
    doc_top: dict[str, object] = {"gateway": gateway, "apis": [api], **top}
    if auth == "iam":  # SigV4-signed requests of a same-account user (Table A)
        api["routes"][0]["authorization"] = "AWS_IAM"  # type: ignore[index]
        doc_top["identities"] = iam_identities()
    return yaml.safe_dump(doc_top)


def signed(request: bytes) -> bytes:
    """``request`` (a GET without a body) signed with SigV4 by botocore, as the AWS SDKs sign it:
    one signature reused for every request of the run (the gateway accepts it for 5 minutes)."""
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    _, target, _ = head[0].split(" ")
    headers = dict(line.split(": ", 1) for line in head[1:])
    signed_headers = sign_get(f"http://{headers['Host']}{target}", headers)
    lines = [head[0], *(f"{name}: {value}" for name, value in signed_headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def requests(paths: int) -> list[bytes]:
    if paths <= 1:
        return [REQUEST]
    return [REQUEST.replace(b"/prod/pets/123", b"/prod/pets/%d" % i) for i in range(paths)]


async def run(
    policy: str,
    log: str,
    n: int,
    rounds: int,
    throttle: str = "off",
    paths: int = 1,
    route_policy: str = "none",
    auth: str = "none",
) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        text = config_text(policy, log, f"{tmp}/access.log", throttle, route_policy, auth)
        config, diags = parse_config(text)
        assert config is not None, [d.render() for d in diags]
        state = GatewayState(build_snapshot(config))
        down = DownstreamConnection(state)
        client = FakeTransport(("127.0.0.1", 40000))
        down.connection_made(client)
        pool = state.pools.get("http", "127.0.0.1", 18080)
        up = UpstreamConnection(pool)
        backend = FakeTransport(("127.0.0.1", 18080))
        up.connection_made(backend)
        pool._members.add(up)
        pool.release(up)
        results = []
        cycle = requests(paths)
        if auth == "iam":
            cycle = [signed(r) for r in cycle]
        k = len(cycle)
        later = throttle == "redis"  # the request reaches the backend once Redis has answered
        if later:
            assert await state.throttler.ready(2.0), "Redis is not answering"  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            start = time.process_time()
            for i in range(n):
                if later:
                    backend.waiter = loop.create_future()
                    down.data_received(cycle[i % k])
                    await backend.waiter
                else:
                    down.data_received(cycle[i % k])
                up.data_received(RESPONSE)
            results.append((time.process_time() - start) / n * 1e6)
            assert client.written[-1].endswith(b"ok"), client.written[-1]
            client.written.clear()
            backend.written.clear()
        state.access_log.close()
        state.stop_ticker()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", default="small", choices=["allow-all", "localhost", "small", "large"])
    parser.add_argument("--log", default="on", choices=["on", "off"])
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--throttle", default="off", choices=["off", "memory", "redis"])
    parser.add_argument("--paths", type=int, default=1)
    parser.add_argument(
        "--route-policy", default="none", choices=["none", "allow-all", "localhost", "small", "large"]
    )
    parser.add_argument("--auth", default="none", choices=["none", "iam"])
    args = parser.parse_args()
    results = uvloop.run(
        run(
            args.policy,
            args.log,
            args.n,
            args.rounds,
            args.throttle,
            args.paths,
            args.route_policy,
            args.auth,
        )
    )
    print(
        f"policy={args.policy} log={args.log} throttle={args.throttle} paths={args.paths} auth={args.auth} "
        f"per-request CPU: best {min(results):.1f} us, "
        f"median {statistics.median(results):.1f} us over {args.rounds} rounds of {args.n}"
    )


if __name__ == "__main__":
    main()
