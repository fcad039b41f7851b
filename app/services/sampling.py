"""What a check, a preview or a review shows of a task: a seeded sample of its active instances, and the
instruction version they are rendered with."""

from __future__ import annotations

import random
from collections.abc import Collection

from sqlalchemy import Select
from sqlmodel import Session, select

from app.core.failures import Conflict, NotFound
from app.models import Image, Instance, InstanceStatus, Instruction, InstructionStatus, InstructionVersion

InstanceRow = tuple[Instance, Image | None]


def sample_instances(session: Session, *, task_id: int, seed: int, size: int,
                     avoid: Select | Collection[int] | None = None) -> list[InstanceRow]:
    """`size` active instances drawn with `seed`: a window of the (task, status, rkey) index starting at a
    seeded point, wrapping around — the same instances for the same seed, without ORDER BY RANDOM().
    `avoid` selects instance ids left out of the draw."""
    start = random.Random(seed).getrandbits(31)
    base = select(Instance, Image).outerjoin(Image, Image.id == Instance.image_id).where(
        Instance.task_id == task_id, Instance.status == InstanceStatus.active)
    if avoid is not None:
        base = base.where(Instance.id.not_in(avoid))
    rows: list[InstanceRow] = [*session.exec(base.where(Instance.rkey >= start).order_by(Instance.rkey).limit(size))]
    if len(rows) < size:
        rows += list(session.exec(base.where(Instance.rkey < start).order_by(Instance.rkey).limit(size - len(rows))))
    return rows


def preview_instances(session: Session, *, task_id: int, seed: int, size: int, pinned: list[int],
                      avoid: list[int] | None = None) -> list[InstanceRow]:
    """The pinned instances of this task first (kept across shuffles), then a seeded sample for the rest; none of
    `avoid`."""
    pinned = [instance_id for instance_id in pinned if instance_id not in set(avoid or ())]
    chosen = list(session.exec(select(Instance, Image).outerjoin(Image, Image.id == Instance.image_id)
                               .where(Instance.task_id == task_id, Instance.id.in_(pinned)))) if pinned else []
    chosen.sort(key=lambda row: pinned.index(row[0].id))
    taken = {row[0].id for row in chosen}
    rest = [row for row in sample_instances(session, task_id=task_id, seed=seed, size=size + len(chosen),
                                            avoid=avoid or None) if row[0].id not in taken]
    return chosen + rest[:size - len(chosen)]


def newest_version(session: Session, *, task_id: int, version_id: int | None = None) -> InstructionVersion:
    """The version a check or a preview renders with: the one asked for, else the task's newest approved,
    else its newest."""
    query = (select(InstructionVersion).join(Instruction, Instruction.id == InstructionVersion.instruction_id)
             .where(Instruction.task_id == task_id))
    if version_id is not None:
        version = session.exec(query.where(InstructionVersion.id == version_id)).first()
        if version is None:
            raise NotFound(f"The task has no instruction version with id {version_id}.")
        return version
    version = (session.exec(query.where(InstructionVersion.status == InstructionStatus.approved)
                            .order_by(InstructionVersion.created_at.desc(), InstructionVersion.id.desc())).first()
               or session.exec(query.order_by(InstructionVersion.id.desc())).first())
    if version is None:
        raise Conflict("Quality checks show the task as the instruction renders it: submit an instruction first.",
                      fields={"instruction_version_id": "no version yet"})
    return version
