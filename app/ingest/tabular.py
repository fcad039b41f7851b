"""Generic files (JSONL, JSON, CSV, Parquet, a Hugging Face `save_to_disk` folder) with a field mapping.

    python -m app import table qa.csv --map "question->input_text" --map "answer->raw_output" \\
        --map "choices->options" --map "file_name->img_path" --map "id->instance_id" --dataset ChartQA --task chart_qa

Each row is renamed into the unified format and validated as such. Rows are numbered by their line in
JSONL/CSV files and by their position (1-based) in Parquet and Arrow files."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.ingest.records import BadLine, Record, read_records
from app.ingest.unified import FieldProblem, InstanceDraft, parse_unified

TARGETS = ("instance_id", "img_path", "options", "input_text", "raw_output", "human_preferred_output",
           "dataset_name", "task_name")


class MappingInvalid(ValueError):
    pass


@dataclass(frozen=True)
class FieldMapping:
    """Which source column fills each unified field, and fields given once for the whole file."""

    columns: dict[str, str] = field(default_factory=dict)  # target -> source column
    constants: dict[str, str] = field(default_factory=dict)  # target -> value

    @classmethod
    def parse(cls, pairs: list[str], constants: dict[str, str | None]) -> FieldMapping:
        """From `source->target` pairs, and names given for the whole file."""
        columns: dict[str, str] = {}
        fixed = {key: value for key, value in constants.items() if value}
        for pair in pairs:
            source, arrow, target = pair.partition("->")
            if not arrow or not source.strip() or not target.strip():
                raise MappingInvalid(f"--map {pair!r}: write it as 'source column->field'")
            columns[target.strip()] = source.strip()
        unknown = sorted(set(columns) - set(TARGETS))
        if unknown:
            raise MappingInvalid(f"unknown field(s) {', '.join(unknown)}: map to {', '.join(TARGETS)}")
        missing = [target for target in ("instance_id", "raw_output", "dataset_name", "task_name")
                   if target not in columns and target not in fixed]
        if missing:
            raise MappingInvalid(f"nothing fills {', '.join(missing)}: map a column to it or give it "
                                 "(--dataset / --task for the names)")
        return cls(columns, fixed)

    @staticmethod
    def read_file(path: Path) -> tuple[list[str], dict[str, str]]:
        """A YAML mapping file `{fields: {target: source column}, dataset_name: ..., task_name: ...}` as
        `source->target` pairs and the names it gives."""
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(document, dict) or not isinstance(document.get("fields", {}), dict):
            raise MappingInvalid(f"{path.name}: expected `fields: {{target: source column}}`")
        pairs = [f"{source}->{target}" for target, source in document.get("fields", {}).items()]
        return pairs, {key: str(document[key]) for key in ("dataset_name", "task_name") if document.get(key)}

    def parser(self):
        def parse(row: Any, line: int) -> InstanceDraft:
            if not isinstance(row, dict):
                raise FieldProblem("record", f"must be an object/row, not {type(row).__name__}")
            unified: dict[str, Any] = dict(self.constants)
            for target, source in self.columns.items():
                if source not in row:
                    raise FieldProblem(source, f"column missing (mapped to {target})")
                unified[target] = row[source]
            if isinstance(unified.get("options"), str):
                unified["options"] = _options_from_text(unified["options"])
            if unified.get("instance_id") is not None and not isinstance(unified["instance_id"], (str, int)):
                unified["instance_id"] = str(unified["instance_id"])
            unmapped = {key: value for key, value in row.items() if key not in self.columns.values()}
            unified.update({f"source.{key}": value for key, value in unmapped.items()})  # kept as provenance
            return parse_unified(unified, line)
        return parse


def _options_from_text(text: str) -> list[str] | None:
    """A CSV cell holding options: a JSON list, or values separated by '|'; empty means none."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise FieldProblem("options", "starts like a JSON list but is not valid JSON") from None
    return [part.strip() for part in text.split("|")]


def read_rows(path: Path) -> Iterator[Record | BadLine]:
    if path.is_dir():
        yield from _arrow_folder(path)
    elif path.suffix.lower() == ".csv":
        yield from _csv(path)
    elif path.suffix.lower() == ".parquet":
        yield from _parquet(path)
    else:
        yield from read_records(path)


def _csv(path: Path) -> Iterator[Record | BadLine]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.DictReader(stream)
        try:
            reader.fieldnames  # noqa: B018 - reads the header now, so that line numbers start after it
            line = reader.line_num  # the last line read; a row starts on the next one
            for row in reader:
                if None in row:
                    yield BadLine(line + 1, f"{len(row[None])} more value(s) than the header has columns")
                else:
                    yield Record(line + 1, {key: (None if value == "" else value) for key, value in row.items()})
                line = reader.line_num
        except UnicodeDecodeError as error:
            yield BadLine(reader.line_num + 1, f"not valid UTF-8 ({error.reason}); the rest of the file was not read")
        except csv.Error as error:
            yield BadLine(reader.line_num, f"not valid CSV ({error}); the rest of the file was not read")


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    position = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            position += 1
            yield Record(position, row)


def _arrow_folder(path: Path) -> Iterator[Record]:
    """A `datasets` `save_to_disk` folder: its `data-*.arrow` files (Arrow IPC streams), in order."""
    import pyarrow as pa

    files = sorted(path.glob("data-*.arrow")) or sorted(path.glob("*.arrow"))
    if not files:
        raise MappingInvalid(f"{path} holds no .arrow files (expected a datasets save_to_disk folder)")
    position = 0
    for file in files:
        with pa.memory_map(str(file)) as source:
            for batch in pa.ipc.open_stream(source):
                for row in batch.to_pylist():
                    position += 1
                    yield Record(position, row)
