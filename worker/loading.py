"""The one place that loads processors and models: from a local folder only, once per worker process."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.schemas.model_families import family_of

DTYPES = {"float32", "bfloat16", "float16"}


@dataclass(frozen=True)
class Loaded:
    processor: Any
    model: Any
    device: str


KEPT = 2  # models held in memory per worker process, the most recently used
_loaded: OrderedDict[tuple[str, str, str], Loaded] = OrderedDict()


def is_loaded(path: str, dtype: str = "float32", device: str = "auto") -> bool:
    """Whether `load` with these arguments answers from memory (a preview then says nothing about loading)."""
    return (path, dtype, device) in _loaded


def load(path: str, dtype: str = "float32", device: str = "auto") -> Loaded:
    """The processor and model at `path`, loaded on first use and kept (see KEPT)."""
    key = (path, dtype, device)
    if key not in _loaded:
        _loaded[key] = load_private(path, dtype, device)
        while len(_loaded) > KEPT:
            _loaded.popitem(last=False)
    _loaded.move_to_end(key)
    return _loaded[key]


def load_private(path: str, dtype: str, device: str) -> Loaded:
    """`AutoProcessor` and `AutoModelForImageTextToText` from `path`, nothing downloaded (offline mode),
    in eval mode on `device` ("auto": CUDA when there is one). A copy of its own, not kept: for training,
    which changes the weights in place."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"{path} has no config.json: register a folder saved with save_pretrained")
    family_of(Path(path))  # an unknown family is refused in words, naming the known ones
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype), local_files_only=True)
    model.to(device).eval()
    return Loaded(processor, model, device)
