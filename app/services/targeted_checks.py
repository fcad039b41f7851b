"""Drawing a spot check by a model's doubt: every active instance of the task is weighted by its draw weight
under the model's newest scores (app/qc/doubt.py), mixed with a uniform share (app/qc/targeted.py), and drawn
independently with that probability. An instance scored by nobody weighs nothing and keeps the uniform floor:
every instance can be drawn, which is what keeps the weighted error rate unbiased."""

from __future__ import annotations

from sqlalchemy import Select
from sqlmodel import Session, select

from app.core.failures import Conflict, NotFound
from app.models import Image, Instance, InstanceStatus
from app.qc.targeted import inclusion_probabilities, poisson_draw
from app.services import scores as score_service
from app.services.sampling import InstanceRow

DEFAULT_UNIFORM_SHARE = 0.2


class TargetedDraw:
    """A check's `draw` (services/checks.py); after the draw, `chances` holds each drawn instance's inclusion
    probability and `census` whether every instance was certain to be drawn."""

    def __init__(self, *, model_id: int, uniform_share: float = DEFAULT_UNIFORM_SHARE):
        self.model_id, self.uniform_share = model_id, uniform_share
        self.chances: dict[int, float] = {}
        self.census = False

    def __call__(self, session: Session, *, task_id: int, seed: int, size: int,
                 avoid: Select | None = None) -> list[InstanceRow]:
        """`avoid`: instances left out of the frame (a running solve test's, whose targets must stay unseen);
        the estimate then covers the task without them."""
        try:  # asked for by model, a score set is there or NotFound
            scores = score_service.chosen_set(session, task_id=task_id, model_id=self.model_id)
        except NotFound:
            raise Conflict("A targeted check draws by a model's doubt: score the task with that model first.",
                           fields={"targeted_by_model_id": "no scores by this model"}) from None
        weights = {doubt.instance_id: doubt.draw_weight
                   for doubt in score_service.ranking(session, task_id=task_id, scores=scores)}
        frame = select(Instance.id).where(Instance.task_id == task_id, Instance.status == InstanceStatus.active)
        if avoid is not None:
            frame = frame.where(Instance.id.not_in(avoid))
        ids = list(session.exec(frame.order_by(Instance.id)))
        probabilities = inclusion_probabilities([weights.get(instance_id, 0.0) for instance_id in ids], size=size,
                                                uniform_share=self.uniform_share)
        drawn = poisson_draw(probabilities, seed=seed)
        self.chances = {ids[k]: probabilities[k] for k in drawn}
        self.census = bool(ids) and all(probability >= 1 for probability in probabilities)
        if not drawn:
            return []
        # In id order: the order a reviewer meets items in says nothing about the model's doubt.
        return list(session.exec(select(Instance, Image).outerjoin(Image, Image.id == Instance.image_id)
                                 .where(Instance.id.in_(list(self.chances))).order_by(Instance.id)))
