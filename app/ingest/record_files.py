"""Streaming records out of JSON-array and JSONL files, each with the line it starts on.

Memory stays flat whatever the file size. JSONL is split on b"\\n" only (a record may contain U+2028,
which `str.splitlines()` would break on); a UTF-8 BOM is accepted and stripped. A malformed JSONL line is
reported and skipped; a malformed JSON array cannot be resynchronised, so it stops the import with the
line and column at fault."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

BOM = b"\xef\xbb\xbf"
WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 (and UTF-32 LE) byte-order marks
CHUNK_CHARS = 1 << 20
MAX_RECORD_CHARS = 64 << 20  # one record larger than this is refused rather than buffered without end


class MalformedFile(ValueError):
    """The file cannot be read any further; says where."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message

    def __reduce__(self):  # raised in the reading process, raised again as itself in the writing one
        return type(self), (self.path, self.line, self.message)


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    data: Any


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str
    field: str = "record"
    file: str | None = None  # when not the file being imported (a joined one)


def read_records(path: Path, under: str | None = None) -> Iterator[Record | BadLine]:
    """Records of a JSON array (first non-blank character `[`) or of a JSONL file, in file order; with `under`,
    the array that key of the file's top-level JSON object holds (COCO's `annotations`, VQA's `questions`),
    streamed as well. A file that holds no records at all, or one JSON object spread over several lines, is
    one clear MalformedFile."""
    with path.open("rb") as stream:
        head = stream.read(4096)
    if head.startswith(WIDE_BOMS):
        raise MalformedFile(path, 1, "the file is UTF-16 or UTF-32 (it starts with a byte-order mark); "
                                     "save it as UTF-8")
    start = (head[len(BOM):] if head.startswith(BOM) else head).lstrip()[:1]
    items = _json_array(path, under) if under is not None or start == b"[" else _json_lines(path)
    first = next(items, None)
    if first is None:
        where = f"its {under!r} list is empty" if under else "an empty file, or an empty JSON array"
        raise MalformedFile(path, 1, f"holds no records ({where})")
    if isinstance(first, BadLine) and start == b"{" and _one_object(path):
        raise MalformedFile(path, first.line, "is one JSON object spread over several lines, not records: give a "
                                              "JSON array of objects, or one object per line (JSONL), or name "
                                              "the key that holds the records")
    yield first
    yield from items


# A \\uD800-\\uDFFF escape: Python's json module turns a lone one into a string no database or encoder takes.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def encodable(value: Any) -> bool:
    """Whether every string in `value` (keys included) is valid Unicode, so that it can be stored."""
    waiting = [value]
    while waiting:
        item = waiting.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            waiting.extend(item.keys())
            waiting.extend(item.values())
        elif isinstance(item, list):
            waiting.extend(item)
    return True


def _one_object(path: Path) -> bool:
    """Whether the whole file (within the size of one record) is a single JSON object."""
    if path.stat().st_size > MAX_RECORD_CHARS:
        return False
    try:
        return isinstance(orjson.loads(path.read_bytes().removeprefix(BOM)), dict)
    except orjson.JSONDecodeError:
        return False


def estimate_records(path: Path) -> int | None:
    """How many records a JSONL or CSV file holds (its lines, counted at disk speed, less a CSV's header);
    None when that cannot be known cheaply (a JSON array, Parquet, a folder, a file on object storage, which
    would be downloaded twice)."""
    if not isinstance(path, Path) or not path.is_file() or path.suffix.lower() == ".parquet":
        return None
    with path.open("rb") as stream:
        head = stream.read(4096).removeprefix(BOM)
        if head.lstrip()[:1] == b"[":
            return None
        stream.seek(0)
        lines = ends_with_newline = 0
        while chunk := stream.read(CHUNK_CHARS):
            lines += chunk.count(b"\n")
            ends_with_newline = chunk.endswith(b"\n")
    lines += 0 if ends_with_newline else 1
    return max(lines - 1, 0) if path.suffix.lower() == ".csv" else lines


def _json_lines(path: Path) -> Iterator[Record | BadLine]:
    with path.open("rb") as stream:
        for number, raw in enumerate(_split_on_newlines(stream), start=1):
            if raw is None:
                yield BadLine(number, f"line longer than the {MAX_RECORD_CHARS >> 20} MiB allowed for one record")
                continue
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue
            try:
                yield Record(number, orjson.loads(raw))
            except orjson.JSONDecodeError as error:
                reason = "not valid UTF-8" if _not_utf8(raw) else f"not valid JSON ({error})"
                yield BadLine(number, reason)


