"""Two files joined on a key, the most common academic layout: VQAv2's questions and annotations (on
question_id), COCO's captions and images (annotations.image_id = images.id).

The main file is streamed, record by record; the joined file is indexed in memory by its key, keeping only
the columns the mapping names (VQAv2's annotations carry ten answers each: kept whole, 440,000 of them would
take gigabytes). Each main record gets its match's columns; a column in both files keeps the main file's
value. A main record without a match, and a joined record nothing matched, are reported with their file and
line; so is a key repeated in the joined file (its first record is used)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.ingest.record_files import BadLine, Record

RowReader = Callable[[Path, str | None], Iterable[Record | BadLine]]  # (file, key holding its records)


class JoinInvalid(ValueError):
    pass


def split_on(on: str) -> tuple[str, str]:
    """`key` (the same column in both files) or `main column=joined column`."""
    left, equals, right = on.partition("=")
    left, right = left.strip(), (right.strip() if equals else left.strip())
    if not left or not right:
        raise JoinInvalid(f"--on {on!r}: write the key column, or 'main column=joined column'")
    return left, right


@dataclass(frozen=True)
class Join:
    file: Path
    on: str
    under: str | None = None  # the key of the joined file's top-level object that holds its records
    keep: frozenset[str] | None = None  # the joined file's columns to keep (None: all of them)

    def rows(self, read: RowReader, main: Path, under: str | None) -> Iterator[Record | BadLine]:
        """The main file's records, each with its match's columns; orphans and repeated keys as BadLines."""
        left, right = split_on(self.on)
        index, repeated = self._index(read, right)
        yield from repeated
        used: set[str] = set()
        for item in read(main, under):
            if isinstance(item, BadLine) or not isinstance(item.data, dict):
                yield item  # the parser says what is wrong with a record that is not a row
                continue
            key = join_key(item.data.get(left))
            if key is None:
                yield BadLine(item.line, f"needs a {left} (a string or an integer) to join {self.file.name} on",
                              field=left)
                continue
            match = index.get(key)
            if match is None:
                yield BadLine(item.line, f"no record of {self.file.name} has {right} = {key}", field=left)
                continue
            used.add(key)
            yield Record(item.line, {**match[1], **item.data})
        for key, (line, _) in index.items():
            if key not in used:
                yield BadLine(line, f"no record of {main.name} has {left} = {key}", field=right,
                              file=self.file.name)

    def _index(self, read: RowReader, right: str) -> tuple[dict[str, tuple[int, dict]], list[BadLine]]:
        index: dict[str, tuple[int, dict]] = {}
        problems: list[BadLine] = []
        for item in read(self.file, self.under):
            if isinstance(item, BadLine):
                problems.append(BadLine(item.line, item.reason, field=item.field, file=self.file.name))
                continue
            if not isinstance(item.data, dict):
                problems.append(BadLine(item.line, f"must be an object/row, not {type(item.data).__name__}",
                                        file=self.file.name))
                continue
            key = join_key(item.data.get(right))
            if key is None:
                problems.append(BadLine(item.line, "needs a key (a string or an integer) to be joined on",
                                        field=right, file=self.file.name))
            elif key in index:
                problems.append(BadLine(item.line, f"{right} = {key} repeats line {index[key][0]}; the first is "
                                                   "used", field=right, file=self.file.name))
            else:
                row = item.data if self.keep is None else {k: v for k, v in item.data.items() if k in self.keep}
                index[key] = (item.line, row)
        return index, problems


def join_key(value: Any) -> str | None:
    """Keys compare as text, so that a CSV's "42" meets a JSON file's 42."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None
