"""Generic files (JSONL, JSON, CSV, Parquet, a Hugging Face `save_to_disk` folder) with a field mapping.

    python -m app import table qa.csv --map "question->input_text" --map "answer->raw_output" \\
        --map "choices->options" --map "file_name->img_path" --map "id->instance_id" --dataset ChartQA --task chart_qa

Each row is renamed into the unified format and validated as such. Rows are numbered by their line in
JSONL/CSV files and by their position (1-based) in Parquet and Arrow files. A JSON file whose records sit
under a key of one object (COCO, VQA) is read with `--records KEY`; a second file is joined on a key with
`--join FILE --on KEY` (app/ingest/joins.py); an image path can be made from columns with `--image-pattern`,
such as `COCO_train2014_{image_id:012d}.jpg`."""

from __future__ import annotations

import csv
import functools
import json
import re
import string
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.ingest.object_files import ObjectPath
from app.ingest.record_files import BadLine, MalformedFile, Record, read_records
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
    image_pattern: str | None = None  # img_path made from columns, e.g. "COCO_{image_id:012d}.jpg"

    @classmethod
    def parse(cls, pairs: list[str], constants: dict[str, str | None],
              image_pattern: str | None = None) -> FieldMapping:
        """From `source->target` pairs, names given for the whole file, and an image pattern."""
        columns: dict[str, str] = {}
        fixed = {key: value for key, value in constants.items() if value}
        if image_pattern:
            pattern_columns(image_pattern)
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
        if image_pattern and "img_path" in columns:
            raise MappingInvalid("img_path is filled twice: by a column and by the image pattern")
        return cls(columns, fixed, image_pattern or None)

    @staticmethod
    def read_file(path: Path) -> dict[str, Any]:
        """A YAML mapping file as an import request's fields:

            fields: {target: source column}     # -> map, as 'source->target' pairs
            dataset_name: ..., task_name: ...   # -> dataset, task
            records: questions                  # the key holding a JSON object's records
            join: {file: annotations.json, on: question_id, records: annotations}  # file: beside this one
            image_pattern: "COCO_train2014_{image_id:012d}.jpg"
        """
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
            raise MappingInvalid(f"{path.name}: not valid YAML ({type(error).__name__}: {error})") from None
        if not isinstance(document, dict) or not isinstance(document.get("fields", {}), dict):
            raise MappingInvalid(f"{path.name}: expected `fields: {{target: source column}}`")
        join = document.get("join") or {}
        if isinstance(join, dict):  # YAML 1.1 reads the key `on` as the boolean true
            join = {"on" if key is True else key: value for key, value in join.items()}
        if not isinstance(join, dict) or (join and not {"file", "on"} <= join.keys()):
            raise MappingInvalid(f"{path.name}: expected `join: {{file: ..., on: key, records: key (optional)}}`")
        wanted = {
            "map": [f"{source}->{target}" for target, source in document.get("fields", {}).items()],
            "dataset": document.get("dataset_name"), "task": document.get("task_name"),
            "records": document.get("records"), "image_pattern": document.get("image_pattern"),
            "join": str(path.parent / str(join["file"])) if join else None,
            "on": join.get("on"), "join_records": join.get("records"),
        }
        return {key: (value if isinstance(value, list) else str(value)) for key, value in wanted.items()
                if value is not None}

    def source_columns(self) -> frozenset[str]:
        """The columns this mapping reads."""
        in_pattern = (name for name, _ in pattern_columns(self.image_pattern)) if self.image_pattern else ()
        return frozenset([*self.columns.values(), *in_pattern])

    def parser(self):
        def parse(row: Any, line: int) -> InstanceDraft:
            if not isinstance(row, dict):
                raise FieldProblem("record", f"must be an object/row, not {type(row).__name__}")
            unified: dict[str, Any] = dict(self.constants)
            for target, source in self.columns.items():
                if source not in row:
                    raise FieldProblem(source, f"column missing (mapped to {target})")
                unified[target] = row[source]
            if self.image_pattern:
                unified["img_path"] = fill_pattern(self.image_pattern, row)
            if isinstance(unified.get("options"), str):
                unified["options"] = _options_from_text(unified["options"])
            if unified.get("instance_id") is not None and not isinstance(unified["instance_id"], (str, int)):
                unified["instance_id"] = str(unified["instance_id"])
            unmapped = {key: value for key, value in row.items() if key not in self.columns.values()}
            unified.update({f"source.{key}": value for key, value in unmapped.items()})  # kept as provenance
            return parse_unified(unified, line)
        return parse


@functools.lru_cache(maxsize=16)
def pattern_columns(pattern: str) -> tuple[tuple[str, str], ...]:
    """The (column, format spec) pairs a pattern names. Only plain column names: `{a.b}` and `{a[0]}` would
    reach into Python objects."""
    try:
        fields = tuple((name, spec or "") for _, name, spec, _ in string.Formatter().parse(pattern)
                       if name is not None)
    except ValueError as error:
        raise MappingInvalid(f"image pattern {pattern!r}: {error}") from None
    for name, _ in fields:
        if not re.fullmatch(r"[\w\- ]+", name):
            raise MappingInvalid(f"image pattern {pattern!r}: {{{name}}} must name a column, as in {{image_id}}")
    if not fields:
        raise MappingInvalid(f"image pattern {pattern!r} names no column, e.g. {{file_name}}")
    return fields


