"""Vision-Flan's two-stage fine-tune on transformers' Trainer: stage 1 on a version's `stage1.json`, then stage 2
on its `stage2.json` from the stage-1 weights.

    python -m worker.finetune --version data/exports/3 --base data/models/tiny-llava --out data/finetunes/run1
    accelerate launch --config_file worker/accelerate/ddp.yaml --num_processes 8 -m worker.finetune \\
        --version /data/exports/3 --base /models/llava-v1.5-7b-hf --out /runs/vf-7b
    accelerate launch --config_file worker/accelerate/fsdp.yaml --num_processes 8 -m worker.finetune ...  # 7B, 13B

`--help` lists every setting; the defaults are the paper's recipe (worker/training/recipe.py). Records are read
lazily and images opened per batch; batches keep one modality and similar lengths; every gpt turn is
supervised. Checkpoints (model, optimizer, scheduler, RNG, data position) are the Trainer's own, counted only
once complete: running the same command again resumes from the newest one, and a finished stage is never
trained again, so a finished run returns its model untouched. Each stage's model is saved whole to
OUT/<stage>/model; the last one is the result."""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from app.schemas.model_families import Family, family_of, family_of_type
from app.schemas.recipe import FinetuneConfig
from worker.training import lifeline
from worker.training.checkpoints import (
    MARKER,
    CompleteCheckpoints,
    is_saved,
    last_complete,
    remove_incomplete,
)
from worker.training.progress import EventLog, StepReporter
from worker.training.recipe import STAGE_FILES, STAGES, Hardware, StagePlan, plan_stage
from worker.training.record_index import RecordIndex

log = logging.getLogger("studio.finetune")


class NothingToTrain(ValueError):
    """Neither stage has records and steps."""


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def stage_model(out: Path, stage: str) -> Path:
    return out / stage / "model"


def plan_run(config: FinetuneConfig, processes: int) -> tuple[list[StagePlan], dict[str, RecordIndex]]:
    indexes = {stage: RecordIndex.build(config.version / STAGE_FILES[stage]) for stage in STAGES}
    return [plan_stage(config, stage, len(indexes[stage]), processes) for stage in STAGES], indexes


def precision_of(config: FinetuneConfig, hardware: Hardware) -> str:
    if config.precision != "auto":
        return config.precision
    if hardware.device == "cpu":
        return "fp32"
    return "bf16" if hardware.bf16 else "fp16"


def main(config: FinetuneConfig) -> Path:
    """Runs what is left of both stages and returns the final model's folder."""
    family_of(config.base)  # an unknown family is refused before anything runs
    hardware = Hardware.detect(config.device)
    events = EventLog(config.progress_file, main_process=_is_main_process())
    plans, indexes = plan_run(config, hardware.processes)
    precision = precision_of(config, hardware)
    events.write("plan", stages=[{**asdict(plan), "global_batch": plan.global_batch, "description": plan.describe()}
                                 for plan in plans],
                 device=hardware.device, processes=hardware.processes, precision=precision, config=config.as_json())
    log.warning("process %s of %s on %s, %s", os.environ.get("RANK", 0), hardware.processes, hardware.device,
                precision)
    if _is_main_process():
        for plan in plans:
            log.warning("%s", plan.describe())
    start = config.base
    for plan in plans:
        if plan.skipped:  # the plan event says why
            continue
        folder = stage_model(config.out, plan.stage)
        already = is_saved(folder)
        if not already:
            train_stage(config, plan, indexes[plan.stage], start=start, folder=folder, hardware=hardware,
                        precision=precision, events=events)
        events.write("stage_done", stage=plan.stage, model=str(folder), already=already)
        start = folder
    if start == config.base:
        raise NothingToTrain(f"{config.version} has nothing to train on: "
                             + "; ".join(plan.describe() for plan in plans))
    events.write("finished", model=str(start))
    return start


def freeze_vision_tower(model, family: Family) -> None:
    """LLaVA-1.5's rule: the vision encoder's weights stay as they are; the projector trains, also where it sits
    inside the tower (Qwen2-VL's merger)."""
    model.get_submodule(family.vision_tower).requires_grad_(False)
    model.get_submodule(family.projector).requires_grad_(True)


def with_lora(model, rank: int, family: Family):
    """LoRA on the language model's attention projections only (the vision tower has q_proj/v_proj too);
    lm_head and the projector train in full, without which a small model barely learns."""
    from peft import LoraConfig, get_peft_model

    language = re.escape(family.language_model)
    return get_peft_model(model, LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=rf"{language}\..*\.(q_proj|v_proj)",
        modules_to_save=["lm_head", family.projector.rsplit(".", 1)[-1]]))


def pads_to_square(config: FinetuneConfig, family: Family) -> bool:
    return config.image_aspect == "pad" or (config.image_aspect == "auto" and family.pads_to_square)


