"""The one place that loads processors and models: from a local folder only, once per worker process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DTYPES = {"float32", "bfloat16", "float16"}


@dataclass(frozen=True)
class Loaded:
    processor: Any
    model: Any
    device: str


@lru_cache(maxsize=2)
def load(path: str, dtype: str = "float32", device: str = "auto") -> Loaded:
    """`AutoProcessor` and `AutoModelForImageTextToText` from `path`, nothing downloaded (offline mode),
    in eval mode on `device` ("auto": CUDA when there is one)."""
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
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype), local_files_only=True)
    model.to(device).eval()
    return Loaded(processor, model, device)
