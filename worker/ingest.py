"""The `import` job: the same importers as `python -m app import ...`, with progress for the browser."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.ingest.importer import FORMATS, ImportOptions, InstanceImporter
from app.ingest.records import MalformedFile, estimate_records
from app.storage import MediaStore, confined
from worker.context import JobContext


class ImportFailed(RuntimeError):
    """The import cannot go on; the message is shown on the job's page."""


def run_import(settings: Settings, context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """payload: format (unified | llava), file and image_root relative to the import root, max_per_task,
    seed, actor_id. Returns the import report, kept as the job's result."""
    root = settings.resolved_import_root
    file = confined(root, payload["file"])
    image_root = confined(root, payload["image_root"]) if payload.get("image_root") else None
    if payload.get("format") not in FORMATS:
        raise ImportFailed(f"unknown format {payload.get('format')!r}")
    if not file.is_file():
        raise ImportFailed(f"{payload['file']} is not a file under the import root")
    total = estimate_records(file)
    options = ImportOptions(image_root=image_root, max_per_task=payload.get("max_per_task"),
                            seed=payload.get("seed", 0))

    def on_progress(seen: int) -> None:
        fraction = min(seen / total, 0.99) if total else 0.0
        context.progress(fraction, f"{seen:,} records read" + (f" of {total:,}" if total else ""))

    from app.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    try:
        importer = InstanceImporter(engine, MediaStore(settings.media_dir), options, file_format=payload["format"],
                                    actor_id=payload.get("actor_id"), on_progress=on_progress)
        try:
            return importer.run(file).as_dict()
        except MalformedFile as error:
            raise ImportFailed(f"{error.path.name}:{error.line}: {error.message} (whole chunks before it were "
                               "imported; fix the file and import again)") from None
    finally:
        engine.dispose()
