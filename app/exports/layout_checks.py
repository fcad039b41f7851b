"""What the trainers of the other layouts drop or break on without a word, checked from the files alone (`python -m
app validate`): turns that do not alternate user/assistant or do not end with the assistant's, `<image>` tokens
(or image parts) that do not match the record's images, image paths that resolve to no file.

LLaMA-Factory drops such a record with only a log line, ms-swift raises in the middle of training, and TRL's
collator silently pairs the wrong images with the text: each is a record the version says it holds and the model
never learns from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from app.exports.contract import IMAGE_TOKEN, Violation


def turn_problems(roles: list[str]) -> str | None:
    """Why a conversation's roles would be refused or mangled (None: user, assistant, ... ending on assistant)."""
    turns = roles[1:] if roles[:1] == ["system"] else roles
    if not turns:
        return "no turns"
    expected = ["user", "assistant"] * (len(turns) // 2 + 1)
    if turns != expected[:len(turns)]:
        return "roles do not alternate user, assistant"
    if len(turns) % 2:
        return "an odd number of turns: the last is not the assistant's"
    return None


def chat_record_problems(record: dict[str, Any], folder: Path) -> Iterator[tuple[str, str]]:
    """(rule, detail) for a llamafactory or swift record; image paths relative to the layout's `folder`."""
    messages, images = record.get("messages") or [], record.get("images") or []
    if problem := turn_problems([message.get("role") for message in messages]):
        yield "turns", problem
    tokens = sum(str(message.get("content", "")).count(IMAGE_TOKEN) for message in messages)
    if tokens != len(images):
        yield "image tokens", f"{tokens} {IMAGE_TOKEN} token(s) for {len(images)} image(s)"
    for image in images:
        if not (folder / image).resolve().is_file():
            yield "image path", f"{image} is not a file (relative to {folder.name}/)"


def chat_layout_problems(folder: Path) -> Iterator[Violation]:
    """Every problem in a llamafactory/ or swift/ folder's JSONL files."""
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, start=1):
                where = f"{folder.name}/{path.name}: line {number}"
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    yield Violation(where, "not JSON", str(error))
                    continue
                for rule, detail in chat_record_problems(record, folder):
                    yield Violation(where, rule, detail)


def hf_layout_problems(folder: Path) -> Iterator[Violation]:
    """Every problem in an hf/ folder's Parquet files: turns, and image parts against the row's images."""
    import pyarrow.parquet as pq

    for path in sorted(folder.glob("*/*.parquet")):
        where = path.relative_to(folder.parent).as_posix()
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=["id", "images", "messages"]):
            for row in batch.to_pylist():
                messages = row["messages"] or []
                if problem := turn_problems([message["role"] for message in messages]):
                    yield Violation(f"{where}: {row['id']}", "turns", problem)
                parts = sum(part["type"] == "image" for message in messages for part in message["content"] or [])
                if parts != len(row["images"] or []):
                    yield Violation(f"{where}: {row['id']}", "image parts",
                                    f"{parts} image part(s) for {len(row['images'] or [])} image(s)")
