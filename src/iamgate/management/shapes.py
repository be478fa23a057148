"""How a stored method and its integration are answered: AWS's ``Method`` and ``Integration``
shapes (GetMethod, GetIntegration, a resource's embedded methods).

A ``Method`` embeds its ``methodIntegration``, so both shapes live here, below the modules that
edit them (:mod:`~iamgate.management.methods`, :mod:`~iamgate.management.integrations`,
:mod:`~iamgate.management.resources`): those import this module, and it imports none of them.
"""

from __future__ import annotations

from typing import Any

from iamgate.store.base import Doc

__all__ = ["DEFAULT_TIMEOUT_MS", "METHOD_FIELDS", "integration_shape", "method_shape"]

DEFAULT_TIMEOUT_MS = 29000
# the Method shape's own fields; anything else in a stored method is iamgate's (e.g. rateLimit)
METHOD_FIELDS = (
    "httpMethod",
    "authorizationType",
    "authorizerId",
    "apiKeyRequired",
    "requestValidatorId",
    "operationName",
    "requestParameters",
    "requestModels",
    "methodResponses",
    "authorizationScopes",
    # iamgate's extension: the method's own policy (AWS's clients ignore members they do not know)
    "x-iamgate-policy",
    "x-iamgate-policyMode",
)


def method_shape(method: Doc) -> dict[str, Any]:
    out = {k: method[k] for k in METHOD_FIELDS if method.get(k) is not None}
    out.setdefault("apiKeyRequired", False)
    if method.get("methodIntegration"):
        out["methodIntegration"] = integration_shape(method["methodIntegration"])
    return out


def integration_shape(integration: Doc) -> dict[str, Any]:
    out = {k: v for k, v in integration.items() if v is not None}
    if out.get("type") == "HTTP_PROXY":
        out.setdefault("timeoutInMillis", DEFAULT_TIMEOUT_MS)
        out.setdefault("connectionType", "INTERNET")
    out.setdefault("passthroughBehavior", "WHEN_NO_MATCH")
    out.setdefault("cacheKeyParameters", [])
    return out