def training_arguments(config: FinetuneConfig, plan: StagePlan, hardware: Hardware, precision: str,
                       output_dir: Path, *, text_only_records: bool):
    from transformers import TrainingArguments

    checkpointing = config.activation_checkpointing == "on" or (
        config.activation_checkpointing == "auto" and hardware.device == "cuda")
    return TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=plan.per_device,
        gradient_accumulation_steps=plan.accumulation, max_steps=plan.steps, learning_rate=plan.lr,
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=hardware.device == "cpu",
        activation_checkpointing=checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        logging_steps=1, save_strategy="steps", save_steps=config.save_steps, save_total_limit=None,
        seed=config.seed, data_seed=config.seed, remove_unused_columns=False, report_to="none",
        dataloader_num_workers=data_workers(config, hardware),
        include_num_input_tokens_seen="non_padding",
        # A text-only step leaves the projector without gradients, which DDP must be told to expect.
        ddp_find_unused_parameters=text_only_records,
        disable_tqdm=not os.isatty(2))


def data_workers(config: FinetuneConfig, hardware: Hardware) -> int:
    """Records are read, their images opened and encoded in DataLoader workers beside training, not between its
    steps: 4 per GPU process (LLaVA's), and on the CPU one, where a core is left beside the training's."""
    if config.data_workers is not None:
        return config.data_workers
    if hardware.device == "cuda":
        return 4
    return 1 if (os.cpu_count() or 1) > 1 else 0


def train_stage(config: FinetuneConfig, plan: StagePlan, index: RecordIndex, *, start: Path, folder: Path,
                hardware: Hardware, precision: str, events: EventLog) -> None:
    """Trains one stage from `start` (resuming from its newest complete checkpoint) and saves it to `folder`."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from worker.training.batching import PaddingCollator
    from worker.training.dataset import ConversationDataset
    from worker.training.trainer import StudioTrainer

    checkpoints = folder.parent / "checkpoints"
    args = training_arguments(config, plan, hardware, precision, checkpoints,
                              text_only_records=any(length < 0 for length in index.lengths))
    with args.main_process_first(local=False):
        if args.process_index == 0:
            remove_incomplete(checkpoints)  # a kill's half-written checkpoint is never resumed from
    resumed_from, resume = last_complete(checkpoints) or (0, None)
    processor = AutoProcessor.from_pretrained(start, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(
        start, dtype=torch.bfloat16 if precision == "bf16" else torch.float32, local_files_only=True)
    model.config.use_cache = False
    family = family_of_type(model.config.model_type, start)
    if config.freeze_vision_tower:
        freeze_vision_tower(model, family)
    if config.lora:
        model = with_lora(model, config.lora_rank, family)
    dataset = ConversationDataset(index, config.version / "images", processor, max_length=config.model_max_length,
                                  image_aspect="pad" if pads_to_square(config, family) else "original")
    events.write("stage_start", stage=plan.stage, resumed_from=resumed_from, max_steps=plan.steps,
                 start=str(start))
    trainer = StudioTrainer(model=model, args=args, train_dataset=dataset,
                            data_collator=PaddingCollator(processor.tokenizer.pad_token_id),
                            processing_class=processor,
                            callbacks=[CompleteCheckpoints(config.keep_checkpoints),
                                       StepReporter(events, stage=plan.stage, global_batch=plan.global_batch)])
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if hardware.device == "cuda":
        events.write("memory", stage=plan.stage, peak_gpu_memory_mb=round(torch.cuda.max_memory_allocated() / 2**20))
    _save_stage(trainer, processor, folder, lora=config.lora)
    if args.process_index == 0:
        shutil.rmtree(checkpoints, ignore_errors=True)  # the stage's model supersedes them (and they are large)
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _save_stage(trainer, processor, folder: Path, *, lora: bool) -> None:
    """Every process takes part (FSDP and ZeRO-3 gather the weights); the main one writes a temporary folder and
    renames it into place, so the stage's model exists whole or not at all."""
    temporary = folder.with_name(f".{folder.name}.partial")
    main_process = trainer.is_world_process_zero()
    if main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    model = trainer.model
    model.config.use_cache = True  # generation (previews) wants it back
    if trainer.is_fsdp_enabled:  # checkpoints stay sharded; the stage's model is gathered whole
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    if lora:
        if main_process:
            model.merge_and_unload().save_pretrained(temporary)  # a plain model: loads like any other
    else:
        trainer.save_model(str(temporary))
    if main_process:
        processor.save_pretrained(temporary)
        (temporary / MARKER).write_text('{"complete": true}\n')
        shutil.rmtree(folder, ignore_errors=True)  # only a marker-less leftover can be here
        temporary.replace(folder)
    trainer.accelerator.wait_for_everyone()


def parse_config(argv: list[str] | None = None) -> FinetuneConfig:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(FinetuneConfig, prog="python -m worker.finetune",
                              description=__doc__.splitlines()[0])
    (config,) = parser.parse_args_into_dataclasses(args=argv)
    return config


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lifeline.hold()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    final = main(parse_config())
    if _is_main_process():
        print(f"fine-tuned model: {final}")
