"""Source datasets: register, edit, list. Names are unique; every change is audited."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.failures import Conflict, Invalid, NotFound
from app.models import SourceDataset, Task, User, utcnow
from app.schemas import DatasetIn
from app.services import audit


def list_datasets(session: Session) -> list[tuple[SourceDataset, int]]:
    """Every dataset with its number of tasks."""
    task_counts = (select(Task.source_dataset_id, func.count().label("n")).group_by(Task.source_dataset_id)
                   .subquery())
    rows = session.exec(
        select(SourceDataset, func.coalesce(task_counts.c.n, 0))
        .outerjoin(task_counts, task_counts.c.source_dataset_id == SourceDataset.id)
        .order_by(SourceDataset.name)
    )
    return [(dataset, count) for dataset, count in rows]


# The task list's dataset menu: names only, not every dataset's task count.
_NAMES = select(SourceDataset.id, SourceDataset.name).order_by(SourceDataset.name)


def dataset_names(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every dataset, by name."""
    return list(session.exec(_NAMES).all())


def get_dataset(session: Session, *, dataset_id: int) -> SourceDataset:
    dataset = session.get(SourceDataset, dataset_id)
    if dataset is None:
        raise NotFound(f"There is no source dataset with id {dataset_id}.")
    return dataset


def create_dataset(session: Session, *, data: DatasetIn, actor_id: int | None) -> SourceDataset:
    _check_annotator(session, data.annotator_id)
    dataset = SourceDataset(**data.model_dump())
    session.add(dataset)
    _flush_unique(session, data.name)
    audit.record(session, actor_id=actor_id, action="dataset.create", entity_type="source_dataset",
                 entity_id=dataset.id, after=data.model_dump())
    session.commit()
    return dataset


def update_dataset(session: Session, *, dataset_id: int, data: DatasetIn, actor_id: int | None) -> SourceDataset:
    dataset = get_dataset(session, dataset_id=dataset_id)
    _check_annotator(session, data.annotator_id)
    before = DatasetIn.model_validate(dataset, from_attributes=True).model_dump()
    for field, value in data.model_dump().items():
        setattr(dataset, field, value)
    dataset.updated_at = utcnow()
    session.add(dataset)
    _flush_unique(session, data.name)
    audit.record(session, actor_id=actor_id, action="dataset.update", entity_type="source_dataset",
                 entity_id=dataset.id, before=before, after=data.model_dump())
    session.commit()
    return dataset


def put_dataset(session: Session, *, data: DatasetIn, actor_id: int | None) -> tuple[SourceDataset, bool]:
    """The dataset named `data.name` made or updated to say `data`, in the caller's transaction (a metadata
    file is all or nothing); returns it and whether it is new."""
    dataset = session.exec(select(SourceDataset).where(SourceDataset.name == data.name)).first()
    created = dataset is None
    before = None if created else DatasetIn.model_validate(dataset, from_attributes=True).model_dump()
    dataset = dataset or SourceDataset(name=data.name)
    for key, value in data.model_dump().items():
        setattr(dataset, key, value)
    dataset.updated_at = utcnow()
    session.add(dataset)
    session.flush()
    audit.record(session, actor_id=actor_id, action="dataset.create" if created else "dataset.update",
                 entity_type="source_dataset", entity_id=dataset.id, before=before, after=data.model_dump())
    return dataset, created


def _check_annotator(session: Session, annotator_id: int | None) -> None:
    if annotator_id is not None and session.get(User, annotator_id) is None:
        raise Invalid(f"There is no user with id {annotator_id}.", fields={"annotator_id": "unknown user"})


def _flush_unique(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(f"A source dataset named {name} already exists.", fields={"name": "already taken"}) from error
