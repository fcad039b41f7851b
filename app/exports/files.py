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
    return data if data.isascii() else escape_non_ascii(data)


def escape_non_ascii(data: bytes) -> bytes:
    """orjson's UTF-8 output with every non-ASCII character written as a JSON escape (`ascii_json`'s second
    half, for the export's hot loop, which encodes its records itself)."""
    return _NON_ASCII.sub(_escape, data.decode("utf-8")).encode("ascii")


class HashingFile:
    """A binary file that counts its bytes and their sha256 as they are written."""

    def __init__(self, path: Path, *, resume: bool = False):
        """`resume`: append to the file, whose bytes so far count too (an export's first part, renamed into
        place rather than copied)."""
        self.path = path
        self._digest = hashlib.sha256()
        self.size = 0
        if resume:
            with open(path, "rb") as begun:
                while chunk := begun.read(1 << 20):
                    self._digest.update(chunk)
                    self.size += len(chunk)
        self._file = open(path, "ab" if resume else "wb")  # noqa: SIM115 - closed by close()

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def append_part(self, path: Path) -> None:
        """Appends a file's bytes (an export part's), a megabyte at a time."""
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                self.write(chunk)

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {"bytes": self.size, "sha256": self._digest.hexdigest()}


ARRAY_OPENING = b"["
ARRAY_FIRST_LEAD, ARRAY_LEAD = b"\n", b",\n"  # before the first record, before each later one


class JsonArrayWriter:
    """A JSON array, a record per line (diffs and `head` stay readable), hashed as it is written. Records come
    one at a time (`add`) or as runs already joined by ",\n" (`append_part`: an export part's array body).
    `resume` continues an array begun in the file (its opening, then maybe records: the first export part's)."""

    def __init__(self, path: Path, *, resume: bool = False):
        self.file = HashingFile(path, resume=resume)
        if not resume:
            self.file.write(ARRAY_OPENING)
        self.count = 0  # records added one at a time
        self._empty = self.file.size == len(ARRAY_OPENING)

    def add(self, record: dict) -> None:
        self._lead()
        self.file.write(ascii_json(record))
        self.count += 1

    def append_part(self, path: Path) -> None:
        if path.stat().st_size:
            self._lead()
            self.file.append_part(path)

    def _lead(self) -> None:
        self.file.write(ARRAY_FIRST_LEAD if self._empty else ARRAY_LEAD)
        self._empty = False

    def close(self) -> dict[str, Any]:
        """The file's bytes and sha256."""
        self.file.write(b"]\n" if self._empty else b"\n]\n")
        return self.file.close()


def hash_file(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def images_digest(entries) -> str:
    """One sha256 over a version's images: their names and sizes, sorted by name (a missing, extra or
    truncated image changes it; each image's own bytes are checked against its name, which is their sha256)."""
    digest = hashlib.sha256()
    for name, size in sorted(entries):
        digest.update(f"{name}\t{size}\n".encode())
    return digest.hexdigest()


# Rows per Parquet row group: the stitching holds about two groups at once, so this bounds the build's memory
# (100,000 realistic records made its peak 438 MB at 300k instances; 50,000 make it 339 MB, no slower).
PARQUET_ROWS_PER_GROUP = 50_000


def stage1_schema():
    """Stage-1 records as Arrow sees them, whatever the records: `image` a string, null for text-only ones."""
    import pyarrow as pa  # only exports need it

    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    return pa.schema([("id", pa.string()), ("image", pa.string()), ("task_name", pa.string()),
                      ("conversations", pa.list_(turn))])


def stage1_parquet_writer(target: Path):
    """A Parquet writer of stage-1 records, as a version's stage1.parquet is written."""
    import pyarrow.parquet as pq

    # Dictionaries only where values repeat (task names, roles), statistics only where a reader filters (by
    # task): the rest costs a third of the writing and saves nothing on unique ids and texts.
    return pq.ParquetWriter(target, stage1_schema(), compression="zstd", write_statistics=["task_name"],
                            use_dictionary=["task_name", "conversations.list.element.from"])


def arrow_to_parquet(sources: list[Path], target: Path) -> dict[str, Any]:
    """Stage-1 records as Parquet for Hugging Face `datasets` users, from Arrow IPC streams taken in order.
    Row groups are cut at fixed row counts, so the bytes depend on the records alone, not on how they were
    split into streams and batches; a group at a time is held in memory."""
    import pyarrow as pa

    schema, count, pending = stage1_schema(), 0, []
    with stage1_parquet_writer(target) as writer:
        def write(rows: pa.Table) -> None:
            writer.write_table(rows.combine_chunks(), row_group_size=PARQUET_ROWS_PER_GROUP)

        for source in sources:
            # Read through a plain file: given a path, pyarrow maps the stream into memory, and every page read
            # counts as the build's memory (757 MB at 1.66M instances; 298 MB this way).
            with pa.OSFile(str(source)) as file, pa.ipc.open_stream(file) as stream:
                for batch in stream:
                    count += batch.num_rows
                    pending.append(batch)
                    if sum(part.num_rows for part in pending) >= PARQUET_ROWS_PER_GROUP:
                        rows = pa.Table.from_batches(pending, schema)
                        whole = rows.num_rows - rows.num_rows % PARQUET_ROWS_PER_GROUP
                        for start in range(0, whole, PARQUET_ROWS_PER_GROUP):
                            write(rows.slice(start, PARQUET_ROWS_PER_GROUP))
                        pending = rows.slice(whole).to_batches() if whole < rows.num_rows else []
        if pending:
            write(pa.Table.from_batches(pending, schema))
    return {**hash_file(target), "records": count}


def tar_folder(folder: Path, target: Path) -> dict[str, Any]:
    """The folder's files as an uncompressed tar with fixed metadata (names sorted, owner 0, time 0), so the
    same images always give the same bytes; images are compressed already."""
    import tarfile

    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(folder.iterdir()):
            info = tarfile.TarInfo(f"{folder.name}/{path.name}")
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with open(path, "rb") as source:
                archive.addfile(info, source)
    return hash_file(target)
