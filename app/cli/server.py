"""Setting up and running the studio: `migrate`, `demo` and `serve`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.cli.common import fail, open_session, redacted
from app.core.config import Settings


def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the database migrations (creates the database on first run)."""
    from app.core.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at revision {revision}: {redacted(settings.resolved_database_url)}")


def demo() -> None:
    """Load the demo workspace into an empty database, and print where and how to sign in."""
    from app.core.storage import open_media
    from app.demo.model_half import load_model_half
    from app.demo.source_files import INSTANCES, POOL_SIZE, TASKS
    from app.demo.workspace import load_demo

    settings = Settings()
    with open_session(settings) as session:
        result = load_demo(session, data_dir=settings.data_dir, media=open_media(settings.media_location))
        if result.created:
            typer.echo(f"Demo workspace loaded: {len(TASKS)} tasks, {INSTANCES} instances, 4 users, a pool of "
                       f"{POOL_SIZE} conversations.")
            typer.echo(f"It was imported from {result.source_files}: an example of each import format.")
        half = load_model_half(settings, session)
    if half.version is not None:
        typer.echo(f"Dataset version {half.version.name}: {half.version.status} (/versions/{half.version.id}).")
    if half.model is not None:
        typer.echo(f"Model {half.model.name!r} registered: preview a task with it, or fine-tune it on "
                   f"{half.version.name if half.version else 'a version'} starting from the quick recipe for a "
                   "small model on a CPU (a minute; validation accuracy rises from 0 to about 80%).")
    if half.note:
        typer.secho(f"No demo model: {half.note}.", fg="yellow")
    url = f"http://{settings.host}:{settings.port}"
    typer.secho(f"\nFlan Studio: {url}/login", bold=True)
    if result.credentials:
        typer.echo(f"Demo accounts (kept in {result.credentials_file}):")
        for email, password in result.credentials:
            typer.echo(f"  {email:<26} {password}")
    else:
        typer.echo("Sign in with an account you created (`python -m app users create --help`).")


def serve(reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False) -> None:
    """Serve the studio (host, port and processes from the settings)."""
    import uvicorn

    if reload:  # the server's process (a child of uvicorn's reloader) reads its settings from the environment
        os.environ["STUDIO_RELOAD_TEMPLATES"] = "true"
    settings = Settings()
    settings.signing_key  # noqa: B018 - made once here, not raced by several worker processes
    if not _port_is_free(settings.host, settings.port):
        fail(f"{settings.host}:{settings.port} is already in use (another studio running?). "
              "Stop it, or choose another port with STUDIO_PORT=8001.")
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, reload=reload,
                workers=None if reload else settings.web_workers, log_level=settings.log_level.lower(),
                proxy_headers=False)  # the app believes forwarded headers only from STUDIO_TRUSTED_PROXIES


def _port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
