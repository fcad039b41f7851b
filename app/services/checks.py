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

from sqlalchemy import Select, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from app.core.failures import Conflict, Invalid, NotFound
from app.models import (
    Instance,
    InstanceStatus,
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

Draw = Callable[..., list[InstanceRow]]  # (session, *, task_id, seed, size, avoid) -> the instances to check
# (drawn, whole) -> a kind's own columns, once it is known how many instances were drawn and whether that is every
# active instance of the task
Settings = Callable[[int, bool], dict[str, Any]]


@dataclass(frozen=True)
class CheckKind:
    """A kind of check: its table, its items' table, and what people call it."""

    table: type[SQLModel]
    items: type[SQLModel]
    noun: str  # "solve test"
    verb: str  # what reviewers do to its items: "solve"

    @property
    def name(self) -> str:  # in audit actions: "solve_test.open"
        return str(self.table.__tablename__)

    @property
    def parent(self):
        """The item's column that names its check."""
        return getattr(self.items, f"{self.name}_id")


@dataclass(frozen=True)
class Permission:
    """What lets a check be opened other than as the defaults say (`check_rules.authorise` grants it): an
    admin's reason, what it overrides in words, and the running check it may replace."""

    reason: str | None = None
    overrides: tuple[str, ...] = ()
    replaces: int | None = None


AS_DEFAULT = Permission()

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
               seed: int | None, version_id: int | None, settings: Settings,
               draw: Draw = sample_instances, item_fields: Callable[[Instance], dict[str, Any]] | None = None,
               permission: Permission = AS_DEFAULT):
    """Opens a check of `size` instances drawn with `seed` (a random one when None), rendered with the version
    asked for (else the task's newest approved), none of them in a running check of the other kind (see
    `blinded_elsewhere`). `settings` gives the kind's own columns, `item_fields` an item's own. One
    check of a kind runs at a time and is never replaced silently: a running one is cancelled only when the
    `permission` names it (its reason is kept on both), else the new check is refused."""
    _checkable_task(session, task_id=task_id)
    running = open_check_of(session, kind, task_id=task_id)
    if running is not None and permission.replaces != running:
        raise Conflict(f"A {kind.noun} of this task is running (#{running}): it is never replaced silently. Let it "
                       f"finish, or have an admin replace it with a reason.", fields={"reason": "a check is running"})
    version = newest_version(session, task_id=task_id, version_id=version_id)
    seed = random.SystemRandom().getrandbits(31) if seed is None else seed
    drawn = draw(session, task_id=task_id, seed=seed, size=size, avoid=blinded_elsewhere(kind, task_id))
    if not drawn:
        if _active_count(session, task_id):
            other = SPOT if kind is SOLVE else SOLVE
            raise Conflict(f"Every active instance of the task is in its running {other.noun}, which a {kind.noun} "
                           f"must not share (the same reviewers work both): open it once that one has ended.",
                           fields={"task": f"in a running {other.noun}"})
        raise Invalid(f"The task has no active instances to {kind.verb}.", fields={"task": "empty"})
    if running is not None:
        cancel(session, kind, check_id=running, task_id=task_id, actor_id=actor_id,
               reason=f"replaced by a new {kind.noun}: {permission.reason}")
    own = settings(len(drawn), len(drawn) == _active_count(session, task_id))
    check = kind.table(task_id=task_id, instruction_version_id=version.id, seed=seed, size=len(drawn),
                       created_by_id=actor_id, override_reason=permission.reason, **own)
    session.add(check)
    try:
        session.flush()
    except IntegrityError:  # the one-open-check-per-task index: someone opened one at the same moment
        session.rollback()
        raise Conflict(f"Another {kind.noun} of this task was opened at the same moment: nothing was recorded. "
                       "Reload to see it.") from None
    session.add_all(kind.items(**{kind.parent.key: check.id}, instance_id=instance.id, position=k,
                               **(item_fields(instance) if item_fields else {}))
                    for k, (instance, _) in enumerate(drawn))
    session.flush()
    refresh_statistics(session, kind.items)
    audit.record(session, actor_id=actor_id, action=f"{kind.name}.open", entity_type=kind.name, entity_id=check.id,
                 task_id=task_id, after={"size": check.size, "seed": seed, "version_id": version.id, **own,
                                         **({"overrides": list(permission.overrides), "reason": permission.reason}
                                            if permission.reason else {})})
    return check


