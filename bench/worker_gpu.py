"""The worker on a CUDA GPU: preview instances/s batched vs one at a time, and fine-tune tokens/s.

    .venv/bin/python bench/worker_gpu.py                                  # the tiny random LLaVA, on CUDA
    .venv/bin/python bench/worker_gpu.py --model /models/llava-1.5-7b-hf --dtype bfloat16
    OMP_NUM_THREADS=1 .venv/bin/python bench/worker_gpu.py --device cpu   # the same code on the CPU (smoke run)

Without CUDA (and without an explicit `--device cpu`) it says so and exits with status 2: its CPU
counterpart is bench/worker_bench.py. It runs the worker's own code: `worker.preview.generate` for
previews (greedy, --max-new-tokens), `worker.finetune.train_stage` for training (one example per step,
prompts masked, AdamW), on synthetic instances with 336x336 images.
1. Preview: --instances prompts answered one at a time, then in batches of --batch-size (after a warm-up);
   the baseline is the one-at-a-time rate measured in the same run.
2. Fine-tune: --steps optimizer steps; tokens/s counts every input token (prompt, image tokens, answer).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic_images(count: int, size: int = 336) -> list:
    from PIL import Image

    return [Image.new("RGB", (size, size), ((37 * k) % 256, (91 * k) % 256, (53 * k) % 256)) for k in range(count)]


def preview_rates(loaded, count: int, batch_size: int, max_new_tokens: int) -> dict:
    from worker.preview import generate

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
    return {"one_at_a_time_per_s": round(single, 2), "batched_per_s": round(batched, 2),
            "batched_speedup": round(batched / single, 2)}


def finetune_rate(loaded, steps: int, out: Path) -> dict:
    import torch

    from worker.finetune import FinetuneConfig, _turns_to_example, train_stage

    images = synthetic_images(16)
    examples = [_turns_to_example(loaded.processor, [
        {"from": "human", "value": f"<image>\nDescribe picture {k} in one sentence."},
        {"from": "gpt", "value": f"A flat square of one colour, number {k}, with nothing else in it."}], images[k])
        for k in range(len(images))]
    config = FinetuneConfig(version=out, base=out, out=out, save_every=10**9)
    model = loaded.model
    tokens = sum(int(examples[k % len(examples)].input_ids.numel()) for k in range(steps))
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    train_stage(model, examples, stage="bench", lr=1e-5, steps=steps, config=config, on_loss=lambda *_: None,
                should_stop=lambda: False)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    model.eval()
    return {"finetune_steps": steps, "finetune_tokens": tokens, "finetune_tokens_per_s": round(tokens / seconds, 1),
            "finetune_s": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder (default: the tiny random LLaVA, built here)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="fine-tune optimizer steps")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("worker_gpu: no CUDA device here (torch.cuda.is_available() is False). This bench measures the "
              "worker on a GPU; on the CPU run bench/worker_bench.py, or this script with --device cpu for a "
              "smoke run.", file=sys.stderr)
        raise SystemExit(2)
    from tests.scratch import throwaway_folder
    from worker.loading import load_private

    workdir = throwaway_folder("studio-worker-gpu-")
    model_path = args.model
    if model_path is None:
        from worker.tiny_model import build_tiny_model

        model_path = build_tiny_model(workdir / "tiny-llava")
    # A private copy: the fine-tune part changes the weights.
    loaded = load_private(str(model_path), args.dtype, args.device)
    figures = {"device": torch.cuda.get_device_name(0) if loaded.device.startswith("cuda") else "cpu",
               "model": "tiny-llava" if args.model is None else str(args.model), "dtype": args.dtype,
               "instances": args.instances, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
    figures.update(preview_rates(loaded, args.instances, args.batch_size, args.max_new_tokens))
    print(f"  preview: {figures['one_at_a_time_per_s']}/s one at a time, {figures['batched_per_s']}/s batched",
          file=sys.stderr)
    figures.update(finetune_rate(loaded, args.steps, workdir / "finetune"))
    print(f"  fine-tune: {figures['finetune_tokens_per_s']} tokens/s", file=sys.stderr)
    if loaded.device.startswith("cuda"):
        figures["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
