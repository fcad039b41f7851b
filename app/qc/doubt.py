"""How much a model doubts each instance's target: the order in which a task's instances are worth reading,
and the weights of a targeted spot check's draw. Computed from a `score` job's rows (worker/score.py).

Option tasks follow confident learning (Northcutt, Jiang and Chuang, JAIR 2021). Each option text is a class,
and its threshold is the mean probability the model gives that class over the instances labelled with it (how
sure the model usually is of that label where it is given). An instance is *suspect* when another option
reaches its own class's threshold: the model believes another label as much as it usually believes that one.
The risk is 1 − p(target), the probability the model puts elsewhere; suspects rank first, each group by risk.

Other tasks rank by the loss of the target, and the risk is the loss's percentile within the task (0 for the
least surprising target, 1 for the most); nothing is marked suspect.

A targeted draw weighs instances by `draw_weight`: the risk itself for option tasks (a probability already,
near 0 where the model agrees with the target), and the percentile to the power `SHARPNESS` elsewhere, so that
the top tenth of the ranking is drawn about four times as often as the average instance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

SHARPNESS = 4


@dataclass(frozen=True)
class ScoreRow:
    instance_id: int
    loss: float
    target: str
    options: list[str] | None
    option_probabilities: list[float] | None


@dataclass(frozen=True)
class Doubt:
    instance_id: int
    rank: int  # 1: the most doubtful
    risk: float  # in [0, 1]
    suspect: bool  # confident learning's flag (option tasks only)
    loss: float
    draw_weight: float


def rank(rows: Sequence[ScoreRow]) -> list[Doubt]:
    """Every scored instance, most doubtful first."""
    with_options: list[ScoreRow] = []
    without: list[ScoreRow] = []
    for row in rows:  # an option task's target is one of its options; anything else is ranked by its loss
        chosen = row.option_probabilities and row.target in (row.options or [])
        (with_options if chosen else without).append(row)
    doubts = _by_confident_learning(with_options) + _by_loss_percentile(without)
    doubts.sort(key=lambda doubt: (not doubt.suspect, -doubt.risk, -doubt.loss, doubt.instance_id))
    return [Doubt(d.instance_id, k, d.risk, d.suspect, d.loss, d.draw_weight) for k, d in enumerate(doubts, start=1)]


def _by_confident_learning(rows: Sequence[ScoreRow]) -> list[Doubt]:
    given: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        probabilities, options = row.option_probabilities or [], row.options or []  # both set: an option task
        given[row.target].append(probabilities[options.index(row.target)])
    threshold = {label: sum(values) / len(values) for label, values in given.items()}
    doubts = []
    for row in rows:
        chances = dict(zip(row.options, row.option_probabilities, strict=True))
        suspect = any(chance >= threshold[label] for label, chance in chances.items()
                      if label != row.target and label in threshold)
        risk = min(1.0, max(0.0, 1.0 - chances[row.target]))
        doubts.append(Doubt(row.instance_id, 0, risk, suspect, row.loss, risk))
    return doubts


def _by_loss_percentile(rows: Sequence[ScoreRow]) -> list[Doubt]:
    ordered = sorted(rows, key=lambda row: (row.loss, row.instance_id))
    last = max(len(ordered) - 1, 1)
    return [Doubt(row.instance_id, 0, k / last if len(ordered) > 1 else 1.0, False, row.loss,
                  (k / last if len(ordered) > 1 else 1.0) ** SHARPNESS) for k, row in enumerate(ordered)]
