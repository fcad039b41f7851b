"""The worker's side of the job table: claiming jobs with a lease, heart-beating, recording what a running job
produces (metrics, its running result), and finishing. Several workers, on several machines, may share one
database; each call is a short transaction of its own on the worker's engine.

PostgreSQL: `FOR UPDATE SKIP LOCKED` picks a job no other claimer is looking at. SQLite: a conditional
UPDATE (`... WHERE id = ? AND status = 'queued'`) that only one claimer can win. A worker that dies
stops heart-beating; once its lease has expired the job is queued again (or failed after max_attempts)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlmodel import col

from app.models import Job, JobMetric, JobStatus, utcnow


class LeaseLost(RuntimeError):
    """The job is no longer ours: its lease expired and another worker may hold it."""


def claim(engine: Engine, *, owner: str, kinds: list[str], lease: timedelta) -> Job | None:
    with engine.begin() as connection:
        candidates = (select(Job.id).where(Job.status == JobStatus.queued, Job.kind.in_(kinds))
                      .order_by(Job.priority.desc(), Job.id).limit(1))
        if connection.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        for _ in range(5):  # on SQLite another claimer may win the row between our read and our update
            job_id = connection.execute(candidates).scalar()
            if job_id is None:
                return None
            now = utcnow()
            won = connection.execute(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
                .values(status=JobStatus.running, lease_owner=owner, lease_expires_at=now + lease,
                        heartbeat_at=now, attempts=Job.attempts + 1, started_at=now, error=None))
            if won.rowcount == 1:
                row = connection.execute(select(Job).where(Job.id == job_id)).one()
                return Job.model_validate(row._mapping)
    return None


def heartbeat(engine: Engine, *, job_id: int, owner: str, lease: timedelta, progress: float,
              message: str | None = None) -> bool:
    """Extends the lease and records progress; True when someone asked the job to stop."""
    now = utcnow()
    with engine.begin() as connection:
        result = connection.execute(
            update(Job).where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.running)
            .values(heartbeat_at=now, lease_expires_at=now + lease, progress=min(max(progress, 0.0), 1.0),
                    progress_message=(message or "")[:500] or None))
        if result.rowcount != 1:
            raise LeaseLost(f"job {job_id} is no longer held by {owner}")
        return bool(connection.execute(select(Job.cancel_requested).where(Job.id == job_id)).scalar())


def record_result(engine: Engine, *, job_id: int, result: dict[str, Any]) -> None:
    """The result so far of a job still running (a fine-tune's plan shows on its page before the first step)."""
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(result=result))


def record_metrics(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Step metrics (job_id, stage, step, loss, lr, samples_per_s, tokens_per_s), in one insert."""
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(JobMetric), [{"created_at": utcnow(), **row} for row in rows])


def drop_metrics_after(engine: Engine, *, job_id: int, stage: str, step: int) -> None:
    """A stage resumed from the checkpoint at `step`: the metrics logged after it are logged again."""
    with engine.begin() as connection:
        connection.execute(delete(JobMetric).where(JobMetric.job_id == job_id, JobMetric.stage == stage,
                                                   JobMetric.step > step))


def finish(engine: Engine, *, job_id: int, owner: str, status: JobStatus, result: dict[str, Any] | None = None,
           error: str | None = None) -> None:
    """Ends the job (succeeded, failed, cancelled) — or, for a failure with attempts left, queues it again."""
    with engine.begin() as connection:
        job = connection.execute(select(Job.attempts, Job.max_attempts).where(Job.id == job_id)).one()
        retry = status == JobStatus.failed and job.attempts < job.max_attempts
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "error": error}
        if retry:
            values.update(status=JobStatus.queued)
        else:
            values.update(status=status, result=result, finished_at=utcnow(),
                          progress=1.0 if status == JobStatus.succeeded else Job.progress,
                          progress_message=None if status == JobStatus.succeeded else Job.progress_message)
        connection.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner).values(**values))


def requeue_expired(engine: Engine) -> int:
    """Jobs whose worker stopped heart-beating: queued again, or failed once out of attempts."""
    now = utcnow()
    expired = and_(Job.status == JobStatus.running, col(Job.lease_expires_at) < now)
    with engine.begin() as connection:
        failed = connection.execute(
            update(Job).where(expired, Job.attempts >= Job.max_attempts)
            .values(status=JobStatus.failed, finished_at=now, lease_owner=None, lease_expires_at=None,
                    error="the worker stopped answering (lease expired) and no attempts are left")).rowcount
        requeued = connection.execute(
            update(Job).where(expired, Job.attempts < Job.max_attempts)
            .values(status=JobStatus.queued, lease_owner=None, lease_expires_at=None,
                    error="the worker stopped answering (lease expired); queued again")).rowcount
    return failed + requeued
