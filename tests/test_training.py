"""The fine-tune on transformers' Trainer, on the CPU with the tiny random LLaVA: what is supervised, how batches
are made, both stages, resuming after a kill, a finished run left alone, two processes, the shipped configs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

from tests.training_data import stage2_record, write_version

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"global_batch_size": 8, "per_device_batch_size": 4, "stage2_global_batch_size": 4, "device": "cpu"}


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    return write_version(tmp_path_factory.mktemp("version"))


def config_for(version: Path, base: Path, out: Path, **changes):
    from app.schemas.recipe import FinetuneConfig

    return FinetuneConfig(version=version, base=base, out=out, **{**QUICK, **changes})


def events_of(out: Path, kind: str | None = None) -> list[dict]:
    lines = (out / "progress.jsonl").read_text().splitlines()
    return [event for event in map(json.loads, lines) if kind is None or event["event"] == kind]


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def max_difference(a: dict, b: dict, prefix: str = "") -> float:
    keys = [key for key in a if key.startswith(prefix)]
    assert keys, f"no weights under {prefix!r}"
    return max((a[key].float() - b[key].float()).abs().max().item() for key in keys)


def test_every_gpt_turn_is_supervised_and_nothing_else(tiny_model):
    from PIL import Image

    from worker.loading import load
    from worker.preview import prepare
    from worker.training.batching import PaddingCollator
    from worker.training.encoding import IGNORE, encode

    loaded = load(str(tiny_model), "float32", "cpu")
    processor, tokenizer = loaded.processor, loaded.processor.tokenizer
    record = stage2_record(3, "img.png")
    image = Image.new("RGB", (32, 32), "red")
    encoded = encode(processor, record["conversations"], image, max_length=2048)
    ids, labels = encoded.input_ids, encoded.labels
    runs, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    answers = [turn["value"] for turn in record["conversations"][1::2]]
    assert [tokenizer.decode(run, skip_special_tokens=False).strip() for run in runs] \
        == [answer + tokenizer.eos_token for answer in answers]  # each gpt turn, with its end of sequence
    masked = tokenizer.decode([token for token, label in zip(ids, labels, strict=True) if label == IGNORE])
    assert "Describe the picture." in masked and "Is there anything else in it?" in masked
    assert not any(answer in masked for answer in answers)
    # The first prompt is token for token what previews and the evaluation give the model at inference.
    prompt = prepare(loaded, [record["conversations"][0]["value"]], [image])["input_ids"][0].tolist()
    assert ids[:len(prompt)] == prompt and all(label == IGNORE for label in labels[:len(prompt)])
    batch = PaddingCollator(tokenizer.pad_token_id)([{"input_ids": ids, "labels": labels,
                                                      **encoded.image_inputs},
                                                     {"input_ids": ids[:5], "labels": labels[:5]}])
    assert batch["labels"][1, 5:].eq(IGNORE).all() and batch["attention_mask"][1].sum() == 5
    assert batch["pixel_values"].shape[0] == 1  # only the record with an image brings pixels


def test_batches_keep_one_modality_and_similar_lengths():
    from worker.training.batching import ModalityLengthGroupedSampler

    lengths = [(k % 7 + 1) * (1 if k % 3 else -1) for k in range(50)]  # a third text-only
    sampler = ModalityLengthGroupedSampler(lengths, group_size=4, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(50))
    runs = [order[k:k + 4] for k in range(0, len(order), 4)]
    mixed = [run for run in runs if len({lengths[k] > 0 for k in run}) > 1]
    assert not mixed[:-1]  # only the leftovers at the end may mix
    assert all([abs(lengths[k]) for k in run] == sorted((abs(lengths[k]) for k in run), reverse=True)
               for run in runs[:-1])
    assert list(ModalityLengthGroupedSampler(lengths, 4, seed=3)) == order  # the same on every process
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_the_global_batch_is_split_over_devices_and_accumulation():
    from worker.training.recipe import plan_stage, split_batch, steps_per_epoch

    assert split_batch(128, 16, 8) == (16, 1)  # LLaVA-1.5 on 8 GPUs
    assert split_batch(128, 16, 1) == (16, 8)
    assert split_batch(64, 16, 8) == (8, 1)  # the paper's stage 2
    assert split_batch(128, 16, 3) == (14, 3)  # 126: no exact split over 3 processes
    assert steps_per_epoch(1000, 16, 8, 1) == 8 and steps_per_epoch(1000, 16, 1, 8) == 8
    plan = plan_stage(config_for(Path("v"), Path("b"), Path("o"), global_batch_size=128,
                                 per_device_batch_size=16), "stage1", 191_000, 3)
    assert plan.global_batch == 126 and "128 asked for" in plan.describe()
    skipped = plan_stage(config_for(Path("v"), Path("b"), Path("o")), "stage2", 0, 1)
    assert skipped.skipped == "the version has no stage2.json records"


def test_every_setting_is_documented_and_parsed_from_the_command_line():
    from app.schemas.recipe import FinetuneConfig
    from worker.finetune import parse_config

    assert all(option.metadata.get("help") for option in fields(FinetuneConfig))
    config = parse_config(["--version", "v", "--base", "b", "--out", "o", "--stage2-steps", "0",
                           "--no-freeze-vision-tower", "--precision", "bf16"])
    assert (config.stage2_steps, config.freeze_vision_tower, config.precision) == (0, False, "bf16")
    assert config.progress_file == Path("o") / "progress.jsonl" and config.stage1_lr == 2e-5


def test_both_stages_train_the_projector_and_language_model_and_stage2_starts_from_stage1(tiny_model, version,
                                                                                           tmp_path):
    from worker.finetune import main

    out = tmp_path / "run"
    # Stage 2 at learning rate 0 leaves what it starts from untouched: its result shows where it started.
    final = main(config_for(version, tiny_model, out, stage1_lr=2e-3, stage1_epochs=2, stage2_lr=0.0,
                            stage2_steps=4))
    assert final == out / "stage2" / "model"
    plan = {stage["stage"]: stage for stage in events_of(out, "plan")[0]["stages"]}
    steps = events_of(out, "step")
    for stage in ("stage1", "stage2"):
        assert [event["step"] for event in steps if event["stage"] == stage] \
            == list(range(1, plan[stage]["steps"] + 1))
    assert plan["stage1"]["steps"] == 10  # 40 records, 8 a step, 2 epochs
    stage1_losses = [event["loss"] for event in steps if event["stage"] == "stage1"]
    assert sum(stage1_losses[-3:]) < sum(stage1_losses[:3])
    base, first, second = weights(tiny_model), weights(out / "stage1" / "model"), weights(final)
    assert max_difference(second, first) == 0.0  # stage 2 began with stage 1's weights...
    assert max_difference(first, base, "language_model.") > 1e-4  # ...which are not the base's
    assert max_difference(first, base, "multi_modal_projector.") > 1e-4  # the projector trains
    assert max_difference(second, base, "vision_tower.") == 0.0  # the vision tower never does
    starts = {event["stage"]: event["start"] for event in events_of(out, "stage_start")}
    assert starts == {"stage1": str(tiny_model), "stage2": str(out / "stage1" / "model")}
    assert not (out / "stage1" / "checkpoints").exists()  # a finished stage's checkpoints are removed


def _hashes(folder: Path) -> dict[str, tuple[str, int]]:
    return {path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
            for path in sorted(folder.iterdir())}


def test_a_finished_run_run_again_trains_nothing_and_keeps_its_model(tiny_model, version, tmp_path):
    from worker.finetune import main

    config = config_for(version, tiny_model, tmp_path / "run", max_steps=2, stage2_steps=2)
    final = main(config)
    before = _hashes(final)
    starts = len(events_of(config.out, "stage_start"))
    assert main(config) == final
    assert _hashes(final) == before  # byte for byte, not even rewritten
    assert len(events_of(config.out, "stage_start")) == starts
    assert [event["already"] for event in events_of(config.out, "stage_done")][-2:] == [True, True]


def _run_script(arguments: list[str], *, launcher: list[str] | None = None, **popen) -> subprocess.Popen:
    command = [*(launcher or [sys.executable, "-m"]), "worker.finetune", *arguments]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _arguments(version: Path, base: Path, out: Path, **changes) -> list[str]:
    options = {**QUICK, **changes}
    return ["--version", str(version), "--base", str(base), "--out", str(out),
            *(item for name, value in options.items() for item in (f"--{name}", str(value)))]


def test_a_run_killed_mid_stage1_resumes_to_the_same_weights(tiny_model, version, tmp_path):
    from worker.finetune import main

    recipe = {"stage1_lr": 2e-3, "stage1_epochs": 6, "stage2_steps": 0, "save_steps": 2}
    reference = main(config_for(version, tiny_model, tmp_path / "whole", **recipe))  # never interrupted
    out = tmp_path / "killed"
    running = _run_script(_arguments(version, tiny_model, out, **recipe))
    checkpoints = out / "stage1" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints / "checkpoint-4" / "studio-complete.json").exists():
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1][-2000:]
        time.sleep(0.02)
    running.send_signal(signal.SIGKILL)
    running.communicate()
    assert not (out / "stage1" / "model").exists()  # it died mid-stage
    newest = max(int(path.name.rsplit("-", 1)[1]) for path in checkpoints.glob("checkpoint-*")
                 if (path / "studio-complete.json").exists())
    # What a kill while saving leaves: a newer checkpoint folder, half-written and never marked.
    torn = checkpoints / f"checkpoint-{newest + 2}"
    shutil.rmtree(torn, ignore_errors=True)
    shutil.copytree(checkpoints / f"checkpoint-{newest}", torn)
    (torn / "studio-complete.json").unlink()
    (torn / "model.safetensors").write_bytes((torn / "model.safetensors").read_bytes()[:1000])
    resumed = _run_script(_arguments(version, tiny_model, out, **recipe))
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors[-3000:]
    assert events_of(out, "stage_start")[-1]["resumed_from"] == newest  # the torn one was not used
    assert max_difference(weights(out / "stage1" / "model"), weights(reference)) <= 1e-5


def test_two_processes_share_every_step_when_launched_as_the_readme_says(tiny_model, version, tmp_path):
    out = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(ROOT / "worker" / "accelerate" / "ddp.yaml"), "--num_processes", "2", "--main_process_port", "0",
                "-m"]
    running = _run_script(_arguments(version, tiny_model, out, stage2_steps=2), launcher=launcher)
    _, errors = running.communicate(timeout=300)
    assert running.returncode == 0, errors[-3000:]
    assert "process 0 of 2" in errors and "process 1 of 2" in errors  # two processes really ran
    plan = events_of(out, "plan")[0]
    assert plan["processes"] == 2
    stage1 = plan["stages"][0]
    assert (stage1["per_device"], stage1["accumulation"], stage1["processes"]) == (4, 1, 2)
    assert stage1["steps"] == 5  # 40 records, 4 per process per step
    assert len([event for event in events_of(out, "step") if event["stage"] == "stage1"]) == 5  # rank 0 alone
    assert (out / "stage2" / "model" / "config.json").exists()


def test_a_lora_fine_tune_learns_and_saves_a_plain_model(tiny_model, version, tmp_path):
    from worker.finetune import main
    from worker.loading import load_private

    out = tmp_path / "lora"
    final = main(config_for(version, tiny_model, out, stage1_lr=5e-3, stage1_epochs=3, stage2_steps=0, lora=True))
    losses = [event["loss"] for event in events_of(out, "step")]
    assert sum(losses[-3:]) < sum(losses[:3])
    assert not (final / "adapter_config.json").exists()  # merged: a plain model folder
    assert type(load_private(str(final), "float32", "cpu").model).__name__ == "LlavaForConditionalGeneration"


def _launch_environment(config: str) -> tuple[object, dict[str, str]]:
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    parsed = launch_command_parser().parse_args(["--config_file", str(ROOT / "worker" / "accelerate" / config),
                                                 "-m", "worker.finetune"])
    parsed, _, _ = _validate_launch_command(parsed)
    return parsed, prepare_multi_gpu_env(parsed) if parsed.multi_gpu or parsed.use_fsdp else {}


def test_the_shipped_accelerate_configs_load_and_select_their_strategy(monkeypatch):
    from accelerate.utils import FullyShardedDataParallelPlugin

    single, _ = _launch_environment("single_gpu.yaml")
    assert not (single.multi_gpu or single.use_fsdp or single.use_deepspeed) and single.num_processes == 1
    ddp, environment = _launch_environment("ddp.yaml")
    assert ddp.multi_gpu and not ddp.use_fsdp and "ACCELERATE_USE_FSDP" not in environment
    fsdp, environment = _launch_environment("fsdp.yaml")
    assert fsdp.use_fsdp and environment["ACCELERATE_USE_FSDP"] == "true"
    for name, value in environment.items():
        if name.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(name, value)
    plugin = FullyShardedDataParallelPlugin()  # what the Trainer builds from the launcher's environment
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True  # full shard
    assert plugin.cpu_ram_efficient_loading is True
    zero3, _ = _launch_environment("zero3.yaml")
    assert zero3.use_deepspeed and zero3.zero3_init_flag
    deepspeed = json.loads((ROOT / zero3.deepspeed_config_file).read_text())
    assert deepspeed["zero_optimization"]["stage"] == 3
    assert deepspeed["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_a_file_not_laid_out_as_exported_is_refused_with_its_line(tmp_path):
    from worker.training.record_index import NotARecordFile, RecordIndex

    (tmp_path / "stage1.json").write_text(json.dumps([{"id": "a", "conversations": []}], indent=2))
    with pytest.raises(NotARecordFile, match=r"stage1.json, line 2"):
        RecordIndex.build(tmp_path / "stage1.json")
    write_version(tmp_path / "v", records=10, stage2=0)
    index = RecordIndex.build(tmp_path / "v" / "stage1.json")
    assert len(index) == 10 and sum(length < 0 for length in index.lengths) == 2
    assert index.tasks[0] == "COLOURS+name" and index.lines[0] == 2


def test_the_evaluation_samples_every_task_with_its_seed(tmp_path):
    from app.exports.files import JsonArrayWriter
    from worker.evaluate import compare, stratified_sample
    from worker.training.record_index import RecordIndex

    writer = JsonArrayWriter(tmp_path / "val.json")
    sizes = {"A+first": 50, "B+second": 3, "C+third": 30}  # in task order, as exports write val.json
    for task, size in sizes.items():
        for k in range(size):
            writer.add({"id": f"{task}/{k}/v1", "task_name": task,
                        "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]})
    writer.close()
    index = RecordIndex.build(tmp_path / "val.json")
    chosen = stratified_sample(index, per_task=5, seed=1)
    per_task = {task: sum(index.tasks[k] == task for k in chosen) for task in sizes}
    assert per_task == {"A+first": 5, "B+second": 3, "C+third": 5}  # every task, small ones whole
    assert chosen == stratified_sample(index, per_task=5, seed=1) != stratified_sample(index, per_task=5, seed=2)
    report = compare({"A+first": {"matched": 1, "total": 5}, "B+second": {"matched": 0, "total": 3}},
                     {"A+first": {"matched": 4, "total": 5}, "B+second": {"matched": 3, "total": 3}},
                     version_tasks=["A+first", "B+second", "D+no-validation"])
    assert report["tasks"]["A+first"]["change"] == 0.6 and report["tasks"]["B+second"]["change"] == 1.0
    assert report["mean_before"] == 0.1 and report["mean_after"] == 0.9
    assert report["unscored"] == ["D+no-validation"]  # in the version, but no validation record to score


def test_a_job_launches_ddp_when_a_copy_fits_each_gpu_and_fsdp_when_not(tiny_model):
    from worker.launch import choose, count_parameters

    parameters = count_parameters(tiny_model)
    assert 100_000 < parameters < 1_000_000
    assert choose(gpus=0, gpu_memory=0, parameters=parameters).command(["--x"])[-3:] == ["--x", "--device", "cpu"]
    assert choose(gpus=1, gpu_memory=80 * 2**30, parameters=7 * 10**9).config == "single_gpu.yaml"
    small = choose(gpus=8, gpu_memory=80 * 2**30, parameters=1 * 10**9)
    assert (small.config, small.processes) == ("ddp.yaml", 8)
    large = choose(gpus=8, gpu_memory=80 * 2**30, parameters=7 * 10**9)
    assert large.config == "fsdp.yaml" and "--num_processes" in large.command([])


def test_a_training_run_ends_when_the_worker_that_started_it_dies(tiny_model, version, tmp_path):
    """The launcher's tree is not the worker's to stop once the worker is gone: each training process watches it."""
    from tests.factories import alive

    out = tmp_path / "orphan"
    arguments = _arguments(version, tiny_model, out, stage1_epochs=500, stage2_steps=0)
    worker = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from worker import launch\n"
        f"process = launch.start([sys.executable, '-m', 'worker.finetune', *{arguments!r}], Path({str(out)!r}) / "
        "'train.log')\nprint(process.pid, flush=True)\ntime.sleep(600)")], cwd=ROOT, stdout=subprocess.PIPE,
        text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    training = int(worker.stdout.readline())
    deadline = time.monotonic() + 120
    while not (out / "progress.jsonl").exists() or '"step"' not in (out / "progress.jsonl").read_text():
        assert time.monotonic() < deadline and alive(training)
        time.sleep(0.1)
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 30
    while alive(training):
        assert time.monotonic() < deadline, "the training run outlived its worker"
        time.sleep(0.2)
