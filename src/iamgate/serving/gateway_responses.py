"""Applying an API's gateway responses (``config.gateway_responses.ResponseTable``) to an answer
the gateway makes itself, just before the client connection writes it.

Values come from the request: ``$context`` as the access log names it (with
``error.messageString`` the message as a JSON string, ``null`` when there is none),
``$stageVariables``, and for headers the ``method.request.*`` sources of request-parameter
mappings. A header value holding a line break or NUL (a query string can decode to one) is
dropped, never written: it would split the response.
"""

from __future__ import annotations

import re
from typing import Any, Final

from iamgate.config.gateway_responses import ResponseTable, text_of
from iamgate.observe.accesslog import context_variables
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.mapping import request_parameter
from iamgate.pipeline.responses import GatewayResponse

__all__ = ["customise"]

_UNSAFE: Final = re.compile(r"[\r\n\x00]")


def customise(table: ResponseTable, ex: Exchange, response: GatewayResponse) -> GatewayResponse:
    """``response`` as the API customised its type (``response`` itself when nothing applies)."""
    kind = response.response_type
    if kind is None:
        return response
    found = table.find(kind, response.status)
    if found is None:
        return response
    status = found.status or response.status
    context: dict[str, Any] | None = None
    headers = list(response.headers)
    body = response.body
    if found.templates:
        content_type, template = found.template_for(ex.hmap.get(b"accept"))
        context = _context(ex, response, status)
        body = template.render(context, ex.stage.variables if ex.stage is not None else {}).encode()
        headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
        headers.append(("Content-Type", content_type))
    for name, source in found.headers:
        if source.startswith("context."):
            if context is None:
                context = _context(ex, response, status)
            found_value = context.get(source[len("context.") :])
            value = None if found_value is None else text_of(found_value)
        else:  # the multi-value forms give the values joined, as the single forms do
            single = source.replace("multivalueheader", "header", 1).replace(
                "multivaluequerystring", "querystring", 1
            )
            value = request_parameter(ex, single)
        if value is None or _UNSAFE.search(value):
            continue
        lowered = name.lower()
        headers = [(n, v) for n, v in headers if n.lower() != lowered]
        headers.append((name, value))
    return GatewayResponse(
        status,
        body,
        tuple(headers),
        response.response_type,
        response.error_type,
        response.message,
        response.close,
    )


def _context(ex: Exchange, response: GatewayResponse, status: int) -> dict[str, Any]:
    """The ``$context`` values of the request as the response is made."""
    ex.status = status
    ex.error_message = response.message
    ex.response_type = response.response_type
    ex.error_type = response.error_type
    values = context_variables(ex)
    values.setdefault("error.message", "")
    if response.message is None:
        values["error.messageString"] = "null"
    return values
