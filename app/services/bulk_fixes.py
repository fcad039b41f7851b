"""Bulk fixes under the four-eyes rule: proposed with the set of instances frozen as previewed, accepted or
rejected as a whole by a second person who sees the same preview, applied by a job (`bulk_fix_apply`), and
undone by another bulk fix that restores what the first one wrote.

Instances whose targets are hidden from the author (a blind solve test they may still answer) are left out and
counted; a reviewer from whom any of them is hidden leaves the decision to someone else."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, col, func, select

from app.core.failures import Conflict, Forbidden, Invalid, NotFound
from app.models import (
    BulkFix,
    BulkFixItem,
    BulkFixStatus,
    Instance,
    Revision,
    RevisionOrigin,
    RevisionStatus,
    Task,
    utcnow,
)
from app.schemas.bulk_fixes import BulkDecisionIn, BulkFixIn, BulkItemOut, BulkPreview
from app.schemas.jobs import BulkFixPayload
from app.services import audit, jobs
from app.services.blinding import HIDDEN, NONE, Blindfold
from app.services.bulk_fix_plans import PlannedItem, Tally, planned

SHOWN = 20  # items of each kind a preview shows
HIDDEN_CHANGE = {"before": HIDDEN, "after": HIDDEN}
STORE_BATCH = 5_000  # items written per statement while a proposal streams them in


def preview(session: Session, *, data: BulkFixIn, blindfold: Blindfold) -> BulkPreview:
    """What proposing `data` would store, without writing anything: the counts and the first items of each kind
    (the rest stream by)."""
    tally = Tally()
    first: dict[str, list[PlannedItem]] = {"change": [], "validation": [], "refused": []}
    for item in planned(session, query=data.query, change=data.change, blindfold=blindfold, tally=tally):
        kind = first[tally.add(item, include_validation=data.include_validation)]
        if len(kind) < SHOWN:
            kind.append(item)
    return _plan_preview(session, tally, first)


def propose(session: Session, *, data: BulkFixIn, author_id: int, blindfold: Blindfold,
            self_accept_allowed: bool) -> BulkFix:
    """Stores the fix with its items as `preview` shows them. Commits."""
    if data.accept and not self_accept_allowed:
        raise Invalid("This studio has a second person accept every fix.", fields={"accept": "not allowed"})
    tally = Tally()
    fix = BulkFix(reason=data.reason.strip(), query=data.query.model_dump(mode="json", exclude_defaults=True),
                  change=data.change.model_dump(mode="json", exclude_none=True),
                  include_validation=data.include_validation, author_id=author_id)
    items = planned(session, query=data.query, change=data.change, blindfold=blindfold, tally=tally)
    return _store(session, fix, items, tally, accept=data.accept)


def propose_undo(session: Session, *, fix_id: int, reason: str, author_id: int, blindfold: Blindfold) -> BulkFix:
    """A bulk fix that restores what an applied one wrote, on each instance that still holds those values (the
    others are refused, with what changed since). Reviewed and applied like any bulk fix. Commits."""
    original = get(session, fix_id=fix_id)
    if original.status != BulkFixStatus.applied:
        raise Conflict(f"Bulk fix #{fix_id} has not been applied: there is nothing to undo.")
    waiting = session.exec(select(BulkFix.id).where(BulkFix.undoes_id == fix_id, col(BulkFix.status).in_(
        (BulkFixStatus.proposed, BulkFixStatus.accepted)))).first()
    if waiting:
        raise Conflict(f"The undo of bulk fix #{fix_id} is already under way (bulk fix #{waiting}).")
    tally = Tally()
    fix = BulkFix(reason=reason.strip(), query={"undoes": fix_id}, change={"action": "undo"},
                  include_validation=True, undoes_id=fix_id, author_id=author_id)
    return _store(session, fix, _reversed(session, fix_id, blindfold, tally), tally, accept=False)


def _reversed(session: Session, fix_id: int, blindfold: Blindfold, tally: Tally) -> Iterator[PlannedItem]:
    """Items restoring what the fix wrote, refused where an instance no longer holds what it wrote."""
    for revision_rows in _applied_revisions(session, fix_id):
        current = {row[0]: row for row in session.exec(
            select(Instance.id, Instance.lock_version, Instance.options, Instance.raw_output,
                   Instance.human_preferred_output, Instance.status)
            .where(col(Instance.id).in_([record_id for record_id, _, _ in revision_rows])))}
        for record_id, task_id, changes in revision_rows:
            if record_id not in current:
                continue
            if blindfold.hides(record_id):
                tally.hidden_count += 1
                continue
            values = dict(zip(("options", "raw_output", "human_preferred_output", "status"), current[record_id][2:],
                              strict=True))
            moved = sorted(name for name, change in changes.items() if values[name] != change["after"])
            yield PlannedItem(record_id, task_id, {name: {"before": change["after"], "after": change["before"]}
                                                   for name, change in changes.items()},
                              current[record_id][1], validation=False,
                              refusal=f"changed since bulk fix #{fix_id}: {', '.join(moved)}" if moved else None)


def _store(session: Session, fix: BulkFix, items: Iterator[PlannedItem], tally: Tally, *, accept: bool) -> BulkFix:
    """The fix and its items, written `STORE_BATCH` at a time as they are worked out, with their counts."""
    session.add(fix)
    session.flush()
    while batch := list(islice(items, STORE_BATCH)):
        for item in batch:
            tally.add(item, include_validation=fix.include_validation)
        session.execute(insert(BulkFixItem), [
            {"bulk_fix_id": fix.id, "instance_id": item.instance_id, "task_id": item.task_id,
             "changes": item.changes, "base_lock_version": item.base_lock_version, "validation": item.validation,
             "refusal": item.refusal, "skipped": False} for item in batch])
    if not tally.change_count:
        session.rollback()
        left_alone = tally.refused_count + tally.validation_count
        raise Invalid("Nothing would change: no instance the query picks is changed by this fix"
                      + (" (every one it would change is refused or held out for validation)." if left_alone else "."),
                      fields={"query": "matches nothing to change"})
    for name, count in tally.counts().items():
        setattr(fix, name, count)
    session.add(fix)
    session.flush()
    audit.record(session, actor_id=fix.author_id, action="bulk_fix.propose", entity_type="bulk_fix",
                 entity_id=fix.id, after={"query": fix.query, "change": fix.change, "reason": fix.reason,
                                          "changes": fix.change_count, "validation": fix.validation_count,
                                          "refused": fix.refused_count})
    if accept:
        _accept(session, fix, user_id=fix.author_id, comment=None, self_accepted=True)
    session.commit()
    session.refresh(fix)
    return fix


def decide(session: Session, *, fix_id: int, data: BulkDecisionIn, user_id: int, blindfold: Blindfold) -> BulkFix:
    """A second person accepts the whole fix (its job is queued in the same transaction) or rejects it with a
    comment. Commits."""
    fix = get(session, fix_id=fix_id)
    if fix.author_id == user_id:
        raise Forbidden("A bulk fix is accepted or rejected by someone other than the person who proposed it.")
    accept = data.decision == "accept"
    if not accept and not (data.comment or "").strip():
        raise Invalid("Say why you reject the fix: a comment is required.", fields={"comment": "required to reject"})
    if blindfold and session.exec(select(BulkFixItem.id).where(
            BulkFixItem.bulk_fix_id == fix.id, col(BulkFixItem.instance_id).in_(sorted(blindfold.hidden)))).first():
        raise Conflict("This fix changes instances in a blind solve test you may still answer: their targets stay "
                       "hidden from you until the test ends, so someone else decides it.")
    if accept:
        _accept(session, fix, user_id=user_id, comment=data.comment, lock_version=data.lock_version)
    else:
        _decided(session, fix, status=BulkFixStatus.rejected, user_id=user_id, comment=data.comment,
                 lock_version=data.lock_version)
        audit.record(session, actor_id=user_id, action="bulk_fix.reject", entity_type="bulk_fix", entity_id=fix.id,
                     after={"comment": (data.comment or "").strip()})
    session.commit()
    session.refresh(fix)
    return fix


def _accept(session: Session, fix: BulkFix, *, user_id: int | None, comment: str | None,
            lock_version: int | None = None, self_accepted: bool = False) -> None:
    job = jobs.enqueue(session, BulkFixPayload(bulk_fix_id=fix.id), created_by_id=user_id, commit=False)
    _decided(session, fix, status=BulkFixStatus.accepted, user_id=user_id, comment=comment,
             lock_version=fix.lock_version if lock_version is None else lock_version,
             job_id=job.id, self_accepted=self_accepted)
    audit.record(session, actor_id=user_id, action="bulk_fix.accept", entity_type="bulk_fix", entity_id=fix.id,
                 after={"job_id": job.id, **({"self_accepted": True} if self_accepted else {})})


def _decided(session: Session, fix: BulkFix, *, status: BulkFixStatus, user_id: int | None, comment: str | None,
             lock_version: int, **values: Any) -> None:
    taken = session.execute(update(BulkFix).where(
        BulkFix.id == fix.id, BulkFix.lock_version == lock_version, BulkFix.status == BulkFixStatus.proposed)
        .values(status=status, reviewer_id=user_id, decided_at=utcnow(), decision_comment=(comment or "").strip()
                or None, lock_version=BulkFix.lock_version + 1, **values)).rowcount
    if not taken:
        session.rollback()
        raise Conflict("This bulk fix was decided or withdrawn meanwhile: reload it to see what happened.")


def withdraw(session: Session, *, fix_id: int, user_id: int) -> BulkFix:
    """The author takes back a bulk fix nobody has decided. Commits."""
    fix = get(session, fix_id=fix_id)
    if fix.author_id != user_id:
        raise Forbidden("Only the person who proposed a bulk fix may withdraw it.")
    taken = session.execute(update(BulkFix).where(BulkFix.id == fix.id, BulkFix.status == BulkFixStatus.proposed)
                            .values(status=BulkFixStatus.withdrawn, decided_at=utcnow(),
                                    lock_version=BulkFix.lock_version + 1)).rowcount
    if not taken:
        session.rollback()
        raise Conflict("This bulk fix was decided meanwhile: it can no longer be withdrawn.")
    audit.record(session, actor_id=user_id, action="bulk_fix.withdraw", entity_type="bulk_fix", entity_id=fix.id)
    session.commit()
    session.refresh(fix)
    return fix


def resume(session: Session, *, fix_id: int, user_id: int) -> BulkFix:
    """Queues the job again for an accepted fix whose job stopped before the end (cancelled, or failed): it goes
    on from the last whole chunk. Commits."""
    fix = get(session, fix_id=fix_id)
    if fix.status != BulkFixStatus.accepted:
        raise Conflict("Only an accepted bulk fix that is not fully applied can be resumed.")
    if fix.job_id and jobs.get_job(session, job_id=fix.job_id).status not in jobs.TERMINAL:
        raise Conflict("This bulk fix's job is still queued or running.")
    job = jobs.enqueue(session, BulkFixPayload(bulk_fix_id=fix.id), created_by_id=user_id, commit=False)
    session.execute(update(BulkFix).where(BulkFix.id == fix.id).values(job_id=job.id,
                                                                      lock_version=BulkFix.lock_version + 1))
    session.commit()
    session.refresh(fix)
    return fix


def get(session: Session, *, fix_id: int) -> BulkFix:
    fix = session.get(BulkFix, fix_id, populate_existing=True)
    if fix is None:
        raise NotFound(f"There is no bulk fix with id {fix_id}.")
    return fix


def list_fixes(session: Session, *, status: str | None = None, limit: int = 100) -> list[BulkFix]:
    query = select(BulkFix).order_by(col(BulkFix.id).desc()).limit(limit)
    if status:
        query = query.where(BulkFix.status == status)
    return list(session.exec(query))


def waiting_for(session: Session, *, user_id: int) -> int:
    """Bulk fixes proposed by someone else, waiting for a decision."""
    return session.exec(select(func.count()).select_from(BulkFix).where(
        BulkFix.status == BulkFixStatus.proposed, BulkFix.author_id != user_id)).one()


def undone_by(session: Session, *, fix_id: int) -> BulkFix | None:
    """The undo of this fix that was applied or is under way, if any."""
    return session.exec(select(BulkFix).where(BulkFix.undoes_id == fix_id, col(BulkFix.status).in_(
        (BulkFixStatus.proposed, BulkFixStatus.accepted, BulkFixStatus.applied))).order_by(col(BulkFix.id).desc())
    ).first()


def stored_preview(session: Session, *, fix: BulkFix, blindfold: Blindfold = NONE) -> BulkPreview:
    """The preview of a proposed fix, from its frozen items: what the reviewer decides is what the job applies.
    The values of instances hidden from the viewer read "hidden"."""
    def first(*conditions) -> list[BulkItemOut]:
        return [_out(fix, item, task_name, source_id, blindfold) for item, task_name, source_id in session.exec(
            _item_rows(fix.id).where(*conditions).order_by(BulkFixItem.id).limit(SHOWN))]

    applies = BulkFixItem.refusal.is_(None)
    return BulkPreview(change_count=fix.change_count, validation_count=fix.validation_count,
                       refused_count=fix.refused_count, hidden_count=fix.hidden_count,
                       changes=first(applies) if fix.include_validation else first(applies, ~BulkFixItem.validation),
                       validation=[] if fix.include_validation else first(applies, BulkFixItem.validation),
                       refused=first(BulkFixItem.refusal.is_not(None)))


def report(session: Session, *, fix: BulkFix, blindfold: Blindfold = NONE, batch: int = 5_000
           ) -> Iterator[BulkItemOut]:
    """Every item of the fix with what became of it, in order, read `batch` at a time; the values of instances
    hidden from the viewer read "hidden"."""
    after = 0
    while rows := session.exec(_item_rows(fix.id).where(col(BulkFixItem.id) > after).order_by(BulkFixItem.id)
                               .limit(batch)).all():
        for item, task_name, source_id in rows:
            yield _out(fix, item, task_name, source_id, blindfold)
        after = rows[-1][0].id or 0


def _item_rows(fix_id: int):
    return (select(BulkFixItem, Task.name, Instance.source_id).join(Task, Task.id == BulkFixItem.task_id)
            .join(Instance, Instance.id == BulkFixItem.instance_id).where(BulkFixItem.bulk_fix_id == fix_id))


def _out(fix: BulkFix, item: BulkFixItem, task_name: str, source_id: str, blindfold: Blindfold) -> BulkItemOut:
    changes = {name: HIDDEN_CHANGE for name in item.changes} if blindfold.hides(item.instance_id) else item.changes
    return BulkItemOut(instance_id=item.instance_id, task_name=task_name, source_id=source_id, changes=changes,
                       validation=item.validation, refusal=item.refusal, outcome=outcome(fix, item))


def outcome(fix: BulkFix, item: BulkFixItem) -> str:
    if item.refusal:
        return "refused"
    if item.validation and not fix.include_validation:
        return "left alone"
    if item.skipped:
        return "skipped"
    return "applied" if (item.id or 0) <= fix.applied_through else "pending"


def _plan_preview(session: Session, tally: Tally, first: dict[str, list[PlannedItem]]) -> BulkPreview:
    shown = [item for items in first.values() for item in items]
    names = dict(session.exec(select(Instance.id, Instance.source_id).where(
        col(Instance.id).in_([item.instance_id for item in shown]))).all()) if shown else {}
    tasks = dict(session.exec(select(Task.id, Task.name).where(
        col(Task.id).in_({item.task_id for item in shown}))).all()) if shown else {}

    def out(item: PlannedItem, outcome: str) -> BulkItemOut:
        return BulkItemOut(instance_id=item.instance_id, task_name=tasks[item.task_id],
                           source_id=names[item.instance_id], changes=item.changes, validation=item.validation,
                           refusal=item.refusal, outcome=outcome)

    return BulkPreview(**tally.counts(), changes=[out(item, "pending") for item in first["change"]],
                       validation=[out(item, "left alone") for item in first["validation"]],
                       refused=[out(item, "refused") for item in first["refused"]])


def _applied_revisions(session: Session, fix_id: int, batch: int = 5_000) -> Iterator[list[tuple[int, int, dict]]]:
    """(instance, task, changes) of what the fix wrote, `batch` at a time."""
    written = select(Revision.id, Revision.record_id, Revision.task_id, Revision.changes).where(
        Revision.origin == RevisionOrigin.bulk_fix, Revision.origin_id == fix_id,
        Revision.status == RevisionStatus.accepted).order_by(Revision.id).limit(batch)
    after: int | None = 0
    while rows := session.exec(written.where(col(Revision.id) > after)).all():
        yield [(record_id, task_id or 0, changes) for _, record_id, task_id, changes in rows]
        after = rows[-1][0]
