"""Claiming queue items with a lease, and deciding them only on the version the reviewer saw.

Every queue table has a claimant column, `lease_expires_at` and `lock_version`. Claiming and deciding are
conditional UPDATEs on `lock_version` (bumped by both), so of two reviewers racing for one item exactly one
wins, and a decision made on a stale page changes nothing. On PostgreSQL candidates are read `FOR UPDATE
SKIP LOCKED`, so concurrent claimers spread over different items instead of queueing on the first one; on
SQLite (one writer at a time) a lost race just moves on to the next candidate."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Boolean, Integer, Select, bindparam, literal_column, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.core.failures import Conflict
from app.models import utcnow
from app.models.types import UTCDateTime

CANDIDATES_PER_TRY = 8
# Queue statements are built once, with these parameters, and executed with their values: building a
# SQLAlchemy statement costs more than running it on these small tables.
USER = bindparam("user_id", type_=Integer)
NOW = bindparam("now", type_=UTCDateTime)
SKIP = bindparam("skip", type_=Integer)
REVIEWER_MAY_VERIFY = bindparam("reviewer_may_verify", type_=Boolean)  # STUDIO_VERIFIER_MAY_BE_REVIEWER


def params(*, user_id: int, skip: int | None = None, reviewer_may_verify: bool = False) -> dict[str, Any]:
    return {"user_id": user_id, "now": utcnow(), "skip": skip or 0, "reviewer_may_verify": reviewer_may_verify}


def lease_free(table):
    """Nobody holds the item: never claimed, or the claim was abandoned (as of :now)."""
    return or_(table.lease_expires_at.is_(None), table.lease_expires_at < NOW)


@cache
def claim_query(candidates: Select, table, postgres: bool) -> Select:
    # The limit is written into the SQL, not bound: told only "LIMIT ?", SQLite's planner walks the whole table in
    # its unique index and sorts (15 ms with 10,000 items open); told "LIMIT 8", it reads the first items of each
    # open check from the queue-order index and stops (0.2 ms).
    if postgres:
        return candidates.limit(literal_column("1")).with_for_update(skip_locked=True, of=table)
    return candidates.limit(literal_column(str(CANDIDATES_PER_TRY)))


def claim(session: Session, *, table, candidates: Select, values: dict[str, Any], claimant, user_id: int,
          lease_s: int) -> int | None:
    """Claims the first candidate nobody else won; `candidates` selects (id, lock_version) in queue order,
    with `values` for its parameters. Commits; returns the claimed id, or None when nothing is left."""
    query = claim_query(candidates, table, session.get_bind().dialect.name == "postgresql")
    for _ in range(4):
        rows = session.execute(query, values).all()
        if not rows:
            session.commit()
            return None
        for item_id, version in rows:
            try:
                won = session.execute(
                    update(table).where(table.id == item_id, table.lock_version == version)
                    .values(lock_version=version + 1, lease_expires_at=utcnow() + timedelta(seconds=lease_s),
                            **{claimant.key: user_id})).rowcount
                session.commit()
            except IntegrityError:  # a rule the table keeps as a constraint (one verifier per round's slots)
                session.rollback()
                continue
            if won == 1:
                return item_id
    return None


def renew(session: Session, *, table, item_id: int, lease_s: int) -> None:
    """Extends the holder's lease (the page was opened again); the version is left alone so that a page
    already open stays valid."""
    session.execute(update(table).where(table.id == item_id)
                    .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s)))
    session.commit()


def decide(session: Session, *, table, item_id: int, lock_version: int, claimant, user_id: int,
           values: dict[str, Any], still_open=None) -> bool:
    """Records a decision if the item is still the one the reviewer saw, and still theirs. Does not commit:
    the caller adds the decision's consequences to the same transaction."""
    condition = (table.id == item_id) & (table.lock_version == lock_version) & (claimant == user_id)
    if still_open is not None:
        condition &= still_open
    return session.execute(update(table).where(condition).values(
        lock_version=table.lock_version + 1, lease_expires_at=None, **values)).rowcount == 1


def decide_or_refuse(session: Session, *, table, item_id: int, lock_version: int, claimant, user_id: int,
                     values: dict[str, Any], still_open=None) -> None:
    """`decide`, or a Conflict that says why the decision did not take (the transaction rolled back)."""
    if not decide(session, table=table, item_id=item_id, lock_version=lock_version, claimant=claimant,
                  user_id=user_id, values=values, still_open=still_open):
        session.rollback()
        raise stale(session, table, item_id, claimant, user_id)


def release(session: Session, *, table, item_id: int, claimant, user_id: int, reset: dict[str, Any]) -> None:
    """Gives the item back to the queue now (skip), rather than when the lease runs out."""
    session.execute(update(table).where(table.id == item_id, claimant == user_id)
                    .values(lease_expires_at=None, lock_version=table.lock_version + 1, **reset))
    session.commit()


def stale(session: Session, table, item_id: int, claimant, user_id: int) -> Conflict:
    """Why a decision did not take: someone else decided, or the claim went to someone else."""
    row = session.get(table, item_id)
    if row is None:
        return Conflict("This item no longer exists (it was withdrawn or cancelled); nothing was recorded. "
                        "Open the queue again for the next one.")
    holder = getattr(row, claimant.key)
    if holder is not None and holder != user_id:
        return Conflict("Another reviewer holds this item (if you had claimed it, your claim ran out) and may "
                        "have decided it already: your decision was not recorded. Open the queue again for the "
                        "next one.")
    return Conflict("This item changed since you opened it (someone decided it meanwhile): your decision was "
                    "not recorded. Reload to see it as it is now.")
