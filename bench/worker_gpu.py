"""The worker on CUDA GPUs: previews batched vs one at a time, and the fine-tune as a job launches it, under each
shipped accelerate config: samples/s, tokens/s, peak GPU memory and MFU.

    .venv/bin/python bench/worker_gpu.py                                  # the tiny random LLaVA
    .venv/bin/python bench/worker_gpu.py --model /models/llava-1.5-7b-hf --configs fsdp.yaml zero3.yaml
    OMP_NUM_THREADS=1 .venv/bin/python bench/worker_gpu.py --device cpu   # the same code on the CPU (smoke run)

Without CUDA (and without an explicit `--device cpu`) it says so and exits with status 2: its CPU counterparts
are bench/worker_bench.py and bench/finetune_bench.py.
1. Preview: --instances prompts answered one at a time, then in batches of --batch-size, with the worker's own
   `worker.preview.generate` (after a warm-up); the baseline is the one-at-a-time rate of the same run.
2. Fine-tune: for each of --configs (files in worker/accelerate), `accelerate launch` of `worker.finetune` on
   every GPU here, --steps steps of stage 1 on a synthetic version (336 px images, Vision-Flan-length prompts),
   --per-device records per GPU per step. From the script's progress events: samples/s and tokens/s (median
   over the steps after the first two), peak GPU memory (rank 0). MFU = tokens/s x FLOPs per token / (GPUs x
   peak FLOP/s), FLOPs per token = 6 x language-model parameters + 2 x vision parameters (a frozen tower runs
   forward only; attention's own FLOPs left out), peak from --peak-tflops or the GPU's name (dense bf16).
   zero3.yaml is skipped where DeepSpeed is not installed (requirements-deepspeed.txt).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEAK_BF16_TFLOPS = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10": 125, "RTX 4090": 165}


def synthetic_images(count: int, size: int = 336) -> list:
    from PIL import Image

    return [Image.new("RGB", (size, size), ((37 * k) % 256, (91 * k) % 256, (53 * k) % 256)) for k in range(count)]


def preview_rates(model: Path, dtype: str, device: str, count: int, batch_size: int, max_new_tokens: int) -> dict:
    from worker.loading import load_private
    from worker.preview import generate

    loaded = load_private(str(model), dtype, device)
    prompts = [f"<image>\nWhat is the main colour of picture {k}? Answer in one word." for k in range(count)]
    images = synthetic_images(count)
    generate(loaded, prompts[:batch_size], images[:batch_size], max_new_tokens=max_new_tokens)  # warm-up
    started = time.perf_counter()
    for prompt, image in zip(prompts, images, strict=True):
        generate(loaded, [prompt], [image], max_new_tokens=max_new_tokens)
    single = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, count, batch_size):
        generate(loaded, prompts[start:start + batch_size], images[start:start + batch_size],
                 max_new_tokens=max_new_tokens)
    batched = count / (time.perf_counter() - started)
    del loaded
    return {"preview_one_at_a_time_per_s": round(single, 2), "preview_batched_per_s": round(batched, 2),
            "preview_batched_speedup": round(batched / single, 2)}


def flops_per_token(model: Path) -> float:
    from safetensors import safe_open

    language = vision = 0
    for path in model.glob("*.safetensors"):
        with safe_open(path, framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                size = weights.get_slice(name).get_shape()
                count = 1
                for dimension in size:
                    count *= dimension
                if "vision" in name:
                    vision += count
                else:
                    language += count
    return 6.0 * language + 2.0 * vision


def finetune_run(config: str | None, model: Path, version: Path, out: Path, *, gpus: int, steps: int,
                 per_device: int) -> dict:
    from worker.launch import Launch

    launched = Launch(config, max(gpus, 1), "bench")
    arguments = ["--version", str(version), "--base", str(model), "--out", str(out), "--stage2_steps", "0",
                 "--max_steps", str(steps), "--per_device_batch_size", str(per_device), "--global_batch_size",
                 str(per_device * max(gpus, 1)), "--save_steps", str(10**6), "--stage1_lr", "1e-5"]
    done = subprocess.run(launched.command(arguments), cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    events = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    steps_seen = [event for event in events if event["event"] == "step"][2:]
    memory = [event["peak_gpu_memory_mb"] for event in events if event["event"] == "memory"]
    return {"samples_per_s": round(statistics.median(e["samples_per_s"] for e in steps_seen), 2),
            "tokens_per_s": round(statistics.median(e["tokens_per_s"] for e in steps_seen), 1),
            "peak_gpu_memory_mb": memory[0] if memory else None, "steps": len(steps_seen) + 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder (default: the tiny random LLaVA, built here)")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"],
                        help="for the previews")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--configs", nargs="+", default=["single_gpu.yaml", "ddp.yaml", "fsdp.yaml", "zero3.yaml"])
    parser.add_argument("--steps", type=int, default=12, help="fine-tune steps per config")
    parser.add_argument("--per-device", type=int, default=8, help="fine-tune records per GPU per step")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, for MFU (default: by name)")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("worker_gpu: no CUDA device here (torch.cuda.is_available() is False). This bench measures the "
              "worker on a GPU; on the CPU run bench/worker_bench.py and bench/finetune_bench.py, or this script "
              "with --device cpu for a smoke run.", file=sys.stderr)
        raise SystemExit(2)
    from tests.scratch import throwaway_folder
    from tests.training_data import write_version

    workdir = throwaway_folder("studio-worker-gpu-")
    model = args.model
    if model is None:
        from worker.tiny_model import build_tiny_model

        model = build_tiny_model(workdir / "tiny-llava")
    cuda = args.device.startswith("cuda")
    gpus = torch.cuda.device_count() if cuda else 0
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = args.peak_tflops or next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)
    figures = {"device": name, "gpus": gpus, "model": "tiny-llava" if args.model is None else str(args.model)}
    figures.update(preview_rates(model, args.dtype if cuda else "float32", args.device, args.instances,
                                 args.batch_size, args.max_new_tokens))
    print(f"  preview: {figures['preview_one_at_a_time_per_s']}/s one at a time, "
          f"{figures['preview_batched_per_s']}/s batched", file=sys.stderr)
    version = write_version(workdir / "version", records=args.per_device * max(gpus, 1) * args.steps, stage2=0,
                            text_every=0, image_size=336, long_prompts=True)
    per_token = flops_per_token(Path(model))
    figures["finetune"] = {}
    for config in args.configs if cuda else [None]:
        if config == "zero3.yaml" and importlib.util.find_spec("deepspeed") is None:
            figures["finetune"][config] = {"skipped": "DeepSpeed is not installed (requirements-deepspeed.txt)"}
            continue
        if config == "ddp.yaml" and gpus < 2:
            figures["finetune"][config] = {"skipped": "one GPU: single_gpu.yaml is the same run"}
            continue
        run = finetune_run(config, Path(model), version, workdir / f"run-{config}", gpus=gpus, steps=args.steps,
                           per_device=args.per_device)
        if "tokens_per_s" in run and peak:
            run["mfu"] = round(run["tokens_per_s"] * per_token / (max(gpus, 1) * peak * 1e12), 4)
        figures["finetune"][config or "cpu"] = run
        print(f"  fine-tune ({config or 'cpu'}): {run}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
