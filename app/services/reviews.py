"""Instruction review: each submitted version goes to one reviewer drawn at random among those who did not
write it; the reviewer approves, asks for changes (with a comment) or rejects. Rounds are counted per
instruction, and the author reads the comments in the editor."""

from __future__ import annotations

import random
from functools import cache

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Forbidden, Invalid, NotFound
from app.models import (
    Decision,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    Review,
    ReviewSubject,
    Role,
    User,
    UserRole,
    utcnow,
)
from app.services import audit, leases, solve_tests, spot_checks, task_states
from app.services.qc import QcDefaults

STATUS_AFTER = {Decision.approve: InstructionStatus.approved,
                Decision.request_changes: InstructionStatus.changes_requested,
                Decision.reject: InstructionStatus.rejected}
_draw = random.SystemRandom()


def eligible_reviewers(session: Session, *, exclude: set[int]) -> list[int]:
    ids = session.exec(select(User.id).join(UserRole, UserRole.user_id == User.id)
                       .where(UserRole.role == Role.reviewer, User.is_active.is_(True)).order_by(User.id))
    return [user_id for user_id in ids if user_id not in exclude]


def open_review(session: Session, *, version: InstructionVersion, task_id: int, author_id: int | None) -> Review:
    """Queues the version for review, in the caller's transaction. A previous version still waiting is
    superseded: its undecided review is withdrawn. With no reviewer to draw from, the review waits unassigned
    and the first eligible reviewer to open the queue takes it."""
    earlier = (select(Review.id).join(InstructionVersion, InstructionVersion.id == Review.instruction_version_id)
               .where(InstructionVersion.instruction_id == version.instruction_id, Review.decided_at.is_(None),
                      InstructionVersion.id != version.id))
    for review_id in session.exec(earlier).all():
        session.execute(delete(Review).where(Review.id == review_id))
        audit.record(session, actor_id=author_id, action="review.withdraw", entity_type="review",
                     entity_id=review_id, after={"reason": f"superseded by version {version.number}"},
                     task_id=task_id)
    session.execute(update(InstructionVersion).where(
        InstructionVersion.instruction_id == version.instruction_id, InstructionVersion.id != version.id,
        InstructionVersion.status == InstructionStatus.in_review).values(status=InstructionStatus.changes_requested))
    rounds = session.exec(select(func.count()).select_from(Review).join(
        InstructionVersion, InstructionVersion.id == Review.instruction_version_id).where(
        InstructionVersion.instruction_id == version.instruction_id)).one()
    pool = eligible_reviewers(session, exclude={author_id} if author_id else set())
    review = Review(subject=ReviewSubject.instruction_version, instruction_version_id=version.id, task_id=task_id,
                    reviewer_id=_draw.choice(pool) if pool else None, round=rounds + 1)
    session.add(review)
    session.flush()
    audit.record(session, actor_id=author_id, action="review.assign", entity_type="review", entity_id=review.id,
                 after={"reviewer_id": review.reviewer_id, "round": review.round, "version_id": version.id},
                 task_id=task_id)
    return review


@cache
def candidates():
    """Reviews :user_id may take, oldest first: those assigned to them, and unassigned ones they did not write."""
    return (select(Review.id, Review.lock_version)
            .join(InstructionVersion, InstructionVersion.id == Review.instruction_version_id)
            .where(Review.subject == ReviewSubject.instruction_version, Review.decided_at.is_(None),
                   Review.id != leases.SKIP,
                   or_(Review.reviewer_id == leases.USER,
                       Review.reviewer_id.is_(None) & (InstructionVersion.author_id.is_(None)
                                                        | (InstructionVersion.author_id != leases.USER))))
            .order_by(Review.created_at, Review.id))


@cache
def held_by():
    return (select(Review.id).where(Review.subject == ReviewSubject.instruction_version,
                                    Review.decided_at.is_(None), Review.reviewer_id == leases.USER,
                                    Review.lease_expires_at.is_not(None)).order_by(Review.id))


def decide(session: Session, *, review_id: int, lock_version: int, user_id: int, decision: str,
           comment: str | None, defaults: QcDefaults) -> Review:
    """Records the decision and what follows from it: the version's status, the task's status, and for an
    approval the quality checks the task still needs."""
    review = session.get(Review, review_id)
    if review is None or review.subject != ReviewSubject.instruction_version:
        raise NotFound(f"There is no instruction review with id {review_id}.")
    try:
        decision = Decision(decision)
    except ValueError:
        raise Invalid("Choose approve, request changes or reject.", fields={"decision": "unknown"}) from None
    comment = limits.at_most((comment or "").strip(), limits.COMMENT, field="comment") or None
    if decision != Decision.approve and not comment:
        raise Invalid("Say what should change: a comment is required to request changes or reject.",
                      fields={"comment": "required"})
    version = session.get(InstructionVersion, review.instruction_version_id)
    if version.author_id == user_id:
        raise Forbidden("Authors never review their own instructions.")
    leases.decide_or_refuse(session, table=Review, item_id=review_id, lock_version=lock_version,
                            claimant=Review.reviewer_id, user_id=user_id, still_open=Review.decided_at.is_(None),
                            values={"decision": decision, "comment": comment, "decided_at": utcnow()})
    status = STATUS_AFTER[decision]
    session.execute(update(InstructionVersion).where(InstructionVersion.id == version.id).values(status=status))
    session.execute(update(Instruction).where(Instruction.id == version.instruction_id).values(status=status))
    audit.record(session, actor_id=user_id, action="review.decide", entity_type="instruction_version",
                 entity_id=version.id, task_id=review.task_id,
                 after={"decision": str(decision), "comment": comment, "round": review.round})
    if decision == Decision.approve:
        for checks in (solve_tests, spot_checks):
            checks.open_for_approved(session, version=version, task_id=review.task_id, actor_id=user_id,
                                     defaults=defaults)
    task_states.advance(session, task_id=review.task_id, actor_id=user_id, reason=f"review: {decision}")
    session.commit()
    session.refresh(review)
    return review


def reassign_undecided(session: Session, *, user_id: int, actor_id: int | None) -> None:
    """Someone stops reviewing, in the caller's transaction: their undecided instruction reviews go to another
    reviewer drawn at random (or wait unassigned). The instruction queue's hand-back."""
    pending = session.exec(select(Review, InstructionVersion.author_id)
                           .join(InstructionVersion, InstructionVersion.id == Review.instruction_version_id)
                           .where(Review.reviewer_id == user_id, Review.decided_at.is_(None),
                                  Review.subject == ReviewSubject.instruction_version)).all()
    for review, author_id in pending:
        pool = eligible_reviewers(session, exclude={user_id, author_id} - {None})
        review.reviewer_id, review.lease_expires_at = (_draw.choice(pool) if pool else None), None
        review.lock_version += 1
        session.add(review)
        audit.record(session, actor_id=actor_id, action="review.reassign", entity_type="review",
                     entity_id=review.id, task_id=review.task_id, before={"reviewer_id": user_id},
                     after={"reviewer_id": review.reviewer_id})

