"""The demo's source data as a team would bring it: a folder of pictures and one file per import format
(source datasets and task metadata, instances in the unified format, instructions, a stage-2 pool in
LLaVA-Instruct's format). Drawn from a seed, so every demo holds the same data; a newcomer can read the files
as examples of what each import takes."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image as PILImage
from PIL import ImageDraw

from app.models import TaskGroup

POOL_SIZE = 16
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
DATASETS = {
    "SHAPES": "Synthetic shapes drawn for the demo.",
    "COLORS": "Synthetic colour swatches drawn for the demo.",
}
TASKS = {  # name: (group, category, instances)
    # Enough for the demo's fine-tune to show learning: 300 single large shapes, a quarter of them (75) to
    # validation, which the tiny random model learns to name on a CPU in seconds (from 0% to about 80%).
    "SHAPES+shape_classification": (TaskGroup.classification, "Perception", 300),
    "SHAPES+shape_counting": (TaskGroup.question_answering, "Counting", 24),
    "COLORS+dominant_color": (TaskGroup.question_answering, "Color", 24),
    "COLORS+scene_caption": (TaskGroup.generation, "Captioning", 24),
}
INSTANCES = sum(count for _, _, count in TASKS.values())
# (task, instruction, output template, submitted for review): the colour task's instruction stays a draft.
# Reviews are offered oldest first, so the two the demo decides are submitted before the one left waiting.
INSTRUCTIONS = (
    ("COLORS+scene_caption", "Describe the picture.", "", True),
    ("SHAPES+shape_classification", "Identify the shape shown in the image. Choose one of the options.", "", True),
    ("SHAPES+shape_counting", "Count the shapes in the image.", "There are {{ raw_output }} shapes in the image.",
     True),
    ("COLORS+dominant_color", "Name the colour that covers most of the image.", "", False),
)


@dataclass(frozen=True)
class SourceFiles:
    folder: Path
    images: Path  # the image root every file's paths are relative to
    metadata: Path
    instances: Path
    instructions: Path  # submitted for review
    instruction_drafts: Path  # kept as drafts
    conversations: Path


def write_source_files(folder: Path, *, seed: int) -> SourceFiles:
    """Writes (or rewrites: the same seed writes the same bytes) the demo's files under `folder`."""
    rng = random.Random(seed)
    files = SourceFiles(folder, folder / "images", folder / "metadata.yaml", folder / "instances.jsonl",
                        folder / "instructions.yaml", folder / "instruction-drafts.yaml", folder / "conversations.json")
    files.images.mkdir(parents=True, exist_ok=True)
    files.metadata.write_text(yaml.safe_dump({"datasets": [
        {"name": name, "notes": notes, "licence": "CC0-1.0", "url": f"https://example.org/{name.lower()}",
         "tasks": [{"name": task, "group": str(group), "category": category}
                   for task, (group, category, _) in TASKS.items() if task.startswith(name + "+")]}
        for name, notes in DATASETS.items()]}, sort_keys=False))
    records = [record for task in TASKS for record in _records(task, files.images, rng)]
    files.instances.write_text("".join(json.dumps(record) + "\n" for record in records))
    for path, submitted in ((files.instructions, True), (files.instruction_drafts, False)):
        path.write_text(yaml.safe_dump([
            {"task": task, "instruction": text, "output_template": template}
            for task, text, template, submit in INSTRUCTIONS if submit == submitted], sort_keys=False))
    shapes = [record for record in records if record["task_name"] == "SHAPES+shape_classification"][:POOL_SIZE]
    files.conversations.write_text(json.dumps([_conversation(position, record)
                                               for position, record in enumerate(shapes)], indent=1))
    return files


def _records(task: str, images: Path, rng: random.Random) -> list[dict]:
    dataset, kind = task.split("+")
    records = []
    for k in range(TASKS[task][2]):
        shape, colour, count = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.randint(1, 4)
        picture = f"{kind}-{k:04d}.png"
        drawing = _draw_one(shape, colour, rng) if kind == "shape_classification" else _draw(shape, colour, count, rng)
        drawing.save(images / picture, format="PNG")
        options, input_text = None, None
        if kind == "shape_classification":
            options, raw = list(SHAPES), shape
        elif kind == "shape_counting":
            raw, input_text = str(count), f"Count the {shape}s."
        elif kind == "dominant_color":
            raw = colour
        else:
            raw = f"{count} {colour} {shape}{'s' if count > 1 else ''} on a white background."
        records.append({"instance_id": f"{kind}-{k:04d}", "img_path": picture, "options": options,
                        "input_text": input_text, "raw_output": raw, "dataset_name": dataset, "task_name": task})
    return records


def _draw(shape: str, colour: str, count: int, rng: random.Random) -> PILImage.Image:
    """`count` small shapes anywhere in the picture."""
    picture = PILImage.new("RGB", (128, 128), "white")
    pen = ImageDraw.Draw(picture)
    for _ in range(count):
        _shape(pen, shape, colour, rng.randint(20, 108), rng.randint(20, 108), rng.randint(8, 16))
    return picture


def _draw_one(shape: str, colour: str, rng: random.Random) -> PILImage.Image:
    """One large shape near the middle: still a shape at the tiny model's 32 pixels, where small ones are a blur."""
    picture = PILImage.new("RGB", (128, 128), "white")
    r = rng.randint(36, 50)
    slack = 60 - r
    _shape(ImageDraw.Draw(picture), shape, colour, 64 + rng.randint(-slack, slack), 64 + rng.randint(-slack, slack), r)
    return picture


def _shape(pen: ImageDraw.ImageDraw, shape: str, colour: str, x: int, y: int, r: int) -> None:
    box = (x - r, y - r, x + r, y + r)
    if shape == "circle":
        pen.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        pen.rectangle(box, fill=COLOURS[colour])
    else:
        pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=COLOURS[colour])


HALLUCINATED = 6  # the demo pool's conversation whose answer sees what the picture does not have
HALLUCINATION = "Yes: a small dog sits beside the shape."
TRUTH = "No, only the shape and the white background."


def _conversation(position: int, record: dict) -> dict:
    """Two exchanges about a shapes picture, in LLaVA-Instruct's format; one of them, as GPT-4 wrote some, answers
    with something the picture does not show (the demo's review finds and fixes it)."""
    return {"id": f"demo-{position}", "image": record["img_path"], "conversations": [
        {"from": "human", "value": "<image>\nWhat is drawn in this picture?"},
        {"from": "gpt", "value": f"A single coloured {record['raw_output']} on a white background."},
        {"from": "human", "value": "Is there anything else in it?"},
        {"from": "gpt", "value": HALLUCINATION if position == HALLUCINATED else TRUTH}]}
