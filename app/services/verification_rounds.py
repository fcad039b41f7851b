"""Rounds of final verification: an accepted task gets two slots (one for a native English speaker). A request
for changes ends the round; when the task is accepted again a new round opens. Task states read the latest
round's decisions; verifications record them."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlmodel import Session, select

from app.models import Decision, Review, ReviewSubject
from app.services import audit

VERIFY = ReviewSubject.task_verification


def latest_round(session: Session, *, task_id: int) -> tuple[int | None, tuple[str | None, ...]]:
    """The latest round's number (None before the first) and the decisions of its slots (None: undecided)."""
    of_task = (Review.task_id == task_id) & (Review.subject == VERIFY)
    number = session.exec(select(func.max(Review.round)).where(of_task)).one()
    if number is None:
        return None, ()
    return number, tuple(session.exec(select(Review.decision).where(of_task, Review.round == number)))


def open_round(session: Session, *, task_id: int) -> None:
    """Two slots (one for a native speaker) unless the latest round is still running or verified the task, in
    the caller's transaction. A round that asked for changes, or was withdrawn, is over: a new one opens."""
    number, decisions = latest_round(session, task_id=task_id)
    if number is not None and (None in decisions or _verifies(decisions)):
        return
    number = (number or 0) + 1
    session.add_all([Review(subject=VERIFY, task_id=task_id, round=number, needs_native_english=native)
                     for native in (True, False)])
    audit.record(session, actor_id=None, action="verification.open", entity_type="task", entity_id=task_id,
                 after={"round": number})


def _verifies(decisions: tuple[str | None, ...]) -> bool:
    return len(decisions) >= 2 and all(decision == Decision.approve for decision in decisions)


def withdraw(session: Session, *, task_id: int, actor_id: int | None, reason: str) -> None:
    """The latest round's undecided slots leave the queue (the task is no longer accepted); its decisions stay
    on the record but no longer verify anything, since the round is not whole."""
    number, decisions = latest_round(session, task_id=task_id)
    if number is None or None not in decisions:
        return
    session.execute(delete(Review).where(Review.task_id == task_id, Review.subject == VERIFY,
                                         Review.round == number, Review.decided_at.is_(None)))
    audit.record(session, actor_id=actor_id, action="verification.withdraw", entity_type="task", entity_id=task_id,
                 after={"round": number, "reason": reason})
