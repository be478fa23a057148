"""``iamgate serve`` and ``iamgate config validate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from iamgate.cli.store_flag import check_url
from iamgate.config.load import load_config
from iamgate.process.serve import ServeOptions
from iamgate.process.serve import serve as run

__all__ = ["config_group", "serve"]


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The gateway configuration (YAML); see docs/configuration.md.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@click.option(
    "--admin-host",
    default="127.0.0.1",
    show_default=True,
    help="Address of the admin port (see --admin-port). Keep it on loopback or a private network: "
    "it serves the management API when a store is configured.",
)
@click.option(
    "--admin-port",
    default=9901,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the admin port, which serves /healthz, /readyz, /metrics, /usage (usage "
    "reports) and, when a store is configured, the management API (Amazon API Gateway's REST API, "
    "docs/management.md); 0 disables the admin port.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker processes sharing the port.",
)
@click.option(
    "--drain-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds to finish in-flight requests on SIGTERM.",
)
@click.option("--no-watch", is_flag=True, help="Do not reload when the configuration files change.")
@click.option(
    "--store",
    "store",
    default=None,
    callback=check_url,
    help="Serve the APIs of this store (sqlite:///FILE, relative to the working directory, or "
    "postgresql://USER@HOST:PORT/DB) as well as the file's; overrides the configuration's store. "
    "See docs/management.md.",
)
def serve(
    config_path: Path,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    workers: int,
    drain_timeout: float,
    no_watch: bool,
    store: str | None,
) -> None:
    """Run the gateway.

    Reloads the configuration on SIGHUP and when a watched file changes (an invalid new
    configuration is refused and the old one keeps serving); drains on SIGTERM; reopens the access
    log on SIGUSR1.
    """
    options = ServeOptions(
        config_path, host, port, admin_host, admin_port or None, workers, drain_timeout, not no_watch, store
    )
    sys.exit(run(options))


@click.group("config")
def config_group() -> None:
    """Work with gateway configuration files."""


@config_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate_config(files: tuple[Path, ...]) -> None:
    """Check configuration FILES (and the policies they hold or name).

    Exit 1 when any file has an error, 2 when a file cannot be read at all (as the policy
    commands do); warnings alone exit 0."""
    failed = unreadable = False
    for path in files:
        config, diags = load_config(path)
        for d in diags:
            click.echo(d.render())
        errors = sum(d.is_error for d in diags)
        failed = failed or config is None
        unreadable = unreadable or any(d.code == "config.unreadable" for d in diags)
        state = "invalid" if config is None else "valid"
        click.echo(f"{path}: {state} ({errors} error(s), {len(diags) - errors} warning(s))")
    sys.exit(2 if unreadable else 1 if failed else 0)
