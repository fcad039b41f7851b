"""The final verification queue: every approved instruction of an accepted task, with its overlap with other
tasks and a few rendered instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func
from sqlmodel import Session, select

from app.models import Instruction, InstructionStatus, InstructionVersion, Review, Task
from app.services import quality_figures, verifications
from app.services.quality_figures import TaskQuality
from app.services.queues.base import Holding, ReviewQueue, Sample, overlap, rendered_samples, review_holder
from app.services.verification_rounds import VERIFY


class VerifiedVersion(NamedTuple):  # a tuple: the template unpacks it
    version: InstructionVersion
    label: str
    similar: list[tuple[str, float]]
    samples: list[Sample]


@dataclass(frozen=True)
class VerificationContext:
    versions: list[VerifiedVersion]
    quality: TaskQuality  # what the checks found: a verifier judges the instructions knowing it


class FinalVerifications(ReviewQueue):
    name, title, table, template = "verify", "Final verifications", Review, "review/_verify.html"

    def held_by(self):
        return verifications.held_by()

    def sources(self, user):
        return [(verifications.candidates(native_english=user.native_english), Review.reviewer_id)]

    def undecided(self):
        return select(func.count()).select_from(Review).where(Review.subject == VERIFY, Review.decided_at.is_(None))

    def holder(self, item, user_id):
        return review_holder(item, user_id)

    def holdings(self):
        return [Holding(Review.reviewer_id, Review.decided_at.is_(None) & (Review.subject == VERIFY),
                        {"reviewer_id": None})]

    def context(self, session: Session, review: Review, user_id: int):
        task = session.get(Task, review.task_id)
        approved = session.exec(
            select(InstructionVersion, Instruction.label)
            .join(Instruction, Instruction.id == InstructionVersion.instruction_id)
            .where(Instruction.task_id == task.id, InstructionVersion.status == InstructionStatus.approved)
            .order_by(InstructionVersion.id))
        return task, VerificationContext([
            VerifiedVersion(version, label, overlap(session, task.id, version.text),
                            rendered_samples(session, version, task.id, seed=review.id, user_id=user_id))
            for version, label in approved], quality=quality_figures.per_task(session, task_ids=[task.id])[0])
