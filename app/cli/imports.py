"""`import`: instances (unified, LLaVA, any table), stage-2 conversations and dataset metadata, with progress
bars. Every import can be run again: what is already there is skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import fail, open_session
from app.config import Settings
from app.ingest import CHUNK_SIZE

import_cli = typer.Typer(help="Bring datasets into the studio.", no_args_is_help=True)

ImageRoot = Annotated[Path | None, typer.Option(help="Folder (or .zip / .tar archive) that image paths are "
                                                     "relative to.", exists=True)]
MaxPerTask = Annotated[int | None, typer.Option(min=1, help="Keep a seeded sample of at most N instances per task "
                                                            "(Vision-Flan: 10000).")]
Seed = Annotated[int, typer.Option(help="Seed of the --max-per-task sample (recorded in the report).")]
ChunkSize = Annotated[int, typer.Option(min=1, help="Instances per transaction.")]
ReportFile = Annotated[Path | None, typer.Option("--report", help="Also write the report as JSON here.")]


def _source_file(help_text: str):
    return Annotated[Path, typer.Argument(help=help_text, exists=True, dir_okay=False, readable=True)]


@import_cli.command("unified")
def import_unified(file: _source_file("JSON array or JSONL in the Vision-Flan unified instance format."),
                   image_root: ImageRoot = None, max_per_task: MaxPerTask = None, seed: Seed = 0,
                   chunk_size: ChunkSize = CHUNK_SIZE, report_file: ReportFile = None) -> None:
    """Import instances in the unified format (tasks and source datasets are created as they appear).
    Safe to run again: what is already there is skipped, so an interrupted import finishes the rest."""
    _import("unified", file, image_root, max_per_task, seed, chunk_size, report_file)


@import_cli.command("llava")
def import_llava(file: _source_file("JSON array or JSONL of {id, image, task_name, conversations} records."),
                 image_root: ImageRoot = None, max_per_task: MaxPerTask = None, seed: Seed = 0,
                 chunk_size: ChunkSize = CHUNK_SIZE, report_file: ReportFile = None) -> None:
    """Import released Vision-Flan / LLaVA training data: the human turn (without <image>) becomes the
    input, the gpt turn the target. Safe to run again, like `import unified`."""
    _import("llava", file, image_root, max_per_task, seed, chunk_size, report_file)


@import_cli.command("table")
def import_table(
    file: Annotated[Path, typer.Argument(help="JSONL, JSON, CSV or Parquet file, or a datasets save_to_disk folder.",
                                         exists=True, readable=True)],
    map_: Annotated[list[str], typer.Option("--map", help="'source column->field', e.g. 'question->input_text'; "
                                                          "repeat for each field.")] = [],  # noqa: B006
    mapping: Annotated[Path | None, typer.Option(help="YAML with `fields: {field: column}` (and dataset_name, "
                                                      "task_name).", exists=True, dir_okay=False)] = None,
    dataset: Annotated[str | None, typer.Option(help="dataset_name for every row.")] = None,
    task: Annotated[str | None, typer.Option(help="task_name for every row.")] = None,
    image_root: ImageRoot = None, max_per_task: MaxPerTask = None, seed: Seed = 0,
    chunk_size: ChunkSize = CHUNK_SIZE, report_file: ReportFile = None,
) -> None:
    """Import any table of instances by naming which column fills which field (unmapped columns are kept
    as provenance). Safe to run again, like `import unified`."""
    from app.ingest.tabular import FieldMapping, MappingInvalid, read_rows

    try:
        fields = FieldMapping.parse(map_, {"dataset_name": dataset, "task_name": task}, mapping)
    except MappingInvalid as error:
        fail(str(error))
    _import("table", file, image_root, max_per_task, seed, chunk_size, report_file, parse=fields.parser(),
            read=read_rows)


@import_cli.command("conversations")
def import_conversations(
    file: _source_file("LLaVA-Instruct-style JSON array or JSONL of {id, image, conversations} records."),
    pool: Annotated[str, typer.Option(help="Name of the stage-2 pool to add to (created if new).")],
    image_root: ImageRoot = None,
) -> None:
    """Import GPT-4-synthesized conversations into a stage-2 pool. A record's key is its position in the
    file (LLaVA-Instruct ids repeat), so running the same import again adds only what is missing."""
    from app.db import make_engine
    from app.ingest.conversations import ConversationImporter, PoolOptions
    from app.ingest.image_sources import ImageSourceInvalid
    from app.ingest.records import MalformedFile
    from app.storage import MediaStore

    settings = Settings()
    try:
        importer = ConversationImporter(make_engine(settings.resolved_database_url), MediaStore(settings.media_dir),
                                        PoolOptions(pool=pool, image_root=image_root))
        report = importer.run(file)
    except ImageSourceInvalid as error:
        fail(str(error))
    except MalformedFile as error:
        fail(f"{error} (whole chunks before it were imported; fix the file and run again)")
    _print_report(report, None)


@import_cli.command("metadata")
def import_metadata(file: _source_file("YAML or JSON with a `datasets:` list (see README).")) -> None:
    """Create or update source datasets and their tasks' group, category and description. Every problem
    is listed with its line, and then nothing is written."""
    from app.ingest.metadata import MetadataInvalid, apply_metadata

    with open_session() as session:
        try:
            report = apply_metadata(session, path=file, actor_id=None)
        except MetadataInvalid as error:
            fail("nothing was imported:\n" + "\n".join(f"  {problem}" for problem in error.problems))
    typer.echo(report.summary())


def _import(file_format: str, file: Path, image_root: Path | None, max_per_task: int | None, seed: int,
            chunk_size: int, report_file: Path | None, **source) -> None:
    """Runs an instance import with a progress bar; `source` may bring its own `parse` and `read`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.db import make_engine
    from app.ingest.image_sources import ImageSourceInvalid
    from app.ingest.importer import ImportOptions, InstanceImporter
    from app.ingest.records import MalformedFile, estimate_records
    from app.storage import MediaStore

    settings = Settings()
    options = ImportOptions(image_root=image_root, chunk_size=chunk_size, max_per_task=max_per_task, seed=seed)
    columns = [TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task(file.name, total=estimate_records(file))
        try:
            importer = InstanceImporter(make_engine(settings.resolved_database_url), MediaStore(settings.media_dir),
                                        options, file_format=file_format, **source,
                                        on_progress=lambda seen: progress.update(bar, completed=seen))
            report = importer.run(file)
        except ImageSourceInvalid as error:
            fail(str(error))
        except MalformedFile as error:
            fail(f"{error} (whole chunks before it were imported; fix the file and run again)")
    _print_report(report, report_file)


def _print_report(report, report_file: Path | None) -> None:
    import json

    typer.echo(report.summary())
    if report.tasks_created:
        typer.echo(f"new tasks: {', '.join(report.tasks_created)}")
    for rejection in report.rejected[:50]:
        typer.echo(f"  rejected {rejection}")
    if report.rejected_count > 50:
        where = f"all in {report_file}" if report_file else "use --report FILE for all"
        typer.echo(f"  ... and {report.rejected_count - 50:,} more ({where})")
    if report_file:
        report_file.write_text(json.dumps(report.as_dict(), indent=1))
