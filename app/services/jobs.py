"""Jobs as the web side sees them: queue one, look at it, ask it to stop. Workers claim them (services/job_queue.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.core.failures import Conflict, Forbidden, NotFound
from app.models import Job, JobMetric, JobStatus, utcnow
from app.schemas import jobs as job_payloads
from app.schemas.jobs import JobPayload
from app.services import audit

TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


def enqueue(session: Session, payload: JobPayload, *, created_by_id: int | None, max_attempts: int = 3,
            commit: bool = True) -> Job:
    """A job of the payload's kind (one the worker has a handler for, by construction). Commits, unless `commit`
    is False (the job is queued with the change that calls for it, or not at all)."""
    stored = payload.stored()
    job = Job(kind=payload.kind, payload=stored, created_by_id=created_by_id, max_attempts=max_attempts)
    session.add(job)
    session.flush()
    audit.record(session, actor_id=created_by_id, action="job.enqueue", entity_type="job", entity_id=job.id,
                 after={"kind": payload.kind, "payload": stored})
    if commit:
        session.commit()
    return job


def payload_of(job: Job) -> JobPayload:
    """The job's payload as its kind's model."""
    return job_payloads.read(job.kind, job.payload)


def get_job(session: Session, *, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job with id {job_id}.")
    return job


def recent_jobs(session: Session, *, kind: str | None = None, limit: int = 20) -> list[Job]:
    return list_jobs(session, filters=JobFilters(kind=kind), limit=limit)


@dataclass(frozen=True)
class JobFilters:
    kind: str | None = None
    status: str | None = None
    created_by_id: int | None = None
    version_id: int | None = None  # fine-tunes of a version
    task_id: int | None = None  # previews of a task
    base_model_id: int | None = None  # fine-tunes from a model
    model_ids: tuple[int, ...] | None = None  # previews by these models


def list_jobs(session: Session, *, filters: JobFilters, before_id: int | None = None, limit: int = 50) -> list[Job]:
    """Newest first; `before_id` pages on (keyset, so a page costs the same however far back it is)."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if filters.kind:
        query = query.where(Job.kind == filters.kind)
    if filters.status:
        query = query.where(Job.status == filters.status)
    if filters.created_by_id:
        query = query.where(Job.created_by_id == filters.created_by_id)
    if filters.version_id is not None:
        query = query.where(Job.payload["version_id"].as_integer() == filters.version_id)
    if filters.task_id is not None:
        query = query.where(Job.payload["task_id"].as_integer() == filters.task_id)
    if filters.base_model_id is not None:
        query = query.where(Job.payload["base_model_id"].as_integer() == filters.base_model_id)
    if filters.model_ids is not None:
        query = query.where(Job.payload["model_id"].as_integer().in_(filters.model_ids))
    if before_id:
        query = query.where(col(Job.id) < before_id)
    return list(session.exec(query))


def cancel(session: Session, *, job_id: int, actor_id: int | None, is_admin: bool) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop at its next heartbeat. Both are
    conditional updates, so a worker claiming the job at the same moment cannot be overwritten. Only the job's
    owner or an admin cancels it (`actor_id` None: the command line, which is an admin's)."""
    job = get_job(session, job_id=job_id)
    if not (is_admin or (actor_id is not None and job.created_by_id == actor_id)):
        raise Forbidden(f"Job {job_id} is someone else's: only whoever started it, or an admin, can cancel it.")
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
