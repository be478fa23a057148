"""What a store is: durable objects of the management API, in transactions, with change notices.

A store keeps **objects**: JSON documents identified by ``(kind, api_id, id)``; ``api_id`` is
``""`` for objects that belong to no API. The kinds and their documents:

==============  ==================  ==============================================================
kind            key                 document
==============  ==================  ==============================================================
``restapi``     ("", api id)        the draft of a REST API, in the management API's shape
                                    (``iamgate.management``): what edits change
``deployment``  (api id, dep. id)   ``{"id", "description", "createdDate", "definition"}``; the
                                    definition is the API as a configuration file's ``apis``
                                    entry without ``stages`` (docs/configuration.md). Immutable.
``stage``       (api id, name)      ``{"stageName", "deploymentId", "description", "createdDate",
                                    "lastUpdatedDate", "config"}``; ``config`` is the stage as a
                                    configuration file's stage entry (variables, throttling, ...)
``apikey``      ("", key id)        a configuration file's ``api_keys`` entry plus
                                    ``createdDate``/``lastUpdatedDate``/``description``
``usageplan``   ("", plan id)       a configuration file's ``usage_plans`` entry plus
                                    ``description``
``domainname``  ("", domain name)   a custom domain name in the management API's shape, with its
                                    base path mappings and certificate (served at once: domains
                                    have no deployments, as on API Gateway)
==============  ==================  ==============================================================

What the gateway serves is composed from stages, their deployments, API keys and usage plans
(:func:`iamgate.store.compose.served_config`), never from drafts: editing an API changes
nothing until a deployment is created and a stage points at it, as on API Gateway.

Every transaction that writes increments the store's **generation** when it commits; watchers
are told of new generations (PostgreSQL: ``LISTEN``/``NOTIFY``; SQLite: polling), and a reader
takes everything it serves from one read transaction, so a half-written change is never seen.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "KINDS",
    "ConflictError",
    "Doc",
    "Served",
    "Store",
    "StoreError",
    "Transaction",
    "UnstorableError",
    "Watch",
    "Watcher",
    "check_storable",
    "mask",
]

log = logging.getLogger("iamgate.store")

KINDS = ("restapi", "deployment", "stage", "apikey", "usageplan", "domainname")

Doc = dict[str, Any]


class StoreError(Exception):
    """The store cannot be opened or used (unreachable, wrong schema, bad URL)."""


class ConflictError(StoreError):
    """A write lost a race it must not silently win (e.g. creating an object that exists)."""


class UnstorableError(StoreError):
    """A document (or key) holds what a store cannot keep; nothing of the transaction is written.
    Every store refuses the same documents (:func:`check_storable`), whatever it could hold."""


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired surrogate"
    return None


def _unstorable_at(value: Any, at: str) -> str | None:
    """``"/where: what"`` of the first thing in ``value`` no store keeps (None: nothing)."""
    if isinstance(value, str):
        bad = _unstorable_text(value)
        return None if bad is None else f"{at or '/'}: {bad}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{at or '/'}: {value!r} is not a JSON number"
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{at}/{key}"
            bad = _unstorable_text(key) if isinstance(key, str) else None
            found = f"{where}: {bad} in a name" if bad is not None else _unstorable_at(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            found = _unstorable_at(item, f"{at}/{n}")
            if found is not None:
                return found
    return None


def check_storable(kind: str, api_id: str, id: str, doc: Doc) -> None:
    """Raise :class:`UnstorableError` for what no store keeps: a NUL or a lone surrogate in a
    key or a string, a number that is not finite. Callers validate their input first; this is
    the last line, so that a store never fails halfway (PostgreSQL) or keeps what another store
    would refuse (SQLite)."""
    name = f"{kind} {api_id + '/' if api_id else ''}{id}"
    for part in (kind, api_id, id):
        bad = _unstorable_text(part)
        if bad is not None:
            raise UnstorableError(f"{name!r}: the key holds {bad}; no store can keep it")
    found = _unstorable_at(doc, "")
    if found is not None:
        raise UnstorableError(f"{name}: no store can keep this document ({found})")


@dataclass(frozen=True, slots=True)
class Served:
    """Everything the gateway serves, read in one transaction."""

    generation: int
    stages: list[tuple[str, str, Doc]]  # (api id, stage name, stage document)
    deployments: dict[tuple[str, str], Doc]  # (api id, deployment id) -> deployment document
    api_keys: list[Doc]
    usage_plans: list[Doc]
    domains: list[Doc] = field(default_factory=list)  # custom domain names, with their mappings
    # the deployments as their JSON texts instead of documents (the state as a worker receives
    # it: iamgate.store.compose decodes only what its reload needs)
    texts: dict[tuple[str, str], str] = field(default_factory=dict)


class Transaction(Protocol):
    """One transaction: reads see a consistent state; writes commit together or not at all."""

    def get(self, kind: str, api_id: str, id: str) -> Doc | None: ...

    def page(self, kind: str, api_id: str, start: str, limit: int) -> list[tuple[str, Doc]]:
        """``(id, document)`` of at most ``limit`` objects of ``kind`` and ``api_id`` whose id is
        ``start`` or after it, ordered by id (code points: the order of :meth:`list`). A
        management API list reads the page it answers, not every object."""
        ...

    def list(self, kind: str, api_id: str | None = None) -> list[tuple[str, str, Doc]]:
        """``(api_id, id, document)`` of every object of ``kind`` (of one API when given), ordered
        by api id, then id."""
        ...

    def insert(self, kind: str, api_id: str, id: str, doc: Doc) -> None:
        """Create an object; :class:`ConflictError` if it exists."""
        ...

    def put(self, kind: str, api_id: str, id: str, doc: Doc) -> None:
        """Create or replace an object."""
        ...

    def delete(self, kind: str, api_id: str, id: str) -> bool:
        """Remove an object; whether it existed."""
        ...

    def delete_api(self, api_id: str) -> int:
        """Remove an API's draft and everything that belongs to it; how many objects."""
        ...


class Watch(Protocol):
    def stop(self) -> None: ...


class Watcher:
    """What every store's watcher shares: a daemon thread running :meth:`_run` (how the store
    learns of commits), ``on_change`` called once per new generation (its failures logged, never
    fatal), and :meth:`stop`. The generation is read before the thread starts, so no commit made
    after ``watch()`` returns is missed."""

    def __init__(self, generation: int, on_change: Callable[[int], None]) -> None:
        self.on_change = on_change
        self.last = generation
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="iamgate-store-watch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        raise NotImplementedError

    def _seen(self, generation: int) -> None:
        if generation != self.last:
            self.last = generation
            try:
                self.on_change(generation)
            except Exception:
                log.exception("the store watcher's callback failed (generation %d)", generation)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not threading.current_thread():
            self.thread.join(5)


class Store(Protocol):
    url: str  # as given, with any password masked

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A read-write transaction; committed when the block ends normally, rolled back when it
        raises. Concurrent writers are serialised (one waits for the other)."""
        ...

    def served(self) -> Served: ...

    def generation(self) -> int: ...

    def watch(self, on_change: Callable[[int], None]) -> Watch:
        """Call ``on_change(generation)`` from a background thread within about 250 ms of every
        commit that wrote (coalesced: a burst of commits may give one call)."""
        ...

    def close(self) -> None: ...


def mask(url: str) -> str:
    """A store URL fit for logs: the password (``user:PASSWORD@`` or ``password=``) replaced by
    ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = re.sub(r"([?&]password=)[^&]*", r"\1***", rest)
    if "@" not in rest:
        return f"{scheme}://{rest}"
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"
