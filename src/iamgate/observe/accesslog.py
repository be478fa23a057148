"""Access logs: one line per request, denied and failed ones included (spec gateway §8).

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
import os
import re
import sys
from typing import IO, Any

import orjson

from iamgate.pipeline.exchange import Exchange
from iamgate.pipeline.mapping import authorizer_values
from iamgate.pipeline.stages import time_keys

__all__ = ["AccessLog", "Template", "context_variables"]

_VAR = re.compile(r"\$context\.([A-Za-z0-9_.]+[A-Za-z0-9_])")
_FLUSH_BYTES = 64 * 1024
_FLUSH_DELAY = 0.1


def context_variables(ex: Exchange) -> dict[str, Any]:
    """The ``$context`` values of one finished exchange (absent values are left out)."""
    _, _, clf = time_keys(ex.wall)
    out: dict[str, Any] = {
        "requestId": ex.request_id,
        "extendedRequestId": ex.extended_id,
        "requestTime": clf,
        "requestTimeEpoch": int(ex.wall * 1000),
        "httpMethod": ex.method,
        "protocol": ex.http_version,
        "status": ex.status,
        "responseLength": ex.response_length,
        "responseLatency": round((ex.end_time() - ex.start) * 1000, 3),
        "identity.sourceIp": ex.source_ip,
        "accountId": ex.snapshot.settings.account_id,
    }
    hmap = ex.hmap
    host = hmap.get(b"host")
    if host is not None:
        domain = host.decode("latin-1")
        out["domainName"] = domain
        out["domainPrefix"] = domain.split(".", 1)[0]
    agent = hmap.get(b"user-agent")
    if agent is not None:
        out["identity.userAgent"] = agent.decode("utf-8", "replace")
    if ex.api is not None:
        out["apiId"] = ex.api.id
    stage = ex.stage
    if stage is not None:
        out["stage"] = stage.name
        if ex.path is not None:
            out["path"] = f"/{stage.name}{ex.path}"
    if ex.route is not None:
        out["resourcePath"] = ex.route.resource_path
    if ex.vpce_id is not None:
        out["identity.vpceId"] = ex.vpce_id
    if ex.vpc_id is not None:
        out["identity.vpcId"] = ex.vpc_id
    if ex.integration_latency is not None:
        out["integrationLatency"] = out["integration.latency"] = round(ex.integration_latency * 1000, 3)
    if ex.integration_status is not None:
        out["integrationStatus"] = out["integration.status"] = ex.integration_status
    if ex.error_message is not None:
        out["error.message"] = ex.error_message
        out["error.messageString"] = orjson.dumps(ex.error_message).decode()
    if ex.response_type is not None:
        out["error.responseType"] = ex.response_type
    if ex.throttled_by is not None:
        out["throttle.level"] = ex.throttled_by  # iamgate's: which limit refused (docs/throttling.md)
    decision = ex.decision
    if decision is not None:
        out["decision"] = decision.effect.value
        out["decision.statements"] = [str(r) for r in decision.determining]
        out["decision.mode"] = ex.policy_mode
        if ex.would_deny:
            out["decision.wouldDeny"] = True
        if decision.errors:
            out["decision.errors"] = [e for _, e in decision.errors]
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
        out["decision.caller"] = ex.identity_decision.effect.value
    if ex.extra:
        out.update(ex.extra)
    return out


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
    """A buffered line writer to stdout or a file (reopened on :meth:`reopen`, for rotation)."""

    def __init__(self, destination: str | None) -> None:
        self.destination = destination
        self._file: IO[bytes] | None = None
        self._buffer: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._templates: dict[str, Template] = {}
        self.reopen()

    @property
    def enabled(self) -> bool:
        return self.destination is not None

    def reopen(self) -> None:
        self.flush()
        if self._file is not None and self._file is not sys.stdout.buffer:
            self._file.close()
        if self.destination is None:
            self._file = None
        elif self.destination == "-":
            self._file = sys.stdout.buffer
        else:
            self._file = open(self.destination, "ab")  # noqa: SIM115 - held open until reopen/close

    def log(self, ex: Exchange, template: str | None) -> None:
        if self._file is None:
            return
        values = context_variables(ex)
        if template is None:
            line = orjson.dumps(values) + b"\n"
        else:
            compiled = self._templates.get(template)
            if compiled is None:
                compiled = self._templates[template] = Template(template)
            line = compiled.render(values).encode("utf-8", "replace") + b"\n"
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
        if not self._buffer or self._file is None:
            self._buffer.clear()
            self._size = 0
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:  # a full disk must not take the gateway down
            os.write(2, f"iamgate: access log write failed: {exc}\n".encode())

    def close(self) -> None:
        self.flush()
        if self._file is not None and self._file is not sys.stdout.buffer:
            self._file.close()
        self._file = None
