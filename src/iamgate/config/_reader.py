"""The configuration reader: typed accessors that report located diagnostics.

Shared by the configuration's readers (``config.load``, ``config.auth``, ``config.read_*``).
Written by hand rather than with a schema library so that each message can name the bad value,
give a did-you-mean and point at the line of the YAML node.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iamgate.config._yaml import Positions
from iamgate.policy import Diagnostic, Severity
from iamgate.policy.diagnostics import did_you_mean, pointer_join

__all__ = ["PolicyKey", "Reader"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# a policy's text (with its file's name), region, account, API id and size limit
PolicyKey = tuple[str, str, str, str, int | None]


class Reader:
    def __init__(
        self, positions: Positions, source: str, base_dir: Path, read_file: Callable[[Path], bytes]
    ) -> None:
        self.positions = positions
        self.source = source
        self.base_dir = base_dir  # relative file names in the configuration are relative to it
        self.read_file = read_file
        self.diags: list[Diagnostic] = []
        # policies compiled during this read, by (text, API, size limit), and those a serving
        # process's last read compiled (read_policy._prepare; read_api.ApiMemo keeps them)
        self.compiled: dict[PolicyKey, Any] = {}
        self.earlier: dict[PolicyKey, Any] = {}

    def report(
        self,
        code: str,
        pointer: str,
        message: str,
        help: str | None = None,
        severity: Severity = Severity.ERROR,
        *,
        at_key: bool = False,
    ) -> None:
        where = self.positions.key_location(pointer) if at_key else self.positions.location(pointer)
        self.diags.append(Diagnostic(f"config.{code}", severity, message, where, help, self.source))

    def warn(self, code: str, pointer: str, message: str, help: str | None = None) -> None:
        self.report(code, pointer, message, help, Severity.WARNING)

    def kind(self, value: object) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "a boolean"
        if isinstance(value, int | float):
            return "a number"
        if isinstance(value, str):
            return "a string"
        if isinstance(value, list):
            return "a list"
        if isinstance(value, dict):
            return "a mapping"
        return type(value).__name__

    def mapping(self, value: object, pointer: str, what: str, keys: dict[str, bool]) -> dict[str, Any] | None:
        """A mapping with only ``keys`` (name -> required)."""
        if not isinstance(value, dict):
            self.report("wrong-type", pointer, f"{what} must be a mapping, not {self.kind(value)}")
            return None
        for key in value:
            if key not in keys:
                hint = did_you_mean(str(key), keys)
                choices = "valid keys: " + ", ".join(keys)
                self.report(
                    "unknown-key",
                    pointer_join(pointer, key),
                    f"unknown key '{key}' in {what}",
                    f"{hint} {choices}" if hint else choices,
                    at_key=True,
                )
        for key, required in keys.items():
            if required and key not in value:
                self.report("missing-key", pointer, f"{what} needs '{key}'")
        return value

    def string(
        self,
        value: object,
        pointer: str,
        what: str,
        *,
        pattern: re.Pattern[str] | None = None,
        help: str | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> str | None:
        if not isinstance(value, str):
            self.report(
                "wrong-type",
                pointer,
                f"{what} must be a string, not {self.kind(value)}",
                ("one of: " + ", ".join(choices)) if choices else help,
            )
            return None
        if choices is not None and value not in choices:
            hint = did_you_mean(value, choices)
            self.report(
                "invalid-value",
                pointer,
                f"{what} '{value}' is not valid",
                (hint + " " if hint else "") + "one of: " + ", ".join(choices),
            )
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.report("invalid-value", pointer, f"{what} '{value}' is not valid", help)
            return None
        return value

    def number(
        self, value: object, pointer: str, what: str, *, low: float, high: float, integer: bool = False
    ) -> float | None:
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            expected = "an integer" if integer else "a number"
            self.report("wrong-type", pointer, f"{what} must be {expected}, not {self.kind(value)}")
            return None
        assert isinstance(value, int | float)
        if not low <= value <= high:
            self.report(
                "invalid-value", pointer, f"{what} {value} is out of range", f"between {low:g} and {high:g}"
            )
            return None
        return value

    def boolean(self, value: object, pointer: str, what: str) -> bool | None:
        if not isinstance(value, bool):
            self.report("wrong-type", pointer, f"{what} must be true or false, not {self.kind(value)}")
            return None
        return value

    def sequence(self, value: object, pointer: str, what: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.report("wrong-type", pointer, f"{what} must be a list, not {self.kind(value)}")
            return None
        return value

    def network(self, value: object, pointer: str, what: str) -> IPNetwork | None:
        text = self.string(value, pointer, what)
        if text is None:
            return None
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.report(
                "invalid-value",
                pointer,
                f"{what} '{text}' is not an IP address or CIDR",
                "for example 10.0.0.0/8 or 2001:db8::/32",
            )
            return None
