"""The vendored JavaScript and CSS are the files VENDORED.txt names (digests), each with its
licence shipped beside it, and are served from the package with the console's strict CSP."""

from __future__ import annotations

import hashlib
from importlib import resources

from iamgate.console.assets import load_static

STATIC = resources.files("iamgate.console").joinpath("static")


def _manifest() -> list[list[str]]:
    lines = STATIC.joinpath("VENDORED.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("file "))
    return [line.split() for line in lines[start + 1 :] if line.strip()]


def test_every_vendored_file_matches_its_digest_and_has_its_licence() -> None:
    rows = _manifest()
    assert {row[0] for row in rows} == {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, _package, _version, licence, digest in rows:
        assert hashlib.sha256(STATIC.joinpath(name).read_bytes()).hexdigest() == digest, name
        text = STATIC.joinpath(licence).read_text()
        assert "Permission" in text, licence


def test_vendored_files_and_licences_are_served() -> None:
    served = load_static()
    names = ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "htmx-LICENSE.txt", "uPlot-LICENSE.txt")
    for name in names:
        assert name in served, name
    assert served["htmx.min.js"].content_type.startswith("text/javascript")
