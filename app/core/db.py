"""Engine and session: the only place that knows how to connect."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine, select

log = logging.getLogger("studio.db")
APPLICATION_NAME = "flan-studio"  # how our connections show in pg_stat_activity, unless the URL names another


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`. SQLite gets WAL, foreign keys and a busy timeout so that the web app and
    a worker can share the file; PostgreSQL gets pre-ping so that a restarted server is reconnected to.
    JSON columns are read with orjson (stdlib json and psycopg's default loader are several times slower
    on a scan of options or conversations)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                               json_deserializer=orjson.loads)
        event.listen(engine, "connect", _configure_sqlite)
        _serialize_writers(engine)
        return engine
    # A URL that names its application (`?application_name=...`) keeps it: tests tell their connections apart.
    named = {} if "application_name" in parsed.query else {"application_name": APPLICATION_NAME}
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10,
                         json_deserializer=orjson.loads, connect_args=named)


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _serialize_writers(engine: Engine) -> None:
    """One writing transaction at a time within this process, queued on a Python lock.

    SQLite allows one writer; the others wait in its busy handler, which polls with sleeps of up to 100 ms —
    with 16 reviewers deciding at once that made p95 latencies of ~0.9 s. A lock wakes the next writer the
    moment the previous one commits. It is taken at a transaction's first write and released when it ends,
    so readers never wait; other processes (a worker) still meet SQLite's own busy timeout."""
    lock = threading.Lock()

    def take(connection, cursor, statement, parameters, context, executemany) -> None:
        info = connection.connection.info
        if not info.get("writing") and statement.lstrip()[:7].upper().startswith(WRITES):
            lock.acquire()
            info["writing"] = True

    def give_back(dbapi_connection_info: dict) -> None:
        if dbapi_connection_info.pop("writing", False):
            lock.release()

    event.listen(engine, "before_cursor_execute", take)
    for name in ("commit", "rollback"):
        event.listen(engine, name, lambda connection: give_back(connection.connection.info))
    def on_reset(dbapi_connection, record, reset_state) -> None:
        give_back(record.info)  # a connection handed back to the pool mid-transaction is rolled back there

    def on_checkin(dbapi_connection, record) -> None:
        if record is not None:
            give_back(record.info)

    event.listen(engine.pool, "reset", on_reset)
    event.listen(engine.pool, "checkin", on_checkin)


def session_scope(engine: Engine) -> Iterator[Session]:
    """One session per request; services commit what they change, anything else is rolled back."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        try:
            session.close()
        except OperationalError:
            # The connection died under the request (a database restart): the server has rolled its
            # transaction back and the pool has discarded it. The answer may already be on its way, so
            # raising here would only cut it off.
            log.warning("database connection lost while closing a session; it was discarded")


def ping(session: Session) -> None:
    """Asks the database the simplest question; raises OperationalError (a 503 at the edge) when it cannot answer."""
    session.exec(select(1)).one()
