"""Alembic environment: the URL comes from Settings, or from the connection a caller hands over."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from app.core.config import Settings
from app.core.db import make_engine
from app.models import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    return (config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
            or Settings().resolved_database_url)


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that for us
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # Batch mode copies a table and drops the old one: with foreign keys enforced, that drop would
                # cascade to every row pointing at it (a spot check's items, a task's instances). SQLite only
                # changes this outside a transaction, so before the migration's begins.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
