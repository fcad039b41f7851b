"""Seeded, reproducible choices for a build: which instances, which instruction version, which split.

Instances come from a window of the stored random key (`Instance.rkey`), an index range scan; per-instance
choices come from a 64-bit mix of (seed, instance id), so they do not depend on the order rows arrive in."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple, TypeVar

from sqlalchemy import func, true
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.models import (
    ConversationItem,
    ConversationOutcome,
    ConversationReview,
    Image,
    Instance,
    InstanceStatus,
    RecordKind,
    Revision,
    RevisionStatus,
    Task,
)

T = TypeVar("T")
MASK = (1 << 64) - 1
SPLIT_SALT = 0x5EED_5EED
BATCH = 5_000


def mix(seed: int, n: int) -> int:
    """splitmix64 of (seed, n): a well-spread 64-bit number, the same everywhere."""
    z = (seed * 0x9E3779B97F4A7C15 + n + 0x632BE59BD9B4E019) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def unit(seed: int, n: int) -> float:
    """A number in [0, 1) for (seed, n)."""
    return mix(seed, n) / (MASK + 1)


def choose(items: Sequence[T], seed: int, n: int) -> T:
    return items[0] if len(items) == 1 else items[mix(seed, n) % len(items)]


def _start(seed: int, salt: int) -> int:
    return mix(seed, salt) >> 33  # an rkey in [0, 2^31)


def draw_instance_batches(session: Session, *, task_id: int, seed: int, cap: int,
                          revisions_through: int | None = None, as_of: datetime | None = None
                          ) -> Iterator[list[tuple]]:
    """Up to `cap` active instances of the task (all if it has fewer), in rkey order from a seeded start, with
    what rendering needs and their image's address and size: (id, input_text, options, raw_output,
    human_preferred_output, sha256, format, width, height) tuples, streamed in batches straight from the driver (an
    export reads 1.66M of them; the ORM's and even Core's per-row work would be a third of its time). `options` is
    JSON text on SQLite. `as_of` (or, in specs from before it, `revisions_through`): the values as they were then,
    for instances fixed by a revision accepted later."""
    earlier = _values_before(session, task_id, revisions_through, as_of)
    for rows in _draw(session, task_id=task_id, seed=seed, cap=cap):
        yield [_as_of(row, earlier[row[0]]) if row[0] in earlier else row for row in rows] if earlier else rows


REVISED_COLUMNS = {"input_text": 1, "options": 2, "raw_output": 3, "human_preferred_output": 4}  # in the row


def counted_fix(revisions_through: int | None, as_of: datetime | None):
    """The condition of an accepted revision that a spec's data holds: accepted by its moment (`as_of`), or, for
    specs from before moments were pinned, up to its revision (`revisions_through`); every one without either."""
    if as_of is not None:
        return col(Revision.decided_at) <= as_of
    if revisions_through is not None:
        return col(Revision.id) <= revisions_through
    return true()


def _values_before(session: Session, task_id: int, revisions_through: int | None,
                   as_of: datetime | None) -> dict[int, dict[str, object]]:
    """Per instance fixed after the spec's pin, the values its fields had then: the `before` of the first later
    change of each field. One indexed query; nothing when no fix came later (the usual build)."""
    if revisions_through is None and as_of is None:
        return {}
    later = session.execute(select(Revision.record_id, Revision.changes).where(
        Revision.task_id == task_id, Revision.record_kind == RecordKind.instance,
        Revision.status == RevisionStatus.accepted, ~counted_fix(revisions_through, as_of))
        .order_by(col(Revision.decided_at).desc(), col(Revision.id).desc()))
    values: dict[int, dict[str, object]] = {}
    for instance_id, changes in later:
        for name, change in changes.items():
            values.setdefault(instance_id, {})[name] = change["before"]
    return values


def _as_of(row: tuple, values: dict[str, object]) -> tuple:
    fields = list(row)
    for name, value in values.items():
        if name in REVISED_COLUMNS:
            fields[REVISED_COLUMNS[name]] = value
    return tuple(fields)


def _draw(session: Session, *, task_id: int, seed: int, cap: int) -> Iterator[list[tuple]]:
    columns = (Instance.id, Instance.input_text, Instance.options, Instance.raw_output,
               Instance.human_preferred_output, Image.sha256, Image.format, Image.width, Image.height)
    base = (select(*columns).outerjoin(Image, Image.id == Instance.image_id)
            .where(Instance.task_id == task_id, Instance.status == InstanceStatus.active))
    if cap >= session.get(Task, task_id).instance_count:
        yield from _stream(session, base.order_by(Instance.rkey))
        return
    start = _start(seed, task_id)
    taken = 0
    for window in (base.where(Instance.rkey >= start), base.where(Instance.rkey < start)):
        for rows in _stream(session, window.order_by(Instance.rkey).limit(cap - taken)):
            yield rows
            taken += len(rows)
        if taken >= cap:
            return


def _stream(session: Session, statement) -> Iterator[list[tuple]]:
    """The statement's rows from the driver's own cursor, BATCH at a time (a server-side cursor on PostgreSQL,
    so memory stays bounded on any size of task). Its parameters are our integers, bound as literals."""
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    driver = connection.connection.dbapi_connection
    postgres = connection.dialect.name == "postgresql"
    cursor = driver.cursor(name="export_rows") if postgres else driver.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        cursor.close()


class Conversation(NamedTuple):
    pool_id: int
    position: int
    conversations: list[dict]
    sha256: str | None
    format: str | None
    kind: str | None = None
    origin: dict | None = None
    width: int | None = None
    height: int | None = None


def draw_conversations(session: Session, *, pool_id: int, seed: int, size: int, reviewed_only: bool,
                       as_of: datetime | None, by_kind: bool = False) -> Iterator[Conversation]:
    """`size` conversations of the pool (all if fewer), drawn the same way: only those review passed (every answer
    correct, or the wrong ones fixed) when `reviewed_only`; each as it was at `as_of` (reviews decided and fixes
    accepted later are left out) when given. `by_kind`: each kind (LLaVA-Instruct's three) gets its share of `size`
    in proportion to its share of what may be drawn (largest remainders), and is drawn apart."""
    fix = aliased(Revision)
    columns = (ConversationItem.id, ConversationItem.pool_id, ConversationItem.position,
               ConversationItem.conversations, Image.sha256, Image.format, ConversationItem.kind,
               ConversationItem.origin, Image.width, Image.height)
    base = (select(*columns).outerjoin(Image, col(Image.id) == ConversationItem.image_id)
            .where(ConversationItem.pool_id == pool_id))
    if reviewed_only:
        review = ConversationReview
        base = (base.join(review, review.conversation_id == ConversationItem.id)
                .outerjoin(fix, fix.id == review.revision_id)
                .where((review.outcome == ConversationOutcome.correct)
                       | ((review.outcome == ConversationOutcome.fixed) & (_by(fix.decided_at, as_of))),
                       _by(review.decided_at, as_of)))
    earlier = _conversations_before(session, pool_id, as_of)
    strata = [(base, size)]
    if by_kind:
        counted = base.with_only_columns(ConversationItem.kind, func.count()).group_by(ConversationItem.kind)
        shares = share_out(size, {kind: count for kind, count in session.execute(counted)})
        strata = [(base.where(ConversationItem.kind.is_(None) if kind is None else ConversationItem.kind == kind),
                   wanted) for kind, wanted in sorted(shares.items(), key=lambda item: item[0] or "")]
    start = _start(seed, -pool_id)
    for stratum, wanted in strata:
        taken = 0
        for window in (stratum.where(ConversationItem.rkey >= start), stratum.where(ConversationItem.rkey < start)):
            if taken >= wanted:
                break
            for row in session.execute(window.order_by(ConversationItem.rkey, ConversationItem.position)
                                       .limit(wanted - taken)):
                yield Conversation(row.pool_id, row.position, earlier.get(row.id, row.conversations), row.sha256,
                                   row.format, row.kind, row.origin, row.width, row.height)
                taken += 1


def share_out(size: int, counts: dict) -> dict:
    """`size` shared among the groups in proportion to their counts (none gets more than it has): each its whole
    share, then one more for the largest remainders, in a stable order."""
    total = sum(counts.values())
    if total <= size:
        return dict(counts)
    exact = {group: size * count / total for group, count in counts.items()}
    shares = {group: int(value) for group, value in exact.items()}
    left = size - sum(shares.values())
    for group in sorted(exact, key=lambda group: (shares[group] - exact[group], str(group)))[:left]:
        shares[group] += 1
    return shares


def _by(moment, as_of: datetime | None):
    """`moment` is at or before `as_of` (any moment, when there is no `as_of`)."""
    return true() if as_of is None else moment <= as_of


def _conversations_before(session: Session, pool_id: int, as_of: datetime | None) -> dict[int, list[dict]]:
    """Per conversation of the pool fixed after `as_of`, its turns then: the `before` of the first later fix."""
    if as_of is None:
        return {}
    later = session.execute(select(Revision.record_id, Revision.changes).where(
        Revision.record_kind == RecordKind.conversation, Revision.status == RevisionStatus.accepted,
        col(Revision.decided_at) > as_of,
        col(Revision.record_id).in_(select(ConversationItem.id).where(ConversationItem.pool_id == pool_id)))
        .order_by(col(Revision.decided_at).desc(), col(Revision.id).desc()))
    return {conversation_id: changes["conversations"]["before"] for conversation_id, changes in later}
