"""Diagnostics: every problem found while reading, parsing, validating or linting a policy.

A :class:`Diagnostic` is a value, never an exception. It carries a stable, namespaced code
(``policy.validate.unknown-operator``), a severity, a one-sentence message that names the bad
value, where it is (JSON pointer, line, column) and optional help (the valid choices, a
did-you-mean). Tests compare codes, not wording. Config files and the management API reuse
this type.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "Diagnostic",
    "Location",
    "Severity",
    "did_you_mean",
    "has_errors",
    "pointer_join",
]


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a JSON pointer (RFC 6901) and, when known, 1-based line and column."""

    pointer: str = ""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.pointer or "/"
        return f"{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: Location = field(default_factory=Location)
    help: str | None = None
    source: str | None = None  # a file name or another label of the document, when known

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def with_source(self, source: str) -> Diagnostic:
        return Diagnostic(self.code, self.severity, self.message, self.location, self.help, source)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "pointer": self.location.pointer,
            "line": self.location.line,
            "column": self.location.column,
        }
        if self.help:
            out["help"] = self.help
        if self.source is not None:
            out["source"] = self.source
        return out

    def render(self) -> str:
        """``FILE:LINE:COL: severity code: message`` then an indented help line."""
        where = self.source or "<policy>"
        if self.location.line is not None:
            where = f"{where}:{self.location.line}:{self.location.column}"
        ptr = f" (at {self.location.pointer})" if self.location.pointer else ""
        text = f"{where}: {self.severity.value} {self.code}: {self.message}{ptr}"
        if self.help:
            text += f"\n    help: {self.help}"
        return text


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def pointer_join(base: str, token: str | int) -> str:
    """Append one reference token to a JSON pointer, escaping ``~`` and ``/`` (RFC 6901)."""
    text = str(token).replace("~", "~0").replace("/", "~1")
    return f"{base}/{text}"


def did_you_mean(value: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """``did you mean 'X'?`` for the closest choice (compared case-insensitively), or None."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    match = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=cutoff)
    if not match:
        return None
    return f"did you mean '{lowered[match[0]]}'?"
