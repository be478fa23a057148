"""Gateway responses: one table from outcome to status, body and headers (AWS's gateway responses).

Bodies are what Amazon API Gateway sends: ``{"message": ...}`` for gateway-generated errors and
``{"Message": ...}`` for denials by the policy engine. Every response also carries
``x-amzn-RequestId``, ``x-amz-apigw-id`` and, for errors, ``x-amzn-ErrorType`` (added by the
server when it writes the response).
"""

from __future__ import annotations

import http
import json
from dataclasses import dataclass
from typing import Final

from iamgate.config.gateway_responses import RESPONSE_TYPES

__all__ = [
    "RESPONSE_TYPES",
    "GatewayResponse",
    "ResponseType",
    "access_denied",
    "authorizer_denied",
    "gateway_error",
    "json_message",
    "mask_account",
    "status_line",
]

_REASONS: Final = {s.value: s.phrase for s in http.HTTPStatus}
_STATUS_LINES: Final = {
    status: f"HTTP/1.1 {status} {reason}\r\n".encode() for status, reason in _REASONS.items()
}


def status_line(status: int) -> bytes:
    """The HTTP/1.1 status line of a response (with its CRLF), by the standard reason phrases."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n".encode()
    return line


@dataclass(frozen=True, slots=True)
class ResponseType:
    name: str  # the gateway response type, e.g. ACCESS_DENIED
    status: int
    error_type: str | None  # x-amzn-ErrorType
    message: str | None  # default $context.error.message


MISSING_AUTHENTICATION_TOKEN: Final = ResponseType(
    "MISSING_AUTHENTICATION_TOKEN", 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
)
RESOURCE_NOT_FOUND: Final = ResponseType("RESOURCE_NOT_FOUND", 404, "NotFoundException", "Not Found")
ACCESS_DENIED: Final = ResponseType("ACCESS_DENIED", 403, "AccessDeniedException", None)
FORBIDDEN: Final = ResponseType("FORBIDDEN", 403, "ForbiddenException", "Forbidden")
BAD_REQUEST: Final = ResponseType("BAD_REQUEST", 400, "BadRequestException", "Bad Request")
REQUEST_TOO_LARGE: Final = ResponseType(
    "REQUEST_TOO_LARGE", 413, "RequestTooLargeException", "Request Too Long"
)
URI_TOO_LONG: Final = ResponseType("URI_TOO_LONG", 414, "RequestUriTooLongException", "Request-URI Too Long")
HEADERS_TOO_LARGE: Final = ResponseType(
    "REQUEST_TOO_LARGE", 431, "RequestHeaderFieldsTooLargeException", "Request Header Fields Too Large"
)
REQUEST_TIMEOUT: Final = ResponseType("DEFAULT_4XX", 408, "RequestTimeoutException", "Request Timeout")
INTEGRATION_TIMEOUT: Final = ResponseType(
    "INTEGRATION_TIMEOUT", 504, "InternalServerErrorException", "Endpoint request timed out"
)
INTEGRATION_FAILURE: Final = ResponseType(
    "INTEGRATION_FAILURE", 502, "InternalServerErrorException", "Internal server error"
)
API_CONFIGURATION_ERROR: Final = ResponseType(
    "API_CONFIGURATION_ERROR", 500, "InternalServerErrorException", "Internal server error"
)
UNAUTHORIZED: Final = ResponseType("UNAUTHORIZED", 401, "UnauthorizedException", "Unauthorized")
AUTHORIZER_CONFIGURATION_ERROR: Final = ResponseType(
    "AUTHORIZER_CONFIGURATION_ERROR", 500, "AuthorizerConfigurationException", None
)
INVALID_API_KEY: Final = ResponseType("INVALID_API_KEY", 403, "ForbiddenException", "Forbidden")
THROTTLED: Final = ResponseType("THROTTLED", 429, "TooManyRequestsException", "Too Many Requests")
QUOTA_EXCEEDED: Final = ResponseType("QUOTA_EXCEEDED", 429, "LimitExceededException", "Limit Exceeded")
BAD_REQUEST_BODY: Final = ResponseType("BAD_REQUEST_BODY", 400, "BadRequestException", "Invalid request body")
BAD_REQUEST_PARAMETERS: Final = ResponseType(
    "BAD_REQUEST_PARAMETERS", 400, "BadRequestException", "Missing required request parameters"
)
UNSUPPORTED_MEDIA_TYPE: Final = ResponseType(
    "UNSUPPORTED_MEDIA_TYPE", 415, "BadRequestException", "Unsupported Media Type"
)


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    """A response the gateway writes itself (errors, denials, MOCK integrations)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    response_type: str | None = None  # $context.error.responseType
    error_type: str | None = None  # x-amzn-ErrorType
    message: str | None = None  # $context.error.message
    close: bool = False  # close the connection after writing


def json_message(key: str, message: str | None) -> bytes:
    return json.dumps({key: message}, separators=(",", ":"), ensure_ascii=False).encode()


_DEFAULT: Final = object()


def gateway_error(
    kind: ResponseType, message: str | object | None = _DEFAULT, *, close: bool = False
) -> GatewayResponse:
    text: str | None = kind.message if message is _DEFAULT else message  # type: ignore[assignment]
    return GatewayResponse(
        kind.status,
        json_message("message", text),
        (("Content-Type", "application/json"),),
        kind.name,
        kind.error_type,
        text,
        close,
    )


def mask_account(arn: str) -> str:
    """``arn:aws:execute-api:us-east-1:123456789012:...`` -> ``...:********9012:...``."""
    pieces = arn.split(":", 5)
    if len(pieces) == 6 and len(pieces[4]) >= 4:
        pieces[4] = "********" + pieces[4][-4:]
    return ":".join(pieces)


def access_denied(caller: str, arn: str, *, explicit: bool, suffix_style: str = "legacy") -> GatewayResponse:
    """The policy engine's denial: ``{"Message": "User: X is not authorized to perform: ..."}``.

    ``suffix_style`` "legacy" (default) ends explicit denies with `` with an explicit deny``;
    "policy-type" uses the newer ``... in a resource-based policy`` / ``because no resource-based
    policy allows the execute-api:Invoke action`` wording.
    """
    text = f"User: {caller} is not authorized to perform: execute-api:Invoke on resource: {mask_account(arn)}"
    if suffix_style == "policy-type":
        text += (
            " with an explicit deny in a resource-based policy"
            if explicit
            else " because no resource-based policy allows the execute-api:Invoke action"
        )
    elif explicit:
        text += " with an explicit deny"
    return GatewayResponse(
        403,
        json_message("Message", text),
        (("Content-Type", "application/json"),),
        ACCESS_DENIED.name,
        ACCESS_DENIED.error_type,
        text,
    )


def authorizer_denied(*, explicit: bool) -> GatewayResponse:
    """A Lambda authorizer's policy denied the method."""
    text = "User is not authorized to access this resource" + (" with an explicit deny" if explicit else "")
    return GatewayResponse(
        403,
        json_message("Message", text),
        (("Content-Type", "application/json"),),
        ACCESS_DENIED.name,
        ACCESS_DENIED.error_type,
        text,
    )
