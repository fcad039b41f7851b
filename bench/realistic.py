"""What Vision-Flan-like records look like, for every bench: deterministic by seed.

- an image per instance: small JPEGs, distinct for the first DISTINCT_IMAGES instances (each carries its
  number in a JPEG comment, so no two share bytes), then reused from that pool, as datasets reuse images;
- input text of realistic length: log-normal around ~300 characters, with a long tail into the thousands
  (Vision-Flan's inputs are questions, OCR'd passages, dialogue histories); none in a sixth of the tasks;
- options in a third of the tasks (2 to 6, a few words each), the target one of them;
- an instruction per task, with an output template in a fifth of them (`instruction_spec`).
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

DISTINCT_IMAGES = 200_000
IMAGE_SIZE = (96, 72)
MEDIAN_INPUT_CHARS = 300
MAX_INPUT_CHARS = 8_000
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "grey", "brown"]
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "den", "gar", "vis", "ion", "tel", "mar", "qua", "bre"]


def vocabulary(rng: random.Random, size: int = 3_000) -> list[str]:
    words = ["the", "a", "of", "in", "on", "what", "is", "which", "how", "many", "image", "shown", "left", "right"]
    while len(words) < size:
        words.append("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    return words


def has_options(task: int) -> bool:
    return task % 3 == 0


def has_input(task: int) -> bool:
    return task % 6 != 5


def has_output_template(task: int) -> bool:
    return task % 5 == 1


class Records:
    """The content of each task's instances, drawn from one seeded generator."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)

    def text(self, chars: int) -> str:
        words = self.rng.choices(self.words, k=max(1, chars // 6))
        return " ".join(words)[:chars].rstrip() or "what"

    def input_text(self, task: int) -> str | None:
        if not has_input(task):
            return None
        chars = min(MAX_INPUT_CHARS, max(20, int(math.exp(self.rng.gauss(math.log(MEDIAN_INPUT_CHARS), 0.9)))))
        return self.text(chars) + "?"

    def options(self, task: int) -> list[str] | None:
        if not has_options(task):
            return None
        count = self.rng.randint(2, 6)
        return list(dict.fromkeys(self.text(self.rng.randint(3, 30)) + f" {k}" for k in range(count)))

    def target(self, options: list[str] | None) -> str:
        if options:
            return self.rng.choice(options)
        return self.text(self.rng.choice([4, 8, 12, 40, 120]))


def instruction_spec(task: int, rng: random.Random) -> dict[str, str]:
    """A task's instruction as `import instructions` reads it: ~150 characters, an input template, and an
    output template in a fifth of the tasks."""
    text = (f"Task {task}: look at the image carefully and answer the question that follows. "
            + " ".join(rng.choice(["Be brief.", "Use the options given.", "Think about colours and shapes.",
                                   "Answer in one sentence.", "Name the object."]) for _ in range(3)))
    spec = {"instruction": text, "input_template": "{{ input_text }}" if has_input(task) else ""}
    if has_output_template(task):
        spec["output_template"] = "The answer is {{ raw_output }}."
    return spec


def image_bytes(number: int, rng: random.Random) -> bytes:
    """A small JPEG, different in bytes from every other `number`."""
    picture = Image.new("RGB", IMAGE_SIZE, rng.choice(COLOURS))
    pen = ImageDraw.Draw(picture)
    for _ in range(rng.randint(1, 4)):
        x, y = rng.randint(0, IMAGE_SIZE[0] - 10), rng.randint(0, IMAGE_SIZE[1] - 10)
        pen.ellipse((x, y, x + rng.randint(6, 40), y + rng.randint(6, 30)), fill=rng.choice(COLOURS))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=80, comment=f"bench image {number}".encode())
    return out.getvalue()


def write_images(folder: Path, count: int, seed: int = 0) -> Iterator[str]:
    """Writes `count` distinct JPEGs into folder/NNN/ (a thousand a folder) and yields their relative paths."""
    rng = random.Random(f"images:{seed}")
    for number in range(count):
        sub = folder / f"{number // 1000:03d}"
        if number % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        name = f"{number:07d}.jpg"
        (sub / name).write_bytes(image_bytes(number, rng))
        yield f"{folder.name}/{sub.name}/{name}"
