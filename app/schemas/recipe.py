"""The fine-tune's settings, in one place: their defaults (Vision-Flan's recipe on LLaVA-1.5) and their help
text.

`FinetuneConfig` is what the training script takes (`python -m worker.finetune --help` lists it through
transformers' HfArgumentParser, which wants a dataclass); the studio's `FinetuneIn` names the settings its form
offers and takes their defaults and help from here (`offered`), so a default is never written twice.

The defaults: the vision tower frozen, the projector and the language model trained; stage 1 at lr 2e-5 for one
epoch and stage 2 at lr 1e-5 for 128 steps from the stage-1 weights; a cosine schedule with 3% warm-up; a
global batch of 128 (stage 2: 8 per GPU x 8 GPUs = 64, as the paper ran it); model_max_length 2048; bf16 where
the device has it; activation checkpointing on GPUs."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field


def setting(default: Any, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class FinetuneConfig:
    version: Path = field(metadata={"help": "A built dataset version's folder (stage1.json, stage2.json, images/)."})
    base: Path = field(metadata={"help": "The model to start from: a folder saved with save_pretrained."})
    out: Path = field(metadata={"help": "Where checkpoints, each stage's model and progress.jsonl go."})
    stage1_lr: float = setting(2e-5, "Stage 1's peak learning rate (the paper: 2e-5).")
    stage1_epochs: float = setting(1.0, "Epochs over stage1.json (the paper: 1).")
    stage2_lr: float = setting(1e-5, "Stage 2's peak learning rate (the paper: 1e-5).")
    stage2_steps: int = setting(128, "Stage 2's optimizer steps (the paper: 128); 0 skips it.")
    global_batch_size: int = setting(128, "Stage 1's records per optimizer step, over all processes (LLaVA-1.5: "
                                          "128).")
    stage2_global_batch_size: int = setting(64, "Stage 2's records per optimizer step (the paper: 8 per GPU x 8 "
                                                "GPUs).")
    per_device_batch_size: int = setting(16, "Records per process per micro-step at most (LLaVA-1.5: 16); "
                                             "accumulation adds up.")
    max_steps: int | None = setting(None, "At most this many steps per stage (quick runs).")
    model_max_length: int = setting(2048, "Longest sequence in tokens, image tokens included; later exchanges "
                                          "beyond it are cut.")
    warmup_ratio: float = setting(0.03, "Share of each stage's steps spent warming up.")
    lr_scheduler: str = setting("cosine", "transformers' lr_scheduler_type.")
    weight_decay: float = setting(0.0, "AdamW weight decay (LLaVA-1.5: 0).")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = setting(
        "auto", "auto: bf16 where the GPU supports it (weights loaded in bf16, as LLaVA does), fp16 mixed "
                "precision on older GPUs, fp32 on the CPU.")
    activation_checkpointing: Literal["auto", "on", "off"] = setting(
        "auto", "Recompute activations in the backward pass; auto: on for GPUs.")
    freeze_vision_tower: bool = setting(True, "Keep the vision encoder's weights fixed (LLaVA-1.5); the projector "
                                              "and LM train.")
    lora: bool = setting(False, "Train LoRA adapters on the language model (projector and lm_head in full), merged "
                                "into each stage's model.")
    lora_rank: int = setting(8, "LoRA rank (alpha is twice the rank).")
    image_aspect: Literal["auto", "pad", "original"] = setting(
        "auto", "pad: centre images on a square of the mean colour first (LLaVA-1.5's recipe); original: as they are "
                "(the families after it take any aspect); auto: the model family's.")
    save_steps: int = setting(50, "Checkpoint every this many steps (and at a stage's end).")
    keep_checkpoints: int = setting(2, "Complete checkpoints kept per stage, newest first.")
    data_workers: int | None = setting(None, "DataLoader worker processes; default 4 a GPU, 1 on the CPU (0 on one "
                                             "core).")
    seed: int = setting(0, "Seeds the data order, the initialisation of new weights and the validation sample.")
    device: str = setting("auto", "auto (CUDA when there is one), cuda or cpu.")
    progress_file: Path | None = setting(None, "JSON lines of progress (default: OUT/progress.jsonl).")

    def __post_init__(self):
        self.version, self.base, self.out = Path(self.version), Path(self.base), Path(self.out)
        if self.progress_file is None:
            self.progress_file = self.out / "progress.jsonl"

    def as_json(self) -> dict:
        return {name: str(value) if isinstance(value, Path) else value for name, value in asdict(self).items()}


SETTINGS = {option.name: option for option in dataclasses.fields(FinetuneConfig)}


def offered(name: str, **bounds: Any) -> Any:
    """A setting the studio's form offers: its default and help from `FinetuneConfig`, bounded for the form."""
    return Field(SETTINGS[name].default, description=SETTINGS[name].metadata["help"], **bounds)


# Starting points the fine-tune form offers, over FinetuneIn's defaults (the paper's recipe). A small model trained
# from random weights on a CPU (the demo's tiny LLaVA) learns nothing at the paper's learning rate in one epoch: it
# needs about a hundred times the rate and tens of epochs, which take seconds at its size.
RecipeName = Literal["paper", "quick"]
RECIPES: dict[RecipeName, tuple[str, dict[str, Any]]] = {
    "paper": ("The paper's recipe (LLaVA-1.5 on GPUs)", {}),
    "quick": ("A quick run of a small model on a CPU (the demo's tiny model)",
              {"stage1_lr": 2e-3, "stage1_epochs": 20, "global_batch_size": 8, "per_device_batch_size": 8,
               "stage2_lr": 2e-4, "stage2_steps": 4, "save_steps": 500, "eval_per_task": 100}),
}


def chosen(data: BaseModel) -> dict[str, Any]:
    """The recipe settings among a form's or a job's fields (an unset `max_steps` means the recipe's own)."""
    return {name: value for name, value in data.model_dump().items() if name in SETTINGS and value is not None}
