"""Model previews: a model's answers on a task's seeded instances next to their targets, scored.

The worker generates (worker/preview.py) and stores its outputs here (`store_outputs`); this side queues the job,
reads and scores what it stored."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert
from sqlmodel import Session, select

from app.core.failures import Invalid
from app.models import Image, Instance, InstructionVersion, Job, ModelOutput, utcnow
from app.prompts.specs import render_instance, spec_of_version
from app.qc.answers import matches
from app.schemas import PreviewIn
from app.schemas.jobs import PreviewPayload
from app.services import blinding, jobs
from app.services import registered_models as model_service
from app.services.blinding import Blindfold
from app.services.sampling import newest_version


def start(session: Session, *, task_id: int, data: PreviewIn, actor_id: int | None) -> Job:
    """Queues a preview of a registered model on the task (bounds are checked by `PreviewIn`)."""
    model = model_service.get(session, model_id=data.model_id)
    version = newest_version(session, task_id=task_id, version_id=data.instruction_version_id)
    return jobs.enqueue(session, PreviewPayload(**{**data.model_dump(), "task_id": task_id,
                                                   "instruction_version_id": version.id, "model_id": model.id}),
                        created_by_id=actor_id)


@dataclass(frozen=True)
class PreviewRow:
    instance: Instance
    image: Image | None
    prompt: str
    target: str
    output: str
    latency_ms: float | None
    matched: bool


def results(session: Session, *, job: Job, blindfold: Blindfold = blinding.NONE) -> list[PreviewRow]:
    """The job's outputs beside their targets, but none on an instance whose target the viewer must not see."""
    version = session.get(InstructionVersion, jobs.payload_of(job).instruction_version_id)
    spec = spec_of_version(version)
    rows = session.exec(select(ModelOutput, Instance, Image).join(Instance, Instance.id == ModelOutput.instance_id)
                        .outerjoin(Image, Image.id == Instance.image_id).where(ModelOutput.job_id == job.id)
                        .order_by(ModelOutput.id))
    found = []
    for output, instance, image in rows:
        if blindfold.hides(instance.id):
            continue
        rendered, _ = render_instance(spec, instance, has_image=image is not None)
        prompt, target = (rendered.prompt, rendered.target) if rendered else ("", instance.raw_output)
        found.append(PreviewRow(instance, image, prompt, target, output.output, output.latency_ms,
                                matches(output.output, target, instance.options)))
    return found


@dataclass(frozen=True)
class Comparison:
    instance: Instance
    image: Image | None
    left: PreviewRow
    right: PreviewRow


def compare(session: Session, *, left: Job, right: Job, blindfold: Blindfold = blinding.NONE) -> list[Comparison]:
    """Two previews (two instruction versions, or two models) on the instances both answered, side by side.
    Previews of one task with the same seed and size draw the same instances."""
    if jobs.payload_of(left).task_id != jobs.payload_of(right).task_id:
        raise Invalid("Compare two previews of the same task.", fields={"b": "another task"})
    rights = {row.instance.id: row for row in results(session, job=right, blindfold=blindfold)}
    return [Comparison(row.instance, row.image, row, rights[row.instance.id])
            for row in results(session, job=left, blindfold=blindfold) if row.instance.id in rights]


def store_outputs(engine: Engine, *, job_id: int, rows: list[dict]) -> None:
    """A preview job's outputs (instance_id, instruction_version_id, model_name, output, latency_ms), in place of
    any an earlier attempt of the job stored."""
    with engine.begin() as connection:
        connection.execute(delete(ModelOutput).where(ModelOutput.job_id == job_id))
        if rows:
            connection.execute(insert(ModelOutput), [{"job_id": job_id, "created_at": utcnow(), **row} for row in rows])
