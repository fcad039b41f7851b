"""The `import` job: the same importers as `python -m app import ...`, with progress for the browser.

Payload: `format` (unified, llava, table, conversations or metadata), `file` and `image_root` relative to
the import root, and per format: `max_per_task`/`seed`; `map` (["column->field", ...]), `dataset`, `task`
for tables; `pool` for conversations. The report becomes the job's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.config import Settings
from app.db import make_engine
from app.ingest import IMPORT_FORMATS
from app.ingest.image_sources import ImageSourceInvalid
from app.ingest.records import MalformedFile, estimate_records
from app.storage import MediaStore, confined
from worker.context import JobContext


class ImportFailed(RuntimeError):
    """The import cannot go on; the message is shown on the job's page."""


def run_import(settings: Settings, context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    root = settings.resolved_import_root
    file = confined(root, payload["file"])
    if payload.get("format") not in IMPORT_FORMATS:
        raise ImportFailed(f"unknown format {payload.get('format')!r}")
    if not file.exists():
        raise ImportFailed(f"{payload['file']} does not exist under the import root")
    engine = make_engine(settings.resolved_database_url)
    try:
        return _run(settings, engine, context, payload, file)
    except ImageSourceInvalid as error:
        raise ImportFailed(str(error)) from None
    except MalformedFile as error:
        raise ImportFailed(f"{error.path.name}:{error.line}: {error.message} (whole chunks before it were "
                           "imported; fix the file and import again)") from None
    finally:
        engine.dispose()


def _run(settings: Settings, engine, context: JobContext, payload: dict[str, Any], file: Path) -> dict[str, Any]:
    root, media = settings.resolved_import_root, MediaStore(settings.media_dir)
    image_root = confined(root, payload["image_root"]) if payload.get("image_root") else None
    actor_id, file_format = payload.get("actor_id"), payload["format"]
    total = estimate_records(file)

    def on_progress(seen: int) -> None:
        fraction = min(seen / total, 0.99) if total else 0.0
        context.progress(fraction, f"{seen:,} records read" + (f" of {total:,}" if total else ""))

    if file_format == "metadata":
        from sqlmodel import Session

        from app.ingest.metadata import MetadataInvalid, apply_metadata

        with Session(engine) as session:
            try:
                report = apply_metadata(session, path=file, actor_id=actor_id)
            except MetadataInvalid as error:
                raise ImportFailed("nothing was imported: " + "; ".join(error.problems)) from None
        return {"summary": report.summary(), **vars(report)}
    if file_format == "conversations":
        from app.ingest.conversations import ConversationImporter, PoolOptions

        importer = ConversationImporter(engine, media, PoolOptions(pool=payload["pool"], image_root=image_root),
                                        actor_id=actor_id, on_progress=on_progress)
        return importer.run(file).as_dict()

    from app.ingest.importer import ImportOptions, InstanceImporter
    from app.ingest.tabular import FieldMapping, MappingInvalid, read_rows

    source: dict[str, Any] = {}
    if file_format == "table":
        try:
            mapping = FieldMapping.parse(payload.get("map", []), {"dataset_name": payload.get("dataset"),
                                                                   "task_name": payload.get("task")})
        except MappingInvalid as error:
            raise ImportFailed(str(error)) from None
        source = {"parse": mapping.parser(), "read": read_rows}
    options = ImportOptions(image_root=image_root, max_per_task=payload.get("max_per_task"),
                            seed=payload.get("seed") or 0)
    importer = InstanceImporter(engine, media, options, file_format=file_format, actor_id=actor_id,
                                on_progress=on_progress, **source)
    return importer.run(file).as_dict()
