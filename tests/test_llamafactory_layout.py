"""The `llamafactory` layout loaded by LLaMA-Factory's own data pipeline (its `get_dataset`, with the tiny LLaVA's
processor and its `llava` template): every record of every split kept, each with supervised tokens and its image.
LLaMA-Factory drops an abnormal record with only a log line, so a count short of the manifest's fails here.

Its package pins older transformers, datasets and TRL than ours, so it runs in an environment of its own that
`make test` makes once (scripts/llamafactory-env.sh) and names in STUDIO_LLAMAFACTORY_PYTHON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_layouts import llava_splits, mixed_version

ROOT = Path(__file__).resolve().parent.parent
SPLITS = {"flan_stage1": "stage1", "flan_stage2": "stage2", "flan_validation": "validation"}


@pytest.fixture
def llamafactory_python() -> str:
    python = os.environ.get("STUDIO_LLAMAFACTORY_PYTHON")
    if not python:  # `make test` always names it: only a bare `pytest` gets here
        pytest.skip("STUDIO_LLAMAFACTORY_PYTHON is not set: run `make test` (it makes LLaMA-Factory's environment)")
    assert Path(python).is_file(), f"{python} does not exist: `make llamafactory-env` makes it"
    return python


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the layout, not the database, is on trial
def test_llamafactory_loads_every_record_of_every_split_with_its_image(app, db, settings, tiny_model,
                                                                        llamafactory_python):
    manifest, out = mixed_version(app, db, settings, layouts=["llamafactory"])
    done = subprocess.run([llamafactory_python, str(ROOT / "tests" / "llamafactory_loader.py"),
                           str(out / "llamafactory"), str(tiny_model), "llava", *SPLITS],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                               "DISABLE_VERSION_CHECK": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    kept = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Skipping this abnormal example" not in done.stderr
    records = llava_splits(out)
    for dataset, split in SPLITS.items():
        assert kept[dataset]["examples"] == manifest["files"][f"llamafactory/{split}.jsonl"]["records"] \
            == len(records[split]) > 0, (dataset, kept)
        assert kept[dataset]["without_supervised_tokens"] == 0
        assert kept[dataset]["images"] == sum("image" in record for record in records[split])
    assert sys.executable != llamafactory_python
