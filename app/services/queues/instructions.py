"""The instruction review queue: a submitted version, what changed since the previous one, the comments it
answers, how it renders on a few instances, and the most similar instructions of other tasks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.models import Instruction, InstructionVersion, Review, ReviewSubject, Task
from app.qc.diffing import word_diff
from app.services import reviews
from app.services.instructions import review_comments
from app.services.queues.base import ReviewItem, ReviewQueue, Sample, overlap, rendered_samples, review_holder


@dataclass(frozen=True)
class InstructionReviewContext:
    version: InstructionVersion
    instruction: Instruction
    previous: InstructionVersion | None
    diffs: dict[str, list[tuple[str, str]]]  # field -> word diff against the previous version
    comments: dict[int, list[tuple[Review, str]]]  # version id -> decided reviews, with the reviewer's name
    samples: list[Sample]
    similar: list[tuple[str, float]]


class InstructionReviews(ReviewQueue):
    name, title, table, template = "instructions", "Instruction reviews", Review, "review/_instructions.html"
    held_in_candidates = True  # a review assigned to you is both yours and a candidate

    def held_by(self):
        return reviews.held_by()

    def sources(self, user):
        return [(reviews.candidates(), Review.reviewer_id)]

    def undecided(self):
        return select(func.count()).select_from(Review).where(
            Review.subject == ReviewSubject.instruction_version, Review.decided_at.is_(None))

    def holder(self, item, user_id):
        return review_holder(item, user_id)

    def hand_back(self, session: Session, *, user_id: int, actor_id: int | None) -> None:
        """An instruction review is assigned, not claimed: it goes to another reviewer."""
        reviews.reassign_undecided(session, user_id=user_id, actor_id=actor_id)

    def context(self, session: Session, review: Review, user_id: int):
        version = session.get(InstructionVersion, review.instruction_version_id)
        instruction = session.get(Instruction, version.instruction_id)
        previous = session.exec(select(InstructionVersion).where(
            InstructionVersion.instruction_id == instruction.id, InstructionVersion.number < version.number)
            .order_by(InstructionVersion.number.desc())).first()
        diffs = ({name: word_diff(getattr(previous, name), getattr(version, name))
                  for name in ("text", "input_template", "output_template")} if previous else {})
        task = session.get(Task, review.task_id)
        return task, InstructionReviewContext(
            version=version, instruction=instruction, previous=previous, diffs=diffs,
            comments=review_comments(session, instruction_id=instruction.id),
            samples=rendered_samples(session, version, task.id, seed=review.id, user_id=user_id),
            similar=overlap(session, task.id, version.text))

    def api_fields(self, item: ReviewItem[InstructionReviewContext]):
        return {"instruction_text": item.context.version.text, "instruction_version_id": item.context.version.id}