def fill_pattern(pattern: str, row: dict[str, Any]) -> str:
    values: dict[str, Any] = {}
    for name, spec in pattern_columns(pattern):
        if row.get(name) is None:
            raise FieldProblem(name, "column missing (used by the image pattern)")
        value = row[name]
        if spec[-1:] in ("d", "x") and isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # a CSV's "42" into {image_id:012d}
        values[name] = value
    try:
        return pattern.format_map(values)
    except (ValueError, TypeError) as error:
        raise FieldProblem("img_path", f"the image pattern does not fit this row ({error})") from None


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


def read_rows(path: Path | ObjectPath, under: str | None = None) -> Iterator[Record | BadLine]:
    """The rows of any file `import table` reads; `under`: the key holding a JSON object's records."""
    if isinstance(path, ObjectPath) and path.suffix.lower() == ".parquet":
        yield from _downloaded_parquet(path)
        return
    if isinstance(path, ObjectPath) and path.is_dir():
        raise MappingInvalid(f"{path} is a folder on object storage: a datasets save_to_disk folder is read from "
                             "local disk (download it first)")
    tabular = path.is_dir() or path.suffix.lower() in (".csv", ".parquet")
    if under is not None and tabular:
        raise MappingInvalid(f"{path.name}: records under a key ({under!r}) are for a JSON file")
    if path.is_dir():
        yield from _arrow_folder(path)
    elif path.suffix.lower() == ".csv":
        yield from _csv(path)
    elif path.suffix.lower() == ".parquet":
        yield from _parquet(path)
    else:
        yield from read_records(path, under)


def _csv(path: Path) -> Iterator[Record | BadLine]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.DictReader(stream)
        try:
            if not reader.fieldnames:  # reads the header now, so that line numbers start after it
                raise MalformedFile(path, 1, "holds no records (an empty CSV file: it needs a header line and rows)")
            line = reader.line_num  # the last line read; a row starts on the next one
            if len(set(reader.fieldnames)) != len(reader.fieldnames):
                repeated = sorted({name for name in reader.fieldnames if reader.fieldnames.count(name) > 1})
                raise MalformedFile(path, line, f"the header repeats the column(s) {', '.join(repeated)}")
            rows = 0
            for row in reader:
                rows += 1
                if None in row:
                    yield BadLine(line + 1, f"{len(row[None])} more value(s) than the header has columns")
                else:
                    yield Record(line + 1, {key: (None if value == "" else value) for key, value in row.items()})
                line = reader.line_num
            if not rows:
                raise MalformedFile(path, line, "holds no records (a header line and no rows)")
        except UnicodeDecodeError as error:
            yield BadLine(reader.line_num + 1, f"not valid UTF-8 ({error.reason}); the rest of the file was not read")
        except csv.Error as error:
            yield BadLine(reader.line_num, f"not valid CSV ({error}); the rest of the file was not read")


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    yield from _arrow_rows([path], lambda file: pq.ParquetFile(file).iter_batches(batch_size=10_000),
                           "a readable Parquet file", "a Parquet file with no rows")


def _downloaded_parquet(path: ObjectPath) -> Iterator[Record]:
    """A Parquet file on object storage, read from a local copy: Parquet is read by seeking (its footer first),
    which a stream cannot do. The copy is on disk, never in memory, and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="studio-parquet-") as scratch:
        local = Path(scratch) / path.name
        path.download(local)
        yield from _parquet(local)


def _arrow_folder(path: Path) -> Iterator[Record]:
    """A `datasets` `save_to_disk` folder: its `data-*.arrow` files (Arrow IPC streams), in order."""
    import pyarrow as pa

    files = sorted(path.glob("data-*.arrow")) or sorted(path.glob("*.arrow"))
    if not files:
        raise MappingInvalid(f"{path} holds no .arrow files (expected a datasets save_to_disk folder)")
    def batches(file: Path):
        with pa.memory_map(str(file)) as source:
            yield from pa.ipc.open_stream(source)

    yield from _arrow_rows(files, batches, "a readable Arrow stream", "its .arrow files have no rows",
                           empty_path=path)


def _arrow_rows(files: list[Path], batches, kind: str, empty: str, empty_path: Path | None = None
                ) -> Iterator[Record]:
    """The rows of each file's record batches, numbered by position (1-based) across the files; a file Arrow
    cannot read, or no rows at all, is a MalformedFile."""
    import pyarrow as pa

    position = 0
    for file in files:
        try:
            for batch in batches(file):
                for row in batch.to_pylist():
                    position += 1
                    yield Record(position, row)
        except (pa.ArrowException, OSError) as error:
            raise MalformedFile(file, position + 1, f"not {kind} ({error})") from None
    if not position:
        raise MalformedFile(empty_path or files[0], 1, f"holds no records ({empty})")
