"""The MOCK integration: the route's configured answer, without a backend."""

from __future__ import annotations

from iamgate.config.model import MockIntegration
from iamgate.pipeline.responses import GatewayResponse

__all__ = ["mock_response"]


def mock_response(integration: MockIntegration) -> GatewayResponse:
    return GatewayResponse(integration.status, integration.body, integration.headers)
