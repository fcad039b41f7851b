"""A version's records read lazily: an index of where each record starts, and a reader of one record.

Versions are JSON arrays with one record per line (what the studio exports), so indexing is one pass that
keeps an offset, a line, a length and a task per record: ~24 bytes a record (5 MB for Vision-Flan's released
stage 1), never the records or their pixels. The pass also parses each line, so a file that is not shaped like
that is refused with its line number."""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

IMAGE_LENGTH_BONUS = 128  # LLaVA's length estimate: words, plus this for a record with an image


class NotARecordFile(ValueError):
    """The file is not a JSON array with a record per line."""


def _record_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line number, offset, line without its trailing comma) for every record line of the array."""
    with open(path, "rb") as source:
        offset = 0
        for number, line in enumerate(source, start=1):
            body = line.strip()
            if body.endswith(b","):
                body = body[:-1]
            if body and body not in (b"[", b"]", b"[]"):
                yield number, offset, body
            offset += len(line)


@dataclass(frozen=True)
class RecordIndex:
    """Where each record of a record-per-line JSON array starts, its line, whether it has an image, a length
    estimate for grouping (LLaVA's), and its task (for the evaluation's stratified sample)."""

    path: Path
    offsets: array  # 'q'
    lines: array  # 'i'
    lengths: array  # 'i': positive with an image, negative without (LLaVA's modality lengths)
    tasks: tuple[str, ...]  # per record, interned

    @classmethod
    def build(cls, path: Path) -> RecordIndex:
        offsets, lines, lengths, tasks = array("q"), array("i"), array("i"), []
        if not path.is_file():
            return cls(path, offsets, lines, lengths, ())
        for number, offset, body in _record_lines(path):
            try:
                record = orjson.loads(body)
                words = sum(len(turn["value"].split()) for turn in record["conversations"])
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
                raise NotARecordFile(f"{path}, line {number}: not a LLaVA record on a line of its own ({error}); "
                                     "fine-tuning reads versions as the studio exports them") from None
            has_image = "image" in record
            offsets.append(offset)
            lines.append(number)
            lengths.append(words + IMAGE_LENGTH_BONUS if has_image else -max(words, 1))
            tasks.append(sys.intern(str(record.get("task_name", ""))))
        return cls(path, offsets, lines, lengths, tuple(tasks))

    def __len__(self) -> int:
        return len(self.offsets)


class RecordReader:
    """Reads record k of an index; opens its file once per process (DataLoader workers fork)."""

    def __init__(self, index: RecordIndex):
        self.index = index
        self._file: BinaryIO | None = None
        self._pid: int | None = None

    def __getitem__(self, k: int) -> dict[str, Any]:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = open(self.index.path, "rb"), os.getpid()  # noqa: SIM115 - kept open
        self._file.seek(self.index.offsets[k])
        body = self._file.readline().strip()
        return orjson.loads(body[:-1] if body.endswith(b",") else body)

    def __getstate__(self):  # a reader crosses to DataLoader workers without its open file
        return {"index": self.index, "_file": None, "_pid": None}
