"""One reviewer queue as an object: where its items come from, who holds one, how a skip gives it back, and
what a reviewer sees of an item — everything needed to decide it, and nothing that would bias it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, bindparam, select, update
from sqlmodel import Session

from app.models import Image, Instance, InstructionVersion, Review, Task, User
from app.prompts.rendering import Rendered
from app.prompts.specs import render_instance, spec_of_version
from app.qc.overlap import most_similar
from app.services import blinding
from app.services.instructions import other_tasks_instructions
from app.services.sampling import sample_instances

SAMPLES_SHOWN = 3
Context = TypeVar("Context")
# A rendered sample: the instance, its image, and (rendered, None) or (None, the template's problem).
Sample = tuple[Instance, Image | None, Rendered | None, str | None]


@dataclass(frozen=True)
class Holding:
    """One way a reviewer holds a queue's items: the claimant column, the condition of an item not yet finished
    that way, and what giving one back clears besides the lease."""

    claimant: Any
    unfinished: Any
    reset: dict[str, Any]


@dataclass(frozen=True)
class ReviewItem(Generic[Context]):
    queue: ReviewQueue
    item: Any  # the row: a Review, SolveTestItem, SpotCheckItem, Revision or ConversationReview
    task: Task | None  # None for a stage-2 conversation (or a fix of one)
    context: Context  # the queue's own, typed


class ReviewQueue(ABC):
    """A queue's rules. Statements are built once (`functools.cache` on the services' builders) and run with
    the parameters of `leases.params`."""

    name: ClassVar[str]  # in URLs and the API
    title: ClassVar[str]
    table: ClassVar[type]
    template: ClassVar[str]  # renders `ReviewItem.context`
    held_in_candidates: ClassVar[bool] = False  # the item a user holds is also one of their candidates

    @abstractmethod
    def held_by(self) -> Select:
        """The ids :user_id holds."""

    @abstractmethod
    def sources(self, user: User) -> list[tuple[Select, Any]]:
        """(candidates, the claimant column), in the order they are tried; candidates select (id, lock_version)
        with :user_id, :now and :skip."""

    @abstractmethod
    def undecided(self) -> Select:
        """How many items wait, whoever may take them."""

    @abstractmethod
    def holder(self, item, user_id: int):
        """The claimant column by which the user holds `item`, or None."""

    @abstractmethod
    def context(self, session: Session, item, user_id: int) -> tuple[Task | None, Any]:
        """The item's task (None where it has none), and what the reviewer sees of the item."""

    def holdings(self) -> list[Holding]:
        """Each way a reviewer holds an item of this queue, and what giving it back clears (besides the lease)."""
        return []

    def release_reset(self, claimant) -> dict[str, Any]:
        """What giving back an item held by `claimant` (a skip) clears besides the lease: its holding's reset."""
        return next((holding.reset for holding in self.holdings() if holding.claimant is claimant), {})

    def hand_back(self, session: Session, *, user_id: int, actor_id: int | None) -> None:
        """Everything `user_id` holds here goes back to the queue now (they stopped reviewing), in the caller's
        transaction: the same as a skip of each, for items they had not finished."""
        for holding in self.holdings():
            session.execute(update(self.table).where(holding.claimant == user_id, holding.unfinished)
                            .values(lease_expires_at=None, lock_version=self.table.lock_version + 1,
                                    **holding.reset))

    def skippable(self, item) -> bool:
        return True

    def api_fields(self, item: ReviewItem) -> dict[str, Any]:
        """What the API says of the item beyond its id, version and task (`ReviewItemOut`'s fields)."""
        return {}

    def load(self, session: Session, *, item_id: int, user_id: int) -> ReviewItem | None:
        row = session.get(self.table, item_id, populate_existing=True)
        if row is None:
            return None
        task, context = self.context(session, row, user_id)
        return ReviewItem(self, row, task, context)


def review_holder(item: Review, user_id: int):
    """The review queues' holder: the reviewer, while undecided."""
    return Review.reviewer_id if item.reviewer_id == user_id and item.decided_at is None else None


def checked_instance(session: Session, *, check, instance_id: int) -> Sample:
    """An item's instance and image, rendered with its check's instruction version: (instance, image,
    rendered or None, the template's problem or None)."""
    instance, image, version = session.execute(
        _checked_rows(), {"instance_id": instance_id, "version_id": check.instruction_version_id}).one()
    return instance, image, *render_instance(spec_of_version(version), instance, has_image=image is not None)


@cache
def _checked_rows():
    """The instance, its image and the version it is rendered with, in one statement built once (every "next
    item" and every decision shows one): not three ORM lookups."""
    return (select(Instance, Image, InstructionVersion)
            .outerjoin(Image, Image.id == Instance.image_id)
            .outerjoin(InstructionVersion, InstructionVersion.id == bindparam("version_id"))
            .where(Instance.id == bindparam("instance_id")))


def instance_fields(instance: Instance, image: Image | None) -> dict[str, Any]:
    return {"instance_id": instance.id, "options": instance.options,
            "image_url": f"/media/{image.sha256}" if image else None}


def rendered_samples(session: Session, version: InstructionVersion, task_id: int, seed: int,
                     user_id: int) -> list[Sample]:
    """A few instances rendered with the version, none whose target the reviewer must not see (`blinding`)."""
    spec = spec_of_version(version)
    hidden = sorted(blinding.for_user(session, user_id=user_id, may_solve=True).hidden)
    return [(instance, image, *render_instance(spec, instance, has_image=image is not None))
            for instance, image in sample_instances(session, task_id=task_id, seed=seed, size=SAMPLES_SHOWN,
                                                    avoid=hidden or None)]


def overlap(session: Session, task_id: int, text: str) -> list[tuple[str, float]]:
    """The other tasks' instructions most like `text`, with their similarity."""
    return most_similar(text, other_tasks_instructions(session, task_id=task_id))
