"""The fine-tune on the CPU with the tiny random LLaVA: batching, memory as versions grow, and resume.

    OMP_NUM_THREADS=1 .venv/bin/python bench/finetune_bench.py

Every figure comes from the worker's own training script (`worker.finetune`, transformers' Trainer), each run
in a process of its own, on versions written as the export writes them:
1. Batching: the same --samples records trained once at 1 record a step and once at 8; samples/s is the
   records over the time from the stage's start to its last step (model loading left out, the Trainer's
   set-up in). batched_speedup = batch 8 / batch 1 (target >= 3), on short prompts (a question and its
   options, like the demo's tasks); the same on prompts as long as Vision-Flan's instructions is reported
   beside it (`_long_prompts`): there the tiny model's arithmetic, not its per-step overhead, dominates, and
   a single CPU thread gains less from batching.
2. Memory: --steps steps at batch 8 on versions of 1,000 and 20,000 image records; the peak RSS of each run,
   with the records read in the training process itself (--data_workers 0), so that the one process measured
   holds the index, the reads and the model. rss_growth = large / small (target <= 1.2: records are read when
   a batch needs them, never all at once).
3. Resume: a run SIGKILLed in the middle of stage 1 and run again, against one never interrupted; the largest
   absolute difference between their final weights (target <= 1e-5).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scratch import throwaway_folder  # noqa: E402
from tests.training_data import write_version  # noqa: E402


def child(arguments: list[str]) -> None:
    """In the child: run the training script's main, then print its own peak RSS."""
    from worker.finetune import main, parse_config

    main(parse_config(arguments))
    from bench.peak_memory import peak_mb  # its own, not the bench's it was started from

    print(json.dumps({"peak_rss_mb": peak_mb()}))


def run(arguments: list[str], **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", *arguments], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, **popen)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a training run failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def script_arguments(version: Path, base: Path, out: Path, **options) -> list[str]:
    return ["--version", str(version), "--base", str(base), "--out", str(out), "--device", "cpu",
            "--stage2_steps", "0", *(item for name, value in options.items() for item in (f"--{name}", str(value)))]


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]


def samples_per_s(out: Path, samples: int) -> float:
    found = events(out)
    started = next(event["time"] for event in found if event["event"] == "stage_start")
    ended = [event["time"] for event in found if event["event"] == "step"][-1]
    return samples / (ended - started)


def batching(workdir: Path, base: Path, samples: int, *, long_prompts: bool) -> dict:
    version = write_version(workdir / f"batching-{long_prompts}", records=samples, stage2=0, text_every=0,
                            long_prompts=long_prompts)
    rates = {}
    for batch in (1, 8):
        out = workdir / f"batch{batch}-{long_prompts}"
        finish(run(script_arguments(version, base, out, global_batch_size=batch, per_device_batch_size=batch,
                                    save_steps=10**6)))
        rates[batch] = samples_per_s(out, samples)
        print(f"  {'long' if long_prompts else 'short'} prompts, batch {batch}: {rates[batch]:.1f} samples/s",
              file=sys.stderr)
    suffix = "_long_prompts" if long_prompts else ""
    return {f"samples_per_s_batch1{suffix}": round(rates[1], 2), f"samples_per_s_batch8{suffix}": round(rates[8], 2),
            f"batched_speedup{suffix}": round(rates[8] / rates[1], 2)}


def memory(workdir: Path, base: Path, steps: int) -> dict:
    figures = {}
    for name, records in (("small", 1_000), ("large", 20_000)):
        started = time.perf_counter()
        version = write_version(workdir / f"memory-{name}", records=records, stage2=0, text_every=0, image_size=64,
                                long_prompts=True)
        written = time.perf_counter() - started
        peak = finish(run(script_arguments(version, base, workdir / f"memory-{name}-run", global_batch_size=8,
                                           per_device_batch_size=8, max_steps=steps, save_steps=10**6,
                                           data_workers=0)))
        figures[f"peak_rss_mb_{name}"] = round(peak["peak_rss_mb"], 1)
        print(f"  {records:,} image records (written in {written:.1f} s): peak RSS {peak['peak_rss_mb']:.0f} MB",
              file=sys.stderr)
    figures["rss_growth"] = round(figures["peak_rss_mb_large"] / figures["peak_rss_mb_small"], 3)
    return figures


def resume(workdir: Path, base: Path) -> dict:
    from safetensors.torch import load_file

    version = write_version(workdir / "resume", records=64, stage2=0)
    recipe = {"global_batch_size": 8, "per_device_batch_size": 4, "stage1_lr": 2e-3, "stage1_epochs": 4,
              "save_steps": 4}
    finish(run(script_arguments(version, base, workdir / "whole", **recipe)))
    out = workdir / "killed"
    killed = run(script_arguments(version, base, out, **recipe))
    marker = out / "stage1" / "checkpoints" / "checkpoint-12" / "studio-complete.json"
    while not marker.exists():
        if killed.poll() is not None:
            raise SystemExit("the run to be killed ended before its checkpoint at step 12")
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    finish(run(script_arguments(version, base, out, **recipe)))
    resumed_from = [event for event in events(out) if event["event"] == "stage_start"][-1]["resumed_from"]
    a = load_file(workdir / "whole" / "stage1" / "model" / "model.safetensors")
    b = load_file(out / "stage1" / "model" / "model.safetensors")
    difference = max((a[key].float() - b[key].float()).abs().max().item() for key in a)
    print(f"  resumed from step {resumed_from} of 32: max abs difference {difference:g}", file=sys.stderr)
    return {"resumed_from_step": resumed_from, "resume_max_abs_diff": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=480, help="records trained on at batch 1 and at batch 8")
    parser.add_argument("--steps", type=int, default=40, help="steps of the memory runs")
    args = parser.parse_args()
    from worker.tiny_model import build_tiny_model

    workdir = throwaway_folder("studio-finetune-bench-")
    base = build_tiny_model(workdir / "tiny-llava")
    figures = {"model": "tiny-llava", "device": "cpu", "threads": os.environ.get("OMP_NUM_THREADS")}
    figures["samples"] = args.samples
    figures.update(batching(workdir, base, args.samples, long_prompts=False))
    figures.update(batching(workdir, base, args.samples, long_prompts=True))
    figures.update(memory(workdir, base, args.steps))
    figures.update(resume(workdir, base))
    figures["targets_met"] = {"batched_speedup": figures["batched_speedup"] >= 3,
                              "rss_growth": figures["rss_growth"] <= 1.2,
                              "resume_max_abs_diff": figures["resume_max_abs_diff"] <= 1e-5}
    print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
