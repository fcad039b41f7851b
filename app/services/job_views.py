"""What a job's status fragment shows besides its status: a fine-tune's recipe, live metrics, loss chart, links
and per-task evaluation; a preview's outputs once they are there. Every page that shows a job includes the same
fragment, which polls itself until the job ends and then shows the results in place."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from app.models import ConversationPool, DatasetVersion, InstructionVersion, Job, JobKind, RegisteredModel, Task
from app.qc.charts import change_chart, loss_chart
from app.qc.stats import FEWEST_TO_TELL
from app.schemas.jobs import FinetuneResult, read_result
from app.services import blinding, previews
from app.services import jobs as job_service
from app.services import tasks as task_service
from app.services.blinding import Blindfold


def subject_names(session: Session, jobs: list[Job]) -> dict[str, dict[int, str]]:
    """The names of what these jobs work on (versions, models, tasks), by kind and id, so that a page says
    "v3 from llava-tiny" rather than "version #3 from model #1". A row deleted since keeps its number."""
    wanted: dict[str, set[int]] = {"version": set(), "model": set(), "task": set(), "pool": set()}
    for job in jobs:
        payload = job.payload or {}
        for key, kind in (("version_id", "version"), ("base_model_id", "model"), ("model_id", "model"),
                          ("task_id", "task"), ("pool_id", "pool")):
            if isinstance(payload.get(key), int):
                wanted[kind].add(payload[key])
    tables = {"version": DatasetVersion, "model": RegisteredModel, "task": Task, "pool": ConversationPool}
    return {kind: {row_id: name for row_id, name in session.exec(
        select(tables[kind].id, tables[kind].name).where(col(tables[kind].id).in_(sorted(ids))))} if ids else {}
        for kind, ids in wanted.items()}


def job_context(session: Session, job: Job, blindfold: Blindfold = blinding.NONE) -> dict[str, Any]:
    """`blindfold`: a preview shows no output on an instance whose target the viewer must not see."""
    context: dict[str, Any] = {"job": job, "terminal": job.status in job_service.TERMINAL,
                               "report": read_result(job.kind, job.result), "names": subject_names(session, [job])}
    if job.kind == JobKind.finetune:
        context.update(finetune_view(session, job))
    elif job.kind == JobKind.preview:
        context.update(preview_view(session, job, terminal=context["terminal"], blindfold=blindfold))
    return context


def finetune_view(session: Session, job: Job) -> dict[str, Any]:
    result = FinetuneResult.model_validate(job.result or {})
    payload = job_service.payload_of(job)
    metrics = job_service.metrics_of(session, job_id=job.id)
    evaluation = result.evaluation
    return {
        "report": result,
        "plan": result.plan,
        "chart": loss_chart([(m.stage, m.step, m.loss) for m in metrics], result.steps_per_stage),
        "latest": metrics[-1] if metrics else None,
        "version": session.get(DatasetVersion, payload.version_id),
        "base_model": session.get(RegisteredModel, payload.base_model_id),
        "registered": session.get(RegisteredModel, result.model_id) if result.model_id else None,
        "evaluation": evaluation,
        "change": change_chart(evaluation.get("tasks") or {}),
        "fewest": FEWEST_TO_TELL,
    }


def preview_view(session: Session, job: Job, *, terminal: bool, blindfold: Blindfold) -> dict[str, Any]:
    """The outputs and the previews to compare with appear once the job has ended (not on every poll before)."""
    rows, others, payload = [], [], job_service.payload_of(job)
    if terminal:
        rows = previews.results(session, job=job, blindfold=blindfold)
        same_task = job_service.JobFilters(kind=JobKind.preview, status="succeeded", task_id=payload.task_id)
        others = [other for other in job_service.list_jobs(session, filters=same_task) if other.id != job.id]
    return {"rows": rows, "others": [(other, _preview_label(session, other)) for other in others],
            "score": sum(row.matched for row in rows) / len(rows) if rows else None,
            "task": task_service.get_task(session, task_id=payload.task_id),
            "model": session.get(RegisteredModel, payload.model_id)}


def _preview_label(session: Session, job: Job) -> str:
    """How a person tells previews apart: the model's name, the instruction's version number, the seed."""
    payload = job_service.payload_of(job)
    model = session.get(RegisteredModel, payload.model_id)
    version = session.get(InstructionVersion, payload.instruction_version_id)
    return (f"{model.name if model else 'a removed model'}, instruction v{version.number if version else '?'}, "
            f"seed {payload.seed}")
