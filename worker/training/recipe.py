"""What the fine-tune's settings (`app.schemas.recipe.FinetuneConfig`, the paper's recipe by default) come to on
the machine at hand. The global batch is what the recipe fixes: per-device batch x accumulation x processes is
worked out from it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from app.schemas.recipe import FinetuneConfig

STAGES = ("stage1", "stage2")
STAGE_FILES = {"stage1": "stage1.json", "stage2": "stage2.json"}


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