def _split_on_newlines(stream) -> Iterator[bytes | None]:
    """The file's lines; None for a line over MAX_RECORD_CHARS, which is skipped, never held whole."""
    pending: list[bytes] = []  # pieces of a line that runs across chunks (joined once: no quadratic copying)
    pending_size, too_long = 0, False
    while chunk := stream.read(CHUNK_CHARS):
        lines = chunk.split(b"\n")
        for piece in lines[:-1]:
            yield None if too_long or pending_size + len(piece) > MAX_RECORD_CHARS else b"".join([*pending, piece])
            pending, pending_size, too_long = [], 0, False
        pending.append(lines[-1])
        pending_size += len(lines[-1])
        if pending_size > MAX_RECORD_CHARS:
            pending, too_long = [], True
    if pending_size:
        yield None if too_long else b"".join(pending)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _json_array(path: Path, under: str | None = None) -> Iterator[Record]:
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8-sig", newline="") as stream:
        reader = _ArrayReader(path, stream)
        if under is None:
            yield from reader.array(decoder)
        else:
            yield from reader.array_under(under, decoder)
            return  # what follows the records' list is not read: it is not wanted
        if reader.peek() != "":
            reader.fail("unexpected content after the closing ']'")


class _ArrayReader:
    """A window over the text with the line number of its start, refilled as records are consumed."""

    def __init__(self, path: Path, stream):
        self.path, self.stream = path, stream
        self.buffer, self.position = "", 0
        self.line, self.counted_to = 1, 0  # `line` is the line of buffer[counted_to]

    def _fill(self) -> bool:
        try:
            chunk = self.stream.read(CHUNK_CHARS)
        except UnicodeDecodeError as error:
            self.fail(f"not valid UTF-8 ({error.reason})")
        if not chunk:
            return False
        self.current_line()
        self.buffer = self.buffer[self.position:] + chunk
        self.position = self.counted_to = 0
        return True

    def _skip_blanks(self) -> None:
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in " \t\r\n":
                self.position += 1
            if self.position < len(self.buffer) or not self._fill():
                return

    def peek(self) -> str:
        self._skip_blanks()
        return self.buffer[self.position:self.position + 1]

    def next_char(self) -> str:
        char = self.peek()
        self.position += len(char)
        return char

    def expect(self, char: str) -> None:
        found = self.next_char()
        if found != char:
            self.fail(f"expected {char!r}, found {found or 'the end of the file'!r}")

    def current_line(self) -> int:
        """The line of buffer[position], counting only the newlines passed since the last call."""
        self.line += self.buffer.count("\n", self.counted_to, self.position)
        self.counted_to = self.position
        return self.line

    def value(self, decoder: json.JSONDecoder) -> Record | BadLine:
        self._skip_blanks()
        line = self.current_line()
        while True:
            try:
                data, end = decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as error:
                # Maybe the record runs past the window: read on, within reason, before calling it malformed.
                if len(self.buffer) - self.position >= MAX_RECORD_CHARS:
                    self.fail(f"a record larger than the {MAX_RECORD_CHARS >> 20} MiB allowed starts here")
                if self._fill():
                    continue
                where = self.current_line() + self.buffer.count("\n", self.position, error.pos)
                raise MalformedFile(self.path, where, f"not valid JSON ({error.msg}, column {error.colno})") from None
            except RecursionError:  # the array cannot be resynchronised after it: the file stops here
                self.fail("a record nested deeper than the reader can follow (thousands of levels) starts here")
            start, self.position = self.position, end
            if SURROGATE_ESCAPE.search(self.buffer, start, end) and not encodable(data):
                return BadLine(line, "holds half of a UTF-16 surrogate pair (such as \\ud800), which is not text")
            return Record(line, data)

    def array(self, decoder: json.JSONDecoder) -> Iterator[Record]:
        """The records of the array that starts here."""
        self.expect("[")
        if self.peek() == "]":
            self.next_char()
            return
        while True:
            yield self.value(decoder)
            separator = self.next_char()
            if separator == "]":
                return
            if separator != ",":
                self.fail(f"expected ',' or ']' after a record, found {separator!r}")

    def array_under(self, key: str, decoder: json.JSONDecoder) -> Iterator[Record]:
        """The records of the array under `key` in the object that starts here; other keys' values are
        passed over (a list record by record, so that a long one is never held whole)."""
        if self.peek() != "{":
            self.fail(f"expected a JSON object with the records under {key!r}, found {self.peek() or 'nothing'!r}")
        self.next_char()
        seen: list[str] = []
        while self.peek() not in ("}", ""):
            parsed = self.value(decoder)
            if not isinstance(parsed, Record) or not isinstance(parsed.data, str):
                self.fail("expected a key (a string) in the top-level object")
            name = parsed.data
            self.expect(":")
            if name == key:
                if self.peek() != "[":
                    self.fail(f"{key!r} holds {self.peek()!r}..., not a list of records")
                yield from self.array(decoder)
                return
            seen.append(name)
            for _ in self.array(decoder) if self.peek() == "[" else [self.value(decoder)]:
                pass
            if self.peek() not in (",", "}"):
                self.fail(f"expected ',' or '}}' after the value of {name!r}, found {self.peek() or 'nothing'!r}")
            if self.peek() == ",":
                self.next_char()
        self.fail(f"the top-level object has no key {key!r} (its keys: {', '.join(seen) or 'none'})")

    def fail(self, message: str) -> None:
        raise MalformedFile(self.path, self.current_line(), message)
