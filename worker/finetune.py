"""The two-stage fine-tune (Vision-Flan): stage 1 on a dataset version's `stage1.json`, then stage 2 on its
`stage2.json` starting from the stage-1 weights; checkpoints as it goes, and resumes from the last one.

    OMP_NUM_THREADS=1 .venv/bin/python -m worker.finetune --version data/exports/3 --base data/models/tiny-llava \\
        --out data/models/ft-3 --stage1-lr 2e-5 --stage2-lr 1e-5 --stage2-steps 128

The defaults are the paper's recipe (stage 1: lr 2e-5, one epoch; stage 2: lr 1e-5, 128 steps). It trains with
AdamW, one example per process per micro-step with gradient accumulation, every weight or (`--lora`) LoRA
adapters merged back at the end. Under torchrun (or `accelerate launch`, which sets the same WORLD_SIZE, RANK
and LOCAL_RANK) it trains data-parallel: one process per GPU (gloo on CPUs), each on its own share of every
step's examples, gradients averaged by DistributedDataParallel; rank 0 alone writes checkpoints and the model.

    torchrun --nproc_per_node 4 -m worker.finetune --version ... --base ... --out ...

The prompt is masked out of the loss (-100):
it is tokenized through the processor (which expands `<image>`) and the answer separately, so BPE never
merges across the boundary.
Stage-2 conversations train on their last answer, with the earlier turns as the prompt."""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

STAGES = ("stage1", "stage2")


@dataclass
class FinetuneConfig:
    version: Path = field(metadata={"help": "A built dataset version's folder (stage1.json, images/, ...)."})
    base: Path = field(metadata={"help": "The model to start from: a folder saved with save_pretrained."})
    out: Path = field(metadata={"help": "Where checkpoints and the fine-tuned model go."})
    stage1_lr: float = 2e-5
    stage1_epochs: int = 1
    stage2_lr: float = 1e-5
    stage2_steps: int = 128
    accumulation: int = 1
    max_steps: int | None = None  # per stage; for quick runs
    save_every: int = 50
    seed: int = 0
    device: str = "auto"
    lora: bool = False  # LoRA adapters on the language model's attention, merged into the saved model
    lora_rank: int = 8


@dataclass
class Example:
    input_ids: Any
    labels: Any
    pixel_values: Any | None


def _turns_to_example(processor, turns: list[dict], image) -> Example:
    import torch

    *earlier, last = turns
    messages = []
    for k, turn in enumerate(earlier):
        text = turn["value"].replace("<image>", "").strip()
        content = ([{"type": "image"}] if k == 0 and image is not None else []) + [{"type": "text", "text": text}]
        messages.append({"role": "user" if turn["from"] == "human" else "assistant", "content": content})
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    encoded = processor(text=[prompt], images=[image] if image is not None else None, return_tensors="pt")
    answer = processor.tokenizer(" " + last["value"] + processor.tokenizer.eos_token, add_special_tokens=False,
                                 return_tensors="pt")["input_ids"]
    return Example(input_ids=torch.cat([encoded["input_ids"], answer], dim=1),
                   labels=torch.cat([torch.full_like(encoded["input_ids"], -100), answer], dim=1),
                   pixel_values=encoded.get("pixel_values"))


def load_examples(version: Path, name: str, processor) -> list[Example]:
    from PIL import Image

    path = version / name
    if not path.is_file():
        return []
    examples = []
    for record in json.loads(path.read_text(encoding="ascii")):
        image = Image.open(version / "images" / record["image"]).convert("RGB") if "image" in record else None
        examples.append(_turns_to_example(processor, record["conversations"], image))
    return examples


def with_lora(model, rank: int):
    """LoRA on the language model's attention projections only (the vision tower has q_proj/v_proj too);
    lm_head and the projector train in full, without which a small model barely learns."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=r".*language_model.*\.(q_proj|v_proj)",
        modules_to_save=["lm_head", "multi_modal_projector"]))


def _checkpoint(out: Path, stage: str) -> Path:
    return out / "checkpoints" / stage


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the training processes (one, unless launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Processes:
        import os

        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def _start_group(processes: Processes, device: str) -> str:
    """Joins the process group (NCCL on GPUs, gloo on CPUs); returns this process's device."""
    import torch
    import torch.distributed as dist

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        device = f"cuda:{processes.local_rank}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def train_stage(model, examples: list[Example], *, stage: str, lr: float, steps: int, config: FinetuneConfig,
                on_loss: Callable[[str, int, float], None], should_stop: Callable[[], bool],
                processes: Processes | None = None) -> None:
    """`steps` optimizer steps over `examples` (cycled in a seeded order), resuming from this stage's
    checkpoint if there is one; writes `done` when the stage is complete. With several processes, `model`
    is wrapped in DistributedDataParallel and each process takes its own slot of every step's examples."""
    import torch

    folder = _checkpoint(config.out, stage)
    if (folder / "done").exists() or not examples or steps <= 0:
        return
    processes = processes or Processes()
    plain = getattr(model, "module", model)  # what is saved: never the DDP wrapper
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    start = 0
    if (folder / "state.pt").exists():
        state = torch.load(folder / "state.pt", map_location=plain.device, weights_only=True)
        plain.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)
    per_step = config.accumulation * processes.world
    model.train()
    for step in range(start, steps):
        if should_stop():
            raise InterruptedError(f"stopped at {stage} step {step}")
        total = 0.0
        for k in range(config.accumulation):
            example = examples[order[(step * per_step + k * processes.world + processes.rank) % len(order)]]
            batch = {"input_ids": example.input_ids.to(plain.device), "labels": example.labels.to(plain.device),
                     "attention_mask": torch.ones_like(example.input_ids).to(plain.device)}
            if example.pixel_values is not None:
                batch["pixel_values"] = example.pixel_values.to(plain.device, dtype=plain.dtype)
            loss = model(**batch).loss / config.accumulation
            loss.backward()
            total += loss.item()
        optimizer.step()
        optimizer.zero_grad()
        if processes.is_main:
            on_loss(stage, step + 1, total)
        if processes.is_main and ((step + 1) % config.save_every == 0 or step + 1 == steps):
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / "state.pt.partial"  # a kill while saving never spoils the last checkpoint
            torch.save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1},
                       temporary)
            temporary.replace(folder / "state.pt")
            (folder / "step.json").write_text(json.dumps({"step": step + 1}))
    if processes.is_main:
        (folder / "done").touch()


