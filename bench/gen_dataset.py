"""Write a Vision-Flan-scale synthetic dataset in the unified instance format, deterministic by seed.

    .venv/bin/python bench/gen_dataset.py /tmp/vf --tasks 187 --instances 1664261

Writes OUT/instances.jsonl (or .json with --format json) and OUT/images/ with a few hundred generated
images that the instances reuse, as real datasets reuse theirs across tasks. The last line is one JSON
object with what was written.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]


def make_images(folder: Path, count: int, rng: random.Random) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(count):
        picture = Image.new("RGB", (320, 240), rng.choice(COLOURS))
        pen = ImageDraw.Draw(picture)
        for _ in range(rng.randint(1, 6)):
            x, y = rng.randint(0, 300), rng.randint(0, 220)
            pen.ellipse((x, y, x + rng.randint(10, 60), y + rng.randint(10, 60)), fill=rng.choice(COLOURS))
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=85)
        name = f"img_{k:05d}.jpg"
        (folder / name).write_bytes(out.getvalue())
        names.append(f"images/{name}")
    return names


def records(tasks: int, instances: int, images: list[str], rng: random.Random):
    per_task, extra = divmod(instances, tasks)
    for t in range(tasks):
        dataset = f"DATASET{t // 2:03d}"
        task = f"{dataset}+task_{t:03d}"
        with_options = t % 3 == 0
        for k in range(per_task + (1 if t < extra else 0)):
            options = rng.sample(COLOURS, 4) if with_options else None
            yield {
                "instance_id": f"{t}-{k}",
                "img_path": rng.choice(images),
                "options": options,
                "input_text": f"What colour is object {k % 7}?" if t % 2 else None,
                "raw_output": options[rng.randrange(4)] if options else rng.choice(COLOURS),
                "dataset_name": dataset,
                "task_name": task,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["jsonl", "json"], default="jsonl")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    images = make_images(args.out / "images", args.images, rng)
    target = args.out / f"instances.{args.format}"
    with target.open("w", encoding="utf-8") as out:
        if args.format == "json":
            out.write("[\n")
        for k, record in enumerate(records(args.tasks, args.instances, images, rng)):
            line = json.dumps(record, ensure_ascii=False)
            if args.format == "json":
                out.write((",\n" if k else "") + line)
            else:
                out.write(line + "\n")
            if k % 200_000 == 0:
                print(f"\r  {k:,} / {args.instances:,}", end="", file=sys.stderr)
        if args.format == "json":
            out.write("\n]\n")
    print(file=sys.stderr)
    print(json.dumps({"file": str(target), "instances": args.instances, "tasks": args.tasks, "images": len(images),
                      "bytes": target.stat().st_size, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
