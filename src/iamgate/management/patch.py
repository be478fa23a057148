"""``patchOperations``: API Gateway's JSON-Patch-like edits of ``Update*`` operations.

A body ``{"patchOperations": [{"op": "replace", "path": "/name", "value": "x"}, ...]}``; paths
are JSON pointers in which ``~1`` is a ``/`` inside one token (``/~1pets/GET/throttling/rateLimit``)
and ``~0`` a ``~``; values are strings (``"true"``, ``"10.5"``), as on AWS. The operations apply
in order, all or nothing (the handler changes a copy, or changes nothing when one is refused).

The error texts are AWS's: ``Invalid patch operation specified. Must be one of: [replace]`` and
``Invalid patch path  '/x' specified for op 'replace'. Must be one of: [/name, ...]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from iamgate.management.core import ApiError, bad_request

__all__ = ["OPS", "PatchOp", "invalid_op", "invalid_path", "operations"]

OPS = ("add", "remove", "replace", "move", "copy", "test")


@dataclass(frozen=True, slots=True)
class PatchOp:
    op: str
    path: str
    value: str | None
    from_: str | None

    @property
    def tokens(self) -> list[str]:
        """The path's tokens, unescaped: ``/~1pets/GET`` -> ``["/pets", "GET"]``."""
        return [t.replace("~1", "/").replace("~0", "~") for t in self.path.split("/")[1:]]

    def need_value(self) -> str:
        if self.value is None:
            raise bad_request(f"Invalid patch operation: '{self.op} {self.path}' needs a value")
        return self.value

    def boolean(self) -> bool:
        text = self.need_value().strip().lower()
        if text not in ("true", "false"):
            raise bad_request(f"Invalid value for {self.path}: '{self.value}' (true or false)")
        return text == "true"

    def integer(self, low: int, high: int) -> int:
        text = self.need_value().strip()
        try:
            number = int(text)
        except ValueError:
            raise bad_request(f"Invalid value for {self.path}: '{self.value}' is not an integer") from None
        if not low <= number <= high:
            raise bad_request(f"Invalid value for {self.path}: {number} is not between {low} and {high}")
        return number

    def number(self, low: float, high: float) -> float:
        text = self.need_value().strip()
        try:
            number = float(text)
        except ValueError:
            raise bad_request(f"Invalid value for {self.path}: '{self.value}' is not a number") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise bad_request(f"Invalid value for {self.path}: {text} is not between {low:g} and {high:g}")
        return number


def operations(body: dict[str, Any]) -> list[PatchOp]:
    raw = body.get("patchOperations", [])
    if not isinstance(raw, list):
        raise bad_request("'patchOperations' must be a list of {op, path, value} objects")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise bad_request(f"patchOperations[{i}] must be an object with op, path and value")
        op, path, value, from_ = item.get("op"), item.get("path"), item.get("value"), item.get("from")
        if op not in OPS:
            raise bad_request(
                f"Invalid patch operation specified at patchOperations[{i}]: {op!r}. "
                f"Must be one of: [{', '.join(OPS)}]"
            )
        if not isinstance(path, str) or not path.startswith("/"):
            raise bad_request(f"patchOperations[{i}].path must be a string starting with '/', not {path!r}")
        if value is not None and not isinstance(value, str):
            raise bad_request(f"patchOperations[{i}].value must be a string, not {type(value).__name__}")
        if from_ is not None and not isinstance(from_, str):
            raise bad_request(f"patchOperations[{i}].from must be a string")
        out.append(PatchOp(op, path, value, from_))
    return out


def invalid_op(allowed: tuple[str, ...] = ("replace",)) -> ApiError:
    return bad_request(f"Invalid patch operation specified. Must be one of: [{', '.join(allowed)}]")


def invalid_path(op: PatchOp, allowed: list[str]) -> ApiError:
    return bad_request(
        f"Invalid patch path  '{op.path}' specified for op '{op.op}'. Must be one of: [{', '.join(allowed)}]"
    )
