"""The corrections queue: a proposed fix of an instance, shown as the export renders it before and after, beside
its image, with why it was proposed and what led to it, for a second person to accept or reject; and a proposed
fix of a stage-2 conversation, turn beside turn, with the verdicts that led to it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import zip_longest
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from app.core.failures import AppError
from app.models import (
    ConversationItem,
    ConversationPool,
    Image,
    Instance,
    RecordKind,
    Revision,
    RevisionStatus,
    SpotCheckItem,
    Task,
    User,
)
from app.prompts.rendering import Rendered
from app.prompts.specs import render_instance, spec_of_version
from app.services import conversation_reviews, instance_revisions
from app.services.queues.base import Holding, ReviewItem, ReviewQueue, instance_fields
from app.services.sampling import newest_version


@dataclass(frozen=True)
class Rendering:
    rendered: Rendered | None
    problem: str | None  # the template's problem, or why nothing renders (no instruction yet)


@dataclass(frozen=True)
class CorrectionContext:
    revision: Revision
    instance: Instance
    image: Image | None
    author: str
    before: Rendering
    after: Rendering
    finding: str | None  # what the spot-check verdict behind the fix said


@dataclass(frozen=True)
class ConversationFixContext:
    revision: Revision
    conversation: ConversationItem
    pool: ConversationPool
    image: Image | None
    author: str
    verdicts: list[dict[str, Any]]  # the review's verdicts that led to it (empty for a fix made otherwise)

    @property
    def turns(self) -> list[tuple[dict[str, str] | None, dict[str, str] | None]]:
        """The conversation now and after the fix, turn beside turn (None where one side has no such turn): the
        exchanges the review dropped stand beside nothing rather than shifting every later turn."""
        change = self.revision.changes["conversations"]
        before, after = change["before"], iter(change["after"])
        dropped = set((self.revision.origin_detail or {}).get("dropped", []))
        if not dropped:
            return list(zip_longest(before, change["after"]))
        return [(turn, None if (index | 1) in dropped else next(after, None)) for index, turn in enumerate(before)]


class Corrections(ReviewQueue):
    name, title, table, template = "corrections", "Corrections", Revision, "review/_corrections.html"

    def held_by(self):
        return instance_revisions.held_by()

    def sources(self, user):
        return [(instance_revisions.queue_candidates(), Revision.reviewer_id),
                (conversation_reviews.fix_candidates(), Revision.reviewer_id)]

    def undecided(self):
        return select(func.count()).select_from(Revision).where(Revision.status == RevisionStatus.proposed)

    def holder(self, item, user_id):
        return Revision.reviewer_id if item.reviewer_id == user_id and item.status == RevisionStatus.proposed else None

    def holdings(self):
        return [Holding(Revision.reviewer_id, Revision.status == RevisionStatus.proposed, {"reviewer_id": None})]

    def context(self, session: Session, item: Revision, user_id: int):
        if item.record_kind == RecordKind.conversation:
            return None, _conversation_fix(session, item)
        instance, image, task, author = session.execute(
            _fixed_rows(), {"instance_id": item.record_id, "author_id": item.author_id or 0},
            execution_options={"populate_existing": True}).one()
        after = Instance(**(instance.model_dump() | {name: change["after"] for name, change in item.changes.items()}))
        finding = None
        if item.origin == "spot_check" and item.origin_id:
            spot = session.get(SpotCheckItem, item.origin_id)
            finding = spot and f"{spot.verdict.replace('_', ' ')}{': ' + spot.note if spot.note else ''}"
        before_and_after = _rendered(session, (instance, after), image)
        return task, CorrectionContext(revision=item, instance=instance, image=image, author=author or "someone",
                                       before=before_and_after[0], after=before_and_after[1], finding=finding)

    def api_fields(self, item: ReviewItem[CorrectionContext | ConversationFixContext]) -> dict[str, Any]:
        c = item.context
        if isinstance(c, ConversationFixContext):
            return {"pool_id": c.pool.id, "conversation_id": c.conversation.id, "changes": c.revision.changes,
                    "reason": c.revision.reason, "origin": c.revision.origin,
                    "image_url": f"/media/{c.image.sha256}" if c.image else None}
        return {**instance_fields(c.instance, c.image), "changes": c.revision.changes, "reason": c.revision.reason,
                "origin": c.revision.origin, "prompt": c.after.rendered.prompt if c.after.rendered else None,
                "target": c.after.rendered.target if c.after.rendered else None}


def _conversation_fix(session: Session, item: Revision) -> ConversationFixContext:
    conversation, pool, image = session.execute(
        conversation_reviews.conversation_rows(), {"conversation_id": item.record_id},
        execution_options={"populate_existing": True}).one()
    author = session.get(User, item.author_id) if item.author_id else None
    return ConversationFixContext(revision=item, conversation=conversation, pool=pool, image=image,
                                  author=author.display_name if author else "someone",
                                  verdicts=(item.origin_detail or {}).get("verdicts", []))


@cache
def _fixed_rows():
    """The fixed instance, its image, its task and the fix's author's name, in one statement built once: every
    next fix shows them (four lookups had been a third of its time on PostgreSQL)."""
    return (select(Instance, Image, Task, User.display_name)
            .join(Task, Task.id == Instance.task_id)
            .outerjoin(Image, Image.id == Instance.image_id)
            .outerjoin(User, User.id == bindparam("author_id"))
            .where(Instance.id == bindparam("instance_id")))


def _rendered(session: Session, instances: tuple[Instance, ...], image: Image | None) -> list[Rendering]:
    """Each of one task's instances as the export renders it: with the task's newest approved instruction (else
    its newest)."""
    try:
        spec = spec_of_version(newest_version(session, task_id=instances[0].task_id))
    except AppError as error:
        return [Rendering(None, str(error))] * len(instances)
    return [Rendering(*render_instance(spec, instance, has_image=image is not None)) for instance in instances]
