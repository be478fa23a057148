"""The console's templates and static files, shipped inside the package (package data).

Templates are rendered by Jinja2 with autoescaping on for every template, so names, descriptions
and policies holding HTML or JavaScript are shown as text. Static files are read once, at
start, from the package's ``static`` directory into a table keyed by file name: a request names
one of those keys or gets a 404, so no path a client sends ever reaches the file system
(no traversal, whatever the encoding).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["StaticFile", "Templates", "load_static"]

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """Every file of ``iamgate/console/static`` whose type the console serves, by name."""
    files: dict[str, StaticFile] = {}
    for entry in resources.files("iamgate.console").joinpath("static").iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        files[name] = StaticFile(
            body, CONTENT_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        )
    return files


class Templates:
    """The console's Jinja2 templates, loaded with the first page served: a gateway whose
    console nobody opens does not import Jinja2 (memory in every worker)."""

    def __init__(self) -> None:
        self.env: Any = None

    def render(self, name: str, **values: Any) -> bytes:
        if self.env is None:
            import jinja2  # noqa: PLC0415

            self.env = jinja2.Environment(
                loader=jinja2.PackageLoader("iamgate.console", "templates"),
                autoescape=True,  # every template, whatever its name
                undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return bytes(self.env.get_template(name).render(**values).encode("utf-8"))
