"""Jobs as the web side sees them: queue one, look at it, ask it to stop. Workers claim them (worker/queue.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from app.failures import Conflict, NotFound
from app.models import Job, JobMetric, JobStatus, utcnow
from app.services import audit

TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


def enqueue(session: Session, *, kind: str, payload: dict[str, Any], created_by_id: int | None,
            max_attempts: int = 3) -> Job:
    job = Job(kind=kind, payload=payload, created_by_id=created_by_id, max_attempts=max_attempts)
    session.add(job)
    session.flush()
    audit.record(session, actor_id=created_by_id, action="job.enqueue", entity_type="job", entity_id=job.id,
                 after={"kind": kind, "payload": payload})
    session.commit()
    return job


def get_job(session: Session, *, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job with id {job_id}.")
    return job


def recent_jobs(session: Session, *, kind: str | None = None, limit: int = 20) -> list[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if kind:
        query = query.where(Job.kind == kind)
    return list(session.exec(query))


def cancel(session: Session, *, job_id: int, actor_id: int | None) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop at its next heartbeat. Both are
    conditional updates, so a worker claiming the job at the same moment cannot be overwritten."""
    get_job(session, job_id=job_id)
    stopped = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.queued).values(
        status=JobStatus.cancelled, cancel_requested=True, finished_at=utcnow())).rowcount
    asked = stopped or session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.running)
                                       .values(cancel_requested=True)).rowcount
    if not asked:
        session.rollback()
        raise Conflict(f"Job {job_id} has already ended.")
    audit.record(session, actor_id=actor_id, action="job.cancel", entity_type="job", entity_id=job_id)
    session.commit()
    job = get_job(session, job_id=job_id)
    session.refresh(job)
    return job


def metrics_of(session: Session, *, job_id: int) -> list[JobMetric]:
    """What a job reported step by step (a fine-tune's loss), in order."""
    return list(session.exec(select(JobMetric).where(JobMetric.job_id == job_id).order_by(JobMetric.id)))


def loss_curve(metrics: list[JobMetric], *, width: int = 600, height: int = 160) -> dict | None:
    """SVG polyline points for the losses (one line per stage), scaled to the box; None without any."""
    if not metrics:
        return None
    top = max(metric.loss for metric in metrics) or 1.0
    last = len(metrics) - 1 or 1
    lines: dict[str, list[str]] = {}
    for k, metric in enumerate(metrics):
        x, y = width * k / last, height - height * metric.loss / top
        lines.setdefault(metric.stage, []).append(f"{x:.1f},{y:.1f}")
    return {"lines": {stage: " ".join(points) for stage, points in lines.items()}, "top": top,
            "first": metrics[0].loss, "last": metrics[-1].loss, "steps": len(metrics), "width": width,
            "height": height}
