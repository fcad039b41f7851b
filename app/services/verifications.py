"""Final verification: two reviewers, one of them a native English speaker, check an accepted task's
instructions for fluency and for overlap with other tasks. Two approvals verify the task; a request for
changes sends its approved instructions back to their authors, and the next acceptance opens a new round."""

from __future__ import annotations

from functools import cache

from sqlalchemy import delete, exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from app.failures import Forbidden, Invalid, NotFound
from app.models import (
    Decision,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    Review,
    utcnow,
)
from app.services import audit, leases, task_states
from app.services.verification_rounds import VERIFY


def _authors(task_id):
    return (select(InstructionVersion.author_id).join(Instruction, Instruction.id == InstructionVersion.instruction_id)
            .where(Instruction.task_id == task_id, InstructionVersion.author_id.is_not(None)))


@cache
def candidates(*, native_english: bool):
    """Open slots nobody holds, that :user_id may take: a native-speaker slot only for native speakers (who
    are offered those first), never both slots of a round, never a task whose instructions they wrote."""
    sibling = aliased(Review)
    took_other_slot = exists().where(sibling.task_id == Review.task_id, sibling.subject == VERIFY,
                                     sibling.round == Review.round, sibling.id != Review.id,
                                     sibling.reviewer_id == leases.USER)
    query = (select(Review.id, Review.lock_version)
             .where(Review.subject == VERIFY, Review.decided_at.is_(None), leases.lease_free(Review),
                    Review.id != leases.SKIP, ~took_other_slot, Review.task_id.not_in(
                        select(Instruction.task_id).join(InstructionVersion,
                                                         InstructionVersion.instruction_id == Instruction.id)
                        .where(InstructionVersion.author_id == leases.USER))))
    if not native_english:
        return query.where(Review.needs_native_english.is_(False)).order_by(Review.created_at, Review.id)
    return query.order_by(Review.needs_native_english.desc(), Review.created_at, Review.id)


@cache
def held_by():
    return (select(Review.id).where(Review.subject == VERIFY, Review.decided_at.is_(None),
                                    Review.reviewer_id == leases.USER, Review.lease_expires_at.is_not(None))
            .order_by(Review.id))


def decide(session: Session, *, review_id: int, lock_version: int, user_id: int, decision: str,
           comment: str | None) -> Review:
    review = session.get(Review, review_id)
    if review is None or review.subject != VERIFY:
        raise NotFound(f"There is no verification with id {review_id}.")
    if decision not in (Decision.approve, Decision.request_changes):
        raise Invalid("Verify (approve) or request changes.", fields={"decision": "approve or request_changes"})
    comment = (comment or "").strip() or None
    if decision == Decision.request_changes and not comment:
        raise Invalid("Say what should change: fluency, overlap with which task, ...", fields={"comment": "required"})
    if user_id in set(session.exec(_authors(review.task_id))):
        raise Forbidden("Authors never verify their own tasks.")
    leases.decide_or_refuse(session, table=Review, item_id=review.id, lock_version=lock_version,
                            claimant=Review.reviewer_id, user_id=user_id, still_open=Review.decided_at.is_(None),
                            values={"decision": decision, "comment": comment, "decided_at": utcnow()})
    audit.record(session, actor_id=user_id, action="verification.decide", entity_type="review", entity_id=review.id,
                 task_id=review.task_id, after={"decision": decision, "comment": comment, "round": review.round})
    if decision == Decision.request_changes:
        _send_back(session, task_id=review.task_id, round_number=review.round, actor_id=user_id)
    task_states.advance(session, task_id=review.task_id, actor_id=user_id, reason=f"verification: {decision}")
    session.commit()
    session.refresh(review)
    return review


def _send_back(session: Session, *, task_id: int, round_number: int, actor_id: int) -> None:
    """The approved instructions go back to their authors; the round's other, undecided slot is withdrawn."""
    of_task = select(Instruction.id).where(Instruction.task_id == task_id)
    session.execute(update(InstructionVersion).where(InstructionVersion.instruction_id.in_(of_task),
                                                     InstructionVersion.status == InstructionStatus.approved)
                    .values(status=InstructionStatus.changes_requested))
    session.execute(update(Instruction).where(Instruction.task_id == task_id,
                                              Instruction.status == InstructionStatus.approved)
                    .values(status=InstructionStatus.changes_requested))
    session.execute(delete(Review).where(Review.task_id == task_id, Review.subject == VERIFY,
                                         Review.round == round_number, Review.decided_at.is_(None)))
    audit.record(session, actor_id=actor_id, action="verification.send_back", entity_type="task", entity_id=task_id,
                 after={"round": round_number})
