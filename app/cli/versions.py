"""`export`, `pull` and `validate`: build a dataset version without a worker, copy one into a local folder, and
check a built one as the trainer will meet it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import fail, open_session
from app.core.config import Settings


def export(
    task: Annotated[list[str] | None, typer.Option(help="A task name or id (repeat it); default: every verified "
                                                    "task.")] = None,
    name: Annotated[str | None, typer.Option(help="The version's name (default: v<n>).")] = None,
    cap: Annotated[int, typer.Option(help="Instances per task (all if fewer).")] = 10_000,
    seed: Annotated[int, typer.Option(help="Decides the sample, instruction choice and split.")] = 0,
    validation: Annotated[float, typer.Option(help="Share of records in val.json.")] = 0.0,
    pool: Annotated[str | None, typer.Option(help="Conversation pool (name) for stage 2.")] = None,
    stage2_size: Annotated[int, typer.Option(help="Conversations drawn for stage 2.")] = 1_000,
    qc_override_reason: Annotated[str | None, typer.Option(
        help="Why tasks whose latest quality check failed go in anyway (the dataset card states it); without it "
             "such a version is refused.")] = None,
    layout: Annotated[list[str] | None, typer.Option(
        help="Also write this layout (repeat it): hf, a Hugging Face dataset in hf/ with the images inside. "
             "llava (the version's root) is always written.")] = None,
    model_family: Annotated[str | None, typer.Option(
        help="The model family it is for (llava_next, qwen2_vl, qwen2_5_vl, idefics3): each image's tokens are "
             "counted as its processor counts them; default 576 an image, as LLaVA-1.5.")] = None,
) -> None:
    """Build a dataset version now (no worker needed), with a progress bar; prints where its files are."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from app.core.failures import AppError
    from app.core.validation_words import in_words
    from app.exports.build import BuildError
    from app.schemas.export_spec import ExportSpec
    from app.services import version_files
    from app.services import versions as version_service

    settings = Settings()
    with open_session(settings) as session:
        try:
            ids = version_service.task_ids_named(session, task) if task else version_service.default_task_ids(session)
            if not ids:
                fail("No task is verified yet: name the tasks with --task.")
            spec = ExportSpec(task_ids=ids, per_task_cap=cap, seed=seed, validation_ratio=validation,
                              conversation_pool_id=version_service.pool_named(session, pool) if pool else None,
                              stage2_size=stage2_size, layouts=layout or [], model_family=model_family)
            # Whoever runs the command line runs the studio: an admin, who may override with a reason.
            version = version_service.create(session, spec=spec, name=name, actor_id=None, enqueue=False,
                                             qc_override_reason=qc_override_reason, may_override=True,
                                             exports_on_bucket=version_files.on_object_storage(settings))
        except ValidationError as error:
            fail("; ".join(f"--{str(problem['loc'][0]).removesuffix('s')}: {in_words(problem)}"
                           for problem in error.errors()))
        except (AppError, ValueError) as error:
            fail(getattr(error, "message", str(error)))
    columns = [TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task(f"building {version.name}", total=1.0)
        try:
            version = version_service.run_build(settings, version_id=version.id, on_progress=lambda fraction, message:
                                                progress.update(bar, completed=fraction, description=message))
        except BuildError as error:
            fail(f"version {version.name} failed: {error}")
    manifest = version_service.manifest_of(version)
    typer.echo(f"version {version.name}: {manifest.records_in('stage1.json'):,} training and "
               f"{manifest.records_in('val.json'):,} validation records, "
               f"{manifest.excluded.records:,} left out; content {(version.content_hash or '')[:16]}")
    typer.echo(f"files: {version_files.where(settings, version)}")


def pull(
    version: Annotated[str, typer.Argument(help="The version's name or id.")],
    to: Annotated[Path, typer.Option(help="A folder to make (it must not exist yet).")],
) -> None:
    """Copy a ready version into a local folder as a trainer reads it (files and images), from wherever the
    studio keeps versions: the exports folder, or object storage (STUDIO_EXPORTS_URL)."""
    import shutil

    from app.core.failures import AppError
    from app.core.objectstore import StorageUnavailable
    from app.core.storage import open_media
    from app.exports.remote import NotPublished, pull_url
    from app.services import version_files
    from app.services import versions as version_service

    settings = Settings()
    if to.exists():
        fail(f"{to} exists already: name a new folder.")
    with open_session(settings) as session:
        try:
            found = version_service.named(session, version)
        except AppError as error:
            fail(error.message)
    try:
        if version_files.on_object_storage(settings):
            pull_url(version_files.where(settings, found), open_media(settings.media_location), to)
        else:
            shutil.copytree(version_files.folder_of(settings, found), to)
    except (NotPublished, StorageUnavailable, FileNotFoundError) as error:
        fail(str(error))
    typer.echo(f"version {found.name} is in {to}")


def validate(
    location: Annotated[str, typer.Argument(help="A version: its folder (with manifest.json), or its URL on object "
                                             "storage, s3://bucket/prefix/<version id>.")],
    tokenizer: Annotated[Path | None, typer.Option(help="A local tokenizer.json to count tokens with "
                                                   "(default: an estimate).")] = None,
    max_tokens: Annotated[int, typer.Option(help="The trainer's max length.")] = 2048,
) -> None:
    """Check a built version as the trainer will meet it: files against the manifest, records against the
    contract. Names every problem; exits 1 if there is any. A version on object storage is pulled first, with
    its images from the media bucket (STUDIO_MEDIA_URL), into a temporary folder."""
    import tempfile

    from app.core.objectstore import StorageUnavailable, is_object_url
    from app.core.storage import open_media
    from app.exports.remote import NotPublished, pull_url
    from app.exports.validate import validate_version
    from app.prompts.tokens import token_counter

    count, how = token_counter(tokenizer)
    with tempfile.TemporaryDirectory(prefix="studio-validate-") as scratch:
        folder = Path(location)
        if is_object_url(location):
            settings = Settings()
            if not is_object_url(settings.media_location):
                fail("STUDIO_MEDIA_URL must name the media bucket the version's images are in.")
            typer.echo(f"pulling {location} ...")
            try:
                folder = Path(scratch) / "version"
                pull_url(location, open_media(settings.media_location), folder)
            except (NotPublished, StorageUnavailable, ValueError, FileNotFoundError) as error:
                fail(str(error))
        elif not folder.is_dir():
            fail(f"{location} is not a folder, nor an s3:// URL")
        problems = 0
        for problem in validate_version(folder, count_tokens=count, max_tokens=max_tokens):
            problems += 1
            if problems <= 200:
                typer.echo(str(problem))
    if problems:
        fail(f"{problems:,} problems in {location}")
    typer.echo(f"{location}: every file matches the manifest and every record the trainer's contract "
               f"(tokens {how}).")
