"""Writing many instance rows fast: the driver's own bulk path, below SQLAlchemy's per-row processing.

SQLAlchemy's executemany spends more time converting parameters (JSON, timestamps) than SQLite spends
inserting them; here rows arrive as plain tuples, JSON already serialised with orjson. SQLite gets one
`executemany` of `INSERT ... ON CONFLICT DO NOTHING`; PostgreSQL gets COPY (~6x its executemany).
Callers remove duplicates first: COPY has no ON CONFLICT, so a row that races in from a concurrent
import fails the chunk, whose transaction then rolls back whole."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection

COLUMNS = ("task_id", "source_id", "image_id", "input_text", "options", "raw_output", "human_preferred_output",
           "split", "status", "rkey", "provenance", "created_at")


def as_json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def insert_instances(connection: Connection, rows: list[tuple]) -> None:
    """Inserts `rows`, tuples in COLUMNS order with JSON columns as text and created_at an aware datetime."""
    if not rows:
        return
    columns = ", ".join(COLUMNS)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY instance ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite keeps timestamps as UTC text in SQLAlchemy's format ("2026-01-02 03:04:05.000006").
    created, stamps = COLUMNS.index("created_at"), {}
    text_rows = [row[:created] + (stamps.get(row[created]) or stamps.setdefault(row[created], _sqlite_time(row[created])),)
                 + row[created + 1:] for row in rows]  # a chunk shares one timestamp: format it once
    placeholders = ", ".join("?" for _ in COLUMNS)
    connection.connection.driver_connection.executemany(
        f"INSERT INTO instance ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", text_rows)


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
