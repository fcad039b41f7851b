"""JSON API for scoring a task with a model and reading the instances by its doubt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.failures import NotFound
from app.schemas import API_ERRORS, DoubtOut, DoubtRanking, JobStarted, ScoreIn, VersionScoreIn
from app.services import scores
from app.services import tasks as task_service
from app.web.deps import ANY_ROLE, PREVIEWERS, STRICT_QUERY, BlindfoldDep, CurrentUser, RowId, SessionDep

router = APIRouter(prefix="/api/v1", tags=["review"], responses=API_ERRORS, dependencies=[STRICT_QUERY])


@router.post("/tasks/{task_id}/scores", dependencies=[PREVIEWERS], response_model=JobStarted,
             status_code=202)
def start_score(session: SessionDep, user: CurrentUser, task_id: RowId, data: ScoreIn):
    """Queues a score job: every active instance of the task under the model."""
    job = scores.start(session, task_id=task_id, data=data, actor_id=user.id)
    return JobStarted(job_id=job.id, status=job.status, page=f"/jobs/{job.id}")


@router.post("/versions/{version_id}/scores", dependencies=[PREVIEWERS],
             response_model=list[JobStarted], status_code=202)
def score_version(session: SessionDep, user: CurrentUser, version_id: RowId, data: VersionScoreIn):
    """Queues a score job per task of a ready version (and per instruction version its records used)."""
    jobs = scores.start_for_version(session, version_id=version_id, model_id=data.model_id,
                                    batch_size=data.batch_size, actor_id=user.id)
    return [JobStarted(job_id=job.id, status=job.status, page=f"/jobs/{job.id}") for job in jobs]


@router.get("/tasks/{task_id}/doubt", dependencies=[ANY_ROLE], response_model=DoubtRanking)
def doubt_ranking(session: SessionDep, blindfold: BlindfoldDep, task_id: RowId,
                  model_id: Annotated[int | None, Query(ge=1)] = None,
                  instruction_version_id: Annotated[int | None, Query(ge=1)] = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 100):
    """The most doubtful instances first, under the newest scores (or the model and version asked for); none
    whose target you must not see (a blind solve test you may answer runs on it: its loss would say it)."""
    task = task_service.get_task(session, task_id=task_id)
    chosen = scores.chosen_set(session, task_id=task.id, model_id=model_id, version_id=instruction_version_id)
    if chosen is None:
        raise NotFound("This task has not been scored yet: POST to its scores first.")
    ranked = [doubt for doubt in scores.ranking(session, task_id=task.id, scores=chosen)
              if not blindfold.hides(doubt.instance_id)][:limit]
    return DoubtRanking(model_id=chosen.model_id, model_name=chosen.model_name,
                        instruction_version_id=chosen.instruction_version_id, scored=chosen.scored,
                        scored_at=chosen.scored_at,
                        items=[DoubtOut(instance_id=d.instance_id, rank=d.rank, risk=d.risk, suspect=d.suspect,
                                        loss=d.loss) for d in ranked])
