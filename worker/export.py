"""The `export` job: a dataset version's files built, checked and moved into place."""

from __future__ import annotations

from typing import Any

from app.core.config import Settings
from app.schemas.jobs import ExportPayload
from app.services import versions as version_service
from worker.context import JobContext


def run_export(settings: Settings, context: JobContext, payload: ExportPayload) -> dict[str, Any]:
    version = version_service.run_build(settings, version_id=payload.version_id, on_progress=context.progress)
    manifest = version_service.manifest_of(version)
    return {"version_id": version.id, "records": manifest.records_in("stage1.json") + manifest.records_in("val.json"),
            "content_hash": version.content_hash}