def main(config: FinetuneConfig, *, on_loss: Callable[[str, int, float], None] = lambda *_: None,
         should_stop: Callable[[], bool] = lambda: False) -> Path:
    """Runs (or resumes) both stages and saves the result to `config.out / "model"`; returns that folder.
    Launched by torchrun with several processes, it trains data-parallel (see the module's docstring)."""
    import torch

    from worker.loading import load_private

    processes = Processes.from_environment()
    device = _start_group(processes, config.device) if processes.world > 1 else config.device
    torch.manual_seed(config.seed)  # the same seed everywhere: every process starts from the same weights
    # A copy of its own, not the cached one previews use: training changes the weights in place.
    loaded = load_private(str(config.base), "float32", device)
    model, processor = loaded.model, loaded.processor
    if config.lora:
        model = with_lora(model, config.lora_rank)
    config.out.mkdir(parents=True, exist_ok=True)
    stage1 = load_examples(config.version, "stage1.json", processor)
    stage1_steps = config.stage1_epochs * -(-len(stage1) // (config.accumulation * processes.world))
    stage2 = load_examples(config.version, "stage2.json", processor)
    plan = {"stage1": (stage1, config.stage1_lr, min(stage1_steps, config.max_steps or stage1_steps)),
            "stage2": (stage2, config.stage2_lr, min(config.stage2_steps, config.max_steps or config.stage2_steps))}
    for stage in STAGES:
        examples, lr, steps = plan[stage]
        previous = STAGES[STAGES.index(stage) - 1] if stage != STAGES[0] else None
        if previous and (_checkpoint(config.out, previous) / "state.pt").exists() \
                and not (_checkpoint(config.out, stage) / "state.pt").exists():
            # Stage 2 starts from the stage-1 weights (also when resuming a run that died between stages).
            state = torch.load(_checkpoint(config.out, previous) / "state.pt", map_location=model.device,
                               weights_only=True)
            model.load_state_dict(state["model"])
        trained = model
        if processes.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Unused parameters happen: a text-only record leaves the vision tower without gradients.
            trained = DistributedDataParallel(model, device_ids=[model.device] if model.device.type == "cuda"
                                              else None, find_unused_parameters=True)
        train_stage(trained, examples, stage=stage, lr=lr, steps=steps, config=config, on_loss=on_loss,
                    should_stop=should_stop, processes=processes)
        if processes.world > 1:
            torch.distributed.barrier()  # rank 0's checkpoint is written before anyone reads it
    model.eval()
    if config.lora:
        model = model.merge_and_unload()  # a plain model folder: previews and the trainer load it as any other
    final = config.out / "model"
    if processes.is_main:
        model.save_pretrained(final)
        processor.save_pretrained(final)
    if processes.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return final


def _parse() -> FinetuneConfig:
    parser = argparse.ArgumentParser(prog="python -m worker.finetune", description=__doc__.splitlines()[0])
    for option in fields(FinetuneConfig):
        if isinstance(option.default, bool):
            parser.add_argument(f"--{option.name.replace('_', '-')}", action="store_true")
            continue
        required = option.default is MISSING
        kind = Path if required else (int if option.default is None else type(option.default))
        parser.add_argument(f"--{option.name.replace('_', '-')}", type=kind, required=required,
                            default=None if required else option.default, help=option.metadata.get("help"))
    return FinetuneConfig(**vars(parser.parse_args()))


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    print(f"fine-tuned model: {main(_parse(), on_loss=lambda stage, step, loss: print(stage, step, round(loss, 4)))}")


def saved_step(out: Path, stage: str) -> int:
    """The step this stage's last checkpoint holds (0: none), without loading the weights."""
    marker = _checkpoint(Path(out), stage) / "step.json"
    return json.loads(marker.read_text())["step"] if marker.exists() else 0
