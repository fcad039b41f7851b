"""What every command shares: a database session from the settings, and failing with a message."""

from __future__ import annotations

from typing import NoReturn

import typer

from app.core.config import Settings


def open_session(settings: Settings | None = None):
    from sqlmodel import Session

    from app.core.db import make_engine

    settings = settings or Settings()
    return Session(make_engine(settings.resolved_database_url), expire_on_commit=False)


def fail(message: str, *, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
