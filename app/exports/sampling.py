"""Seeded, reproducible choices for a build: which instances, which instruction version, which split.

Instances come from a window of the stored random key (`Instance.rkey`), an index range scan; per-instance
choices come from a 64-bit mix of (seed, instance id), so they do not depend on the order rows arrive in."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Row
from sqlmodel import Session, select

from app.models import ConversationItem, Image, Instance, InstanceStatus, Task

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


def draw_instances(session: Session, *, task_id: int, seed: int, cap: int) -> Iterator[Row]:
    """Up to `cap` active instances of the task (all if it has fewer), in rkey order from a seeded start,
    with what rendering needs and their image's address, streamed."""
    columns = (Instance.id, Instance.input_text, Instance.options, Instance.raw_output,
               Instance.human_preferred_output, Image.sha256, Image.format)
    base = (select(*columns).outerjoin(Image, Image.id == Instance.image_id)
            .where(Instance.task_id == task_id, Instance.status == InstanceStatus.active))
    connection = session.connection()  # Core rows: the ORM's per-row bookkeeping is not needed here
    if cap >= session.get(Task, task_id).instance_count:
        yield from connection.execute(base.order_by(Instance.rkey).execution_options(yield_per=BATCH))
        return
    start = _start(seed, task_id)
    taken = 0
    for window in (base.where(Instance.rkey >= start), base.where(Instance.rkey < start)):
        for row in connection.execute(window.order_by(Instance.rkey).limit(cap - taken)
                                      .execution_options(yield_per=BATCH)):
            yield row
            taken += 1
        if taken >= cap:
            return


def draw_conversations(session: Session, *, pool_id: int, seed: int, size: int) -> Iterator[Row]:
    """`size` conversations of the pool (all if fewer), drawn the same way."""
    columns = (ConversationItem.pool_id, ConversationItem.position, ConversationItem.conversations, Image.sha256,
               Image.format)
    base = (select(*columns).outerjoin(Image, Image.id == ConversationItem.image_id)
            .where(ConversationItem.pool_id == pool_id))
    start, taken = _start(seed, -pool_id), 0
    for window in (base.where(ConversationItem.rkey >= start), base.where(ConversationItem.rkey < start)):
        for row in session.execute(window.order_by(ConversationItem.rkey, ConversationItem.position)
                                   .limit(size - taken)):
            yield row
            taken += 1
        if taken >= size:
            return
