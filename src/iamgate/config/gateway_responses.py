"""Gateway responses, compiled: an API's ``gateway_responses`` as a table the client connection
applies to the gateway's own answers (``serving/gateway_responses.py``; docs/gateway-responses.md).

An answer the gateway makes itself carries its response type (``ACCESS_DENIED``,
``THROTTLED``...). When the API customised that type, its status code, headers and templates
replace the defaults; when it did not, ``DEFAULT_4XX`` (or ``DEFAULT_5XX``, by the answer's
status) supplies them, as API Gateway resolves them. An API without customisations has no table,
and its answers are the defaults byte for byte.

Templates are not VTL, as on API Gateway: ``$context.NAME`` and ``$stageVariables.NAME`` (or the
``${...}`` forms) are replaced by their values, an unknown or unset variable by nothing.
Written by hand: the substitution is a few lines, and no template engine has exactly these rules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    from iamgate.config.model import GatewayResponseConfig

__all__ = ["RESPONSE_TYPES", "Customised", "ResponseTable", "Template", "text_of"]

# API Gateway's gateway response types and the status each answers with by default (None: the
# DEFAULT_4XX and DEFAULT_5XX types, which only supply what other types inherit), as its
# GetGatewayResponses lists them
RESPONSE_TYPES: Final[dict[str, int | None]] = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "WAF_FILTERED": 403,
}
_VARIABLE: Final = re.compile(
    r"\$(?:\{(context|stageVariables)\.([^{}\s]+)\}"
    r"|(context|stageVariables)\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*))"
)


def text_of(value: object) -> str:
    """A ``$context`` value as template text: strings as they are, numbers and booleans as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


class Template:
    """A gateway response template: literal text and ``$context`` / ``$stageVariables`` names."""

    __slots__ = ("pieces",)

    def __init__(self, text: str) -> None:
        pieces: list[str | tuple[str, str]] = []
        last = 0
        for m in _VARIABLE.finditer(text):
            pieces.append(text[last : m.start()])
            pieces.append((m.group(1) or m.group(3), m.group(2) or m.group(4)))
            last = m.end()
        pieces.append(text[last:])
        self.pieces = tuple(p for p in pieces if p != "")

    def render(self, context: dict[str, Any], stage_variables: dict[str, str]) -> str:
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            kind, name = piece
            value = context.get(name) if kind == "context" else stage_variables.get(name)
            if value is not None:
                out.append(text_of(value))
        return "".join(out)


class Customised:
    """One response type's customisation, ready to apply: the status (None: the answer's own),
    the headers (name, source) and the templates (content type, template), sorted."""

    __slots__ = ("headers", "status", "templates")

    def __init__(self, config: GatewayResponseConfig) -> None:
        self.status = config.status_code
        self.headers = tuple(
            (key.removeprefix("gatewayresponse.header."), source)
            for key, source in config.response_parameters
        )
        self.templates = tuple(
            (content_type, Template(text)) for content_type, text in config.response_templates
        )

    def template_for(self, accept: bytes | None) -> tuple[str, Template]:
        """The template for a request's ``Accept`` (its first media type that has one), else
        ``application/json``'s, else the first. Only called when there are templates."""
        templates = self.templates
        if accept is not None:
            for part in accept.split(b","):
                media = part.split(b";", 1)[0].strip().lower().decode("latin-1")
                for content_type, template in templates:
                    if content_type.lower() == media:
                        return content_type, template
        for content_type, template in templates:
            if content_type.lower() == "application/json":
                return content_type, template
        return templates[0]


class ResponseTable:
    """An API's customised gateway responses, built once per configuration version."""

    __slots__ = ("default4", "default5", "exact")

    def __init__(self, configs: dict[str, GatewayResponseConfig]) -> None:
        self.exact = {
            kind: Customised(c) for kind, c in configs.items() if kind not in ("DEFAULT_4XX", "DEFAULT_5XX")
        }
        d4 = configs.get("DEFAULT_4XX")
        d5 = configs.get("DEFAULT_5XX")
        self.default4 = Customised(d4) if d4 is not None else None
        self.default5 = Customised(d5) if d5 is not None else None

    @classmethod
    def build(cls, configs: dict[str, GatewayResponseConfig]) -> ResponseTable | None:
        """The table of an API, or None when it customises nothing."""
        return cls(configs) if configs else None

    def find(self, kind: str, status: int) -> Customised | None:
        """What applies to an answer of type ``kind`` and (default) ``status``: the type's own
        customisation, else DEFAULT_5XX for a 5xx, DEFAULT_4XX for the rest, else None. Types
        that are not API Gateway's (iamgate's answers before an API is reached) never change."""
        found = self.exact.get(kind)
        if found is not None:
            return found
        if kind not in RESPONSE_TYPES:
            return None
        return self.default5 if status >= 500 else self.default4
