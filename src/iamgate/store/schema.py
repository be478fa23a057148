"""The store's schema, as numbered migrations (applied in order, each in the transaction that
records it in ``iamgate_schema``). Never edit a released migration: add the next one."""

from __future__ import annotations

from typing import LiteralString

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS"]

SQLITE_MIGRATIONS: list[list[LiteralString]] = [
    # 1: objects and the generation counter
    [
        "CREATE TABLE iamgate_state (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL)",
        "INSERT INTO iamgate_state (id, generation) VALUES (1, 0)",
        "CREATE TABLE iamgate_objects ("
        " kind TEXT NOT NULL, api_id TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, PRIMARY KEY (kind, api_id, id))",
        "CREATE INDEX iamgate_objects_api ON iamgate_objects (api_id)",
    ],
]

POSTGRES_MIGRATIONS: list[list[LiteralString]] = [
    # 1: objects and the generation counter
    [
        "CREATE TABLE iamgate_state (id INTEGER PRIMARY KEY CHECK (id = 1), generation BIGINT NOT NULL)",
        "INSERT INTO iamgate_state (id, generation) VALUES (1, 0)",
        "CREATE TABLE iamgate_objects ("
        " kind TEXT NOT NULL, api_id TEXT NOT NULL, id TEXT NOT NULL, body JSONB NOT NULL,"
        " updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (kind, api_id, id))",
        "CREATE INDEX iamgate_objects_api ON iamgate_objects (api_id)",
    ],
]
