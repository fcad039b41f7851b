"""Working a queue: each item is claimed with a lease (see `leases`); opening a queue again gives back the item
you hold, so a reload never skips or doubles work."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Select, func, select
from sqlmodel import Session

from app.models import User
from app.services import leases
from app.services.queues.base import ReviewQueue


def current(session: Session, *, queue: ReviewQueue, user: User) -> int | None:
    """The item the user holds in this queue, if any."""
    return session.execute(queue.held_by(), {"user_id": user.id}).scalar()


def next_item(session: Session, *, queue: ReviewQueue, user: User, lease_s: int, skip: int | None = None,
              reviewer_may_verify: bool = False) -> int | None:
    """The item the user holds, else a newly claimed one; None when the queue has nothing for them.
    `skip`: claim another item first, then give that one back to the queue. `reviewer_may_verify`: the setting
    that lets whoever approved a task's instruction verify it too."""
    held = current(session, queue=queue, user=user)
    if held is not None and (held != skip or not queue.skippable(session.get(queue.table, held))):
        leases.renew(session, table=queue.table, item_id=held, lease_s=lease_s)
        return held
    claimed = None
    values = leases.params(user_id=user.id, skip=skip, reviewer_may_verify=reviewer_may_verify)
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
                               reset=queue.release_reset(claimant))
    if skip is not None and claimed is None:
        return held  # nothing else to do: keep the current item
    if claimed is None:  # the user's own request at the same moment may have won an item they may hold only alone
        return current(session, queue=queue, user=user)
    return claimed


def _for_me(queue: ReviewQueue, candidates: tuple[Select, ...], cap: int | None) -> list:
    """Counts whose sum is what the queue holds for the user: each source of candidates, and what they hold."""
    counts = [_counted(source.order_by(None), cap) for source in candidates]
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
             cap: int | None = None, reviewer_may_verify: bool = False) -> list[QueueCounts]:
    """Every queue's undecided items, and (for a reviewer) how many are theirs to take: one statement, counted no
    further than `cap` + 1 when given (a page that only says "more than `cap`" need not count a big queue whole)."""
    sources = tuple(tuple(candidates for candidates, _ in queue.sources(reviewer)) for queue in queues) \
        if reviewer else None
    statement, mine = _overview_statement(queues, sources, cap)
    values = iter(session.execute(statement, leases.params(user_id=reviewer.id, reviewer_may_verify=reviewer_may_verify)
                                  if reviewer else {}).one())
    return [QueueCounts(queue, next(values), sum(next(values) for _ in range(n)) if reviewer else None, cap)
            for queue, n in zip(queues, mine, strict=True)]


@lru_cache(maxsize=16)
def _overview_statement(queues: tuple[ReviewQueue, ...], sources: tuple[tuple[Select, ...], ...] | None,
                        cap: int | None) -> tuple[Select, tuple[int, ...]]:
    """The overview's statement and how many "for me" counts each queue has in it. Built once for each set of
    candidate statements (themselves built once, with the user as a parameter): building and keying its dozen
    subqueries took 5 ms of every dashboard view, ten times the time the database takes to answer it."""
    columns, mine = [], []
    for k, queue in enumerate(queues):
        for_me = _for_me(queue, sources[k], cap) if sources is not None else []
        columns += [_undecided(queue, cap), *for_me]
        mine.append(len(for_me))
    return select(*columns), tuple(mine)
