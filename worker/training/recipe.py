"""The fine-tune's settings and what they come to on the machine at hand.

The defaults are Vision-Flan's recipe on LLaVA-1.5: the vision tower frozen, the projector and the language
model trained; stage 1 at lr 2e-5 for one epoch and stage 2 at lr 1e-5 for 128 steps from the stage-1
weights; a cosine schedule with 3% warm-up; a global batch of 128 (stage 2: 8 per GPU x 8 GPUs = 64, as the
paper ran it); model_max_length 2048; bf16 where the device has it; activation checkpointing on GPUs. The
global batch is what the recipe fixes: per-device batch x accumulation x processes is worked out from it."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

STAGES = ("stage1", "stage2")
STAGE_FILES = {"stage1": "stage1.json", "stage2": "stage2.json"}


@dataclass
class FinetuneConfig:
    version: Path = field(metadata={"help": "A built dataset version's folder (stage1.json, stage2.json, images/)."})
    base: Path = field(metadata={"help": "The model to start from: a folder saved with save_pretrained."})
    out: Path = field(metadata={"help": "Where checkpoints, each stage's model and progress.jsonl go."})
    stage1_lr: float = field(default=2e-5, metadata={"help": "Stage 1's peak learning rate (the paper: 2e-5)."})
    stage1_epochs: float = field(default=1.0, metadata={"help": "Epochs over stage1.json (the paper: 1)."})
    stage2_lr: float = field(default=1e-5, metadata={"help": "Stage 2's peak learning rate (the paper: 1e-5)."})
    stage2_steps: int = field(default=128, metadata={"help": "Stage 2's optimizer steps (the paper: 128); 0 skips it."})
    global_batch_size: int = field(default=128, metadata={"help": "Stage 1's records per optimizer step, over "
                                                                  "all processes (LLaVA-1.5: 128)."})
    stage2_global_batch_size: int = field(default=64, metadata={"help": "Stage 2's records per optimizer step "
                                                                        "(the paper: 8 per GPU x 8 GPUs)."})
    per_device_batch_size: int = field(default=16, metadata={"help": "Records per process per micro-step at "
                                                                     "most (LLaVA-1.5: 16); accumulation adds up."})
    max_steps: int | None = field(default=None, metadata={"help": "At most this many steps per stage (quick runs)."})
    model_max_length: int = field(default=2048, metadata={"help": "Longest sequence in tokens, image tokens "
                                                                  "included; later exchanges beyond it are cut."})
    warmup_ratio: float = field(default=0.03, metadata={"help": "Share of each stage's steps spent warming up."})
    lr_scheduler: str = field(default="cosine", metadata={"help": "transformers' lr_scheduler_type."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (LLaVA-1.5: 0)."})
    precision: Literal["auto", "bf16", "fp16", "fp32"] = field(
        default="auto", metadata={"help": "auto: bf16 where the GPU supports it (weights loaded in bf16, as LLaVA "
                                          "does), fp16 mixed precision on older GPUs, fp32 on the CPU."})
    activation_checkpointing: Literal["auto", "on", "off"] = field(
        default="auto", metadata={"help": "Recompute activations in the backward pass; auto: on for GPUs."})
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Keep the vision encoder's weights fixed "
                                                                      "(LLaVA-1.5); the projector and LM train."})
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters on the language model (projector "
                                                        "and lm_head in full), merged into each stage's model."})
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank (alpha is twice the rank)."})
    image_aspect: Literal["pad", "original"] = field(
        default="pad", metadata={"help": "pad: centre images on a square of the mean colour first (LLaVA-1.5)."})
    save_steps: int = field(default=50, metadata={"help": "Checkpoint every this many steps (and at a stage's end)."})
    keep_checkpoints: int = field(default=2, metadata={"help": "Complete checkpoints kept per stage, newest first."})
    data_workers: int | None = field(default=None, metadata={"help": "DataLoader worker processes; default 4 a "
                                                                     "GPU, 1 on the CPU (0 on one core)."})
    seed: int = field(default=0, metadata={"help": "Seeds the data order and the initialisation of new weights."})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when there is one), cuda or cpu."})
    progress_file: Path | None = field(default=None, metadata={"help": "JSON lines of progress (default: "
                                                                       "OUT/progress.jsonl)."})

    def __post_init__(self):
        self.version, self.base, self.out = Path(self.version), Path(self.base), Path(self.out)
        if self.progress_file is None:
            self.progress_file = self.out / "progress.jsonl"

    def as_json(self) -> dict:
        return {name: str(value) if isinstance(value, Path) else value for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda" or "cpu"
    processes: int
    bf16: bool

    @classmethod
    def detect(cls, device: str = "auto") -> Hardware:
        import torch

        cuda = torch.cuda.is_available() and device != "cpu"
        return cls("cuda" if cuda else "cpu", int(os.environ.get("WORLD_SIZE", "1")),
                   cuda and torch.cuda.is_bf16_supported())


@dataclass(frozen=True)
class StagePlan:
    stage: str
    records: int
    lr: float
    steps: int
    per_device: int
    accumulation: int
    processes: int
    requested_batch: int
    skipped: str | None = None  # why the stage does not run

    @property
    def global_batch(self) -> int:
        return self.per_device * self.accumulation * self.processes

    def describe(self) -> str:
        if self.skipped:
            return f"{self.stage}: skipped ({self.skipped})"
        note = "" if self.global_batch == self.requested_batch else f", {self.requested_batch} asked for"
        return (f"{self.stage}: {self.records:,} records, {self.steps:,} steps of {self.global_batch} "
                f"({self.per_device} per device x {self.accumulation} accumulation x {self.processes} "
                f"process{'es' if self.processes > 1 else ''}{note}), lr {self.lr:g}")


def split_batch(global_batch: int, per_device_at_most: int, processes: int) -> tuple[int, int]:
    """(per-device batch, accumulation) whose product with `processes` makes `global_batch`, the per-device batch
    as large as allowed; when no split is exact without halving it, the closest global batch to the one asked."""
    per_process = max(global_batch // processes, 1)
    largest = max(min(per_device_at_most, per_process), 1)
    for per_device in range(largest, largest // 2, -1):
        if per_process % per_device == 0:
            return per_device, per_process // per_device
    return largest, max(round(global_batch / (largest * processes)), 1)


def steps_per_epoch(records: int, per_device: int, accumulation: int, processes: int) -> int:
    """As the Trainer counts them: batches per process (the launcher evens them out), then optimizer steps."""
    batches = math.ceil(math.ceil(records / per_device) / processes)
    return max(math.ceil(batches / accumulation), 1)


def plan_stage(config: FinetuneConfig, stage: str, records: int, processes: int) -> StagePlan:
    requested = config.global_batch_size if stage == "stage1" else config.stage2_global_batch_size
    per_device, accumulation = split_batch(requested, config.per_device_batch_size, processes)
    if stage == "stage1":
        lr, steps = config.stage1_lr, math.ceil(config.stage1_epochs * steps_per_epoch(records, per_device,
                                                                                        accumulation, processes))
    else:
        lr, steps = config.stage2_lr, config.stage2_steps
    if config.max_steps:
        steps = min(steps, config.max_steps)
    skipped = None
    if not records:
        skipped = f"the version has no {STAGE_FILES[stage]} records"
    elif steps <= 0:
        skipped = "0 steps asked for"
    return StagePlan(stage, records, lr, steps if not skipped else 0, per_device, accumulation, processes,
                     requested, skipped)
