"""Reading an API's ``gateway_responses``: customised answers for the gateway's own refusals,
keyed by API Gateway's response types (docs/gateway-responses.md).

The checks on one response parameter or template are plain functions (:func:`parameter_problem`,
:func:`template_problem`) so that the management API applies the very same rules.
"""

from __future__ import annotations

import re
from typing import Final

from iamgate.config._reader import Reader
from iamgate.config.gateway_responses import RESPONSE_TYPES
from iamgate.config.model import GatewayResponseConfig
from iamgate.policy.diagnostics import did_you_mean, pointer_join

__all__ = [
    "HEADER_PREFIX",
    "PROTECTED_HEADERS",
    "parameter_problem",
    "read_gateway_responses",
    "template_problem",
]

HEADER_PREFIX: Final = "gatewayresponse.header."
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SOURCE: Final = re.compile(
    r"'[^'\r\n\x00]*'"
    r"|method\.request\.(?:header|querystring|path|multivalueheader|multivaluequerystring)\.[^\s.][^\s]*"
    r"|stageVariables\.[A-Za-z0-9_.-]+"
    r"|context\.[A-Za-z0-9_.:-]+"
)
_MEDIA_TYPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9*][A-Za-z0-9!#$&^_.+*-]*")
# headers the gateway writes itself (framing, ids): a gateway response cannot set them
PROTECTED_HEADERS: Final = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "date",
        "x-amzn-requestid",
        "x-amz-apigw-id",
        "x-amzn-errortype",
    }
)
_SOURCE_HELP: Final = (
    "a quoted literal such as \"'*'\", method.request.header.NAME, method.request.querystring.NAME, "
    "method.request.path.NAME, method.request.multivalueheader.NAME, "
    "method.request.multivaluequerystring.NAME, stageVariables.NAME or context.VARIABLE"
)


def parameter_problem(key: str, value: object) -> str | None:
    """Why ``key: value`` is not a gateway response parameter, or None when it is one."""
    if not key.startswith(HEADER_PREFIX) or not _TOKEN.fullmatch(key[len(HEADER_PREFIX) :]):
        return f"'{key}' is not a gateway response parameter: use gatewayresponse.header.NAME"
    if key[len(HEADER_PREFIX) :].lower() in PROTECTED_HEADERS:
        return f"the gateway writes the {key[len(HEADER_PREFIX) :]} header itself: it cannot be mapped"
    if not isinstance(value, str) or not _SOURCE.fullmatch(value):
        return f"{value!r} is not a valid source for {key}"
    return None


def template_problem(content_type: object, template: object) -> str | None:
    """Why ``content_type: template`` is not a gateway response template, or None."""
    if not isinstance(content_type, str) or not _MEDIA_TYPE.fullmatch(content_type):
        return f"{content_type!r} is not a content type (for example application/json)"
    if not isinstance(template, str):
        return f"the template for {content_type} must be a string"
    if "\x00" in template:
        return f"the template for {content_type} holds a NUL character"
    return None


def read_gateway_responses(r: Reader, raw: object, ptr: str) -> dict[str, GatewayResponseConfig]:
    """The ``gateway_responses`` mapping of an API: response type -> its customisation."""
    out: dict[str, GatewayResponseConfig] = {}
    if not isinstance(raw, dict):
        r.report(
            "wrong-type",
            ptr,
            f"gateway_responses must be a mapping of response type: response, not {r.kind(raw)}",
        )
        return out
    for kind, item in raw.items():
        p = pointer_join(ptr, kind)
        if kind not in RESPONSE_TYPES:
            hint = did_you_mean(str(kind), RESPONSE_TYPES)
            r.report(
                "invalid-value",
                p,
                f"'{kind}' is not a gateway response type",
                (hint + " " if hint else "") + "one of: " + ", ".join(RESPONSE_TYPES),
                at_key=True,
            )
            continue
        found = _response(r, kind, item, p)
        if found is not None:
            out[kind] = found
    return out


def _response(r: Reader, kind: str, raw: object, ptr: str) -> GatewayResponseConfig | None:
    if raw is None:
        raw = {}
    m = r.mapping(
        raw,
        ptr,
        "a gateway response",
        {"status_code": False, "response_parameters": False, "response_templates": False},
    )
    if m is None:
        return None
    ok = True
    status = None
    if "status_code" in m:
        value = m["status_code"]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        number = r.number(value, f"{ptr}/status_code", "status_code", low=200, high=599, integer=True)
        ok = number is not None
        status = int(number) if number is not None else None
    parameters: list[tuple[str, str]] = []
    raw_params = m.get("response_parameters")
    if raw_params is not None:
        if not isinstance(raw_params, dict):
            r.report("wrong-type", f"{ptr}/response_parameters", "response_parameters must be a mapping")
            ok = False
        else:
            for key, value in raw_params.items():
                problem = parameter_problem(str(key), value)
                if problem is not None:
                    r.report(
                        "invalid-value",
                        pointer_join(f"{ptr}/response_parameters", key),
                        problem,
                        _SOURCE_HELP,
                    )
                    ok = False
                else:
                    parameters.append((str(key), str(value)))
    templates: list[tuple[str, str]] = []
    raw_templates = m.get("response_templates")
    if raw_templates is not None:
        if not isinstance(raw_templates, dict):
            r.report("wrong-type", f"{ptr}/response_templates", "response_templates must be a mapping")
            ok = False
        else:
            for content_type, template in raw_templates.items():
                problem = template_problem(content_type, template)
                if problem is not None:
                    r.report(
                        "invalid-value", pointer_join(f"{ptr}/response_templates", content_type), problem
                    )
                    ok = False
                else:
                    templates.append((str(content_type), str(template)))
    if not ok:
        return None
    return GatewayResponseConfig(kind, status, tuple(sorted(parameters)), tuple(sorted(templates)))
