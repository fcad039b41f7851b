"""Scoring a task with a model, and ranking its instances by the model's doubt: the worker computes the scores
(worker/score.py), this side queues the job and reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from app import doubt
from app.doubt import Doubt, ScoreRow
from app.failures import Conflict, NotFound
from app.models import (
    DatasetVersion,
    Instance,
    InstanceScore,
    InstanceStatus,
    Job,
    RegisteredModel,
    Task,
    VersionStatus,
)
from app.schemas import ScoreIn
from app.schemas.jobs import ScorePayload
from app.services import jobs, models
from app.services.sampling import newest_version
from app.services.tasks import get_task


def start(session: Session, *, task_id: int, data: ScoreIn, actor_id: int | None) -> Job:
    """Queues a `score` job: every active instance of the task under the model, rendered with the version asked
    for (else the task's newest approved)."""
    get_task(session, task_id=task_id)
    model = models.get(session, model_id=data.model_id)
    version = newest_version(session, task_id=task_id, version_id=data.instruction_version_id)
    return jobs.enqueue(session, ScorePayload(task_id=task_id, model_id=model.id, instruction_version_id=version.id,
                                              batch_size=data.batch_size), created_by_id=actor_id)


def start_for_version(session: Session, *, version_id: int, model_id: int, batch_size: int,
                      actor_id: int | None) -> list[Job]:
    """A score job per task of a ready dataset version and per instruction version its records were rendered
    with (the manifest says which): every active instance of those tasks, the version's records among them,
    scored as the trainer will see them."""
    used = _ready(session, version_id).manifest.get("instruction_versions", {})
    task_ids = dict(session.exec(select(Task.name, Task.id).where(Task.name.in_(list(used)))).all())
    return [start(session, task_id=task_ids[name], actor_id=actor_id,
                  data=ScoreIn(model_id=model_id, instruction_version_id=int(instruction_version_id),
                               batch_size=batch_size))
            for name, versions in sorted(used.items()) if name in task_ids for instruction_version_id in versions]


def version_task_ids(session: Session, *, version_id: int) -> list[int]:
    """The tasks a ready dataset version holds (those not deleted since), by name."""
    names = list(_ready(session, version_id).manifest.get("counts", {}))
    return list(session.exec(select(Task.id).where(Task.name.in_(names)).order_by(Task.name)))


def _ready(session: Session, version_id: int) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"There is no dataset version with id {version_id}.")
    if version.status != VersionStatus.ready:
        raise Conflict(f"Version {version.name} is {version.status}: only a ready version's tasks can be checked.")
    return version


@dataclass(frozen=True)
class ScoreSet:
    """The scores one model gave a task's instances, rendered with one instruction version."""

    model_id: int
    model_name: str
    instruction_version_id: int
    scored: int
    scored_at: datetime


def score_sets(session: Session, *, task_id: int) -> list[ScoreSet]:
    """The task's score sets, the newest first."""
    rows = session.exec(
        select(InstanceScore.model_id, RegisteredModel.name, InstanceScore.instruction_version_id, func.count(),
               func.max(InstanceScore.created_at))
        .join(RegisteredModel, RegisteredModel.id == InstanceScore.model_id)
        .where(InstanceScore.task_id == task_id)
        .group_by(InstanceScore.model_id, RegisteredModel.name, InstanceScore.instruction_version_id)
        .order_by(func.max(InstanceScore.created_at).desc(), InstanceScore.model_id.desc()))
    return [ScoreSet(*row) for row in rows]


def chosen_set(session: Session, *, task_id: int, model_id: int | None = None,
               version_id: int | None = None) -> ScoreSet | None:
    """The score set asked for (by model, and version), else the newest; None when the task was never scored."""
    for candidate in score_sets(session, task_id=task_id):
        if model_id in (None, candidate.model_id) and version_id in (None, candidate.instruction_version_id):
            return candidate
    if model_id is not None or version_id is not None:
        raise NotFound("The task has no scores by that model and instruction version: run a score job first.")
    return None


def ranking(session: Session, *, task_id: int, scores: ScoreSet) -> list[Doubt]:
    """The task's active instances under `scores`, most doubtful first (app/doubt.py says how)."""
    rows = session.exec(
        select(InstanceScore.instance_id, InstanceScore.loss, Instance.raw_output, Instance.options,
               InstanceScore.option_probabilities)
        .join(Instance, Instance.id == InstanceScore.instance_id)
        .where(InstanceScore.task_id == task_id, InstanceScore.model_id == scores.model_id,
               InstanceScore.instruction_version_id == scores.instruction_version_id,
               Instance.status == InstanceStatus.active))
    return doubt.rank([ScoreRow(*row) for row in rows])
