"""The `bulk_fix` job: an accepted bulk fix applied chunk by chunk; a second run (the lease expired, or someone
resumed it) goes on from the last whole chunk."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.schemas.jobs import BulkFixPayload, BulkFixResult
from app.services.bulk_fix_apply import apply
from worker.context import JobContext


def run_bulk_fix(settings: Settings, context: JobContext, payload: BulkFixPayload) -> dict[str, Any]:
    started = time.perf_counter()
    with Session(context.engine) as session:
        applied = apply(session, fix_id=payload.bulk_fix_id, on_chunk=lambda done, total: context.progress(
            done / max(total, 1), f"{done:,} of {total:,} instances"))
    return BulkFixResult(bulk_fix_id=payload.bulk_fix_id, applied=applied.applied, skipped=applied.skipped,
                         seconds=round(time.perf_counter() - started, 2)).model_dump()
