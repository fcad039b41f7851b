"""Write a Vision-Flan-scale synthetic dataset in the unified instance format, deterministic by seed.

    .venv/bin/python bench/gen_dataset.py /tmp/vf --tasks 187 --instances 1664261

Writes OUT/instances.jsonl (or .json with --format json), OUT/images/ and OUT/instructions.yaml (one
instruction per task, for `import instructions`). Records look like Vision-Flan's (bench/realistic.py):
an image per instance, distinct for the first 200,000 and then reused from that pool; input text of a few
hundred characters with a long tail into the thousands; options in a third of the tasks; output templates
in a fifth of the instructions. `--thin` writes what the benches used before (300 images shared by every
instance, one short question or none, four colour options), so that old and new figures can be compared.
The last line is one JSON object with what was written.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import realistic

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]


def task_names(t: int) -> tuple[str, str]:
    dataset = f"DATASET{t // 2:03d}"
    return dataset, f"{dataset}+task_{t:03d}"


def realistic_records(tasks: int, instances: int, images: list[str], seed: int):
    content = realistic.Records(seed)
    per_task, extra = divmod(instances, tasks)
    number = 0
    for t in range(tasks):
        dataset, task = task_names(t)
        for k in range(per_task + (1 if t < extra else 0)):
            options = content.options(t)
            yield {"instance_id": f"{t}-{k}", "img_path": images[number % len(images)], "options": options,
                   "input_text": content.input_text(t), "raw_output": content.target(options),
                   "dataset_name": dataset, "task_name": task}
            number += 1


def thin_images(folder: Path, count: int, rng: random.Random) -> list[str]:
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


def thin_records(tasks: int, instances: int, images: list[str], rng: random.Random):
    per_task, extra = divmod(instances, tasks)
    for t in range(tasks):
        dataset, task = task_names(t)
        for k in range(per_task + (1 if t < extra else 0)):
            options = rng.sample(COLOURS, 4) if t % 3 == 0 else None
            yield {"instance_id": f"{t}-{k}", "img_path": rng.choice(images), "options": options,
                   "input_text": f"What colour is object {k % 7}?" if t % 2 else None,
                   "raw_output": options[rng.randrange(4)] if options else rng.choice(COLOURS),
                   "dataset_name": dataset, "task_name": task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tasks", type=int, default=187)
    parser.add_argument("--instances", type=int, default=1_664_261)
    parser.add_argument("--distinct-images", type=int, default=realistic.DISTINCT_IMAGES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["jsonl", "json"], default="jsonl")
    parser.add_argument("--thin", action="store_true", help="the old, thin records (300 shared images)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    if args.thin:
        images = thin_images(args.out / "images", 300, rng)
        rows = thin_records(args.tasks, args.instances, images, rng)
    else:
        count = min(args.instances, args.distinct_images)
        images = []
        for path in realistic.write_images(args.out / "images", count, args.seed):
            images.append(path)
            if len(images) % 20_000 == 0:
                print(f"\r  {len(images):,} / {count:,} images", end="", file=sys.stderr)
        rows = realistic_records(args.tasks, args.instances, images, args.seed)
    target = args.out / f"instances.{args.format}"
    with target.open("w", encoding="utf-8") as out:
        if args.format == "json":
            out.write("[\n")
        for k, record in enumerate(rows):
            line = json.dumps(record, ensure_ascii=False)
            if args.format == "json":
                out.write((",\n" if k else "") + line)
            else:
                out.write(line + "\n")
            if k % 200_000 == 0:
                print(f"\r  {k:,} / {args.instances:,} instances", end="", file=sys.stderr)
        if args.format == "json":
            out.write("\n]\n")
    instructions = [{"task": task_names(t)[1], **realistic.instruction_spec(t, rng)} for t in range(args.tasks)]
    (args.out / "instructions.yaml").write_text(yaml.safe_dump(instructions, sort_keys=False, width=200))
    print(file=sys.stderr)
    print(json.dumps({"file": str(target), "instances": args.instances, "tasks": args.tasks, "images": len(images),
                      "thin": args.thin, "bytes": target.stat().st_size,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
