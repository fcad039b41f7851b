"""The doubt ranking: confident learning's per-class thresholds for option tasks, the loss elsewhere."""

from __future__ import annotations

import pytest

from app.qc.doubt import SHARPNESS, ScoreRow, rank

OPTIONS = ["cat", "dog", "bird"]


def option_row(instance_id: int, target: str, probabilities: list[float]) -> ScoreRow:
    return ScoreRow(instance_id, loss=1.0, target=target, options=OPTIONS, option_probabilities=probabilities)


def test_a_label_the_model_believes_less_than_another_class_usually_is_suspect_and_ranks_first():
    rows = [option_row(1, "cat", [0.8, 0.1, 0.1]), option_row(2, "cat", [0.6, 0.3, 0.1]),
            option_row(3, "dog", [0.1, 0.7, 0.2]), option_row(4, "dog", [0.2, 0.6, 0.2]),
            # given "cat", but the model gives "dog" 0.7: the dogs' own threshold is (0.7 + 0.6 + 0.7) / 3
            option_row(5, "cat", [0.2, 0.7, 0.1]),
            option_row(6, "bird", [0.3, 0.2, 0.5])]
    ranked = rank(rows)
    assert [doubt.instance_id for doubt in ranked][:1] == [5] and ranked[0].suspect and ranked[0].rank == 1
    assert [doubt.instance_id for doubt in ranked if doubt.suspect] == [5]
    assert ranked[0].risk == pytest.approx(0.8) and ranked[0].draw_weight == ranked[0].risk
    rest = [doubt.risk for doubt in ranked[1:]]
    assert rest == sorted(rest, reverse=True)  # then by the probability the model puts elsewhere


def test_free_text_ranks_by_loss_with_its_percentile_as_risk():
    rows = [ScoreRow(k, loss=loss, target="an answer", options=None, option_probabilities=None)
            for k, loss in enumerate([2.0, 0.5, 9.0, 1.0, 4.0], start=1)]
    ranked = rank(rows)
    assert [doubt.instance_id for doubt in ranked] == [3, 5, 1, 4, 2]
    assert [doubt.risk for doubt in ranked] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert ranked[1].draw_weight == pytest.approx(0.75 ** SHARPNESS)
    assert not any(doubt.suspect for doubt in ranked)


def test_nothing_scored_nothing_ranked():
    assert rank([]) == []
