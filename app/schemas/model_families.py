"""The model families the worker fine-tunes, previews and scores, by the `model_type` in a model's config.json.

A family says which of the model's modules are its vision tower, its projector and its language model (the
freezing rules and LoRA's targets are written in those words), what its processor gives the forward pass beside the
token ids, and whether images are padded to a square first (LLaVA-1.5's recipe; the families after it take images
at their own aspect). The fine-tune's form refuses a model of another family where the web can read its folder, and
the worker does before it trains. This module imports nothing heavy: the web reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Family:
    name: str
    vision_tower: str  # module paths in the loaded model (transformers 5's layout)
    projector: str  # trained in full, also when the tower is frozen and under LoRA (it may sit inside the tower)
    language_model: str
    image_inputs: tuple[str, ...]  # what the processor gives the forward pass for an image
    pads_to_square: bool = False
    # transformers 5 builds this family's processor with a video processor, which needs torchvision.
    processor_needs_torchvision: bool = False


_LLAVA = {"vision_tower": "model.vision_tower", "projector": "model.multi_modal_projector",
          "language_model": "model.language_model"}
_QWEN = {"vision_tower": "model.visual", "projector": "model.visual.merger", "language_model": "model.language_model",
         "image_inputs": ("pixel_values", "image_grid_thw"), "processor_needs_torchvision": True}
_IDEFICS = {"vision_tower": "model.vision_model", "projector": "model.connector", "language_model": "model.text_model",
            "image_inputs": ("pixel_values", "pixel_attention_mask")}

FAMILIES = {
    "llava": Family("LLaVA-1.5", **_LLAVA, image_inputs=("pixel_values",), pads_to_square=True),
    "llava_next": Family("LLaVA-NeXT", **_LLAVA, image_inputs=("pixel_values", "image_sizes")),
    "llava_onevision": Family("LLaVA-OneVision", **_LLAVA, processor_needs_torchvision=True,
                              image_inputs=("pixel_values", "image_sizes", "batch_num_images")),
    "qwen2_vl": Family("Qwen2-VL", **_QWEN),
    "qwen2_5_vl": Family("Qwen2.5-VL", **_QWEN),
    "idefics3": Family("Idefics3", **_IDEFICS),
    "smolvlm": Family("SmolVLM", **_IDEFICS, processor_needs_torchvision=True),
}


class UnsupportedFamily(ValueError):
    """The model is of a family the worker does not know."""


def supported() -> str:
    return ", ".join(f"{family.name} ({key})" for key, family in FAMILIES.items())


def model_type(folder: Path) -> str | None:
    """The `model_type` of the model saved in `folder` (None: no readable config.json there)."""
    try:
        return json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def family_of_type(kind: str, where: object = "the model") -> Family:
    if kind not in FAMILIES:
        raise UnsupportedFamily(f"{where} is a {kind} model: the worker fine-tunes, previews and scores "
                                f"{supported()} models.")
    return FAMILIES[kind]


def family_of(folder: Path) -> Family | None:
    """The family of the model in `folder`; None where there is no readable config.json (the loader then says what
    is missing). Raises UnsupportedFamily, naming the supported ones, for a family the worker does not know."""
    kind = model_type(folder)
    return None if kind is None else family_of_type(kind, f"The model in {folder}")
