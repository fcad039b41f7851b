"""The `lint` job: an instruction's draft checked on every instance of a big task."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.schemas.jobs import LintPayload
from app.services.instructions import lint_all
from app.services.tasks import get_task
from worker.context import JobContext


def run_lint(settings: Settings, context: JobContext, payload: LintPayload) -> dict[str, Any]:
    with Session(context.engine) as session:
        total = get_task(session, task_id=payload.task_id).instance_count
        issues = lint_all(session, task_id=payload.task_id, spec=payload.spec, token_budget=payload.token_budget,
                          tokenizer_path=payload.tokenizer_path, skip=payload.skip_instance_ids,
                          on_progress=lambda done: context.progress(done / max(total, 1),
                                                                    f"{done:,} of {total:,} instances checked"))
    return {"issues": issues, "checked": total}
