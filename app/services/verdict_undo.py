"""Taking back one's last spot-check verdict: a key pressed by mistake must not silently remove an instance.

A reviewer may undo their own verdict until they give the next one. The item goes back to them undecided (and
what they were handed next goes back to the queue), the check's counts drop it, the instance is unflagged if
this verdict was all that flagged it, and a check this verdict completed is open again, its task's status
brought back in line with its review work. Once a fix was proposed from the verdict, the finding has a life
of its own: withdraw the fix first."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from app.core.failures import Conflict, Forbidden, NotFound
from app.models import (
    Instance,
    InstanceStatus,
    QcStatus,
    Revision,
    RevisionOrigin,
    RevisionStatus,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
    utcnow,
)
from app.services import audit, task_states
from app.services.tasks import refresh_instance_counts

ENDED = (QcStatus.passed, QcStatus.failed)


def undo_last_verdict(session: Session, *, item_id: int, user_id: int, lease_s: int) -> SpotCheckItem:
    """Undoes the user's verdict on the item, which must be the last verdict they gave. Commits."""
    item = session.get(SpotCheckItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"There is no spot-check item with id {item_id}.")
    second = item.second_reviewer_id == user_id and item.second_decided_at is not None
    if not second and not (item.reviewer_id == user_id and item.decided_at is not None):
        raise Forbidden("Only your own verdict can be undone.")
    prefix = "second_" if second else ""
    given_at, verdict = getattr(item, f"{prefix}decided_at"), getattr(item, f"{prefix}verdict")
    _refuse_if_not_last(session, item, user_id, given_at)
    _refuse_if_fixed(session, item)
    check = session.get_one(SpotCheck, item.spot_check_id, populate_existing=True)
    reopened = _reopen_if_it_ended(session, check, given_at)
    taken = session.execute(update(SpotCheckItem).where(
        SpotCheckItem.id == item.id, SpotCheckItem.lock_version == item.lock_version,
        getattr(SpotCheckItem, f"{prefix}decided_at").is_not(None)).values(
        **{f"{prefix}verdict": None, f"{prefix}note": None, f"{prefix}decided_at": None},
        lease_expires_at=utcnow() + timedelta(seconds=lease_s), lock_version=SpotCheckItem.lock_version + 1)).rowcount
    if not taken:
        session.rollback()
        raise Conflict("This verdict changed meanwhile: reload the queue.")
    if not second:  # the check counts first verdicts
        session.execute(update(SpotCheck).where(SpotCheck.id == check.id).values(
            decided_count=SpotCheck.decided_count - 1,
            error_count=SpotCheck.error_count - (0 if verdict == SpotVerdict.correct else 1)))
    if verdict != SpotVerdict.correct:
        _unflag_if_only_this(session, item, check, user_id)
    _hand_back_the_rest(session, item, user_id)
    audit.record(session, actor_id=user_id, action="spot_check.verdict_undo", entity_type="spot_check",
                 entity_id=check.id, task_id=check.task_id,
                 after={"item_id": item.id, "verdict": verdict, "second": second, "reopened": reopened})
    if reopened:
        task_states.advance(session, task_id=check.task_id, actor_id=user_id, reason="a verdict was undone")
    session.commit()
    session.refresh(item)
    return item


def _refuse_if_not_last(session: Session, item: SpotCheckItem, user_id: int, given_at) -> None:
    later = session.exec(select(SpotCheckItem.id).where(SpotCheckItem.id != item.id, or_(
        (SpotCheckItem.reviewer_id == user_id) & (col(SpotCheckItem.decided_at) > given_at),
        (SpotCheckItem.second_reviewer_id == user_id) & (col(SpotCheckItem.second_decided_at) > given_at)))
        .limit(1)).first()
    if later is not None:
        raise Conflict("You have given a verdict since: only your last one can be undone.")


def _refuse_if_fixed(session: Session, item: SpotCheckItem) -> None:
    fix = session.exec(select(Revision.status).where(
        Revision.origin == RevisionOrigin.spot_check, Revision.origin_id == item.id,
        col(Revision.status).in_((RevisionStatus.proposed, RevisionStatus.accepted))).limit(1)).first()
    if fix == RevisionStatus.proposed:
        raise Conflict("A fix was proposed from this verdict: withdraw it on the instance's page first.")
    if fix == RevisionStatus.accepted:
        raise Conflict("A fix made from this verdict has been accepted: the verdict stands.")


def _reopen_if_it_ended(session: Session, check: SpotCheck, given_at) -> bool:
    """Opens the check again if this verdict completed it (its task has no other open spot check)."""
    if check.status == QcStatus.open:
        return False
    if check.status not in ENDED or check.completed_at is None or check.completed_at < given_at:
        raise Conflict(f"This spot check was {check.status} meanwhile: the verdict stands.")
    if session.exec(select(SpotCheck.id).where(SpotCheck.task_id == check.task_id,
                                               SpotCheck.status == QcStatus.open)).first() is not None:
        raise Conflict("Another spot check of this task was opened since: the verdict stands.")
    session.execute(update(SpotCheck).where(SpotCheck.id == check.id, SpotCheck.status == check.status)
                    .values(status=QcStatus.open, completed_at=None))
    audit.record(session, actor_id=None, action="spot_check.reopen", entity_type="spot_check", entity_id=check.id,
                 task_id=check.task_id, after={"was": check.status})
    return True


def _unflag_if_only_this(session: Session, item: SpotCheckItem, check: SpotCheck, user_id: int) -> None:
    """The instance goes back into exports unless another verdict (on any pass, of any check) found a problem."""
    problem = SpotCheckItem.verdict.is_not(None) & (SpotCheckItem.verdict != SpotVerdict.correct)
    second_problem = SpotCheckItem.second_verdict.is_not(None) & (SpotCheckItem.second_verdict != SpotVerdict.correct)
    others = session.exec(select(SpotCheckItem.id).where(SpotCheckItem.instance_id == item.instance_id,
                                                         or_(problem, second_problem)).limit(1)).first()
    if others is not None:
        return
    unflagged = session.execute(update(Instance).where(Instance.id == item.instance_id,
                                                       Instance.status == InstanceStatus.flagged)
                                .values(status=InstanceStatus.active)).rowcount
    if unflagged:
        refresh_instance_counts(session, task_ids=[check.task_id])
        audit.record(session, actor_id=user_id, action="instance.unflag", entity_type="instance",
                     entity_id=item.instance_id, task_id=check.task_id, after={"verdict_undone": item.id})


def _hand_back_the_rest(session: Session, item: SpotCheckItem, user_id: int) -> None:
    """What the queue handed the reviewer after that verdict goes back to it, so the undone item comes first."""
    session.execute(update(SpotCheckItem).where(SpotCheckItem.id != item.id, SpotCheckItem.reviewer_id == user_id,
                                                SpotCheckItem.decided_at.is_(None))
                    .values(reviewer_id=None, lease_expires_at=None, lock_version=SpotCheckItem.lock_version + 1))
    session.execute(update(SpotCheckItem).where(SpotCheckItem.id != item.id,
                                                SpotCheckItem.second_reviewer_id == user_id,
                                                SpotCheckItem.decided_at.is_not(None),
                                                SpotCheckItem.second_decided_at.is_(None))
                    .values(second_reviewer_id=None, lease_expires_at=None,
                            lock_version=SpotCheckItem.lock_version + 1))
