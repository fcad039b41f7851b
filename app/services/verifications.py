"""Final verification: two reviewers, one of them a native English speaker, check an accepted task's
instructions for fluency and for overlap with other tasks. Two approvals verify the task; a request for
changes sends its approved instructions back to their authors, and the next acceptance opens a new round."""

from __future__ import annotations

from functools import cache

from sqlalchemy import delete, exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Conflict, Forbidden, Invalid, NotFound
from app.models import (
    Decision,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    Review,
    ReviewSubject,
    Task,
    TaskStatus,
    utcnow,
)
from app.services import audit, leases, task_states
from app.services.verification_rounds import VERIFY


def _authors(task_id):
    return (select(InstructionVersion.author_id).join(Instruction, Instruction.id == InstructionVersion.instruction_id)
            .where(Instruction.task_id == task_id, InstructionVersion.author_id.is_not(None)))


def _approvers(task_id):
    """Who approved one of the task's instruction versions."""
    return select(Review.reviewer_id).where(Review.task_id == task_id, Review.decision == Decision.approve,
                                            Review.subject == ReviewSubject.instruction_version,
                                            Review.reviewer_id.is_not(None))


@cache
def candidates(*, native_english: bool):
    """Open slots of accepted tasks nobody holds, that :user_id may take: a native-speaker slot only for native
    speakers (who are offered those first), never both slots of a round (a unique index holds that under
    concurrent claims too), never a task whose instructions they wrote, nor (unless :reviewer_may_verify) one
    whose instruction they approved."""
    sibling = aliased(Review)
    took_other_slot = exists().where(sibling.task_id == Review.task_id, sibling.subject == VERIFY,
                                     sibling.round == Review.round, sibling.id != Review.id,
                                     sibling.reviewer_id == leases.USER)
    approver = aliased(Review)
    approved_it = exists().where(approver.task_id == Review.task_id, approver.decision == Decision.approve,
                                 approver.subject == ReviewSubject.instruction_version,
                                 approver.reviewer_id == leases.USER)
    query = (select(Review.id, Review.lock_version)
             .join(Task, Task.id == Review.task_id)
             .where(Review.subject == VERIFY, Review.decided_at.is_(None), leases.lease_free(Review),
                    Task.status == TaskStatus.accepted, Review.id != leases.SKIP, ~took_other_slot,
                    leases.REVIEWER_MAY_VERIFY | ~approved_it,
                    Review.task_id.not_in(
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
           comment: str | None, reviewer_may_verify: bool = False) -> Review:
    """The verifier's decision on their slot. The rules of `candidates` hold here again, at the decision."""
    review = session.get(Review, review_id)
    if review is None or review.subject != VERIFY:
        raise NotFound(f"There is no verification with id {review_id}.")
    if decision not in (Decision.approve, Decision.request_changes):
        raise Invalid("Verify (approve) or request changes.", fields={"decision": "approve or request_changes"})
    comment = limits.at_most((comment or "").strip(), limits.COMMENT, field="comment") or None
    if decision == Decision.request_changes and not comment:
        raise Invalid("Say what should change: fluency, overlap with which task, ...", fields={"comment": "required"})
    if user_id in set(session.exec(_authors(review.task_id))):
        raise Forbidden("Authors never verify their own tasks.")
    if not reviewer_may_verify and user_id in set(session.exec(_approvers(review.task_id))):
        raise Forbidden("You approved this task's instruction: its final verification is someone else's.")
    task = session.get(Task, review.task_id, populate_existing=True)
    if task.status != TaskStatus.accepted:
        session.rollback()
        raise Conflict(f"This task is {task.status.replace('_', ' ')}, not accepted: only an accepted task is "
                       "verified, and nothing was recorded.")
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
