"""The corrections queue: a proposed fix of an instance, shown as the export renders it before and after, beside
its image, with why it was proposed and what led to it, for a second person to accept or reject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from app.core.failures import AppError
from app.models import Image, Instance, Revision, RevisionStatus, SpotCheckItem, Task, User
from app.prompts.rendering import Rendered
from app.prompts.specs import render_instance, spec_of_version
from app.services import instance_revisions
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


class Corrections(ReviewQueue):
    name, title, table, template = "corrections", "Corrections", Revision, "review/_corrections.html"

    def held_by(self):
        return instance_revisions.held_by()

    def sources(self, user):
        return [(instance_revisions.queue_candidates(), Revision.reviewer_id)]

    def undecided(self):
        return select(func.count()).select_from(Revision).where(Revision.status == RevisionStatus.proposed)

    def holder(self, item, user_id):
        return Revision.reviewer_id if item.reviewer_id == user_id and item.status == RevisionStatus.proposed else None

    def holdings(self):
        return [Holding(Revision.reviewer_id, Revision.status == RevisionStatus.proposed, {"reviewer_id": None})]

    def context(self, session: Session, item: Revision, user_id: int):
        instance = session.get(Instance, item.record_id, populate_existing=True)
        image = session.get(Image, instance.image_id) if instance.image_id else None
        task = session.get(Task, instance.task_id)
        author = session.get(User, item.author_id) if item.author_id else None
        after = Instance(**(instance.model_dump() | {name: change["after"] for name, change in item.changes.items()}))
        finding = None
        if item.origin == "spot_check" and item.origin_id:
            spot = session.get(SpotCheckItem, item.origin_id)
            finding = spot and f"{spot.verdict.replace('_', ' ')}{': ' + spot.note if spot.note else ''}"
        return task, CorrectionContext(
            revision=item, instance=instance, image=image, author=author.display_name if author else "someone",
            before=_rendered(session, instance, image), after=_rendered(session, after, image), finding=finding)

    def api_fields(self, item: ReviewItem[CorrectionContext]) -> dict[str, Any]:
        c = item.context
        return {**instance_fields(c.instance, c.image), "changes": c.revision.changes, "reason": c.revision.reason,
                "origin": c.revision.origin, "prompt": c.after.rendered.prompt if c.after.rendered else None,
                "target": c.after.rendered.target if c.after.rendered else None}


def _rendered(session: Session, instance: Instance, image: Image | None) -> Rendering:
    """As the export renders it: with the task's newest approved instruction (else its newest)."""
    try:
        version = newest_version(session, task_id=instance.task_id)
    except AppError as error:
        return Rendering(None, str(error))
    rendered, problem = render_instance(spec_of_version(version), instance, has_image=image is not None)
    return Rendering(rendered, problem)
