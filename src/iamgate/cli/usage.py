"""``iamgate usage``: a usage plan's per-key, per-day usage (API Gateway's ``GetUsage``)."""

from __future__ import annotations

import asyncio
import calendar
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from iamgate.config.load import load_config
from iamgate.config.snapshot import build_snapshot
from iamgate.throttle.usage import UsageError, get_usage

__all__ = ["usage"]


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


@click.command()
@click.option("--plan", help="Usage plan id; may be left out when the key is in one plan only.")
@click.option("--key", help="API key id; every key of the plan when left out.")
@click.option("--from", "start", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--to", "end", default=None, help="Last UTC day, YYYY-MM-DD.  [default: today]")
@click.option(
    "--admin",
    default="http://127.0.0.1:9901",
    show_default=True,
    help="The admin address of a running gateway, asked for the report.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the counters straight from the Redis this configuration names, instead of asking a gateway.",
)
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="json", show_default=True)
def usage(
    plan: str | None,
    key: str | None,
    start: str,
    end: str | None,
    admin: str,
    config_path: Path | None,
    fmt: str,
) -> None:
    """Requests per API key and day, and the quota left at the end of each day.

    The report has the shape of API Gateway's GetUsage: {"usagePlanId", "startDate", "endDate",
    "items": {KEY: [[used, remaining], ...]}}. Exit 1 when the query is refused (unknown plan or
    key, bad dates), 2 when no gateway or Redis answers.
    """
    query = {"from": start, "to": end or _today()}
    if plan:
        query["plan"] = plan
    if key:
        query["key"] = key
    report = _from_config(config_path, query) if config_path is not None else _from_admin(admin, query)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"usage plan {report['usagePlanId']}, {report['startDate']} .. {report['endDate']} (UTC)")
    click.echo(f"{'key':<24} {'day':<10} {'used':>10} {'remaining':>10}")
    first = calendar.timegm(time.strptime(report["startDate"], "%Y-%m-%d"))
    for key_id, pairs in sorted(report["items"].items()):
        for i, (used, remaining) in enumerate(pairs):
            day = time.strftime("%Y-%m-%d", time.gmtime(first + i * 86400))
            left = "-" if remaining is None else str(remaining)
            click.echo(f"{key_id:<24} {day:<10} {used:>10} {left:>10}")


def _fail(message: str, code: int) -> None:
    click.echo(f"iamgate usage: {message}", err=True)
    sys.exit(code)


def _from_admin(admin: str, query: dict[str, str]) -> dict[str, Any]:
    url = admin.rstrip("/") + "/usage?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - an operator's URL
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("message", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        _fail(str(message), 2 if exc.code >= 500 else 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        _fail(f"no gateway answered at {admin} ({reason}); is it running with --admin-port?", 2)
    raise AssertionError("unreachable")


def _from_config(path: Path, query: dict[str, str]) -> dict[str, Any]:
    config, diags = load_config(path)
    if config is None:
        for d in diags:
            click.echo(d.render(), err=True)
        _fail(f"{path} has errors", 1)
    assert config is not None
    if config.throttling.backend != "redis" or not config.throttling.redis_url:
        _fail(
            f"{path} keeps its counters in the gateway's memory; ask the running gateway (--admin)",
            1,
        )
    from iamgate.throttle.redis import RedisBackend  # noqa: PLC0415 - only for this mode

    snapshot = build_snapshot(config)

    async def ask() -> dict[str, Any]:
        t = config.throttling
        backend = RedisBackend(t.redis_url or "", timeout=max(t.redis_timeout, 2.0), prefix=t.redis_prefix)
        try:
            return await get_usage(snapshot, backend, query)
        finally:
            backend.close()

    try:
        return asyncio.run(ask())
    except UsageError as exc:
        _fail(str(exc), 1)
    except (ConnectionError, TimeoutError, OSError) as exc:
        _fail(f"Redis did not answer: {exc}", 2)
    raise AssertionError("unreachable")
