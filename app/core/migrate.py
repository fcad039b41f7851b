"""Running Alembic from code (the CLI, tests): the URL travels beside the config, not through it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(database_url: str, *, configure_logging: bool = True) -> Config:
    config = Config(str(ALEMBIC_INI))
    # Not set_main_option: the ini parser would read a '%' in the URL (an escaped password) as interpolation.
    config.attributes["database_url"] = database_url
    config.attributes["skip_logging_config"] = not configure_logging
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
