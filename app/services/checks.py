"""What blind solve tests and spot checks share: one open check per task, and closing a check exactly once
(audited, and the task's status brought in line)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from app.models import QcStatus, utcnow
from app.services import audit, task_states


def cancel_open(session: Session, *, model, task_id: int, actor_id: int | None) -> None:
    """Cancels the task's running check of this kind (`SolveTest` or `SpotCheck`): a new one replaces it."""
    kind = model.__tablename__
    for check_id in session.exec(select(model.id).where(model.task_id == task_id,
                                                        model.status == QcStatus.open)).all():
        session.execute(update(model).where(model.id == check_id)
                        .values(status=QcStatus.cancelled, completed_at=utcnow()))
        audit.record(session, actor_id=actor_id, action=f"{kind}.cancel", entity_type=kind, entity_id=check_id,
                     task_id=task_id, after={"reason": f"a new {kind.replace('_', ' ')} was opened"})


def close(session: Session, *, check, outcome: QcStatus, actor_id: int, figures: dict[str, Any], reason: str) -> None:
    """Ends an open check with `outcome`; a second closer (a concurrent last decision) changes nothing."""
    model, kind = type(check), type(check).__tablename__
    closed = session.execute(update(model).where(model.id == check.id, model.status == QcStatus.open)
                             .values(status=outcome, completed_at=utcnow())).rowcount
    if closed:
        audit.record(session, actor_id=actor_id, action=f"{kind}.{outcome}", entity_type=kind, entity_id=check.id,
                     task_id=check.task_id, after=figures)
        task_states.advance(session, task_id=check.task_id, actor_id=actor_id, reason=reason)
