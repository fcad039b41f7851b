"""The skeleton every quality check shares (blind solve tests, spot checks, and any check built on them): a
sample of a task's instances drawn with a seed and rendered with one instruction version, one item per
instance, one open check of a kind per task, reviewers' items claimed from a queue, and closing exactly once
(audited, and the task's status brought in line).

Everything here runs in the caller's transaction; the services of each kind decide when to commit."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, SQLModel, select

from app.failures import Conflict, Invalid, NotFound
from app.models import (
    Instance,
    InstructionVersion,
    QcStatus,
    SolveTest,
    SolveTestItem,
    SpotCheck,
    SpotCheckItem,
    Task,
    TaskStatus,
    utcnow,
)
from app.services import audit, leases, task_states
from app.services.sampling import InstanceRow, newest_version, sample_instances

Draw = Callable[..., list[InstanceRow]]  # (session, *, task_id, seed, size) -> the instances to check


@dataclass(frozen=True)
class CheckKind:
    """A kind of check: its table, its items' table, and what people call it."""

    table: type[SQLModel]
    items: type[SQLModel]
    noun: str  # "solve test"
    verb: str  # what reviewers do to its items: "solve"

    @property
    def name(self) -> str:  # in audit actions: "solve_test.open"
        return self.table.__tablename__

    @property
    def parent(self):
        """The item's column that names its check."""
        return getattr(self.items, f"{self.name}_id")


SOLVE = CheckKind(SolveTest, SolveTestItem, "solve test", "solve")
SPOT = CheckKind(SpotCheck, SpotCheckItem, "spot check", "check")


def _checkable_task(session: Session, *, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"There is no task with id {task_id}.")
    if task.status == TaskStatus.retired:
        raise Conflict("This task is retired.")
    return task


def open_check(session: Session, kind: CheckKind, *, task_id: int, actor_id: int | None, size: int,
               seed: int | None, version_id: int | None, settings: Callable[[int], dict[str, Any]],
               draw: Draw = sample_instances, item_fields: Callable[[Instance], dict[str, Any]] | None = None):
    """Opens a check of `size` instances drawn with `seed` (a random one when None), rendered with the version
    asked for (else the task's newest approved). `settings(drawn)` gives the kind's own columns once it is
    known how many instances were drawn (a small task has fewer than asked), `item_fields` an item's own. An
    open check of the same kind on the task is cancelled: one runs at a time."""
    _checkable_task(session, task_id=task_id)
    version = newest_version(session, task_id=task_id, version_id=version_id)
    seed = random.SystemRandom().getrandbits(31) if seed is None else seed
    drawn = draw(session, task_id=task_id, seed=seed, size=size)
    if not drawn:
        raise Invalid(f"The task has no active instances to {kind.verb}.", fields={"task": "empty"})
    cancel_open(session, kind, task_id=task_id, actor_id=actor_id)
    own = settings(len(drawn))
    check = kind.table(task_id=task_id, instruction_version_id=version.id, seed=seed, size=len(drawn),
                       created_by_id=actor_id, **own)
    session.add(check)
    session.flush()
    session.add_all(kind.items(**{kind.parent.key: check.id}, instance_id=instance.id, position=k,
                               **(item_fields(instance) if item_fields else {}))
                    for k, (instance, _) in enumerate(drawn))
    audit.record(session, actor_id=actor_id, action=f"{kind.name}.open", entity_type=kind.name, entity_id=check.id,
                 task_id=task_id, after={"size": check.size, "seed": seed, "version_id": version.id, **own})
    return check


def running_or_passed(session: Session, kind: CheckKind, *, task_id: int) -> bool:
    """Whether the task has a check of this kind running or passed (an approval then opens no other)."""
    return session.exec(select(kind.table.id).where(kind.table.task_id == task_id, kind.table.status.in_(
        [QcStatus.open, QcStatus.passed]))).first() is not None


def cancel_open(session: Session, kind: CheckKind, *, task_id: int, actor_id: int | None) -> None:
    """Cancels the task's running check of this kind: a new one replaces it."""
    table = kind.table
    for check_id in session.exec(select(table.id).where(table.task_id == task_id,
                                                        table.status == QcStatus.open)).all():
        session.execute(update(table).where(table.id == check_id)
                        .values(status=QcStatus.cancelled, completed_at=utcnow()))
        audit.record(session, actor_id=actor_id, action=f"{kind.name}.cancel", entity_type=kind.name,
                     entity_id=check_id, task_id=task_id, after={"reason": f"a new {kind.noun} was opened"})


def get(session: Session, kind: CheckKind, *, check_id: int):
    check = session.get(kind.table, check_id)
    if check is None:
        raise NotFound(f"There is no {kind.noun} with id {check_id}.")
    return check


def items_of(session: Session, kind: CheckKind, *, check_id: int) -> list[tuple[Any, Instance]]:
    """The check's items with their instances, in sample order."""
    return list(session.exec(select(kind.items, Instance).join(Instance, Instance.id == kind.items.instance_id)
                             .where(kind.parent == check_id).order_by(kind.items.position)))


def open_item(session: Session, kind: CheckKind, *, item_id: int):
    """(item, check), both read fresh (another reviewer may have just decided); refused once the check ended."""
    item = session.get(kind.items, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"There is no {kind.noun.replace(' ', '-')} item with id {item_id}.")
    check = session.get(kind.table, getattr(item, kind.parent.key), populate_existing=True)
    if check.status != QcStatus.open:
        raise Conflict(f"This {kind.noun} is {check.status}: nothing more is recorded on it.")
    return item, check


def queue_candidates(kind: CheckKind):
    """Items of open checks nobody holds, not of a version :user_id wrote, in check order (a queue's source,
    narrowed further by each kind)."""
    items = kind.items
    return (select(items.id, items.lock_version)
            .join(kind.table, kind.table.id == kind.parent)
            .join(InstructionVersion, InstructionVersion.id == kind.table.instruction_version_id)
            .where(kind.table.status == QcStatus.open, items.id != leases.SKIP, leases.lease_free(items),
                   InstructionVersion.author_id.is_(None) | (InstructionVersion.author_id != leases.USER))
            .order_by(kind.parent, items.position))


def close(session: Session, kind: CheckKind, *, check, outcome: QcStatus, actor_id: int, figures: dict[str, Any],
          reason: str) -> None:
    """Ends an open check with `outcome`; a second closer (a concurrent last decision) changes nothing."""
    table = kind.table
    closed = session.execute(update(table).where(table.id == check.id, table.status == QcStatus.open)
                             .values(status=outcome, completed_at=utcnow())).rowcount
    if closed:
        audit.record(session, actor_id=actor_id, action=f"{kind.name}.{outcome}", entity_type=kind.name,
                     entity_id=check.id, task_id=check.task_id, after=figures)
        task_states.advance(session, task_id=check.task_id, actor_id=actor_id, reason=reason)
