"""Browsing a task's instances: filtered keyset pages over the (task, id) index, and one instance."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, select

from app.failures import NotFound
from app.models import Image, Instance
from app.services.tasks import escape_like


@dataclass(frozen=True)
class InstanceFilters:
    split: str | None = None
    status: str | None = None
    q: str | None = None

    def as_query(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


@dataclass(frozen=True)
class InstancePage:
    instances: list[Instance]
    images: dict[int, Image]
    next_after: int | None


def list_instances(session: Session, *, task_id: int, filters: InstanceFilters, after: int | None = None,
                   limit: int = 50) -> InstancePage:
    query = select(Instance).where(Instance.task_id == task_id)
    if filters.split:
        query = query.where(Instance.split == filters.split)
    if filters.status:
        query = query.where(Instance.status == filters.status)
    if filters.q:
        pattern = f"%{escape_like(filters.q.strip())}%"
        query = query.where(or_(Instance.input_text.ilike(pattern, escape="\\"),
                                Instance.raw_output.ilike(pattern, escape="\\")))
    if after is not None:
        query = query.where(Instance.id > after)
    rows = list(session.exec(query.order_by(Instance.id).limit(limit + 1)))
    instances = rows[:limit]
    image_ids = {instance.image_id for instance in instances if instance.image_id}
    images = {image.id: image for image in session.exec(select(Image).where(Image.id.in_(image_ids)))} \
        if image_ids else {}
    return InstancePage(instances, images, instances[-1].id if len(rows) > limit else None)


def get_instance(session: Session, *, instance_id: int) -> tuple[Instance, Image | None]:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"There is no instance with id {instance_id}.")
    return instance, session.get(Image, instance.image_id) if instance.image_id else None


def get_image(session: Session, *, sha256: str) -> Image:
    image = session.exec(select(Image).where(Image.sha256 == sha256)).first()
    if image is None:
        raise NotFound("There is no such image.")
    return image
