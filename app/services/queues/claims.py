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


def _for_me(queue: ReviewQueue, user: User, cap: int | None) -> list:
    """Counts whose sum is what the queue holds for the user: each source of candidates, and what they hold."""
    counts = [_counted(candidates.order_by(None), cap) for candidates, _ in queue.sources(user)]
    return counts if queue.held_in_candidates else [*counts, _counted(queue.held_by().order_by(None), cap)]


def _undecided(queue: ReviewQueue, cap: int | None):
    return _counted(queue.undecided().with_only_columns(queue.table.id, maintain_column_froms=False), cap)


def _counted(items, cap: int | None):
    if cap is not None:
        items = items.limit(cap + 1)
    return select(func.count()).select_from(items.subquery()).scalar_subquery()


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
    """Every queue's undecided items, and (for a reviewer) how many are theirs to take: one statement, counted no
    further than `cap` + 1 when given (a page that only says "more than `cap`" need not count a big queue whole)."""
    columns, mine = [], []
    for queue in queues:
        for_me = _for_me(queue, reviewer, cap) if reviewer else []
        columns += [_undecided(queue, cap), *for_me]
        mine.append(len(for_me))
    values = iter(session.execute(select(*columns), leases.params(user_id=reviewer.id) if reviewer else {}).one())
    return [QueueCounts(queue, next(values), sum(next(values) for _ in range(n)) if reviewer else None, cap)
            for queue, n in zip(queues, mine, strict=True)]
