"""The management API as one object the admin server calls: ``await app.handle(...)`` -> Reply.

Per request, in this order: a request id (``x-amzn-RequestId`` on every answer); the management
settings of the configuration being served (``management.enabled``, ``management.authentication``);
authentication and authorization (:mod:`iamgate.management.access`), before anything is looked
up, so an unauthorized caller learns nothing about what exists; routing
(:mod:`iamgate.management.router`); the handler.

Errors are rendered as API Gateway renders them and as botocore's rest-json parser reads them:
the status, an ``x-amzn-ErrorType`` header naming the exception (what becomes
``ClientError.response["Error"]["Code"]``) and a JSON body ``{"message": "..."}``. No path
matched: 404 ``NotFoundException`` naming the method and path; a path matched only with other
methods: 405 ``MethodNotAllowedException`` with an ``Allow`` header. A handler that fails
unexpectedly is logged with its traceback and answered 500 ``InternalServerErrorException``
(nothing of the traceback is sent); a store that cannot be reached is 503
``ServiceUnavailableException``.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote

from iamgate.management import access
from iamgate.management.core import ApiError, Call, GatewayContext, Reply, Route, storable_text
from iamgate.management.router import Matched, Router, load_routes
from iamgate.store.base import ConflictError, Store, StoreError, UnstorableError

__all__ = ["ManagementApp", "error_reply", "is_loopback"]

log = logging.getLogger("iamgate.management")


def error_reply(error: ApiError) -> Reply:
    return Reply(error.status, {"message": error.message}, [("x-amzn-ErrorType", error.type)])


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class ManagementApp:
    """API Gateway's REST API (the ``apigateway`` service) over ``store``.

    ``context.config()`` is the configuration being served: its ``settings`` (region, account),
    ``auth.store`` (the identities that may sign) and ``management`` settings are read on every
    request, so a reload applies at once. ``admin_host`` is the address the admin port listens
    on; :class:`iamgate.admin.AdminServer` sets it itself when it starts (:meth:`bound`).
    ``management.authentication: none`` is refused unless that address is a loopback one.
    ``routes`` replaces the routes of :data:`iamgate.management.router.ROUTE_MODULES` (tests).
    """

    def __init__(
        self,
        store: Store,
        context: GatewayContext,
        *,
        admin_host: str | None = None,
        routes: Iterable[Route] | None = None,
    ) -> None:
        self.store = store
        self.context = context
        self.admin_host = admin_host
        self.router = Router(load_routes() if routes is None else routes)

    def bound(self, host: str) -> None:
        """Record the address the admin port listens on."""
        self.admin_host = host

    async def handle(
        self,
        method: str,
        raw_target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        peer: str | None = None,
        secure: bool = False,
    ) -> Reply:
        request_id = str(uuid.uuid4())
        try:
            reply = await self._handle(method, raw_target, headers, body, peer, secure)
        except ApiError as exc:
            reply = error_reply(exc)
        except ConflictError as exc:
            reply = error_reply(ApiError(409, "ConflictException", str(exc)))
        except UnstorableError as exc:  # what no store keeps got past the handler's own checks
            reply = error_reply(ApiError(400, "BadRequestException", f"The request cannot be stored: {exc}"))
        except StoreError as exc:
            log.error("management request %s: the store failed: %s", request_id, exc)
            reply = error_reply(
                ApiError(503, "ServiceUnavailableException", f"The store is unavailable: {exc}")
            )
        except Exception:
            log.exception("management request %s (%s %r) failed", request_id, method, raw_target[:200])
            reply = error_reply(
                ApiError(500, "InternalServerErrorException", f"Internal server error (request {request_id})")
            )
        reply.headers.append(("x-amzn-RequestId", request_id))
        return reply

    async def _handle(
        self,
        method: str,
        raw_target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        peer: str | None,
        secure: bool = False,
    ) -> Reply:
        config = self.context.config()
        settings = config.management
        raw_path, _, raw_query = raw_target.partition(b"?")
        path_text = raw_path.decode("latin-1")
        if not settings.enabled:
            raise ApiError(
                404, "NotFoundException", "The management API is turned off (management.enabled: false)"
            )
        caller: access.Caller | None = None
        if settings.authentication == "none":
            if not is_loopback(self.admin_host):
                raise ApiError(
                    403,
                    "AccessDeniedException",
                    "management.authentication is 'none', which iamgate allows only when the admin port "
                    "listens on a loopback address; it listens on "
                    f"{self.admin_host or 'an unknown address'}. Use --admin-host 127.0.0.1, or "
                    "management.authentication: sigv4",
                )
        else:
            caller = access.authenticate(
                method,
                raw_path,
                raw_query,
                headers,
                body,
                region=config.settings.region,
                identities=config.auth.store,
                peer=peer,
                secure=secure,
            )
            access.authorize(caller, f"apigateway:{method}", unquote(path_text))
        try:
            query = parse_qs(raw_query.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiError(400, "BadRequestException", "The query string is not valid UTF-8") from None
        found = self.router.match(method, path_text, query)
        if not isinstance(found, Matched):
            if found.allowed:
                error = ApiError(
                    405,
                    "MethodNotAllowedException",
                    f"{method} is not allowed on {unquote(path_text)}; allowed: {', '.join(found.allowed)}",
                )
                reply = error_reply(error)
                reply.headers.append(("Allow", ", ".join(found.allowed)))
                return reply
            raise ApiError(
                404,
                "NotFoundException",
                f"No API Gateway management operation matches {method} {unquote(path_text)} "
                "(see docs/management.md for the operations iamgate serves)",
            )
        # no id or filter holds a NUL: refused alike on every store (PostgreSQL cannot even look one up)
        for name, value in found.params.items():
            storable_text(value, f"Invalid request path: the {name} parameter")
        for name, values in query.items():
            storable_text(name, "Invalid request query: a parameter name")
            for value in values:
                storable_text(value, f"Invalid request query: the {name} parameter")
        call = Call(
            method=method,
            path=unquote(path_text),
            params=found.params,
            query=query,
            headers=_header_map(headers),
            body=body,
            store=self.store,
            gateway=self.context,
            caller=None if caller is None else caller.arn,
        )
        undo = access.serve_as(caller)
        try:
            return await found.route.handler(call)
        finally:
            undo()


def _header_map(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out
