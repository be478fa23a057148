"""The ``--store URL`` option of ``serve``, ``apply`` and ``export``, and its errors.

A store named on the command line is blamed on ``--store`` (with its value, password masked),
never on the configuration file: a URL that cannot be a store URL is a usage error before
anything runs (exit 2, as click reports bad options); a store that cannot be opened or used is
``iamgate: --store URL: what went wrong`` (exit 2). A store named by the file's ``store:`` line is
blamed on the file: ``iamgate: FILE: store URL: what went wrong``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from iamgate.store import Store, StoreError, mask, open_store, url_problem
from iamgate.store.link import FLAG

__all__ = ["FLAG", "StoreOrigin", "check_url", "fail", "open_named"]


def check_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: refuse a ``--store`` value that cannot be a store URL."""
    _ = ctx, param
    if value is None:
        return None
    problem = url_problem(value)
    if problem is not None:
        raise click.BadParameter(f"{mask(value) or repr(value)}: {problem}")
    return value


class StoreOrigin:
    """Where a store URL came from: ``--store`` or a configuration file's ``store:``."""

    def __init__(self, url: str, file: Path | None = None) -> None:
        self.url = url
        self.file = file

    def label(self) -> str:
        return FLAG if self.file is None else f"{self.file}: store"

    def describe(self, exc: StoreError) -> str:
        """The store's error, naming where its URL came from. Store errors begin with the
        (masked) URL; one that does not gets it added."""
        text = str(exc)
        shown = mask(self.url)
        if not text.startswith(shown):
            text = f"{shown}: {text}"
        return f"{self.label()} {text}"


def fail(origin: StoreOrigin, exc: StoreError) -> NoReturn:
    click.echo(f"iamgate: {origin.describe(exc)}", err=True)
    sys.exit(2)


def open_named(origin: StoreOrigin, base_dir: Path | None = None) -> Store:
    """Open the store, or exit 2 with the error blamed on its origin."""
    try:
        return open_store(origin.url, base_dir)
    except StoreError as exc:
        fail(origin, exc)
