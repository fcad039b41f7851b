"""The append-only audit log: every state change says who, what, on which entity, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from app.models import AuditEvent, User, utcnow


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
    return [EventView(event, name or "system") for event, name in session.exec(query)]
