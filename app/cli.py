"""`python -m app ...`: set up the database, manage users and tokens, load the demo, serve the studio."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from app.config import Settings
from app.ingest import CHUNK_SIZE

# No locals in tracebacks: they would print passwords and tokens.
cli = typer.Typer(help="Flan Studio: build visual instruction-tuning datasets.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_show_locals=False)
users_cli = typer.Typer(help="Create and manage users.", no_args_is_help=True)
tokens_cli = typer.Typer(help="API tokens for scripts.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
import_cli = typer.Typer(help="Bring datasets into the studio.", no_args_is_help=True)
cli.add_typer(tokens_cli, name="tokens")
cli.add_typer(import_cli, name="import")
models_cli = typer.Typer(help="Models the worker can load for previews.", no_args_is_help=True)
cli.add_typer(models_cli, name="models")

def _session(settings: Settings | None = None):
    from sqlmodel import Session

    from app.db import make_engine

    settings = settings or Settings()
    return Session(make_engine(settings.resolved_database_url), expire_on_commit=False)


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the database migrations (creates the database on first run)."""
    from app.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at revision {revision}: {_redacted(settings.resolved_database_url)}")


@cli.command()
def demo() -> None:
    """Load the demo workspace into an empty database, and print where and how to sign in."""
    from app.services.demo import load_demo
    from app.services.demo_models import load_model_half

    settings = Settings()
    with _session(settings) as session:
        result = load_demo(session, data_dir=settings.data_dir)
        if result.created:
            typer.echo("Demo workspace loaded: 4 tasks, 96 instances, 4 users, a pool of 16 conversations.")
        half = load_model_half(settings, session)
    if half.version is not None:
        typer.echo(f"Dataset version {half.version.name}: {half.version.status} (/versions/{half.version.id}).")
    if half.model is not None:
        typer.echo(f"Model {half.model.name!r} registered: preview a task with it, or fine-tune it on "
                   f"{half.version.name if half.version else 'a version'}.")
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

    from app.failures import AppError
    from app.schemas import UserCreate
    from app.services import users as user_service

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        data = UserCreate(email=email, display_name=name or email.split("@")[0], roles=role, password=password,
                          native_english=native_english)
    except ValidationError as error:
        options = {"roles": "role", "display_name": "name", "password": "password-stdin"}
        _fail("; ".join(f"--{options.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in error.errors()))
    with _session() as session:
        try:
            user, generated = user_service.create_user(session, data=data, actor_id=None)
        except AppError as error:
            _fail(error.message)
    typer.echo(f"created user {user.email} (id {user.id}) with roles: {', '.join(sorted(data.roles)) or 'none'}")
    if generated:
        typer.echo(f"password (shown once): {generated}")


@users_cli.command("list")
def list_users() -> None:
    """List users with their roles."""
    from app.services import users as user_service

    with _session() as session:
        for user in user_service.list_users(session):
            roles = ", ".join(user_service.roles_of(session, user.id)) or "-"
            state = "" if user.is_active else "  (inactive)"
            typer.echo(f"{user.id:>4}  {user.email:<32} {roles}{state}")


@users_cli.command("reset-password")
def reset_password(email: Annotated[str, typer.Option(help="Whose password.")]) -> None:
    """Generate a new password for a user (printed once) and sign them out everywhere."""
    from sqlmodel import select

    from app.models import User
    from app.services import users as user_service

    with _session() as session:
        user = session.exec(select(User).where(User.email == email.strip().lower())).first()
        if user is None:
            _fail(f"no user with email {email}")
        generated = user_service.set_password(session, user_id=user.id, password=None, actor_id=None)
    typer.echo(f"new password for {email} (shown once): {generated}")


@tokens_cli.command("create")
def create_token(email: Annotated[str, typer.Option(help="Whose token.")],
                 name: Annotated[str, typer.Option(help="What will use it.")]) -> None:
    """Create an API token for a user; printed once, only its hash is kept."""
    from sqlmodel import select

    from app.models import User
    from app.services import users as user_service

    with _session() as session:
        user = session.exec(select(User).where(User.email == email.strip().lower())).first()
        if user is None:
            _fail(f"no user with email {email}")
        _, token = user_service.create_token(session, user_id=user.id, name=name, actor_id=None)
    typer.echo(token)


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
        _fail(str(error))
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
        _fail(str(error))
    except MalformedFile as error:
        _fail(f"{error} (whole chunks before it were imported; fix the file and run again)")
    _print_report(report, None)


@import_cli.command("metadata")
def import_metadata(file: _source_file("YAML or JSON with a `datasets:` list (see README).")) -> None:
    """Create or update source datasets and their tasks' group, category and description. Every problem
    is listed with its line, and then nothing is written."""
    from sqlmodel import Session

    from app.db import make_engine
    from app.ingest.metadata import MetadataInvalid, apply_metadata

    with Session(make_engine(Settings().resolved_database_url)) as session:
        try:
            report = apply_metadata(session, path=file, actor_id=None)
        except MetadataInvalid as error:
            _fail("nothing was imported:\n" + "\n".join(f"  {problem}" for problem in error.problems))
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
            _fail(str(error))
        except MalformedFile as error:
            _fail(f"{error} (whole chunks before it were imported; fix the file and run again)")
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


@cli.command()
def export(
    task: Annotated[list[str] | None, typer.Option(help="A task name or id (repeat it); default: every verified "
                                                    "task.")] = None,
    name: Annotated[str | None, typer.Option(help="The version's name (default: v<n>).")] = None,
    cap: Annotated[int, typer.Option(help="Instances per task (all if fewer).")] = 10_000,
    seed: Annotated[int, typer.Option(help="Decides the sample, instruction choice and split.")] = 0,
    validation: Annotated[float, typer.Option(help="Share of records in val.json.")] = 0.0,
    pool: Annotated[str | None, typer.Option(help="Conversation pool (name) for stage 2.")] = None,
    stage2_size: Annotated[int, typer.Option(help="Conversations drawn for stage 2.")] = 1_000,
) -> None:
    """Build a dataset version now (no worker needed), with a progress bar; prints where its files are."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlmodel import or_, select

    from app.exports.build import BuildError
    from app.exports.spec import ExportSpec
    from app.failures import AppError
    from app.models import ConversationPool, Task
    from app.services import versions as version_service

    settings = Settings()
    with _session(settings) as session:
        if task:
            numbers = [int(t) for t in task if t.isdigit()]
            ids = list(session.exec(select(Task.id).where(or_(Task.name.in_(task), Task.id.in_(numbers)))))
            if len(ids) != len(set(task)):
                _fail(f"Some of these tasks do not exist: {', '.join(task)}")
        else:
            ids = version_service.default_task_ids(session)
            if not ids:
                _fail("No task is verified yet: name the tasks with --task.")
        pool_id = None
        if pool:
            pool_id = session.exec(select(ConversationPool.id).where(ConversationPool.name == pool)).first()
            if pool_id is None:
                _fail(f"There is no conversation pool called {pool!r}.")
        try:
            spec = ExportSpec(task_ids=ids, per_task_cap=cap, seed=seed, validation_ratio=validation,
                              conversation_pool_id=pool_id, stage2_size=stage2_size)
            version = version_service.create(session, spec=spec, name=name, actor_id=None, enqueue=False)
        except (AppError, ValueError) as error:
            _fail(getattr(error, "message", str(error)))
    columns = [TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task(f"building {version.name}", total=1.0)
        try:
            version = version_service.run_build(settings, version_id=version.id, on_progress=lambda fraction, message:
                                                progress.update(bar, completed=fraction, description=message))
        except BuildError as error:
            _fail(f"version {version.name} failed: {error}")
    files = version.manifest["files"]
    typer.echo(f"version {version.name}: {files['stage1.json']['records']:,} training and "
               f"{files['val.json']['records']:,} validation records, "
               f"{version.manifest['excluded']['records']:,} left out; content {version.content_hash[:16]}")
    typer.echo(f"files: {version_service.folder_of(settings, version)}")


@models_cli.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="A name to pick it by.")],
    path: Annotated[str, typer.Argument(help="Its folder on the worker's machine (saved with save_pretrained).")],
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    device: Annotated[str, typer.Option(help="auto (CUDA when there is one), cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Register a model by its local path (nothing is downloaded)."""
    from app.failures import AppError
    from app.services import models as model_service

    with _session() as session:
        try:
            model = model_service.register(session, name=name, path=path, dtype=dtype, device=device, actor_id=None)
        except AppError as error:
            _fail(error.message)
    typer.echo(f"model {model.name} registered (id {model.id}): {model.path}, {model.dtype}, {model.device}")


@models_cli.command("list")
def models_list() -> None:
    """The registered models."""
    from app.services import models as model_service

    with _session() as session:
        for model in model_service.list_models(session):
            typer.echo(f"{model.id:>4}  {model.name:<30} {model.dtype:<9} {model.device:<7} {model.path}")


@cli.command()
def validate(
    folder: Annotated[Path, typer.Argument(help="A version's folder (with manifest.json).", exists=True,
                                           file_okay=False)],
    tokenizer: Annotated[Path | None, typer.Option(help="A local tokenizer.json to count tokens with "
                                                   "(default: an estimate).")] = None,
    max_tokens: Annotated[int, typer.Option(help="The trainer's max length.")] = 2048,
) -> None:
    """Check a built version as the trainer will meet it: files against the manifest, records against the
    contract. Names every problem; exits 1 if there is any."""
    from app.exports.validate import validate_version
    from app.tokens import token_counter

    count, how = token_counter(tokenizer)
    problems = 0
    for problem in validate_version(folder, count_tokens=count, max_tokens=max_tokens):
        problems += 1
        if problems <= 200:
            typer.echo(str(problem))
    if problems:
        _fail(f"{problems:,} problems in {folder}")
    typer.echo(f"{folder}: every file matches the manifest and every record the trainer's contract "
               f"(tokens {how}).")


@cli.command()
def serve(reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False) -> None:
    """Serve the studio (host, port and processes from the settings)."""
    import uvicorn

    settings = Settings()
    settings.signing_key  # noqa: B018 - made once here, not raced by several worker processes
    if not _port_is_free(settings.host, settings.port):
        _fail(f"{settings.host}:{settings.port} is already in use (another studio running?). "
              "Stop it, or choose another port with STUDIO_PORT=8001.")
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, reload=reload,
                workers=None if reload else settings.web_workers, log_level=settings.log_level.lower(),
                proxy_headers=True)


def _port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    cli()
