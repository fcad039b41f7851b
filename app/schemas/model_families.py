"""The model families the worker's fine-tune trains, by the `model_type` in a model's config.json: the fine-tune's
form refuses another where the web can read the model's folder, and the worker before it trains.

The fine-tune's batches carry token ids, labels and one image's pixels (worker/training/encoding.py), which is what
LLaVA-1.5 takes. Other families need more beside the pixels, so training one here would fail mid-run or, worse,
train on half its inputs: such a model is refused before anything runs, with what it needs. Previews and scoring
(`AutoModelForImageTextToText` and the processor's own outputs) take any image-text-to-text model."""

from __future__ import annotations

import json
from pathlib import Path

TRAINABLE = {"llava": "LLaVA-1.5"}
NEEDS = {  # what a family's forward pass takes beside the pixels
    "qwen2_vl": "image_grid_thw", "qwen2_5_vl": "image_grid_thw", "qwen3_vl": "image_grid_thw",
    "llava_next": "image_sizes", "llava_onevision": "image_sizes",
    "idefics3": "pixel_attention_mask", "smolvlm": "pixel_attention_mask", "idefics2": "pixel_attention_mask",
}


class UnsupportedFamily(ValueError):
    """The model is of a family the fine-tune does not train."""


def model_type(folder: Path) -> str | None:
    """The `model_type` of the model saved in `folder` (None: no readable config.json there)."""
    try:
        return json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def require_trainable(folder: Path) -> None:
    """Raises UnsupportedFamily, in words, unless the model in `folder` is of a family the fine-tune trains (a
    folder without a readable config.json is left to the loader, which says what is missing)."""
    kind = model_type(folder)
    if kind is None or kind in TRAINABLE:
        return
    needs = f" (it also needs {NEEDS[kind]}, which the fine-tune's batches do not carry)" if kind in NEEDS else ""
    supported = ", ".join(f"{name} ({key})" for key, name in TRAINABLE.items())
    raise UnsupportedFamily(f"The model in {folder} is a {kind} model{needs}: the fine-tune trains {supported} "
                            "models for now. Previews and scoring take it as it is.")
