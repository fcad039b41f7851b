"""A built version's llava records read back, split by split, for the layouts written from them (hf, llamafactory,
swift): streamed a record at a time from the files the export writes a record per line (stage1.jsonl, and the JSON
arrays val.json and stage2.json), so no split is ever held in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}  # LLaVA's `from` as the role the others name
FILES = {"stage1": "stage1.jsonl", "validation": "val.json", "stage2": "stage2.json"}


def role(turn: dict) -> str:
    return ROLES.get(turn["from"], turn["from"])


def splits(work: Path) -> dict[str, Iterator[dict]]:
    """Each split the version has (stage 2 only when it was built with one), its records in file order."""
    return {split: records(work / name) for split, name in FILES.items() if (work / name).is_file()}


def records(path: Path) -> Iterator[dict]:
    """The records of a JSON lines file, or of a JSON array written as the export writes one (a record per line
    between the brackets, or `[]` for none)."""
    with open(path, "rb") as lines:
        for line in lines:
            line = line.strip()
            if line.startswith(b"{"):  # not a bracket or an empty line
                yield orjson.loads(line.removesuffix(b","))
