"""The four reviewer queues behind one "next item" interface: instruction reviews, blind solve tests, spot
checks and final verifications. Each item is claimed with a lease (see `leases`); opening a queue again gives
back the item you hold, so a reload never skips or doubles work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from app.failures import NotFound
from app.models import (
    QcStatus,
    Review,
    ReviewSubject,
    SolveTest,
    SolveTestItem,
    SpotCheck,
    SpotCheckItem,
    User,
)
from app.services import leases, reviews, solve_tests, spot_checks, verifications


@dataclass(frozen=True)
class Queue:
    name: str  # in URLs and the API
    title: str
    table: Any
    held_by: Callable[[], Any]  # () -> select of the ids :user_id holds
    sources: Callable[..., list]  # (user) -> [(candidates select with :user_id/:now/:skip, claimant)], in order
    holder: Callable[[Any, int], Any]  # (item, user id) -> the claimant column the user holds it by, or None
    release_reset: Callable[[Any], dict] = field(default=lambda item: {})  # what a skip clears
    skippable: Callable[[Any], bool] = field(default=lambda item: True)


def _review_holder(item: Review, user_id: int):
    return Review.reviewer_id if item.reviewer_id == user_id and item.decided_at is None else None


def _spot_holder(item: SpotCheckItem, user_id: int):
    if item.decided_at is None:
        return SpotCheckItem.reviewer_id if item.reviewer_id == user_id else None
    return SpotCheckItem.second_reviewer_id if item.second_reviewer_id == user_id else None


def _spot_reset(item: SpotCheckItem) -> dict:
    return {"second_reviewer_id": None} if item.decided_at is not None else {"reviewer_id": None}


QUEUES: dict[str, Queue] = {queue.name: queue for queue in (
    Queue("instructions", "Instruction reviews", Review,
          held_by=reviews.held_by, sources=lambda user: [(reviews.candidates(), Review.reviewer_id)],
          holder=_review_holder),
    Queue("solve", "Blind solve tests", SolveTestItem,
          held_by=solve_tests.held_by, sources=lambda user: [(solve_tests.candidates(), SolveTestItem.solver_id)],
          holder=lambda item, user_id: SolveTestItem.solver_id if item.solver_id == user_id else None,
          release_reset=lambda item: {"solver_id": None},
          # Once answered, only its solver can judge a free-text answer: it cannot go back to the queue.
          skippable=lambda item: item.answered_at is None),
    Queue("spot", "Spot checks", SpotCheckItem,
          held_by=spot_checks.held_by,
          sources=lambda user: [(spot_checks.first_pass_candidates(), SpotCheckItem.reviewer_id),
                                (spot_checks.second_pass_candidates(), SpotCheckItem.second_reviewer_id)],
          holder=_spot_holder, release_reset=_spot_reset),
    Queue("verify", "Final verifications", Review,
          held_by=verifications.held_by,
          sources=lambda user: [(verifications.candidates(native_english=user.native_english), Review.reviewer_id)],
          holder=_review_holder, release_reset=lambda item: {"reviewer_id": None}),
)}


def get_queue(name: str) -> Queue:
    if name not in QUEUES:
        raise NotFound(f"There is no queue called {name!r}: try one of {', '.join(QUEUES)}.")
    return QUEUES[name]


def current(session: Session, *, queue: Queue, user: User) -> int | None:
    """The item the user holds in this queue, if any."""
    return session.execute(queue.held_by(), {"user_id": user.id}).scalar()


def next_item(session: Session, *, queue: Queue, user: User, lease_s: int, skip: int | None = None) -> int | None:
    """The item the user holds, else a newly claimed one; None when the queue has nothing for them.
    `skip`: claim another item first, then give that one back to the queue."""
    held = current(session, queue=queue, user=user)
    if held is not None and (held != skip or not queue.skippable(session.get(queue.table, held))):
        leases.renew(session, table=queue.table, item_id=held, lease_s=lease_s)
        return held
    claimed = None
    values = leases.params(user_id=user.id, skip=skip)
    for candidates, claimant in queue.sources(user):
        claimed = leases.claim(session, table=queue.table, candidates=candidates, values=values, claimant=claimant,
                               user_id=user.id, lease_s=lease_s)
        if claimed is not None:
            break
    if skip is not None and claimed is not None:
        item = session.get(queue.table, skip)
        if item is not None:
            session.refresh(item)
            claimant = queue.holder(item, user.id)
            if claimant is not None:
                leases.release(session, table=queue.table, item_id=skip, claimant=claimant, user_id=user.id,
                               reset=queue.release_reset(item))
    if skip is not None and claimed is None:
        return held  # nothing else to do: keep the current item
    return claimed


def counts_for(session: Session, *, user: User) -> dict[str, int]:
    """How many items each queue holds for this user: theirs and those they could take."""
    counts = {}
    values = leases.params(user_id=user.id)
    for queue in QUEUES.values():
        total = 0
        for candidates, _ in queue.sources(user):
            total += session.execute(select(func.count()).select_from(candidates.order_by(None).subquery()),
                                     values).scalar()
        mine = session.execute(select(func.count()).select_from(queue.held_by().order_by(None).subquery()),
                               values).scalar()
        counts[queue.name] = total + (0 if queue.name == "instructions" else mine)
    return counts


def sizes(session: Session) -> dict[str, int]:
    """Undecided items in each queue, whoever may take them."""
    def count(query) -> int:
        return session.exec(query).one()

    return {
        "instructions": count(select(func.count()).select_from(Review).where(
            Review.subject == ReviewSubject.instruction_version, Review.decided_at.is_(None))),
        "solve": count(select(func.count()).select_from(SolveTestItem).join(
            SolveTest, SolveTest.id == SolveTestItem.solve_test_id).where(
            SolveTest.status == QcStatus.open, SolveTestItem.judged_at.is_(None))),
        "spot": count(select(func.count()).select_from(SpotCheckItem).join(
            SpotCheck, SpotCheck.id == SpotCheckItem.spot_check_id).where(
            SpotCheck.status == QcStatus.open, SpotCheckItem.decided_at.is_(None)
            | (SpotCheck.double_review & SpotCheckItem.second_decided_at.is_(None)))),
        "verify": count(select(func.count()).select_from(Review).where(
            Review.subject == ReviewSubject.task_verification, Review.decided_at.is_(None))),
    }
