"""The live screens: the decision stream (``/console/decisions``, its server-sent events at
``/console/decisions/stream``), one decision's explanation (``/console/decisions/{id}``) and
the request rates the overview charts (``/console/rates``).

Who sees what: an event of API ``ID`` is shown (in the stream and as an explanation) only to a
caller whose identity policies allow ``apigateway:GET`` on ``/restapis/ID``; an event that
reached no API (no route matched) to one allowed ``apigateway:GET`` on ``/restapis``; the rates
too. Values reach the page as JSON in the events and are put into it with ``textContent`` by
static/live.js, never as HTML.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import orjson

from iamgate.admin import Streamed, StreamSink
from iamgate.console.calls import may
from iamgate.console.feed import POLL, Feed
from iamgate.management.core import ApiError, Reply
from iamgate.observe.decisions import KINDS, LABELS

if TYPE_CHECKING:
    from iamgate.console.app import ConsoleApp, Request

__all__ = ["BACKLOG", "Filters", "decision_page", "explanation_page", "rates", "stream"]

BACKLOG: Final = 200  # recent events a new viewer is sent first
RECHECK: Final = 5.0  # seconds between two checks of a viewer's session and authorization
HEARTBEAT: Final = 15.0
MAX_FILTER: Final = 200


@dataclass(frozen=True, slots=True)
class Filters:
    """What a viewer asked to see (the page's query string, so a view can be bookmarked)."""

    decision: str = ""
    api: str = ""
    status: str = ""  # "403", or a class: "4xx"
    path: str = ""  # a substring of the path

    @classmethod
    def read(cls, query: dict[str, str]) -> Filters:
        """The filters of a query string; :class:`ApiError` 400 for a value that cannot be one."""
        decision = query.get("decision", "").strip()
        if decision and decision not in KINDS:
            raise ApiError(400, "BadRequestException", f"decision must be one of {', '.join(KINDS)}")
        status = query.get("status", "").strip().lower()
        if status and not (
            (len(status) == 3 and status.isdigit())
            or (len(status) == 3 and status[0] in "12345" and status[1:] == "xx")
        ):
            raise ApiError(400, "BadRequestException", "status must be a status code (403) or a class (4xx)")
        api = query.get("api", "").strip()[:MAX_FILTER]
        path = query.get("path", "")[:MAX_FILTER]
        return cls(decision, api, status, path)

    def match(self, event: dict[str, Any]) -> bool:
        if self.decision and event["decision"] != self.decision:
            return False
        if self.api and event["api"] != self.api:
            return False
        if self.status:
            code = str(event["status"])
            if self.status.endswith("xx") and code[:1] != self.status[0]:
                return False
            if not self.status.endswith("xx") and code != self.status:
                return False
        return not self.path or self.path in event["path"]

    def query(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("decision", self.decision),
                ("api", self.api),
                ("status", self.status),
                ("path", self.path),
            )
            if v
        }


