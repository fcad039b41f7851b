"""`models`: the models the worker can load for previews and fine-tunes."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import fail, open_session

models_cli = typer.Typer(help="Models the worker can load for previews.", no_args_is_help=True)


@models_cli.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="A name to pick it by.")],
    path: Annotated[str, typer.Argument(help="Its folder on the worker's machine (saved with save_pretrained).")],
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    device: Annotated[str, typer.Option(help="auto (CUDA when there is one), cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Register a model by its local path (nothing is downloaded)."""
    from app.core.failures import AppError
    from app.services import registered_models as model_service

    with open_session() as session:
        try:
            model = model_service.register(session, name=name, path=path, dtype=dtype, device=device, actor_id=None)
        except AppError as error:
            fail(error.message)
    typer.echo(f"model {model.name} registered (id {model.id}): {model.path}, {model.dtype}, {model.device}")


@models_cli.command("list")
def models_list() -> None:
    """The registered models."""
    from app.services import registered_models as model_service

    with open_session() as session:
        for model in model_service.list_models(session):
            typer.echo(f"{model.id:>4}  {model.name:<30} {model.dtype:<9} {model.device:<7} {model.path}")
