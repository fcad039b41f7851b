"""How a fine-tune job launches the training script on the machine it runs on.

No GPU: one process on the CPU. One GPU: accelerate with `single_gpu.yaml`. Several: DDP when a whole copy of
the model with its gradients and optimizer states fits a GPU with room for activations, FSDP (full shard)
when it does not (7B, 13B). The choice and its reason are shown on the job page."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "accelerate"
# Full fine-tuning: bf16 weights and gradients, AdamW's two moments and fp32 master weights, about 16 bytes a
# parameter; DDP gets the GPU only while that stays under this share of its memory (activations need the rest).
BYTES_PER_PARAMETER = 16
DDP_MEMORY_SHARE = 0.6


def count_parameters(folder: Path) -> int:
    """Parameters in a saved model, from its safetensors headers (no weights read)."""
    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as file:
            size = int.from_bytes(file.read(8), "little")
            header = json.loads(file.read(size))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return total


@dataclass(frozen=True)
class Launch:
    config: str | None  # a file in worker/accelerate, or None for a plain process on the CPU
    processes: int
    reason: str

    def command(self, arguments: list[str]) -> list[str]:
        if self.config is None:
            return [sys.executable, "-m", "worker.finetune", *arguments, "--device", "cpu"]
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / self.config),
                "--num_processes", str(self.processes), "--main_process_port", "0", "-m", "worker.finetune",
                *arguments]


def choose(*, gpus: int, gpu_memory: int, parameters: int) -> Launch:
    if gpus == 0:
        return Launch(None, 1, "no GPU on this worker: one process on the CPU")
    if gpus == 1:
        return Launch("single_gpu.yaml", 1, "one GPU")
    needed = parameters * BYTES_PER_PARAMETER
    if needed <= DDP_MEMORY_SHARE * gpu_memory:
        return Launch("ddp.yaml", gpus, f"{gpus} GPUs; a full copy of the model and its optimizer "
                                        f"(~{needed / 2**30:.1f} GiB) fits each: data parallel")
    return Launch("fsdp.yaml", gpus, f"{gpus} GPUs; the model and its optimizer (~{needed / 2**30:.0f} GiB) do "
                                     f"not fit one ({gpu_memory / 2**30:.0f} GiB): fully sharded")


def for_this_machine(base: Path, device: str) -> Launch:
    import torch

    gpus = torch.cuda.device_count() if device != "cpu" else 0
    memory = torch.cuda.get_device_properties(0).total_memory if gpus else 0
    return choose(gpus=gpus, gpu_memory=memory, parameters=count_parameters(base))


def start(command: list[str], log: Path) -> subprocess.Popen:
    """The training run in a session of its own (so it can be stopped whole), its output in `log`; it watches
    this process and ends with it (worker/training/lifeline.py)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "STUDIO_LIFELINE_PID": str(os.getpid()), "HF_HUB_OFFLINE": "1",
                   "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(process: subprocess.Popen, *, grace_s: float = 15.0) -> None:
    """SIGTERM to the whole run, then SIGKILL to what is left after `grace_s`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def tail(log: Path, lines: int = 25) -> str:
    if not log.is_file():
        return ""
    with open(log, "rb") as file:
        file.seek(max(file.seek(0, 2) - 64_000, 0))
        text = file.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
