"""A serving process's link to its store: opened on first use, reopened when the configured URL
changes, watched for new generations; and the ``extend`` steps that add the store's objects to
the configuration document (``iamgate.config.load.parse_config``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iamgate.config.load import Extend, ExtendError
from iamgate.store import open_store
from iamgate.store.base import Served, Store, StoreError, Watch, mask
from iamgate.store.compose import STORE_FILE, compose, decode_served, encode_served

__all__ = ["FLAG", "StoreLink", "extend_from_files"]

log = logging.getLogger("iamgate")

FLAG = "--store"  # what an error of a store given on the command line is blamed on


def _url(data: dict[str, Any], override: str | None) -> str | None:
    url = override or data.get("store")
    return url if isinstance(url, str) and url else None


class StoreLink:
    """The store of the configuration being served (the file's ``store``, or ``--store``)."""

    def __init__(self, override: str | None = None) -> None:
        self.override = override
        self.store: Store | None = None
        self.url: str | None = None
        self._base: Path | None = None
        self._watch: Watch | None = None
        self._watched: Store | None = None

    def extend(self, base_dir: Path, files: dict[str, bytes]) -> Extend:
        """An extend step reading the store now; what it read is put in ``files`` (under
        :data:`STORE_FILE`) so that workers serve exactly that."""

        def step(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
            url = _url(data, self.override)
            if url is None:
                return data, {}
            # a --store path is relative to the working directory (as apply's and export's are),
            # a store: line's to the configuration file
            served = self.served(url, Path.cwd() if self.override else base_dir)
            files[STORE_FILE] = encode_served(served)
            if self.override:
                data = {**data, "store": self.override}
            return compose(data, served)

        return step

    def served(self, url: str, base_dir: Path) -> Served:
        try:
            if self.store is None or url != self.url or base_dir != self._base:
                store = open_store(url, base_dir)
                if self.store is not None:
                    self.store.close()
                self.store, self.url, self._base = store, url, base_dir
            return self.store.served()
        except StoreError as exc:
            if not self.override:
                raise ExtendError(f"cannot read the store: {exc}") from None
            # blamed on --store, not on the configuration file
            text = str(exc)
            if not text.startswith(mask(url)):
                text = f"{mask(url)}: {text}"
            raise ExtendError(text, source=FLAG) from None

    def follow(self, on_change: Callable[[int], None]) -> None:
        """Watch the current store (again, if it changed since the last call)."""
        if self.store is self._watched:
            return
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        self._watched = self.store
        if self.store is not None:
            self._watch = self.store.watch(on_change)
            log.info("following the store %s", mask(self.url or ""))

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        if self.store is not None:
            self.store.close()
        self.store = self._watched = self._watch = None


def extend_from_files(files: dict[str, bytes], override: str | None = None) -> Extend:
    """A worker's extend step: the store's objects as the supervisor read them."""

    def step(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        url = _url(data, override)
        if url is None:
            return data, {}
        raw = files.get(STORE_FILE)
        if raw is None:
            raise ExtendError(f"the supervisor did not send the state of the store {mask(url)}")
        if override:
            data = {**data, "store": override}
        return compose(data, decode_served(raw), deferred=True)

    return step
