"""Loads a version's `llamafactory` layout with LLaMA-Factory's own data pipeline and prints, as JSON, how many
examples each dataset kept. Run by tests/test_llamafactory_layout.py with the Python of LLaMA-Factory's environment
(its package pins older transformers, datasets and TRL than ours: `make llamafactory-env`), never imported by ours.

    python tests/llamafactory_loader.py LAYOUT_DIR MODEL_DIR TEMPLATE DATASET [DATASET ...]

LLaMA-Factory drops a record whose roles do not alternate or whose turns are odd with only a log line ("Skipping
this abnormal example"), so what it kept is counted here, as well as the supervised tokens of each example."""

from __future__ import annotations

import json
import sys
import tempfile


def main(layout: str, model: str, template: str, datasets: list[str]) -> dict:
    from llamafactory.train.test_utils import load_dataset_module

    kept = {}
    for name in datasets:
        with tempfile.TemporaryDirectory() as out:
            module = load_dataset_module(stage="sft", do_train=True, model_name_or_path=model, dataset_dir=layout,
                                         dataset=name, template=template, cutoff_len=8192, output_dir=out,
                                         overwrite_cache=True, report_to="none", use_cpu=True)
        rows = module["train_dataset"]
        kept[name] = {"examples": len(rows),
                      "without_supervised_tokens": sum(all(label == -100 for label in row["labels"]) for row in rows),
                      "images": sum(len(row.get("images") or []) for row in rows)}
    return kept


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])))
