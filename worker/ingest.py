"""The `import` job: the same requests as the browser's form and `python -m app import ...`
(`app.ingest.requests`), with progress for the browser.

Its payload is `ImportPayload`: a request of its format (paths relative to the import root), and `actor_id`.
The report becomes the job's result."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.core.config import Settings
from app.core.storage import open_media
from app.ingest.record_files import estimate_records
from app.ingest.requests import failure, request_model
from app.schemas.jobs import ImportPayload
from worker.context import JobContext


class ImportFailed(RuntimeError):
    """The import cannot go on; the message is shown on the job's page."""


def run_import(settings: Settings, context: JobContext, payload: ImportPayload) -> dict[str, Any]:
    try:
        wanted = request_model(payload.format)(**payload.request())
    except ValidationError as error:
        raise ImportFailed(f"the job's request is not valid: {error}") from None
    try:
        located = wanted.locate(settings.resolved_import_root)  # again: the files may have moved since
        total = estimate_records(located.file)

        def on_progress(seen: int) -> None:
            fraction = min(seen / total, 0.99) if total else 0.0
            context.progress(fraction, f"{seen:,} records read" + (f" of {total:,}" if total else ""))

        report = wanted.run(engine=context.engine, media=open_media(settings.media_location), located=located,
                            actor_id=payload.actor_id, on_progress=on_progress)
    except Exception as error:
        message = failure(error, wanted)
        if message is None:
            raise
        raise ImportFailed(message + "".join(f" ({field}: {problem})"
                                             for field, problem in (getattr(error, "fields", None) or {}).items())
                           ) from None
    return report.as_dict()
