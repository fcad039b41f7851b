"""The append-only audit log: every state change says who, what, on which entity, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from app.models import (
    AuditEvent,
    DatasetVersion,
    Instance,
    RegisteredModel,
    SourceDataset,
    Task,
    User,
    utcnow,
)


def record(session: Session, *, actor_id: int | None, action: str, entity_type: str, entity_id: object,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           task_id: int | None = None) -> AuditEvent:
    """Adds the event to the caller's transaction, so it commits (or not) with the change it describes.
    `task_id` files it under that task's history as well."""
    if entity_type == "task" and task_id is None:
        task_id = int(entity_id)
    event = AuditEvent(actor_id=actor_id, action=action, entity_type=entity_type, entity_id=str(entity_id),
                       before=before, after=after, task_id=task_id)
    session.add(event)
    return event


@dataclass(frozen=True)
class EventView:
    event: AuditEvent
    actor: str  # who did it, by name; "system" for the CLI and the demo
    subject: str = ""  # what it was done to, by its name where it has one: "instance shape_classification-0011"
    href: str | None = None  # that thing's page


# Entities with a name: (table, the column that names it, its page's address, None where only admins may open it).
NAMED: dict[str, tuple[Any, Any, str | None]] = {
    "instance": (Instance, Instance.source_id, "/instances/{}"),
    "task": (Task, Task.name, "/tasks/{}"),
    "dataset_version": (DatasetVersion, DatasetVersion.name, "/versions/{}"),
    "registered_model": (RegisteredModel, RegisteredModel.name, "/models/{}"),
    "source_dataset": (SourceDataset, SourceDataset.name, "/datasets/{}"),
    "user": (User, User.display_name, None),
}
PAGES = {"job": "/jobs/{}", "bulk_fix": "/bulk-fixes/{}", "instruction": "/instructions/{}"}


def record_on(connection, *, actor_id: int | None, action: str, entity_type: str, entity_id: object,
              before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """`record` for code that writes through a Core connection (the bulk importers), in its transaction."""
    connection.execute(insert(AuditEvent), [{"at": utcnow(), "actor_id": actor_id, "action": action,
                                             "entity_type": entity_type, "entity_id": str(entity_id)[:64],
                                             "before": before, "after": after}])


def recent(session: Session, *, limit: int = 10, entity_type: str | None = None,
           entity_id: object | None = None, task_id: int | None = None,
           before_id: int | None = None) -> list[EventView]:
    """The newest events first, with their actors' names, optionally for one entity or everything filed
    under one task; `before_id` pages back."""
    query = (select(AuditEvent, User.display_name).outerjoin(User, User.id == AuditEvent.actor_id)
             .order_by(AuditEvent.id.desc()).limit(limit))
    if task_id is not None:
        query = query.where(AuditEvent.task_id == task_id)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    if entity_type is not None:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == str(entity_id))
    rows = session.exec(query).all()
    return _named(session, [EventView(event, name or "system") for event, name in rows])


def _named(session: Session, views: list[EventView]) -> list[EventView]:
    """The views with what each event was done to by name, a query per kind of entity on the page."""
    wanted: dict[str, set[int]] = {}
    for view in views:
        if view.event.entity_type in NAMED and view.event.entity_id.isdigit():
            wanted.setdefault(view.event.entity_type, set()).add(int(view.event.entity_id))
    names: dict[tuple[str, str], str] = {}
    for kind, ids in wanted.items():
        table, column, _ = NAMED[kind]
        for row_id, name in session.exec(select(table.id, column).where(col(table.id).in_(sorted(ids)))):
            names[(kind, str(row_id))] = name
    out = []
    for view in views:
        kind, entity_id = view.event.entity_type, view.event.entity_id
        noun = kind.replace("_", " ")
        name = names.get((kind, entity_id))
        page = NAMED[kind][2] if kind in NAMED else PAGES.get(kind)
        out.append(EventView(view.event, view.actor, f"{noun} {name}" if name else f"{noun} #{entity_id}",
                             page.format(entity_id) if page and entity_id.isdigit() else None))
    return out
