"""Model-assisted error discovery end to end on the CPU: the tiny model fine-tuned on a task with planted wrong
targets, scored by the score job's code, ranks the planted errors at the top."""

from __future__ import annotations

import pytest

from app.qc.doubt import ScoreRow, rank
from tests.training_data import ANSWERS, QUESTION, write_planted_version

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")

RECORDS = 200  # 10 of them wrong


def score_planted(model, folder, rows, *, batch_size: int = 16) -> list[ScoreRow]:
    """Every record of a planted version scored by `model` (a folder) as the score job scores instances."""
    from PIL import Image

    from worker.loading import load_private
    from worker.score import Question, score

    loaded = load_private(str(model), "float32", "cpu")
    options = list(ANSWERS.values())
    scored = []
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        questions = [Question(QUESTION, ANSWERS[given], Image.open(folder / "images" / f"img{k}.png").convert("RGB"),
                              options) for k, _, given in part]
        scored += [ScoreRow(k, result.loss, ANSWERS[given], options, result.option_probabilities)
                   for (k, _, given), result in zip(part, score(loaded, questions), strict=True)]
    return scored


def test_planted_wrong_targets_rise_to_the_top_of_the_doubt_ranking(tiny_model, tmp_path):
    from app.schemas.recipe import FinetuneConfig
    from worker.finetune import main

    folder, rows, planted = write_planted_version(tmp_path / "version", records=RECORDS, error_rate=0.05)
    model = main(FinetuneConfig(version=folder, base=tiny_model, out=tmp_path / "run", global_batch_size=8,
                                per_device_batch_size=8, device="cpu", stage1_lr=2e-3, stage1_epochs=3,
                                stage2_steps=0))
    ranked = rank(score_planted(model, folder, rows))
    top_tenth = {doubt.instance_id for doubt in ranked[:RECORDS // 10]}
    recall = len(top_tenth & planted) / len(planted)
    assert recall >= 0.8, recall  # reading a tenth of the task finds most planted errors; at random, a tenth
    suspects = {doubt.instance_id for doubt in ranked if doubt.suspect}
    assert len(suspects & planted) >= 0.8 * len(planted) and len(suspects - planted) <= len(planted)
