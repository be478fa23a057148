"""Access logs: one line per request, denied and failed ones included (as API Gateway's).

The default line is JSON whose keys are API Gateway's ``$context`` variable names
(``requestId``, ``identity.sourceIp``, ``resourcePath``, ``error.responseType`` ...) plus the
policy decision (``decision``, ``decision.statements``, ``decision.mode``) and, for a request
a limit refused, ``throttle.level``. A stage may give an
AWS-style template instead (``$context.requestId $context.status ...``); a variable without a
value renders as ``-`` as on AWS. Lines are buffered and written at most every 100 ms or every
64 KiB, so logging costs no system call per request.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from iamgate.clock import perf_counter, time_keys, time_keys_cache
from iamgate.observe.drain import CLOSE_WAIT, Drain
from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.mapping import authorizer_values
from iamgate.policy.memo import SecondSight

if TYPE_CHECKING:
    from iamgate.policy import Decision

__all__ = ["AccessLog", "Template", "context_variables", "json_line"]

_VAR: Final = re.compile(r"\$context\.([A-Za-z0-9_.]+[A-Za-z0-9_])")
_FLUSH_BYTES: Final = 64 * 1024
_FLUSH_DELAY: Final = 0.1
_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE


_MEMO_LIMIT: Final = 4096
# id(decision) -> (the decision, effect, determining statements, errors): decisions are memoised
# by the policy engine, so the same few objects come back on every request. The entry holds the
# decision itself, so its id cannot be reused by another object while the entry exists.
_decision_memo: Final[SecondSight[int, tuple[Decision, str, tuple[str, ...], tuple[str, ...] | None]]] = (
    SecondSight(_MEMO_LIMIT)
)
# Host header -> (domainName, domainPrefix)
_host_memo: Final[SecondSight[bytes, tuple[str, str]]] = SecondSight(_MEMO_LIMIT)


def _decision_parts(decision: Decision) -> tuple[Decision, str, tuple[str, ...], tuple[str, ...] | None]:
    """(the decision, its effect, its determining statements, its errors or None), memoised."""
    found = _decision_memo.found.get(id(decision))
    if found is None or found[0] is not decision:
        errors = tuple(e for _, e in decision.errors) if decision.errors else None
        found = (decision, decision.effect.value, tuple(str(r) for r in decision.determining), errors)
        _decision_memo.keep(id(decision), found)
    return found


def context_variables(ex: Exchange) -> dict[str, Any]:
    """The ``$context`` values of one finished exchange (absent values are left out).

    On every request's path (the access log): written for speed, with one dictionary display
    for the values every request has and memos for what repeats (the decision's parts, the
    Host header's split). Latencies are in milliseconds rounded to the microsecond (half up;
    ``round(x, 3)`` costs ten times more)."""
    wall = ex.wall
    cache = time_keys_cache
    clf = cache.clf if cache.second == int(wall) else time_keys(wall)[2]
    out: dict[str, Any] = {
        "requestId": ex.request_id,
        "extendedRequestId": ex.extended_id,
        "requestTime": clf,
        "requestTimeEpoch": int(wall * 1000),
        "httpMethod": ex.method,
        "protocol": ex.http_version,
        "status": ex.status,
        "responseLength": ex.response_length,
        "responseLatency": (((ex.end or perf_counter()) - ex.start) * 1e6 + 0.5) // 1.0 / 1000.0,
        "identity.sourceIp": ex.source_ip,
        "accountId": ex.snapshot.settings.account_id,
    }
    hmap = ex.hmap
    host = hmap.get(b"host")
    if host is not None:
        names = _host_memo.found.get(host)
        if names is None:
            names = _host_names(host)
        out["domainName"], out["domainPrefix"] = names
    agent = hmap.get(b"user-agent")
    if agent is not None:
        out["identity.userAgent"] = agent.decode("utf-8", "replace")
    api = ex.api
    if api is not None:
        out["apiId"] = api.id
    stage = ex.stage
    if stage is not None:
        out["stage"] = stage.name
        if ex.path is not None:
            out["path"] = ex.context_path
    if ex.base_path is not None:
        out["customDomain.basePathMatched"] = ex.base_path or "(none)"
    route = ex.route
    if route is not None:
        out["resourcePath"] = route.resource_path
    tls = ex.tls
    if tls is not None and tls.peer_der is not None:
        cert = tls.client_cert()
        if cert is not None:
            validity = cert["validity"]
            out["identity.clientCert.clientCertPem"] = cert["clientCertPem"]
            out["identity.clientCert.subjectDN"] = cert["subjectDN"]
            out["identity.clientCert.issuerDN"] = cert["issuerDN"]
            out["identity.clientCert.serialNumber"] = cert["serialNumber"]
            out["identity.clientCert.validity.notBefore"] = validity["notBefore"]
            out["identity.clientCert.validity.notAfter"] = validity["notAfter"]
    if ex.vpce_id is not None:
        out["identity.vpceId"] = ex.vpce_id
    if ex.vpc_id is not None:
        out["identity.vpcId"] = ex.vpc_id
    latency = ex.integration_latency
    if latency is not None:
        out["integrationLatency"] = out["integration.latency"] = (latency * 1e6 + 0.5) // 1.0 / 1000.0
    integration_status = ex.integration_status
    if integration_status is not None:
        out["integrationStatus"] = out["integration.status"] = integration_status
    message = ex.error_message
    if message is not None:
        out["error.message"] = message
        out["error.messageString"] = orjson.dumps(message).decode()
    if ex.response_type is not None:
        out["error.responseType"] = ex.response_type
    if ex.validation_error is not None:  # request validation (docs/request-validation.md)
        out["error.validationErrorString"] = ex.validation_error
    if ex.throttled_by is not None:
        out["throttle.level"] = ex.throttled_by  # iamgate's: which limit refused (docs/throttling.md)
    decision = ex.decision
    if decision is not None:
        found = _decision_parts(decision)
        out["decision"] = found[1]
        out["decision.statements"] = found[2]
        out["decision.mode"] = ex.policy_mode
        if ex.would_deny:
            out["decision.wouldDeny"] = True
        if found[3] is not None:
            out["decision.errors"] = found[3]
    scoped = ex.scoped
    if scoped is not None:  # stage and route policies (iamgate's extension): each named
        layers = [] if decision is None else [("api", decision, ex.policy_mode or "enforce")]
        out["decision.policies"] = [
            {
                "policy": label,
                "decision": d.effect.value,
                "statements": [str(r) for r in d.determining],
                "mode": mode,
            }
            for label, d, mode in (*layers, *scoped)
        ]
        denier = next((d for label, d, _ in scoped if label == ex.denied_by), None)
        if denier is not None or decision is None:
            # a stage's or route's policy refused (or there is no API policy): its decision is
            # the request's; decision.policies has every policy's
            deciding = denier if denier is not None else scoped[-1][1]
            parts = _decision_parts(deciding)
            out["decision"] = parts[1]
            out["decision.statements"] = parts[2]
            if ex.would_deny:
                out["decision.wouldDeny"] = True
    if ex.denied_by is not None:
        out["decision.policy"] = ex.denied_by
    identity = ex.identity
    if identity is not None:
        # as on AWS: caller and user are the principal id (AIDA..., AROA...:session), userArn the ARN
        out["identity.caller"] = out["identity.user"] = identity.principal_id
        out["identity.userArn"] = identity.caller_arn
        out["identity.accountId"] = identity.account_id
        if identity.account is not None and identity.account.organization_id:
            out["identity.principalOrgId"] = identity.account.organization_id
        if ex.access_key_id is not None:
            out["identity.accessKey"] = ex.access_key_id
    if ex.authorizer is not None or ex.claims is not None:
        for name, value in authorizer_values(ex).items():
            out[f"authorizer.{name}"] = value
    if ex.authorizer_error is not None:
        out["authorizer.error"] = ex.authorizer_error
    if ex.api_key is not None:
        out["identity.apiKey"] = ex.api_key.value
        out["identity.apiKeyId"] = ex.api_key.id
    if ex.identity_decision is not None:
        out["decision.caller"] = ex.identity_decision.effect._value_
    if ex.extra:
        out.update(ex.extra)
    return out


# (method, protocol, source ip, account, Host, User-Agent, API, stage, path, resource path,
# decision, mode) -> the line's pieces between the per-request values, as JSON
_pieces_memo: Final[SecondSight[tuple[object, ...], tuple[bytes, bytes, bytes]]] = SecondSight(_MEMO_LIMIT)


def json_line(ex: Exchange) -> bytes:
    """The default access-log line: ``orjson.dumps(context_variables(ex))`` and a newline.

    For a proxied exchange without the rarer values, most of the line repeats from request to
    request: the pieces between the per-request values (ids, times, status, length, latencies)
    are memoised as JSON, keyed by every value they hold, and the per-request values are
    serialized by orjson in one call. Any other exchange takes the general way.
    tests/observe/test_accesslog_line.py checks that both give the same bytes."""
    tls = ex.tls
    if tls is not None and tls.peer_der is not None:
        # the certificate's PEM is left out of the default line (a kilobyte on every request);
        # an AWS-style format may ask for $context.identity.clientCert.clientCertPem
        shown = context_variables(ex)
        del shown["identity.clientCert.clientCertPem"]
        return orjson.dumps(shown, option=_NEWLINE)
    latency = ex.integration_latency
    integration_status = ex.integration_status
    decision = ex.decision
    if (
        latency is None
        or integration_status is None
        or ex.error_message is not None
        or ex.response_type is not None
        or ex.vpce_id is not None
        or ex.vpc_id is not None
        or ex.throttled_by is not None
        or ex.identity is not None
        or ex.authorizer is not None
        or ex.claims is not None
        or ex.authorizer_error is not None
        or ex.api_key is not None
        or ex.identity_decision is not None
        or ex.extra
        or ex.would_deny
        or ex.base_path is not None
        or ex.scoped is not None
    ):
        return orjson.dumps(context_variables(ex), option=_NEWLINE)
    if decision is not None:
        parts = _decision_parts(decision)
        if parts[3] is not None:
            return orjson.dumps(context_variables(ex), option=_NEWLINE)
        decided: tuple[str, tuple[str, ...], str | None] | None = (parts[1], parts[2], ex.policy_mode)
    else:
        decided = None
    hmap = ex.hmap
    api, stage, route = ex.api, ex.stage, ex.route
    key = (
        ex.method,
        ex.http_version,
        ex.source_ip,
        ex.snapshot.settings.account_id,
        hmap.get(b"host"),
        hmap.get(b"user-agent"),
        None if api is None else api.id,
        None if stage is None else stage.name,
        ex.path,
        None if route is None else route.resource_path,
        decided,
    )
    pieces = _pieces_memo.found.get(key)
    if pieces is None:
        # built the second time a key is seen: a stream of distinct paths or client addresses
        # takes the general way and a set lookup each
        if not _pieces_memo.again(key):
            return orjson.dumps(context_variables(ex), option=_NEWLINE)
        pieces = _pieces(ex, key)
    wall = ex.wall
    cache = time_keys_cache
    ms = (latency * 1e6 + 0.5) // 1.0 / 1000.0
    # none of these values holds a comma: ids (hex and dashes, base64), the CLF time, numbers
    values = orjson.dumps(
        (
            0,
            ex.request_id,
            ex.extended_id,
            cache.clf if cache.second == int(wall) else time_keys(wall)[2],
            int(wall * 1000),
            ex.status,
            ex.response_length,
            (((ex.end or perf_counter()) - ex.start) * 1e6 + 0.5) // 1.0 / 1000.0,
            ms,
            integration_status,
            0,
        )
    ).split(b",")
    return b"".join(
        (
            b'{"requestId":',
            values[1],
            b',"extendedRequestId":',
            values[2],
            b',"requestTime":',
            values[3],
            b',"requestTimeEpoch":',
            values[4],
            pieces[0],  # ,"httpMethod":...,"protocol":...
            b',"status":',
            values[5],
            b',"responseLength":',
            values[6],
            b',"responseLatency":',
            values[7],
            pieces[1],  # ,"identity.sourceIp":... up to "resourcePath"
            b',"integrationLatency":',
            values[8],
            b',"integration.latency":',
            values[8],
            b',"integrationStatus":',
            values[9],
            b',"integration.status":',
            values[9],
            pieces[2],  # the decision, "}" and the newline
        )
    )


def _pieces(ex: Exchange, key: tuple[object, ...]) -> tuple[bytes, bytes, bytes]:
    """The JSON between the per-request values of a line like ``ex``'s (see :func:`json_line`)."""
    values = context_variables(ex)
    names = list(values)
    first = names.index("responseLatency") + 1
    last = names.index("integrationLatency")
    middle = {name: values[name] for name in names[first:last]}
    decision = {name: values[name] for name in names[last + 4 :]}
    pieces = (
        b"," + orjson.dumps({"httpMethod": values["httpMethod"], "protocol": values["protocol"]})[1:-1],
        b"," + orjson.dumps(middle)[1:-1],
        (b"," + orjson.dumps(decision)[1:-1] if decision else b"") + b"}\n",
    )
    host, agent = ex.hmap.get(b"host"), ex.hmap.get(b"user-agent")  # key[4], key[5]
    if (host is None or len(host) <= 256) and (agent is None or len(agent) <= 256):
        _pieces_memo.keep(key, pieces)
    return pieces


