"""Applying an accepted bulk fix, a chunk of its items at a time: each chunk is one transaction that writes the
chunk's accepted revisions, the instances' new values and how far the fix got (`applied_through`), so a job
killed anywhere leaves whole chunks behind and its next run goes on from the first item not applied.

An item is applied only onto the instance version it was proposed against; an instance changed since (a fix
accepted meanwhile) is skipped and reported, never overwritten. The chunk takes its write lock first (SQLite)
or locks its instances (PostgreSQL), so nobody changes them between the check and the write.

This is the hot path of a 100,000-instance fix: everything goes through Core statements executed many at a
time, grouped by the fields they set, rather than through the ORM."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlmodel import Session

from app.core.failures import Conflict
from app.models import (
    BulkFix,
    BulkFixItem,
    BulkFixStatus,
    Instance,
    InstanceScore,
    RecordKind,
    Revision,
    RevisionOrigin,
    RevisionStatus,
    utcnow,
)
from app.services import audit
from app.services.instance_revisions import SCORED_FIELDS
from app.services.tasks import refresh_instance_counts

CHUNK = 2_000
INSTANCE = Instance.__table__
ITEM = BulkFixItem.__table__
FIX = BulkFix.__table__


@dataclass(frozen=True)
class Applied:
    applied: int
    skipped: int


def apply(session: Session, *, fix_id: int, on_chunk: Callable[[int, int], None] = lambda done, total: None,
          chunk: int = CHUNK) -> Applied:
    """Applies the fix's items not applied yet, then marks it applied. `on_chunk(done, total)` after each
    committed chunk (the job's progress and its chance to stop)."""
    fix = session.get(BulkFix, fix_id, populate_existing=True)
    if fix is None or fix.status not in (BulkFixStatus.accepted, BulkFixStatus.applied):
        raise Conflict(f"Bulk fix #{fix_id} is not accepted: there is nothing to apply.")
    while fix.status == BulkFixStatus.accepted:
        done = _apply_chunk(session.connection(), fix, chunk)  # a connection per transaction: commit returns it
        session.commit()
        session.refresh(fix)
        if done:
            on_chunk(fix.applied_count + fix.skipped_count, fix.change_count)
            continue
        _finish(session, fix)
    return Applied(fix.applied_count, fix.skipped_count)


def _apply_chunk(connection: Connection, fix: BulkFix, size: int) -> int:
    """One chunk in the caller's transaction; the number of items dealt with (0: none was left)."""
    # Taking the fix's row first: on SQLite this is the write lock, held to the commit, so the lock versions
    # read below cannot change before the chunk is written.
    if not connection.execute(update(FIX).where(FIX.c.id == fix.id, FIX.c.status == BulkFixStatus.accepted)
                              .values(lock_version=FIX.c.lock_version + 1)).rowcount:
        return 0
    pending = select(ITEM.c.id, ITEM.c.instance_id, ITEM.c.task_id, ITEM.c.changes, ITEM.c.base_lock_version).where(
        ITEM.c.bulk_fix_id == fix.id, ITEM.c.id > fix.applied_through, ITEM.c.refusal.is_(None))
    if not fix.include_validation:
        pending = pending.where(ITEM.c.validation.is_(False))
    items = connection.execute(pending.order_by(ITEM.c.id).limit(size)).all()
    if not items:
        return 0
    current = select(INSTANCE.c.id, INSTANCE.c.lock_version).where(
        INSTANCE.c.id.in_([item.instance_id for item in items]))
    if connection.dialect.name == "postgresql":
        current = current.with_for_update()
    versions: dict[int, int] = {instance_id: version for instance_id, version in connection.execute(current)}
    fresh = [item for item in items if versions.get(item.instance_id) == item.base_lock_version]
    stale = [item.id for item in items if versions.get(item.instance_id) != item.base_lock_version]
    if fresh:
        _write(connection, fix, fresh)
    if stale:
        connection.execute(update(ITEM).where(ITEM.c.id.in_(stale)).values(skipped=True))
    connection.execute(update(FIX).where(FIX.c.id == fix.id).values(
        applied_through=items[-1].id, applied_count=FIX.c.applied_count + len(fresh),
        skipped_count=FIX.c.skipped_count + len(stale)))
    return len(items)


def _write(connection: Connection, fix: BulkFix, items: list) -> None:
    """The accepted revisions and the instances' new values, many rows per statement."""
    now = utcnow()
    connection.execute(insert(Revision.__table__), [
        {"record_kind": RecordKind.instance.value, "record_id": item.instance_id, "task_id": item.task_id,
         "changes": item.changes, "dismissal": False, "reason": fix.reason, "origin": RevisionOrigin.bulk_fix.value,
         "origin_id": fix.id, "origin_detail": None, "base_lock_version": item.base_lock_version,
         "status": RevisionStatus.accepted.value, "author_id": fix.author_id, "created_at": now,
         "reviewer_id": fix.reviewer_id, "lease_expires_at": None, "decided_at": now,
         "decision_comment": None, "self_accepted": fix.self_accepted, "lock_version": 1} for item in items])
    by_fields: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    for item in items:
        fields = tuple(sorted(item.changes))
        by_fields[fields].append({"instance": item.instance_id, "next_lock": item.base_lock_version + 1,
                                  **{f"new_{name}": item.changes[name]["after"] for name in fields}})
    for fields, rows in by_fields.items():
        connection.execute(update(INSTANCE).where(INSTANCE.c.id == bindparam("instance")).values(
            lock_version=bindparam("next_lock"), **{name: bindparam(f"new_{name}") for name in fields}), rows)
    rescored = [item.instance_id for item in items if SCORED_FIELDS & set(item.changes)]
    if rescored:  # a loss on the old values ranks nothing now
        connection.execute(delete(InstanceScore.__table__).where(InstanceScore.__table__.c.instance_id.in_(rescored)))
    recounted = sorted({item.task_id for item in items if "status" in item.changes})
    if recounted:
        refresh_instance_counts(connection, task_ids=recounted)


def _finish(session: Session, fix: BulkFix) -> None:
    marked = session.execute(update(BulkFix).where(BulkFix.id == fix.id, BulkFix.status == BulkFixStatus.accepted)
                             .values(status=BulkFixStatus.applied, applied_at=utcnow(),
                                     lock_version=BulkFix.lock_version + 1)).rowcount
    if marked:
        audit.record(session, actor_id=fix.reviewer_id, action="bulk_fix.applied", entity_type="bulk_fix",
                     entity_id=fix.id, after={"applied": fix.applied_count, "skipped": fix.skipped_count})
    session.commit()
    session.refresh(fix)