class Readable:
    """Which events a caller may see, by API, asked of its identity policies once per API (and
    again after :data:`RECHECK` seconds)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.known: dict[str | None, bool] = {}

    def __call__(self, api: str | None) -> bool:
        found = self.known.get(api)
        if found is None:
            caller = self.request.caller
            assert caller is not None
            found = self.known[api] = may(caller, "/restapis" if api is None else f"/restapis/{api}")
        return found

    def forget(self) -> None:
        self.known.clear()


def _feed(app: ConsoleApp) -> Feed:
    return app.feed


async def decision_page(app: ConsoleApp, request: Request) -> Reply:
    filters = Filters.read(request.query)
    feed = _feed(app)
    await feed.refresh(events=False)
    apis = sorted(api.id for api in request.config.apis)
    target = "/console/decisions/stream"
    query = filters.query()
    if query:
        target += "?" + urlencode(query)
    return app.render(
        request,
        "decisions.html",
        filters=filters,
        kinds=[(k, LABELS[k]) for k in KINDS],
        apis=apis,
        stream_url=target,
        feed=feed,
    )


async def stream(app: ConsoleApp, request: Request) -> Streamed:
    """Server-sent events: ``decision`` (one request, JSON), ``stats`` (what this viewer and the
    feed dropped), ``end`` (the session ended). Never waits for the viewer: an event its
    queue has no room for is dropped and counted."""
    filters = Filters.read(request.query)
    feed = _feed(app)
    readable = Readable(request)
    last_id = request.header(b"last-event-id")
    await feed.refresh()
    cursor = int(last_id) if last_id is not None and last_id.isdigit() else max(0, feed.seq - BACKLOG)
    cursor = min(cursor, feed.seq)

    async def produce(sink: StreamSink) -> None:
        nonlocal cursor
        mine = 0
        sent_stats: tuple[int, int, int] | None = None
        checked = beat = time.monotonic()
        feed.viewers += 1
        try:
            sink.write(b"retry: 2000\n\n")
            while sink.open:
                now = time.monotonic()
                if now - checked >= RECHECK:
                    checked = now
                    readable.forget()
                    if not app.still_signed_in(request):
                        sink.write(b'event: end\ndata: "signed out"\n\n')
                        return
                events, lost = feed.after(cursor)
                if lost:
                    mine += lost
                    feed.drop(lost)
                room = sink.room()
                chunks: list[bytes] = []
                refused = 0
                for seq, event in events:
                    cursor = seq
                    if not filters.match(event) or not readable(event["api"]):
                        continue
                    chunk = b"id: %d\nevent: decision\ndata: %b\n\n" % (seq, orjson.dumps(event))
                    if len(chunk) > room:
                        refused += 1  # no room in this viewer's queue: dropped, counted
                        continue
                    room -= len(chunk)
                    chunks.append(chunk)
                if chunks:
                    sink.write(b"".join(chunks))  # one write per refresh, within the room left
                if refused:
                    mine += refused
                    feed.drop(refused)
                stats = (mine, feed.dropped, feed.missed)
                if stats != sent_stats:
                    data = {"dropped": mine, "droppedAll": feed.dropped, "missed": feed.missed}
                    if sink.write(b"event: stats\ndata: %b\n\n" % orjson.dumps(data)):
                        sent_stats = stats
                if now - beat >= HEARTBEAT and sink.write(b": keep-alive\n\n"):
                    beat = now
                await asyncio.sleep(POLL)
                await feed.refresh()
        finally:
            feed.viewers -= 1

    return Streamed(produce)


async def explanation_page(app: ConsoleApp, request: Request) -> Reply:
    feed = _feed(app)
    found = await feed.explain(request.params["id"])
    if found is None:
        return app.render(
            request,
            "error.html",
            404,
            title="Not kept",
            message="This request is no longer kept: each serving process keeps its last 1,000.",
            code=404,
        )
    event = found["event"]
    caller = request.caller
    assert caller is not None
    api = event.get("api")
    path = "/restapis" if api is None else f"/restapis/{api}"
    if not may(caller, path):
        raise ApiError(
            403,
            "AccessDeniedException",
            f"User: {caller.arn} is not authorized to perform: apigateway:GET on resource: "
            f"arn:aws:apigateway:{request.config.settings.region}::{path}",
        )
    explanations = [
        {**explanation, "statement_rows": _statements(explanation)} for explanation in found["explanations"]
    ]
    return app.render(
        request,
        "decision.html",
        event=event,
        label=LABELS.get(event["decision"], event["decision"]),
        explanations=explanations,
        denied_by=found.get("deniedBy"),
    )


def _statements(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """Each statement of the policy with its trace: its JSON as written, whether it applied,
    whether it decided, each element's and condition's check."""
    try:
        document = json.loads(explanation.get("policy") or "{}")
    except ValueError:
        document = {}
    raw = document.get("Statement") if isinstance(document, dict) else None
    written = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    deciding = {s["index"] for s in explanation.get("statements", [])}
    out: list[dict[str, Any]] = []
    for trace in explanation.get("trace") or []:
        index = trace["index"]
        source = written[index] if 0 <= index < len(written) else None
        out.append(
            {
                **trace,
                "deciding": index in deciding,
                "source": json.dumps(source, indent=2, ensure_ascii=False) if source is not None else "",
            }
        )
    return out


async def rates(app: ConsoleApp, request: Request) -> Reply:
    """Totals per kind of every serving process now, and who serves: the overview's chart
    takes the difference from one second to the next."""
    caller = request.caller
    assert caller is not None
    if not may(caller, "/restapis"):
        raise ApiError(403, "AccessDeniedException", "not authorized to read the gateway's rates")
    feed = _feed(app)
    await feed.refresh(events=False)
    body = {
        "time": time.time(),
        "totals": feed.totals,
        "workers": feed.workers,
        "dropped": feed.dropped,
        "missed": feed.missed,
        "viewers": feed.viewers,
    }
    return Reply(200, orjson.dumps(body), [("Cache-Control", "no-store")], "application/json")
