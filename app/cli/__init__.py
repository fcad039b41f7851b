"""`python -m app ...`: set up the database, manage users and tokens, import, build versions, serve the studio.

One module per command group; each imports what it needs when it runs, so `--help` stays fast."""

from __future__ import annotations

import typer

from app.cli import imports, registered_models, server, synthesis, users, versions

# No locals in tracebacks: they would print passwords and tokens.
cli = typer.Typer(help="Flan Studio: build visual instruction-tuning datasets.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_show_locals=False)
for command in (server.migrate, server.demo, versions.export, versions.pull, versions.validate, server.serve):
    cli.command()(command)
cli.add_typer(users.users_cli, name="users")
cli.add_typer(users.tokens_cli, name="tokens")
cli.add_typer(imports.import_cli, name="import")
cli.add_typer(registered_models.models_cli, name="models")
cli.add_typer(synthesis.synthesis_cli, name="synthesis")


def main() -> None:
    cli()
