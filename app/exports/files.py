"""Writing a version's files: ASCII-escaped JSON (arrays and lines) that hashes itself while it is written."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def ascii_json(value: Any) -> bytes:
    """Compact JSON with every non-ASCII character escaped: the trainer reads with the platform's default
    encoding, so ASCII is the only safe choice. orjson writes UTF-8; most records are ASCII already and the
    few that are not are escaped afterwards (strings only can hold non-ASCII, so this stays valid JSON)."""
    data = orjson.dumps(value)
    if data.isascii():
        return data
    return _NON_ASCII.sub(_escape, data.decode("utf-8")).encode("ascii")


class HashingFile:
    """A binary file that counts its bytes and their sha256 as they are written."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {"bytes": self.size, "sha256": self._digest.hexdigest()}


class JsonArrayWriter:
    """A JSON array written one record at a time (a record per line, so diffs and `head` stay readable)."""

    def __init__(self, path: Path):
        self.file = HashingFile(path)
        self.count = 0
        self.file.write(b"[")

    def add(self, record: dict) -> None:
        self.file.write((b"\n" if self.count == 0 else b",\n") + ascii_json(record))
        self.count += 1

    def close(self) -> dict[str, Any]:
        self.file.write(b"\n]\n" if self.count else b"]\n")
        return {**self.file.close(), "records": self.count}


class JsonLinesWriter:
    def __init__(self, path: Path):
        self.file = HashingFile(path)
        self.count = 0

    def add(self, record: dict) -> None:
        self.file.write(ascii_json(record) + b"\n")
        self.count += 1

    def close(self) -> dict[str, Any]:
        return {**self.file.close(), "records": self.count}


def hash_file(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
