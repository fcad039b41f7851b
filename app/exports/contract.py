"""The LLaVA trainer's rules for a record (DESIGN.md, "Export contract"), checked one record at a time.

The trainer fails silently — it masks a whole record, drops turns, cuts answers — so every rule it would
break is named here, with the record it concerns. Pure: no database, no files but the image folder."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_TOKEN = "<image>"
TEMPLATE_MARKERS = ("</s>", "<s>", "<unk>", " ASSISTANT:")
SAFE_IMAGE_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class Violation:
    record: str  # the record's id, or its position when it has none
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.record}: {self.rule} ({self.detail})"


def check_record(record: dict, *, image_folder: Path | None = None,
                 count_tokens: Callable[[str], int] | None = None, max_tokens: int = 2048,
                 image_tokens: int = 576) -> list[Violation]:
    """Every rule the record breaks (none: it trains as intended)."""
    name = str(record.get("id") or "?")
    problems: list[Violation] = []

    def fail(rule: str, detail: str) -> None:
        problems.append(Violation(name, rule, detail))

    if not isinstance(record.get("id"), str) or not record["id"].strip():
        fail("id", "missing or empty")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        fail("conversations", "missing or empty")
        return problems
    for k, turn in enumerate(turns):
        expected = "human" if k % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != expected:
            fail("roles", f"turn {k + 1} must be from {expected}")
            continue
        value = turn.get("value")
        if not isinstance(value, str) or not value.strip():
            fail("empty value", f"turn {k + 1} is empty or whitespace")
            continue
        for marker in TEMPLATE_MARKERS:
            if marker in value:
                fail("template marker", f"turn {k + 1} contains {marker!r}, which masks the whole record")
        if k > 0 and IMAGE_TOKEN in value:
            fail("image token", f"turn {k + 1} has {IMAGE_TOKEN}; only the first human turn may")
    last = turns[-1]
    if not isinstance(last, dict) or last.get("from") != "gpt":
        fail("roles", "the last turn must be from gpt (the trainer masks a record that ends with a question)")
    first = turns[0].get("value", "") if isinstance(turns[0], dict) else ""
    tokens_in_first = first.count(IMAGE_TOKEN) if isinstance(first, str) else 0
    if "image" in record:
        image = record["image"]
        if not isinstance(image, str) or not SAFE_IMAGE_NAME.match(image) or ".." in image.split("/"):
            fail("image", f"must be one ASCII-safe relative path, not {image!r}")
        elif image_folder is not None and not (image_folder / image).is_file():
            fail("image", f"{image} is not in the image folder")
        if tokens_in_first != 1:
            fail("image token", f"the first human turn has {tokens_in_first} {IMAGE_TOKEN} tokens, needs exactly 1")
    elif tokens_in_first:
        fail("image token", f"a text-only record has {IMAGE_TOKEN} in its first turn")
    if count_tokens is not None and not problems:
        text = "".join(turn["value"] for turn in turns)
        needed = count_tokens(text) + (image_tokens if "image" in record else 0)
        if needed > max_tokens:
            fail("too long", f"about {needed} tokens with the image, over the trainer's {max_tokens}: "
                             "the answer would be cut off")
    return problems


def check_file(records: Iterable[dict], **rules) -> Iterator[Violation]:
    """Every violation in a file's records, including ids used twice."""
    seen: set[str] = set()
    for record in records:
        yield from check_record(record, **rules)
        record_id = record.get("id")
        if isinstance(record_id, str):
            if record_id in seen:
                yield Violation(record_id, "duplicate id", "ids must be unique")
            seen.add(record_id)
