"""What ``iamgate serve`` was asked to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServeOptions"]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Path
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 9901
    workers: int = 1
    drain_timeout: float = 30.0
    watch: bool = True
    store: str | None = None  # --store: overrides the configuration's store
