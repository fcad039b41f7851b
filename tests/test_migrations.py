"""The one migration builds exactly the models' schema on SQLite and PostgreSQL, and undoes itself."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.core.db import make_engine
from app.core.migrate import alembic_config
from app.models import metadata


def _config(url: str):
    return alembic_config(url, configure_logging=False)


def test_there_is_a_single_head():
    heads = ScriptDirectory.from_config(_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_upgrade_head_matches_the_models_and_downgrade_base_removes_everything(database_url):
    config = _config(database_url)
    command.upgrade(config, "head")
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            assert tables == set(metadata.tables) | {"alembic_version"}
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            indexes = {index["name"] for index in inspect(connection).get_indexes("instance")}
            assert {"ix_instance_task_id_status_rkey", "ix_instance_task_id_id"} <= indexes
            assert "ix_job_status_lease_expires_at" in {i["name"] for i in inspect(connection).get_indexes("job")}
            uniques = {tuple(u["column_names"]) for u in inspect(connection).get_unique_constraints("instance")}
            assert ("task_id", "source_id") in uniques
        command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
        command.upgrade(config, "head")  # and it can be applied again
    finally:
        engine.dispose()
