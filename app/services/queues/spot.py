"""The spot check queue: an instance rendered as the export renders it, for a verdict. No running error count
on screen (it would nudge the next verdicts), and a second verdict never shows the first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.models import Image, Instance, QcStatus, SpotCheck, SpotCheckItem, SpotVerdict, Task
from app.prompts.rendering import Rendered
from app.services import blinding, spot_checks
from app.services.queues.base import Holding, ReviewItem, ReviewQueue, checked_instance, instance_fields

VERDICT_KEYS = {SpotVerdict.correct: "c", SpotVerdict.wrong_target: "w", SpotVerdict.bad_image: "b",
                SpotVerdict.instruction_mismatch: "i", SpotVerdict.ambiguous: "u"}


@dataclass(frozen=True)
class SpotContext:
    check: SpotCheck
    instance: Instance
    image: Image | None
    rendered: Rendered | None  # None when the template fails on the instance: then `problem` says why
    problem: str | None
    target_hidden: bool  # the instance is in a blind solve test the reviewer may answer: its target stays unseen
    second_pass: bool
    verdict_keys: dict[SpotVerdict, str]


class SpotChecks(ReviewQueue):
    name, title, table, template = "spot", "Spot checks", SpotCheckItem, "review/_spot.html"

    def held_by(self):
        return spot_checks.held_by()

    def sources(self, user):
        return [(spot_checks.first_pass_candidates(), SpotCheckItem.reviewer_id),
                (spot_checks.second_pass_candidates(), SpotCheckItem.second_reviewer_id)]

    def undecided(self):
        return select(func.count()).select_from(SpotCheckItem).join(
            SpotCheck, SpotCheck.id == SpotCheckItem.spot_check_id).where(
            SpotCheck.status == QcStatus.open, SpotCheckItem.decided_at.is_(None)
            | (SpotCheck.double_review & SpotCheckItem.second_decided_at.is_(None)))

    def holder(self, item, user_id):
        if item.decided_at is None:
            return SpotCheckItem.reviewer_id if item.reviewer_id == user_id else None
        return SpotCheckItem.second_reviewer_id if item.second_reviewer_id == user_id else None

    def holdings(self):
        return [Holding(SpotCheckItem.reviewer_id, SpotCheckItem.decided_at.is_(None), {"reviewer_id": None}),
                Holding(SpotCheckItem.second_reviewer_id, SpotCheckItem.second_decided_at.is_(None),
                        {"second_reviewer_id": None})]

    def context(self, session: Session, item: SpotCheckItem, user_id: int):
        check = session.get(SpotCheck, item.spot_check_id)
        instance, image, rendered, problem = checked_instance(session, check=check, instance_id=item.instance_id)
        hidden = blinding.for_user(session, user_id=user_id, may_solve=True).hides(instance.id)
        return session.get(Task, check.task_id), SpotContext(
            check=check, instance=instance, image=image, rendered=rendered, problem=problem, target_hidden=hidden,
            second_pass=spot_checks.is_second_pass(item, user_id), verdict_keys=VERDICT_KEYS)

    def api_fields(self, item: ReviewItem[SpotContext]):
        c = item.context
        return {**instance_fields(c.instance, c.image), "prompt": c.rendered.prompt if c.rendered else None,
                "target": c.rendered.target if c.rendered and not c.target_hidden else None,
                "second_pass": c.second_pass}
