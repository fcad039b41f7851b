"""Working a queue: each item is claimed with a lease (see `leases`); opening a queue again gives back the item
you hold, so a reload never skips or doubles work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session

from app.models import User
from app.services import leases
from app.services.queues.base import ReviewQueue


def current(session: Session, *, queue: ReviewQueue, user: User) -> int | None:
    """The item the user holds in this queue, if any."""
    return session.execute(queue.held_by(), {"user_id": user.id}).scalar()


def next_item(session: Session, *, queue: ReviewQueue, user: User, lease_s: int, skip: int | None = None) -> int | None:
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


def count_for(session: Session, *, queue: ReviewQueue, user: User) -> int:
    """How many items the queue holds for this user: theirs and those they could take."""
    values = leases.params(user_id=user.id)
    total = sum(session.execute(select(func.count()).select_from(candidates.order_by(None).subquery()),
                                values).scalar() for candidates, _ in queue.sources(user))
    if queue.held_in_candidates:
        return total
    return total + session.execute(select(func.count()).select_from(queue.held_by().order_by(None).subquery()),
                                   values).scalar()


def undecided(session: Session, *, queue: ReviewQueue) -> int:
    """Undecided items in the queue, whoever may take them."""
    return session.execute(queue.undecided()).scalar()


@dataclass(frozen=True)
class QueueCounts:
    queue: ReviewQueue
    undecided: int
    for_me: int | None  # None when the counts are not for a reviewer


def overview(session: Session, *, queues: tuple[ReviewQueue, ...], reviewer: User | None) -> list[QueueCounts]:
    return [QueueCounts(queue, undecided(session, queue=queue),
                        count_for(session, queue=queue, user=reviewer) if reviewer else None) for queue in queues]
