"""OpenAPI 3.0 and Swagger 2.0 documents <-> a REST API's draft (ImportRestApi, PutRestApi,
GetExport), with API Gateway's ``x-amazon-apigateway-*`` extensions.

Reading a document (JSON or YAML, the same reader as configuration files, so every problem has
a line and column) yields problems located by JSON pointer:

* **errors** make the request fail (400 ``BadRequestException`` listing every one);
* **warnings** are things iamgate imports differently from AWS or not at all (an integration
  type the gateway cannot run, gateway responses, request validators...): with
  ``failonwarnings=true`` they fail the request the same way, otherwise the API is imported and
  they are returned in the response's ``warnings``.

What is read: ``info`` (name, description, version); paths (API Gateway's templates, ``{id}``
and ``{proxy+}``) with their operations and ``x-amazon-apigateway-any-method``; operation
``parameters`` (as method request parameters), ``responses`` (method responses),
``security`` (API keys, ``awsSigv4``, Lambda and Cognito authorizers), ``operationId``,
``x-amazon-apigateway-auth`` and ``x-amazon-apigateway-integration``; security schemes with
``x-amazon-apigateway-authtype`` / ``x-amazon-apigateway-authorizer``; and at the top
``x-amazon-apigateway-policy``, ``-api-key-source``, ``-endpoint-configuration``,
``-binary-media-types``, tags with ``x-amazon-apigateway-tag-value``, and iamgate's own
``x-iamgate-policy-mode``. Only local ``$ref`` (``#/...``) are followed: a document never makes
the management API fetch anything.

Export writes the deployment a stage serves (as AWS does), through ``convert`` (deployment
definition -> draft shape), then the draft shape as OpenAPI; the policy's own-API ARNs are
written back as the ``execute-api:/`` shorthand so the export imports into any API.

The stages, one module each:

* :mod:`.read` (document -> :class:`~.document.Imported`), with :mod:`.operations` (one
  operation -> a method) and :mod:`.security` (security schemes and requirements);
* :mod:`.apply` (``ImportRestApi`` / ``PutRestApi``: :class:`~.document.Imported` -> the draft);
* :mod:`.export` (``GetExport``: a stage's deployment -> a document);
* :mod:`.document`: what they share (located problems, ``$ref``, scalar readers).
"""

from __future__ import annotations

from iamgate.management.openapi import apply, export
from iamgate.management.openapi.export import draft_to_openapi
from iamgate.management.openapi.read import read_openapi

__all__ = ["ROUTES", "draft_to_openapi", "read_openapi"]

ROUTES = [*apply.ROUTES, *export.ROUTES]
