"""A model's suggestion for an instance's target, read from what the model already said of it: for an option task,
the option its scores prefer when that is not the target; for another task, its own answer from a preview when
that does not match the target. A suggestion is only ever shown and, by a person, proposed as a fix: it never
becomes a target by itself."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from app.models import Instance, InstanceScore, ModelOutput, RegisteredModel
from app.qc.answers import matches, parse_option
from app.services.scores import ScoreSet


@dataclass(frozen=True)
class Suggestion:
    instance_id: int
    text: str
    probability: float | None  # of the option, under the model's scores; None for a preview's answer
    model_id: int
    model_name: str

    def origin_detail(self) -> dict:
        return {"model": self.model_name, "suggestion": self.text, "probability": self.probability}


def suggestions(session: Session, *, scores: ScoreSet, instances: list[Instance]) -> dict[int, Suggestion]:
    """By instance id, the suggestions of the model behind `scores` that differ from the target."""
    return _of(session, model_id=scores.model_id, model_name=scores.model_name,
               version_id=scores.instruction_version_id, instances=instances)


def suggestion_for(session: Session, *, instance: Instance, model_id: int | None = None) -> Suggestion | None:
    """One instance's suggestion, by the model that scored it last (or `model_id`): read from its own score rows,
    not from its task's score sets (an instance page and a verdict ask this; a task may hold millions of scores)."""
    query = (select(InstanceScore.model_id, RegisteredModel.name, InstanceScore.instruction_version_id)
             .join(RegisteredModel, RegisteredModel.id == InstanceScore.model_id)
             .where(InstanceScore.instance_id == instance.id))
    if model_id is not None:
        query = query.where(InstanceScore.model_id == model_id)
    newest = session.exec(query.order_by(InstanceScore.created_at.desc(), InstanceScore.id.desc())).first()
    if newest is None:
        return None
    found = _of(session, model_id=newest[0], model_name=newest[1], version_id=newest[2], instances=[instance])
    return found.get(instance.id)


def _of(session: Session, *, model_id: int, model_name: str, version_id: int,
        instances: list[Instance]) -> dict[int, Suggestion]:
    found: dict[int, Suggestion] = {}
    with_options = {instance.id: instance for instance in instances if instance.options}
    if with_options:
        rows = session.exec(select(InstanceScore.instance_id, InstanceScore.option_probabilities).where(
            InstanceScore.instance_id.in_(list(with_options)), InstanceScore.model_id == model_id,
            InstanceScore.instruction_version_id == version_id))
        for instance_id, probabilities in rows:
            instance, options = with_options[instance_id], with_options[instance_id].options or []
            if not probabilities or len(probabilities) != len(options):
                continue
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            if best != parse_option(instance.raw_output, options):
                found[instance_id] = Suggestion(instance_id, options[best], round(probabilities[best], 4),
                                                model_id, model_name)
    free = {instance.id: instance for instance in instances if not instance.options}
    if free:
        outputs = session.exec(select(ModelOutput.instance_id, ModelOutput.output).where(
            ModelOutput.instance_id.in_(list(free)), ModelOutput.model_name == model_name)
            .order_by(ModelOutput.id))
        for instance_id, output in outputs:  # the newest answer wins
            answer = output.strip()
            if answer and not matches(answer, free[instance_id].raw_output, None):
                found[instance_id] = Suggestion(instance_id, answer, None, model_id, model_name)
            else:
                found.pop(instance_id, None)
    return found