def _active_count(session: Session, task_id: int) -> int:
    return session.exec(select(func.count()).select_from(Instance).where(
        Instance.task_id == task_id, Instance.status == InstanceStatus.active)).one()


def drawable(session: Session, kind: CheckKind, *, task_id: int) -> int:
    """How many of the task's active instances a new check of `kind` may draw (those outside `blinded_elsewhere`)."""
    return session.exec(select(func.count()).select_from(Instance).where(
        Instance.task_id == task_id, Instance.status == InstanceStatus.active,
        Instance.id.not_in(blinded_elsewhere(kind, task_id)))).one()


def blinded_elsewhere(kind: CheckKind, task_id: int) -> Select:
    """The instances a new check of `kind` must not share with the task's running check of the other kind: the
    same reviewers work both, and a spot check shows the targets a running solve test must keep unseen."""
    other = SPOT if kind is SOLVE else SOLVE
    return (select(other.items.instance_id).join(other.table, other.table.id == other.parent)
            .where(other.table.task_id == task_id, other.table.status == QcStatus.open))


def open_check_of(session: Session, kind: CheckKind, *, task_id: int) -> int | None:
    """The id of the task's running check of this kind, if one runs."""
    return session.exec(select(kind.table.id).where(kind.table.task_id == task_id,
                                                    kind.table.status == QcStatus.open)).first()


def latest_concluded(session: Session, kind: CheckKind, *, task_id: int):
    """The task's check of this kind that decides where it stands (`task_states.latest_concluded`)."""
    return task_states.latest_concluded(session, kind.table, task_id=task_id)


def standing(session: Session, kind: CheckKind, *, task_id: int) -> QcStatus | None:
    """passed, failed, or None before any check of this kind concluded."""
    latest = latest_concluded(session, kind, task_id=task_id)
    return None if latest is None else QcStatus(latest.status)


def failing(session: Session, *, task_ids: list[int]) -> dict[str, str]:
    """Of these tasks, those whose latest concluded check of a kind failed (a solve test where one is required),
    by name, with which check: what keeps a task out of verification and out of versions."""
    held = {}
    for task in session.exec(select(Task).where(Task.id.in_(task_ids)).order_by(Task.name)):
        kinds = (SOLVE, SPOT) if task.solve_test_required else (SPOT,)
        failed = [f"{kind.noun} #{latest.id} failed" for kind in kinds
                  if (latest := latest_concluded(session, kind, task_id=task.id)) is not None
                  and latest.status == QcStatus.failed]
        if failed:
            held[task.name] = ", ".join(failed)
    return held


def cancel(session: Session, kind: CheckKind, *, check_id: int, task_id: int, actor_id: int | None,
           reason: str) -> None:
    """Ends a running check without an outcome; it stays on the record with the reason."""
    session.execute(update(kind.table).where(kind.table.id == check_id, kind.table.status == QcStatus.open)
                    .values(status=QcStatus.cancelled, completed_at=utcnow(), cancel_reason=reason))
    audit.record(session, actor_id=actor_id, action=f"{kind.name}.cancel", entity_type=kind.name,
                 entity_id=check_id, task_id=task_id, after={"reason": reason})


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


def refresh_statistics(session: Session, table) -> None:
    """On PostgreSQL, the planner's statistics of a check's items brought up to date, in the caller's transaction
    (which sees its own new items). A check adds up to 10,000 undecided items at once, which autovacuum's analyze
    (after a tenth of the table changes) would not notice for long; planned with statistics that say almost nothing
    is undecided, the claim sorted every undecided item of the open checks (8-10 ms; bench/review_bench.py prints
    the plan). Opening a check is rare; an ANALYZE samples at most 30,000 rows."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {table.__tablename__}"))


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