def _host_names(host: bytes) -> tuple[str, str]:
    domain = host.decode("latin-1")
    if not domain.startswith("["):  # no port: API Gateway's hosts never carry one
        name, colon, port = domain.rpartition(":")
        if colon and port.isdigit():
            domain = name
    names = (domain, domain.split(".", 1)[0])
    _host_memo.keep(host, names)
    return names


class Template:
    """An AWS-style access-log format: ``$context.x`` replaced, ``-`` when there is no value."""

    def __init__(self, text: str) -> None:
        self.pieces: list[str | tuple[str]] = []
        last = 0
        for m in _VAR.finditer(text):
            self.pieces.append(text[last : m.start()])
            self.pieces.append((m.group(1),))
            last = m.end()
        self.pieces.append(text[last:])

    def render(self, values: dict[str, Any]) -> str:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                value = values.get(piece[0])
                if value is None:
                    out.append("-")
                elif isinstance(value, str):
                    out.append(value)
                else:
                    out.append(orjson.dumps(value).decode())
        return "".join(out)


class AccessLog:
    """A buffered line writer to stdout or a file (reopened on :meth:`reopen`, for rotation).

    The lines go through a :class:`~iamgate.observe.drain.Drain`: written by a thread of their
    own, so that a stalled reader (a full pipe on stdout) never blocks the event loop; what a
    full backlog cannot take is dropped and handed to ``on_drop`` (the number of lines)."""

    def __init__(self, destination: str | None, on_drop: Callable[[int], None] | None = None) -> None:
        self.destination = destination
        self.enabled = destination is not None
        self.on_drop = on_drop
        self._drain: Drain | None = None
        self._buffer: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._templates: dict[str, Template] = {}
        self.reopen()

    def reopen(self) -> None:
        """Write what is buffered, then open the destination again (a rotated file is
        recreated; the old file's backlog is written to it by its own thread, not waited for)."""
        self.flush()
        if self.destination == "-" and self._drain is not None:
            return  # stdout is not reopened
        if self._drain is not None:
            self._drain.close(timeout=0.0)
            self._drain = None
        if self.destination == "-":
            self._drain = Drain(sys.stdout.buffer, name="access", on_drop=self.on_drop)
        elif self.destination is not None:
            target = open(self.destination, "ab")  # noqa: SIM115 - closed by the drain's thread
            self._drain = Drain(target, name="access", close_target=True, on_drop=self.on_drop)

    def log(self, ex: Exchange, template: str | None) -> None:
        if self._drain is None:
            return
        if template is None:
            line = json_line(ex)
        else:
            compiled = self._templates.get(template)
            if compiled is None:
                compiled = self._templates[template] = Template(template)
            line = compiled.render(context_variables(ex)).encode("utf-8", "replace") + b"\n"
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(_FLUSH_DELAY, self._flush_timer)
            except RuntimeError:  # no loop (tests, shutdown): write now
                self.flush()

    def _flush_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer or self._drain is None:
            self._buffer.clear()
            self._size = 0
            return
        lines = len(self._buffer)
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        self._drain.put(data, lines)  # never blocks; a full backlog drops and counts

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Write what is buffered and stop, waiting up to ``wait`` seconds for the backlog (a
        stalled reader does not hold the process longer)."""
        self.flush()
        if self._drain is not None:
            self._drain.close(timeout=wait)
        self._drain = None
