"""Browsing a task's instances: filtered keyset pages over the (task, id) index, or pages of a model's doubt
ranking, and one instance."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.core.failures import NotFound
from app.models import Image, Instance
from app.qc.doubt import Doubt
from app.services import blinding
from app.services import scores as score_service
from app.services.blinding import Blindfold
from app.services.scores import ScoreSet
from app.services.suggestions import Suggestion, suggestions
from app.services.tasks import escape_like


@dataclass(frozen=True)
class InstanceFilters:
    split: str | None = None
    status: str | None = None
    q: str | None = None
    order: str | None = None  # "doubt": the newest scores' ranking, most doubtful first; "suspects": only
    # confident learning's suspects, in that order; else by id

    def as_query(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


@dataclass(frozen=True)
class InstancePage:
    instances: list[Instance]
    images: dict[int, Image]
    next_after: int | None  # an id, or a rank when ordered by doubt
    doubts: dict[int, Doubt] = field(default_factory=dict)  # by instance id, when ordered by doubt
    scores: ScoreSet | None = None  # what the doubt comes from
    suggestions: dict[int, Suggestion] = field(default_factory=dict)  # the model's, where it is not the target
    blunt: tuple[int, int] | None = None  # (suspects, ranked) when the model cannot tell instances apart


def list_instances(session: Session, *, task_id: int, filters: InstanceFilters, after: int | None = None,
                   limit: int = 50, blindfold: Blindfold = blinding.NONE) -> InstancePage:
    """`blindfold`: the instances whose targets the viewer must not see, which a search of targets then never
    matches and a doubt ranking (a model's loss on the target) leaves out."""
    if filters.order in ("doubt", "suspects"):
        scores = score_service.chosen_set(session, task_id=task_id)
        if scores is not None:
            return _by_doubt(session, task_id=task_id, scores=scores, filters=filters, after=after or 0, limit=limit,
                             blindfold=blindfold)
        if filters.order == "suspects":  # nothing is a suspect before a model has looked
            return InstancePage([], {}, None)
        # Not scored yet: the instances unranked (the page says so) rather than none.
    rows = list(session.exec(filtered(select(Instance), task_id, filters, after, blindfold).order_by(Instance.id)
                             .limit(limit + 1)))
    instances = rows[:limit]
    return InstancePage(instances, _images(session, instances), instances[-1].id if len(rows) > limit else None)


def _by_doubt(session: Session, *, task_id: int, scores: ScoreSet, filters: InstanceFilters, after: int, limit: int,
              blindfold: Blindfold) -> InstancePage:
    """Ranked by `scores` (app/qc/doubt.py), paged by rank; `after` is the last rank shown."""
    ranked = score_service.ranking(session, task_id=task_id, scores=scores)
    matching = set(session.exec(filtered(select(Instance.id), task_id, filters, None, blindfold))) - blindfold.hidden
    shown = [doubt for doubt in ranked[after:] if doubt.instance_id in matching
             and (doubt.suspect or filters.order != "suspects")][:limit + 1]
    page = shown[:limit]
    by_id = {instance.id: instance for instance in session.exec(
        select(Instance).where(Instance.id.in_([doubt.instance_id for doubt in page])))} if page else {}
    instances = [by_id[doubt.instance_id] for doubt in page]
    return InstancePage(instances, _images(session, instances), page[-1].rank if len(shown) > limit else None,
                        {doubt.instance_id: doubt for doubt in page}, scores,
                        suggestions(session, scores=scores, instances=instances), _blunt(ranked))


def _blunt(ranked: list[Doubt]) -> tuple[int, int] | None:
    """(suspects, ranked) when most of a ranking are suspects at full risk: a model that puts its mass elsewhere
    on nearly every instance (untrained, or not for this task) flags them all, and its order says little."""
    suspects = sum(1 for doubt in ranked if doubt.suspect)
    certain = sum(1 for doubt in ranked if doubt.risk >= 0.99)
    if len(ranked) >= 10 and suspects >= 0.5 * len(ranked) and certain >= 0.5 * len(ranked):
        return suspects, len(ranked)
    return None


def filtered(query, task_id: int, filters: InstanceFilters, after: int | None, blindfold: Blindfold):
    """`query` limited to the task's instances that pass `filters` (the browser's, and a bulk fix's query), with
    ids above `after`."""
    query = query.where(Instance.task_id == task_id)
    if filters.split:
        query = query.where(Instance.split == filters.split)
    if filters.status:
        query = query.where(Instance.status == filters.status)
    if filters.q:
        pattern = f"%{escape_like(filters.q.strip())}%"
        in_target = Instance.raw_output.ilike(pattern, escape="\\")
        if blindfold:  # a search would otherwise tell a solver what a hidden target says
            in_target = in_target & Instance.id.not_in(sorted(blindfold.hidden))
        query = query.where(or_(Instance.input_text.ilike(pattern, escape="\\"), in_target))
    if after is not None:
        query = query.where(col(Instance.id) > after)
    return query


def _images(session: Session, instances: list[Instance]) -> dict[int, Image]:
    image_ids = {instance.image_id for instance in instances if instance.image_id}
    if not image_ids:
        return {}
    return {image.id: image for image in session.exec(select(Image).where(Image.id.in_(image_ids)))}


def get_instance(session: Session, *, instance_id: int) -> tuple[Instance, Image | None]:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"There is no instance with id {instance_id}.")
    return instance, session.get(Image, instance.image_id) if instance.image_id else None


def get_image(session: Session, *, sha256: str) -> Image:
    image = session.exec(select(Image).where(Image.sha256 == sha256)).first()
    if image is None:
        raise NotFound("There is no such image.")
    return image


def options_of(session: Session, *, instance_ids: list[int]) -> dict[int, list[str] | None]:
    """Each instance's answer options (None for a free-form one), by id."""
    return dict(session.exec(select(Instance.id, Instance.options).where(Instance.id.in_(instance_ids))).all())
