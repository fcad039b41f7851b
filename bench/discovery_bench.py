"""Model-assisted error discovery on the CPU with the tiny LLaVA: how many planted wrong targets a targeted spot
check finds against a uniform one of the same size, and whether its weighted interval stays honest.

    OMP_NUM_THREADS=1 .venv/bin/python bench/discovery_bench.py

1. A learnable task: --records solid-colour pictures named by their colour, --error-rate of them named wrongly
   (tests/training_data.py), written as the export writes a version.
2. The tiny model fine-tuned on it with the worker's training script (stage 1 only), then every record scored
   by the score job's code (worker/score.py): scored_per_s.
3. The doubt ranking (app/qc/doubt.py) gives each record its draw weight. --draws targeted Poisson draws of
   expected size --budget x records with a --uniform-share (app/qc/targeted.py), against as many uniform draws of
   the same expected size, the baseline measured in the same run: recall_targeted and recall_random are the
   planted errors a reviewer meets / planted; lift = targeted / random (target >= 3 at a 10% budget with 5%
   planted). recall_ranking_top: reading the top of the ranking instead (no estimate then).
4. coverage: the share of targeted draws whose weighted 95% interval holds the planted rate (target >= 0.93),
   and the mean estimate's bias.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import fmean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.qc.doubt import rank  # noqa: E402
from app.qc.targeted import error_rate, inclusion_probabilities, poisson_draw  # noqa: E402
from tests.scratch import throwaway_folder  # noqa: E402
from tests.test_discovery import score_planted  # noqa: E402
from tests.training_data import write_planted_version  # noqa: E402


def draws(probabilities: list[float], wrong: list[bool], count: int) -> tuple[float, float, float]:
    """Mean recall, coverage of the planted rate by the weighted interval, and mean estimate over `count` draws."""
    truth, planted = sum(wrong) / len(wrong), sum(wrong)
    recalls, covered, estimates = [], 0, []
    for seed in range(count):
        drawn = poisson_draw(probabilities, seed=seed)
        recalls.append(sum(wrong[k] for k in drawn) / planted)
        estimate = error_rate([(wrong[k], probabilities[k]) for k in drawn])
        estimates.append(estimate.interval.rate)
        covered += estimate.interval.low <= truth <= estimate.interval.high
    return fmean(recalls), covered / count, fmean(estimates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--budget", type=float, default=0.10, help="the share of the task reviewed")
    parser.add_argument("--uniform-share", type=float, default=0.2)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    import torch

    from app.schemas.recipe import FinetuneConfig
    from worker.finetune import main as finetune
    from worker.tiny_model import build_tiny_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    workdir = throwaway_folder("studio-discovery-bench-")
    folder, rows, planted = write_planted_version(workdir / "version", records=args.records,
                                                  error_rate=args.error_rate)
    started = time.perf_counter()
    model = finetune(FinetuneConfig(version=folder, base=build_tiny_model(workdir / "tiny-llava"), out=workdir / "run",
                                    global_batch_size=8, per_device_batch_size=8, device="cpu", stage1_lr=2e-3,
                                    stage1_epochs=args.epochs, stage2_steps=0))
    trained_s = time.perf_counter() - started
    started = time.perf_counter()
    scored = score_planted(model, folder, rows)
    scored_s = time.perf_counter() - started
    ranked = rank(scored)
    order = [row[0] for row in rows]
    weight = {doubt.instance_id: doubt.draw_weight for doubt in ranked}
    wrong = [k in planted for k in order]
    size = args.budget * args.records
    targeted = inclusion_probabilities([weight[k] for k in order], size=size, uniform_share=args.uniform_share)
    uniform = inclusion_probabilities([1.0] * args.records, size=size, uniform_share=1.0)
    recall_targeted, coverage, mean_targeted = draws(targeted, wrong, args.draws)
    recall_random, coverage_random, _ = draws(uniform, wrong, args.draws)
    top = {doubt.instance_id for doubt in ranked[:round(size)]}
    truth = len(planted) / args.records
    figures = {
        "model": "tiny-llava", "device": "cpu", "records": args.records, "planted_error_rate": round(truth, 4),
        "review_budget": args.budget, "uniform_share": args.uniform_share, "draws": args.draws,
        "recall_targeted": round(recall_targeted, 3), "recall_random": round(recall_random, 3),
        "lift": round(recall_targeted / recall_random, 2) if recall_random else None,
        "recall_ranking_top": round(len(top & planted) / len(planted), 3),
        "coverage": round(coverage, 3), "coverage_random": round(coverage_random, 3),
        "mean_estimate_bias": round(mean_targeted - truth, 4),
        "scored_per_s": round(len(scored) / scored_s, 1), "fine_tune_s": round(trained_s, 1),
    }
    figures["targets_met"] = {"lift": (figures["lift"] or 0) >= 3, "coverage": coverage >= 0.93}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
