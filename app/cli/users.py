"""`users` and `tokens`: accounts and API tokens, made from the command line (passwords and tokens shown once)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli.common import fail, open_session
from app.core.validation_words import in_words

users_cli = typer.Typer(help="Create and manage users.", no_args_is_help=True)
tokens_cli = typer.Typer(help="API tokens for scripts.", no_args_is_help=True)


@users_cli.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="Login email.")],
    role: Annotated[list[str], typer.Option(help="admin, author or reviewer; repeat for several.")] = [],  # noqa: B006
    name: Annotated[str | None, typer.Option(help="Display name (default: the email's local part).")] = None,
    native_english: Annotated[bool, typer.Option(help="Native English speaker (final verification).")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input "
                                                      "instead of generating one.")] = False,
) -> None:
    """Create a user. Prints the generated password once (or reads one from stdin)."""
    from pydantic import ValidationError

    from app.core.failures import AppError
    from app.schemas import UserCreate
    from app.services import users as user_service

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        data = UserCreate(email=email, display_name=name or email.split("@")[0], roles=role, password=password,
                          native_english=native_english)
    except ValidationError as error:
        options = {"roles": "role", "display_name": "name", "password": "password-stdin"}
        fail("; ".join(f"--{options.get(str(e['loc'][0]), e['loc'][0])}: {in_words(e)}" for e in error.errors()))
    with open_session() as session:
        try:
            user, generated = user_service.create_user(session, data=data, actor_id=None)
        except AppError as error:
            fail(error.message)
    typer.echo(f"created user {user.email} (id {user.id}) with roles: {', '.join(sorted(data.roles)) or 'none'}")
    if generated:
        typer.echo(f"password (shown once): {generated}")


@users_cli.command("list")
def list_users() -> None:
    """List users with their roles."""
    from app.services import users as user_service

    with open_session() as session:
        for user in user_service.list_users(session):
            roles = ", ".join(user_service.roles_of(session, user.id)) or "-"
            state = "" if user.is_active else "  (inactive)"
            typer.echo(f"{user.id:>4}  {user.email:<32} {roles}{state}")


@users_cli.command("reset-password")
def reset_password(email: Annotated[str, typer.Option(help="Whose password.")]) -> None:
    """Generate a new password for a user (printed once) and sign them out everywhere."""
    from app.core.failures import NotFound
    from app.services import users as user_service

    with open_session() as session:
        try:
            user = user_service.get_by_email(session, email=email)
        except NotFound as error:
            fail(error.message)
        generated = user_service.set_password(session, user_id=user.id, password=None, actor_id=None)
    typer.echo(f"new password for {email} (shown once): {generated}")


@tokens_cli.command("create")
def create_token(email: Annotated[str, typer.Option(help="Whose token.")],
                 name: Annotated[str, typer.Option(help="What will use it.")]) -> None:
    """Create an API token for a user; printed once, only its hash is kept."""
    from app.core.failures import NotFound
    from app.services import users as user_service

    with open_session() as session:
        try:
            user = user_service.get_by_email(session, email=email)
        except NotFound as error:
            fail(error.message)
        _, token = user_service.create_token(session, user_id=user.id, name=name, actor_id=None)
    typer.echo(token)
