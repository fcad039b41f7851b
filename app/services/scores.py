"""Scoring a task with a model, and ranking its instances by the model's doubt: the worker computes the scores
(worker/score.py), this side queues the job and reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, insert
from sqlmodel import Session, col, select

from app.core.failures import Conflict, NotFound
from app.models import (
    DatasetVersion,
    Image,
    Instance,
    InstanceScore,
    InstanceStatus,
    Job,
    RegisteredModel,
    Task,
    VersionStatus,
    utcnow,
)
from app.qc import doubt
from app.qc.doubt import Doubt, ScoreRow
from app.schemas import ScoreIn
from app.schemas.jobs import ScorePayload
from app.schemas.manifest import Manifest
from app.services import jobs
from app.services import registered_models as model_service
from app.services.sampling import newest_version
from app.services.tasks import get_task


def start(session: Session, *, task_id: int, data: ScoreIn, actor_id: int | None) -> Job:
    """Queues a `score` job: every active instance of the task under the model, rendered with the version asked
    for (else the task's newest approved)."""
    get_task(session, task_id=task_id)
    model = model_service.get(session, model_id=data.model_id)
    version = newest_version(session, task_id=task_id, version_id=data.instruction_version_id)
    return jobs.enqueue(session, ScorePayload(task_id=task_id, model_id=model.id, instruction_version_id=version.id,
                                              batch_size=data.batch_size), created_by_id=actor_id)


def start_for_version(session: Session, *, version_id: int, model_id: int, batch_size: int,
                      actor_id: int | None) -> list[Job]:
    """A score job per task of a ready dataset version and per instruction version its records were rendered
    with (the manifest says which): every active instance of those tasks, the version's records among them,
    scored as the trainer will see them."""
    used = _ready(session, version_id).instruction_versions
    task_ids = dict(session.exec(select(Task.name, Task.id).where(Task.name.in_(list(used)))).all())
    return [start(session, task_id=task_ids[name], actor_id=actor_id,
                  data=ScoreIn(model_id=model_id, instruction_version_id=int(instruction_version_id),
                               batch_size=batch_size))
            for name, versions in sorted(used.items()) if name in task_ids for instruction_version_id in versions]


def version_task_ids(session: Session, *, version_id: int) -> list[int]:
    """The tasks a ready dataset version holds (those not deleted since), by name."""
    names = _ready(session, version_id).tasks
    return list(session.exec(select(Task.id).where(Task.name.in_(names)).order_by(Task.name)))


def _ready(session: Session, version_id: int) -> Manifest:
    """The manifest of a ready version."""
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"There is no dataset version with id {version_id}.")
    manifest = Manifest.read(version.manifest)
    if version.status != VersionStatus.ready or manifest is None:
        raise Conflict(f"Version {version.name} is {version.status}: only a ready version's tasks can be checked.")
    return manifest


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
    """The task's active instances under `scores`, most doubtful first (app/qc/doubt.py says how)."""
    rows = session.exec(
        select(InstanceScore.instance_id, InstanceScore.loss, Instance.raw_output, Instance.options,
               InstanceScore.option_probabilities)
        .join(Instance, Instance.id == InstanceScore.instance_id)
        .where(InstanceScore.task_id == task_id, InstanceScore.model_id == scores.model_id,
               InstanceScore.instruction_version_id == scores.instruction_version_id,
               Instance.status == InstanceStatus.active))
    return doubt.rank([ScoreRow(*row) for row in rows])


def active_instance_count(session: Session, *, task_id: int) -> int:
    return session.exec(select(func.count()).select_from(Instance).where(_active(task_id))).one()


def active_instances_after(session: Session, *, task_id: int, after_id: int,
                           limit: int) -> list[tuple[Instance, Image | None]]:
    """The next `limit` active instances of the task in id order, with their images (a score job walks them)."""
    return list(session.exec(select(Instance, Image).outerjoin(Image, Image.id == Instance.image_id)
                             .where(_active(task_id), col(Instance.id) > after_id).order_by(Instance.id).limit(limit)))


def store(engine: Engine, *, instance_ids: list[int], model_id: int, instruction_version_id: int,
          rows: list[dict]) -> None:
    """A chunk's scores, in place of any earlier ones by the same model and instruction version (a retried or
    repeated job rewrites)."""
    with engine.begin() as connection:
        connection.execute(delete(InstanceScore).where(InstanceScore.instance_id.in_(instance_ids),
                                                       InstanceScore.model_id == model_id,
                                                       InstanceScore.instruction_version_id == instruction_version_id))
        if rows:
            connection.execute(insert(InstanceScore), [
                {"model_id": model_id, "instruction_version_id": instruction_version_id, "created_at": utcnow(), **row}
                for row in rows])


def _active(task_id: int):
    return (Instance.task_id == task_id) & (Instance.status == InstanceStatus.active)
