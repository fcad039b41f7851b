"""Blind solve tests stay blind. While a solve test runs, the people who may still answer it see none of its
instances' targets anywhere the studio shows them: instance pages and lists (and a text search that would match
a target), the doubt view and its figures (a model's loss on a target says what the target is not), review
samples, spot-check items, previews and the API. Who may still answer: anyone the review queues serve who did
not write the version under test. Its authors may look: they never solve their own tasks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, select

from app.models import InstructionVersion, QcStatus, SolveTest, SolveTestItem


@dataclass(frozen=True)
class Blindfold:
    """The instances whose targets a person must not see now."""

    hidden: frozenset[int]

    def hides(self, instance_id: int) -> bool:
        return instance_id in self.hidden

    def __bool__(self) -> bool:
        return bool(self.hidden)


NONE = Blindfold(frozenset())
HIDDEN = "hidden while a blind solve test runs"  # what a page shows instead of a target


def for_user(session: Session, *, user_id: int, may_solve: bool) -> Blindfold:
    """`may_solve`: the person works the review queues (the rule `access.REVIEWERS`). One indexed query over the
    running tests' items (20 a test by default)."""
    if not may_solve:
        return NONE
    rows = session.exec(
        select(SolveTestItem.instance_id).join(SolveTest, SolveTest.id == SolveTestItem.solve_test_id)
        .outerjoin(InstructionVersion, InstructionVersion.id == SolveTest.instruction_version_id)
        .where(SolveTest.status == QcStatus.open,
               or_(InstructionVersion.author_id.is_(None), InstructionVersion.author_id != user_id)))
    return Blindfold(frozenset(rows))
