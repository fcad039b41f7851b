"""Writing many instance rows fast: the driver's own bulk path, below SQLAlchemy's per-row processing.

SQLAlchemy's executemany spends more time converting parameters (JSON, timestamps) than SQLite spends
inserting them; here rows arrive as plain tuples, JSON already serialised with orjson. SQLite gets one
`executemany` of `INSERT ... ON CONFLICT DO NOTHING`; PostgreSQL gets COPY (~6x its executemany) into a
temporary table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`. Either way a row whose
(task, source id) is already there is skipped, and the caller learns how many were really inserted."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection

COLUMNS = ("task_id", "source_id", "image_id", "input_text", "options", "raw_output", "human_preferred_output",
           "split", "status", "rkey", "provenance", "created_at")


def as_json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def insert_instances(connection: Connection, rows: list[tuple]) -> int:
    """Inserts `rows` (tuples in COLUMNS order, JSON columns as text, created_at an aware datetime) that
    are not there yet; returns how many were inserted."""
    if not rows:
        return 0
    columns = ", ".join(COLUMNS)
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = driver.cursor()
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS incoming_instance ON COMMIT DELETE ROWS AS "
                       f"SELECT {columns} FROM instance WITH NO DATA")
        with cursor.copy(f"COPY incoming_instance ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO instance ({columns}) SELECT {columns} FROM incoming_instance "
                       "ON CONFLICT DO NOTHING")
        inserted = cursor.rowcount
        cursor.execute("TRUNCATE incoming_instance")  # the next chunk may share this transaction
        return inserted
    # SQLite keeps timestamps as UTC text in SQLAlchemy's format ("2026-01-02 03:04:05.000006").
    created, stamps = COLUMNS.index("created_at"), {}
    text_rows = [row[:created] + (stamps.get(row[created]) or stamps.setdefault(row[created], _sqlite_time(row[created])),)
                 + row[created + 1:] for row in rows]  # a chunk shares one timestamp: format it once
    placeholders = ", ".join("?" for _ in COLUMNS)
    before = driver.total_changes
    driver.executemany(f"INSERT INTO instance ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING",
                       text_rows)
    return driver.total_changes - before


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
