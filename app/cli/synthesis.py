"""`synthesis requests` and `synthesis import`: the offline path, for a GPU cluster. Write the requests as OpenAI
Batch JSONL, run them with `vllm run-batch` (or the OpenAI Batch API), import the output back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import fail, open_session
from app.core.config import Settings

synthesis_cli = typer.Typer(help="Stage-2 synthesis through OpenAI Batch files.", no_args_is_help=True)


@synthesis_cli.command("requests")
def write_requests(
    task: Annotated[str, typer.Option(help="The task (name or id) whose instances the conversations are about.")],
    out: Annotated[Path, typer.Option(help="The requests file to write (JSON lines).")],
    model: Annotated[str, typer.Option(help="The model name the batch runner serves, e.g. "
                                            "Qwen/Qwen2.5-VL-7B-Instruct.")],
    count: Annotated[int, typer.Option(min=1, help="Instances to draw (all of the task's if fewer).")] = 1_000,
    seed: Annotated[int, typer.Option(min=0, help="Decides the draw; the same seed draws the same instances.")] = 0,
    kind: Annotated[str, typer.Option(help="conversation, detail or complex_reasoning.")] = "conversation",
    temperature: Annotated[float, typer.Option(min=0, max=2)] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=16, max=16_384, help="Most tokens one reply may have.")] = 1024,
    text_only: Annotated[bool, typer.Option(help="Send the dataset's words only, not the image (a text-only "
                                                 "generator, as LLaVA-Instruct's GPT-4 was).")] = False,
) -> None:
    """Write one request per drawn instance, with the kind's newest approved prompt."""
    from app.core.failures import AppError
    from app.core.storage import open_media
    from app.schemas.stage2 import Sampling
    from app.services import versions as version_service
    from app.services.synthesis import offline, prompts

    settings = Settings()
    with open_session(settings) as session:
        try:
            task_ids = version_service.task_ids_named(session, [task])
            prompt = prompts.newest_approved(session, kind=kind)
            lines = offline.write_requests(session, open_media(settings.media_location), out, task_id=task_ids[0],
                                           prompt=prompt, count=count, seed=seed, model=model,
                                           sampling=Sampling(temperature=temperature, max_tokens=max_tokens),
                                           vision=not text_only)
        except AppError as error:
            fail(error.message)
    typer.echo(f"{lines:,} requests written to {out} (prompt: {prompt.kind} version {prompt.version}). Run them "
               f"with: vllm run-batch -i {out} -o output.jsonl --model {model}")


@synthesis_cli.command("import")
def import_output(
    pool: Annotated[str, typer.Option(help="The synthesized pool to add them to (made if new).")],
    requests: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="The requests file that was run.")],
    output: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="The batch runner's output file.")],
    host: Annotated[str | None, typer.Option(help="Where the batch ran, for the conversations' origin.")] = None,
) -> None:
    """Import a batch's output, joined with its requests on custom_id; every line that cannot be used is listed."""
    from app.core.db import make_engine
    from app.core.failures import AppError
    from app.services.synthesis import batches, offline

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        report = offline.import_output(engine, pool=pool, requests_file=requests, output_file=output, actor_id=None,
                                       host=host)
    except (AppError, batches.BatchFileError) as error:
        fail(getattr(error, "message", None) or str(error))
    finally:
        engine.dispose()
    for bad in report.bad_lines:
        typer.secho(f"{output.name}, line {bad.line}: {bad.reason}", fg=typer.colors.YELLOW, err=True)
    for refusal in report.refusals:
        typer.secho(f"{refusal['key']}: refused: {refusal['reason']}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{report.stored:,} conversations stored in {pool}, {report.refused:,} refused, {report.skipped:,} "
               f"already there, {len(report.bad_lines):,} lines unusable.")
