"""`import`: instances (unified, LLaVA, any table), stage-2 conversations and dataset metadata, with progress
bars. Every import can be run again: what is already there is skipped.

Exit status, for scripts: 0 when every record was imported or was already there; 1 when some records were
refused (the report says which, and is still written); 2 when the file could not be read at all, held no
records, or the options were unusable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import fail
from app.core import access
from app.core.config import Settings
from app.core.validation_words import in_words
from app.ingest import CHUNK_SIZE

EXIT_CODES = ("Exit status: 0 every record imported or already there; 1 some records refused (the report says "
              "which); 2 the file could not be read, held no records, or the options were unusable.")
import_cli = typer.Typer(help=f"Bring datasets into the studio. {EXIT_CODES}", no_args_is_help=True,
                         epilog=EXIT_CODES)

ImageRoot = Annotated[str | None, typer.Option(help="Folder (or .zip / .tar archive) that image paths are "
                                                    "relative to, or s3://bucket/prefix.")]
MaxPerTask = Annotated[int | None, typer.Option(min=1, help="Keep a seeded sample of at most N instances per task "
                                                            "(Vision-Flan: 10000).")]
Seed = Annotated[int, typer.Option(help="Seed of the --max-per-task sample (recorded in the report).")]
ChunkSize = Annotated[int, typer.Option(min=1, help="Instances per transaction.")]
ReportFile = Annotated[Path | None, typer.Option("--report", help="Also write the report as JSON here.")]


def _file_argument(help_text: str) -> typer.models.ArgumentInfo:
    """A local file, or `s3://bucket/key` (read as a stream); checked when the import is located."""
    return typer.Argument(help=f"{help_text} A local path or s3://bucket/key.")


UnifiedFile = Annotated[str, _file_argument("JSON array or JSONL in the Vision-Flan unified instance format.")]
LlavaFile = Annotated[str, _file_argument("JSON array or JSONL of {id, image, task_name, conversations} records.")]
ConversationsFile = Annotated[str, _file_argument("LLaVA-Instruct-style JSON array or JSONL of {id, image, "
                                                  "conversations} records.")]
MetadataFile = Annotated[str, _file_argument("YAML or JSON with a `datasets:` list (see README).")]
InstructionsFile = Annotated[str, _file_argument("YAML or JSON list of {task, label, instruction, input_template, "
                                                 "output_template, option_style, image_position} (see README).")]
CorrectionsFile = Annotated[str, _file_argument("CSV (with a header) or JSONL of {instance_id, task, source_id, "
                                                "field, value, reason} (see README).")]


@import_cli.command("unified")
def import_unified(file: UnifiedFile,
                   image_root: ImageRoot = None, max_per_task: MaxPerTask = None, seed: Seed = 0,
                   chunk_size: ChunkSize = CHUNK_SIZE, report_file: ReportFile = None) -> None:
    """Import instances in the unified format (tasks and source datasets are created as they appear).
    Safe to run again: what is already there is skipped, so an interrupted import finishes the rest."""
    _run({"format": "unified", "file": file, "image_root": image_root, "max_per_task": max_per_task, "seed": seed,
          "chunk_size": chunk_size}, report_file)


@import_cli.command("llava")
def import_llava(file: LlavaFile,
                 image_root: ImageRoot = None, max_per_task: MaxPerTask = None, seed: Seed = 0,
                 instruction_file: Annotated[Path | None, typer.Option(
                     help="The tasks' instructions to cut from the human turns: the `import instructions` list, or "
                          "a mapping of task to instruction. Without it each task's shared leading text is used.",
                     exists=True, dir_okay=False)] = None,
                 chunk_size: ChunkSize = CHUNK_SIZE, report_file: ReportFile = None) -> None:
    """Import released Vision-Flan / LLaVA training data: each task's instruction is taken out of the human
    turn (and becomes the task's `imported` draft), the rest (without <image>) is the input, the gpt turn
    the target. Safe to run again, like `import unified`."""
    _run({"format": "llava", "file": file, "image_root": image_root, "max_per_task": max_per_task, "seed": seed,
          "instruction_file": instruction_file, "chunk_size": chunk_size}, report_file)


@import_cli.command("table")
def import_table(
    file: Annotated[str, typer.Argument(help="JSONL, JSON, CSV or Parquet file, or a datasets save_to_disk folder; a "
                                        "local path or s3://bucket/key.")],
    map_: Annotated[list[str], typer.Option("--map", help="'source column->field', e.g. 'question->input_text'; "
                                                          "repeat for each field.")] = [],  # noqa: B006
    mapping: Annotated[Path | None, typer.Option(help="YAML with `fields: {field: column}` (and dataset_name, "
                                                      "task_name, records, join, image_pattern: see README).",
                                                 exists=True, dir_okay=False)] = None,
    dataset: Annotated[str | None, typer.Option(help="dataset_name for every row.")] = None,
    task: Annotated[str | None, typer.Option(help="task_name for every row.")] = None,
    records: Annotated[str | None, typer.Option(help="The key of the file's JSON object that holds the records "
                                                     "(COCO: annotations; VQA: questions).")] = None,
    join: Annotated[str | None, typer.Option(help="A second file joined to each record on --on (orphans on "
                                                  "either side are reported); a local path or s3://bucket/key.")
                    ] = None,
    on: Annotated[str | None, typer.Option(help="The join key: a column of both files, or "
                                                "'main column=joined column' (COCO: image_id=id).")] = None,
    join_records: Annotated[str | None, typer.Option(help="The key holding the joined file's records.")] = None,
    image_pattern: Annotated[str | None, typer.Option(help="img_path made from columns, e.g. "
                                                           "'COCO_train2014_{image_id:012d}.jpg'.")] = None,
    image_root: ImageRoot = None, max_per_task: MaxPerTask = None, seed: Seed = 0,
    chunk_size: ChunkSize = CHUNK_SIZE, report_file: ReportFile = None,
) -> None:
    """Import any table of instances by naming which column fills which field (unmapped columns are kept
    as provenance), optionally joined with a second file. Safe to run again, like `import unified`."""
    from app.ingest.tabular import FieldMapping, MappingInvalid

    from_file: dict = {}
    if mapping is not None:  # the file first: the options say more precisely what is wanted
        try:
            from_file = FieldMapping.read_file(mapping)
        except MappingInvalid as error:
            fail(str(error), code=2)
    given = {"dataset": dataset, "task": task, "records": records, "join": join, "on": on,
             "join_records": join_records, "image_pattern": image_pattern}
    _run({"format": "table", "file": file, **from_file, **{k: v for k, v in given.items() if v is not None},
          "map": from_file.get("map", []) + map_, "image_root": image_root, "max_per_task": max_per_task,
          "seed": seed, "chunk_size": chunk_size}, report_file)


@import_cli.command("conversations")
def import_conversations(
    file: ConversationsFile,
    pool: Annotated[str, typer.Option(help="Name of the stage-2 pool to add to (created if new).")],
    image_root: ImageRoot = None,
) -> None:
    """Import GPT-4-synthesized conversations into a stage-2 pool. A record's key is its position in the
    file (LLaVA-Instruct ids repeat), so running the same import again adds only what is missing."""
    _run({"format": "conversations", "file": file, "pool": pool, "image_root": image_root})


@import_cli.command("metadata")
def import_metadata(file: MetadataFile) -> None:
    """Create or update source datasets and their tasks' group, category and description. Every problem
    is listed with its line, and then nothing is written."""
    _run({"format": "metadata", "file": file})


@import_cli.command("instructions")
def import_instructions(
    file: InstructionsFile,
    author: Annotated[str, typer.Option(help="Email of the author (or admin) the drafts belong to.")],
    submit: Annotated[bool, typer.Option("--submit", help="Also submit each for review (not one whose latest "
                                                          "version already says the same).")] = False,
) -> None:
    """Create or update instruction drafts for existing tasks, and with --submit submit them. All or nothing:
    every problem is listed with its line, and then nothing is written. Running it again changes nothing."""
    _run({"format": "instructions", "file": file, "submit": submit},
         actor_id=_person(author, access.EDITORS, "is neither an author nor an admin"))


@import_cli.command("corrections")
def import_corrections(
    file: CorrectionsFile,
    author: Annotated[str, typer.Option(help="Email of the person the fixes are proposed by: someone else accepts "
                                             "them in the corrections queue.")],
) -> None:
    """Propose fixes of instances from a CSV or JSONL file (instance_id, or task and source_id; field; value;
    reason). All or nothing: every problem is listed with its line, and then nothing is proposed."""
    _run({"format": "corrections", "file": file}, actor_id=_person(author, access.ANY_ROLE, "has no role"))


def _person(email: str, rule, refusal: str) -> int:
    """The id of the user `--author` names, who must pass `rule`."""
    from app.cli.common import open_session
    from app.core.failures import NotFound
    from app.services import users as user_service

    with open_session() as session:
        try:
            user = user_service.get_by_email(session, email=email)
        except NotFound as error:
            fail(error.message, code=2)
        if not rule.allows(user_service.roles_of(session, user.id)):
            fail(f"--author: {email} {refusal}", code=2)
        return user.id  # type: ignore[return-value]  # a stored user has an id


def _run(fields: dict, report_file: Path | None = None, actor_id: int | None = None) -> None:
    """Validates the request as the browser's form is validated (`app.ingest.requests`), then imports it with
    a progress bar."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.core.db import make_engine
    from app.core.storage import open_media
    from app.ingest.record_files import estimate_records
    from app.ingest.report import ImportReport
    from app.ingest.requests import failure, request_model
    from app.ingest.yaml_lines import EntriesRefused

    given = {name: str(value) if isinstance(value, Path) else value for name, value in fields.items()
             if value is not None}
    try:
        wanted = request_model(given["format"])(**given)
    except ValidationError as error:
        fail("; ".join(f"--{str(problem['loc'][0]).replace('_', '-')}: {in_words(problem)}"
                       for problem in error.errors()), code=2)
    try:
        located = wanted.locate(None)  # the command line's paths are the user's own
    except Exception as error:
        message = failure(error, wanted)
        if message is None:
            raise
        fail(message, code=2)
    settings = Settings()
    columns = [TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task(located.file.name, total=estimate_records(located.file))
        try:
            report = wanted.run(engine=make_engine(settings.resolved_database_url),
                                media=open_media(settings.media_location), located=located, actor_id=actor_id,
                                on_progress=lambda seen: progress.update(bar, completed=seen))
        except Exception as error:
            message = failure(error, wanted)
            if message is None:
                raise
            fail(message, code=1 if isinstance(error, EntriesRefused) else 2)  # refused entries, or the file
    _print_report(report, report_file)
    if isinstance(report, ImportReport):
        if not (report.imported or report.duplicates or report.not_sampled or report.rejected_count):
            fail(f"{located.file.name} holds no records.", code=2)
        if report.rejected_count:
            fail(f"{report.rejected_count:,} records were refused (listed above).", code=1)


def _print_report(report, report_file: Path | None) -> None:
    import json

    from app.ingest.report import ImportReport

    typer.echo(report.summary())
    if isinstance(report, ImportReport):  # dataset metadata is written whole or not at all: nothing to list
        if report.tasks_created:
            typer.echo(f"new tasks: {', '.join(report.tasks_created)}")
        for task, instruction in report.instructions_separated.items():
            typer.echo(f"  instruction of {task}: {instruction[:100]!r}{'...' if len(instruction) > 100 else ''}")
        for rejection in report.rejected[:50]:
            typer.echo(f"  rejected {rejection}")
        if report.rejected_count > 50:
            where = f"all in {report_file}" if report_file else "use --report FILE for all"
            typer.echo(f"  ... and {report.rejected_count - 50:,} more ({where})")
    if report_file:
        report_file.write_text(json.dumps(report.as_dict(), indent=1))
