"""How much waits in each reviewer queue. The queues themselves arrive with the review features."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from app.models import QcStatus, Review, ReviewSubject, SolveTest, SpotCheck


def counts_for(session: Session, *, user_id: int) -> dict[str, int]:
    """Undecided reviews assigned to the user, by subject, and the open solve tests and spot checks."""
    pending = dict(session.exec(
        select(Review.subject, func.count()).where(Review.reviewer_id == user_id, Review.decided_at.is_(None))
        .group_by(Review.subject)
    ).all())
    return {
        "instruction reviews": pending.get(ReviewSubject.instruction_version, 0),
        "verifications": pending.get(ReviewSubject.task_verification, 0),
        "solve tests": session.exec(select(func.count()).select_from(SolveTest)
                                    .where(SolveTest.status == QcStatus.open)).one(),
        "spot checks": session.exec(select(func.count()).select_from(SpotCheck)
                                    .where(SpotCheck.status == QcStatus.open)).one(),
    }
