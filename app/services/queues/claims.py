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


def count_for(session: Session, *, queue: ReviewQueue, user: User, cap: int | None = None) -> int:
    """How many items the queue holds for this user: theirs and those they could take; counted no further
    than `cap` + 1 when given (a page that only says "more than `cap`" need not count a big queue whole)."""
    values = leases.params(user_id=user.id)
    total = sum(_count(session, candidates.order_by(None), values, cap) for candidates, _ in queue.sources(user))
    if queue.held_in_candidates:
        return total
    return total + _count(session, queue.held_by().order_by(None), values, cap)


def undecided(session: Session, *, queue: ReviewQueue, cap: int | None = None) -> int:
    """Undecided items in the queue, whoever may take them; no further than `cap` + 1 when given."""
    if cap is None:
        return session.execute(queue.undecided()).scalar()
    items = queue.undecided().with_only_columns(queue.table.id, maintain_column_froms=False)
    return _count(session, items, {}, cap)


def _count(session: Session, items, values: dict, cap: int | None) -> int:
    if cap is not None:
        items = items.limit(cap + 1)
    return session.execute(select(func.count()).select_from(items.subquery()), values).scalar()


@dataclass(frozen=True)
class QueueCounts:
    queue: ReviewQueue
    undecided: int
    for_me: int | None  # None when the counts are not for a reviewer
    cap: int | None = None  # counted no further than this + 1: more than `cap` is shown as "cap+"

    def shown(self, count: int) -> str:
        return f"{self.cap:,}+" if self.cap is not None and count > self.cap else f"{count:,}"


def overview(session: Session, *, queues: tuple[ReviewQueue, ...], reviewer: User | None,
             cap: int | None = None) -> list[QueueCounts]:
    return [QueueCounts(queue, undecided(session, queue=queue, cap=cap),
                        count_for(session, queue=queue, user=reviewer, cap=cap) if reviewer else None, cap)
            for queue in queues]
