"""The import's writes: many instance and image rows fast, through the driver's own bulk path below
SQLAlchemy's per-row processing, and the rows an import finds or makes on its way (a dataset, a task, a pool,
conversation items). The import pipeline (`app/ingest`) reads and checks; every row it writes is written here.

SQLAlchemy's executemany spends more time converting parameters (JSON, timestamps) than SQLite spends
inserting them; here rows arrive as plain tuples, JSON already serialised with orjson. SQLite gets one
`executemany` of `INSERT ... ON CONFLICT DO NOTHING`; PostgreSQL gets COPY (~6x its executemany) into a
temporary table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`. Either way a row whose
(task, source id) is already there is skipped, and the caller learns how many were really inserted."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, exists, false, insert, literal, select

COLUMNS = ("task_id", "source_id", "image_id", "input_text", "options", "raw_output", "human_preferred_output",
           "split", "status", "rkey", "provenance")  # and created_at, the same for every row of a call


def stable_rkey(*identity: object) -> int:
    """A record's random key, derived from what identifies it (task + source id, pool + position): uniform
    in [0, 2^31) and the same on every import of the same data, so seeded samples are reproducible."""
    digest = hashlib.blake2b("\0".join(map(str, identity)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def as_json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def insert_instances(connection: Connection, rows: list[tuple], created_at: datetime) -> int:
    """Inserts `rows` (tuples in COLUMNS order, JSON columns as text) that are not there yet, all created
    at `created_at`; returns how many were inserted."""
    if not rows:
        return 0
    columns = ", ".join(COLUMNS) + ", created_at"
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = driver.cursor()
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS incoming_instance ON COMMIT DELETE ROWS AS "
                       f"SELECT {columns} FROM instance WITH NO DATA")
        with cursor.copy(f"COPY incoming_instance ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, created_at))
        cursor.execute(f"INSERT INTO instance ({columns}) SELECT {columns} FROM incoming_instance "
                       "ON CONFLICT DO NOTHING")
        inserted = cursor.rowcount
        cursor.execute("TRUNCATE incoming_instance")  # the next chunk may share this transaction
        return inserted
    # The stamp is ours, not user input, so it is written into the statement once instead of into every row.
    stamp = _sqlite_time(created_at)
    placeholders = ", ".join("?" for _ in COLUMNS)
    before = driver.total_changes
    driver.executemany(f"INSERT INTO instance ({columns}) VALUES ({placeholders}, '{stamp}') ON CONFLICT DO NOTHING",
                       rows)
    return driver.total_changes - before


def image_ids(connection: Connection, sha256s: list[str]) -> dict[str, int]:
    """The ids of the image rows among `sha256s`, by sha256: one statement however many (a JSON array on
    SQLite, an array on PostgreSQL), where an IN list per few hundred cost more compiling than looking up."""
    if not sha256s:
        return {}
    parameter: list[str] | str
    if connection.dialect.name == "postgresql":
        sql, parameter = "SELECT sha256, id FROM image WHERE sha256 = ANY(%s)", sha256s
    else:
        sql, parameter = "SELECT sha256, id FROM image WHERE sha256 IN (SELECT value FROM json_each(?))", \
            orjson.dumps(sha256s).decode()
    return dict(connection.exec_driver_sql(sql, (parameter,)).all())


def insert_images(connection: Connection, images: list[tuple], created_at: datetime) -> None:
    """Inserts image rows, tuples of (sha256, width, height, format, bytes), skipping those whose sha256 is
    already there (another import may have stored it a moment ago): one statement however many."""
    if not images:
        return
    columns = "sha256, width, height, format, bytes, created_at"
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"INSERT INTO image ({columns}) SELECT *, %s FROM unnest(%s::text[], %s::int[], %s::int[], %s::text[], "
            "%s::bigint[]) ON CONFLICT DO NOTHING", (created_at, *map(list, zip(*images, strict=True))))
        return
    fields = ", ".join(f"json_extract(value, '$[{k}]')" for k in range(5))
    connection.exec_driver_sql(f"INSERT INTO image ({columns}) SELECT {fields}, ? FROM json_each(?) WHERE true "
                               "ON CONFLICT DO NOTHING", (_sqlite_time(created_at), orjson.dumps(images).decode()))


def _sqlite_time(moment: datetime) -> str:
    """A timestamp as SQLAlchemy keeps it in SQLite: UTC text, "2026-01-02 03:04:05.000006"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_conversation_items(connection: Connection, rows: list[dict]) -> None:
    """Conversation items (dicts of ConversationItem's columns, of one pool), skipping positions already in their
    pool, each with the review that waits for it."""
    from app.models import ConversationItem, ConversationReview

    connection.execute(_insert_ignoring_conflicts(connection, ConversationItem), rows)
    item, review = ConversationItem.__table__, ConversationReview.__table__
    positions = [row["position"] for row in rows]
    new = (select(item.c.id, item.c.pool_id, item.c.rkey, false(), literal(1))
           .where(item.c.pool_id == rows[0]["pool_id"], item.c.position.between(min(positions), max(positions)),
                  ~exists().where(review.c.conversation_id == item.c.id)))
    connection.execute(insert(review).from_select(
        ["conversation_id", "pool_id", "rkey", "decided", "lock_version"], new))


def _insert_ignoring_conflicts(connection: Connection, model):
    """INSERT ... ON CONFLICT DO NOTHING for `model`, in the connection's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    if connection.dialect.name == "postgresql":
        return postgresql.insert(model.__table__).on_conflict_do_nothing()
    return sqlite.insert(model.__table__).on_conflict_do_nothing()


def get_or_create(connection: Connection, model, key: str, value: str, values: dict) -> int:
    """The id of the row whose unique `key` is `value`, inserting it if missing (safe under concurrency)."""
    column = getattr(model, key)
    found = connection.execute(select(model.id).where(column == value)).scalar()
    if found is not None:
        return found
    connection.execute(_insert_ignoring_conflicts(connection, model), [{key: value, **values}])
    return connection.execute(select(model.id).where(column == value)).scalar_one()
