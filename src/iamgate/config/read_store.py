"""Reading the ``store`` (where the management API keeps APIs, keys and plans) and the
``management`` section (the management API served on the admin port when a store is set)."""

from __future__ import annotations

import re

from iamgate.config._reader import Reader
from iamgate.config.model import ManagementSettings

__all__ = ["read_management", "read_store"]

_STORE_URL = re.compile(r"(sqlite:///.+|postgres(ql)?://.+)")


def read_store(r: Reader, raw: object) -> str | None:
    """The store URL, as written; None when there is none (or it is not valid: reported)."""
    if raw is None:
        return None
    return r.string(
        raw,
        "/store",
        "store",
        pattern=_STORE_URL,
        help="sqlite:///FILE (relative to this file), sqlite:////ABSOLUTE/FILE or "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
    )


def read_management(r: Reader, raw: object) -> ManagementSettings:
    """The ``management`` section: whether the management API is served, and how it authenticates."""
    if raw is None:
        return ManagementSettings()
    m = r.mapping(
        raw, "/management", "management", {"enabled": False, "authentication": False, "console": False}
    )
    if m is None:
        return ManagementSettings()
    enabled = r.boolean(m["enabled"], "/management/enabled", "enabled") if "enabled" in m else True
    authentication = "sigv4"
    if "authentication" in m:
        authentication = (
            r.string(
                m["authentication"], "/management/authentication", "authentication", choices=("sigv4", "none")
            )
            or authentication
        )
    decisions = True
    if "console" in m:
        console = r.mapping(m["console"], "/management/console", "console", {"decisions": False})
        if console is not None and "decisions" in console:
            found = r.boolean(console["decisions"], "/management/console/decisions", "decisions")
            decisions = found is not False
    return ManagementSettings(enabled is not False, authentication, decisions)
