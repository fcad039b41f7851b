"""A throwaway database, for a test or a benchmark: an SQLite file in a folder, or a fresh PostgreSQL schema."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def scratch_database(database_url: str | None, folder: Path, *, prefix: str = "scratch") -> Iterator[str]:
    """Yields a URL to an empty database; a PostgreSQL schema made for it is dropped afterwards. Its connections
    carry the schema's name as their application name, so a test can find its own in pg_stat_activity (and
    never disturb another test running beside it)."""
    if not database_url or not database_url.startswith("postgresql"):
        yield database_url or f"sqlite:///{folder / 'studio.db'}"
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        own = {"options": f"-csearch_path={schema}", "application_name": schema}
        yield make_url(database_url).update_query_dict(own).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def throwaway_folder(prefix: str) -> Path:
    """A temporary folder removed when the process ends (a benchmark's holds gigabytes at full scale);
    STUDIO_KEEP_SCRATCH=1 keeps it to look at afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("STUDIO_KEEP_SCRATCH") != "1":
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def bare_postgres(url: str):
    """A plain psycopg connection to the database (and schema) a SQLAlchemy URL names: a bench's baseline."""
    import psycopg

    parsed = make_url(url)
    return psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
                           dbname=parsed.database, options=parsed.query.get("options", ""))
