"""Small dataset versions written as the export writes them (a record per line, images by name), for the
fine-tune's tests and benches: images of several shapes and sizes, text-only records, multi-turn stage 2."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from app.exports.files import JsonArrayWriter

COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220)}
OPTIONS = "Options: (a) red (b) green (c) blue"
# As long as a typical Vision-Flan instruction (its expert-written ones run to a few dozen words).
LONG_INSTRUCTION = ("You are shown a picture made for a colour naming task. Look at the whole picture, decide which "
                    "colour covers most of it, and answer with the letter and the name of the one option that "
                    "matches what you see. Ignore borders and any small marks near the edges of the picture.")


def stage1_record(k: int, colour: str, image: str | None, instruction: str = "What colour fills the picture?") -> dict:
    letter = "abc"[list(COLOURS).index(colour)]
    if image is None:
        return {"id": f"WORDS+say/{k}/v1", "task_name": "WORDS+say",
                "conversations": [{"from": "human", "value": f"Say the word {colour}."},
                                  {"from": "gpt", "value": colour}]}
    return {"id": f"COLOURS+name/{k}/v1", "image": image, "task_name": "COLOURS+name",
            "conversations": [{"from": "human", "value": f"<image>\n{instruction}\n{OPTIONS}"},
                              {"from": "gpt", "value": f"({letter}) {colour}"}]}


def stage2_record(k: int, image: str | None) -> dict:
    turns = [{"from": "human", "value": ("<image>\n" if image else "") + "Describe the picture."},
             {"from": "gpt", "value": f"A flat colour, number {k}."},
             {"from": "human", "value": "Is there anything else in it?"},
             {"from": "gpt", "value": "Nothing else."}]
    return {"id": f"pool/{k}", **({"image": image} if image else {}), "conversations": turns}


def write_version(folder: Path, *, records: int = 40, stage2: int = 12, text_every: int = 5, seed: int = 0,
                  image_size: int = 32, long_prompts: bool = False) -> Path:
    """stage1.json (every `text_every`-th record text-only), stage2.json (multi-turn), images/; returns folder.
    `long_prompts`: instructions as long as Vision-Flan's (benches), instead of a short question (tests)."""
    rng = random.Random(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(max(records, stage2)):
        colour = rng.choice(list(COLOURS))
        name = f"img{k}.png"
        width = rng.choice([image_size, image_size * 3 // 2, image_size * 5 // 4])  # pad-to-square has work
        Image.new("RGB", (width, image_size), COLOURS[colour]).save(images / name)
        names.append((name, colour))
    writer = JsonArrayWriter(folder / "stage1.json")
    for k in range(records):
        name, colour = names[k]
        image = None if text_every and k % text_every == text_every - 1 else name
        writer.add(stage1_record(k, colour, image, *([LONG_INSTRUCTION] if long_prompts else [])))
    writer.close()
    if stage2:
        writer = JsonArrayWriter(folder / "stage2.json")
        for k in range(stage2):
            writer.add(stage2_record(k, names[k][0] if k % 4 else None))
        writer.close()
    return folder


QUESTION = f"<image>\nWhat colour fills the picture?\n{OPTIONS}"
ANSWERS = {colour: f"({'abc'[k]}) {colour}" for k, colour in enumerate(COLOURS)}


def write_planted_version(folder: Path, *, records: int, error_rate: float = 0.05,
                          seed: int = 0) -> tuple[Path, list[tuple[int, str, str]], set[int]]:
    """A learnable task with wrong targets planted in it: solid-colour pictures named by their colour, a share
    `error_rate` of them given another colour's name. Returns the folder (stage1.json and images/, as the export
    writes them), (k, true colour, given colour) per record, and the planted records' k."""
    rng = random.Random(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    planted = set(rng.sample(range(records), round(records * error_rate)))
    rows = []
    writer = JsonArrayWriter(folder / "stage1.json")
    for k in range(records):
        colour = rng.choice(list(COLOURS))
        given = rng.choice([other for other in COLOURS if other != colour]) if k in planted else colour
        Image.new("RGB", (32, 32), COLOURS[colour]).save(images / f"img{k}.png")
        writer.add({"id": f"COLOURS+name/{k}/v1", "image": f"img{k}.png", "task_name": "COLOURS+name",
                    "conversations": [{"from": "human", "value": QUESTION},
                                      {"from": "gpt", "value": ANSWERS[given]}]})
        rows.append((k, colour, given))
    writer.close()
    return folder, rows, planted
