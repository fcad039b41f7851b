"""The `export` job: a dataset version's files built, checked and moved into place."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.schemas.jobs import ExportPayload
from app.services.versions import run_build
from worker.context import JobContext


def run_export(settings: Settings, context: JobContext, payload: ExportPayload) -> dict[str, Any]:
    version = run_build(settings, version_id=payload.version_id, on_progress=context.progress)
    files = version.manifest["files"]
    return {"version_id": version.id, "records": files["stage1.json"]["records"] + files["val.json"]["records"],
            "content_hash": version.content_hash}
