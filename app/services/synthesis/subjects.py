"""Which instances a synthesis writes about: a seeded draw from a task (the same draw for the same seed, as previews
draw), or the instances a batch's request keys name."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.models import Image, Instance, Task
from app.services.sampling import sample_instances
from app.services.synthesis.requests import Subject


@dataclass(frozen=True)
class Drawn:
    subject: Subject
    image_id: int | None


def _drawn(instance: Instance, image: Image | None, task_name: str) -> Drawn:
    return Drawn(Subject(instance.id or 0, task_name, instance.input_text, instance.raw_output,
                         image.sha256 if image else None, image.format if image else None),
                 image.id if image else None)


def draw(session: Session, *, task_id: int, seed: int, count: int) -> list[Drawn]:
    task = session.get(Task, task_id)
    name = task.name if task else str(task_id)
    return [_drawn(instance, image, name) for instance, image in
            sample_instances(session, task_id=task_id, seed=seed, size=count)]


def named(session: Session, *, instance_ids: Collection[int]) -> dict[int, Drawn]:
    """The instances by id (those that still exist)."""
    rows = session.exec(select(Instance, Image, Task.name).join(Task, Task.id == Instance.task_id)
                        .outerjoin(Image, Image.id == Instance.image_id)
                        .where(col(Instance.id).in_(list(instance_ids))))
    return {instance.id: _drawn(instance, image, name) for instance, image, name in rows}
