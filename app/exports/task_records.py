"""Stage-1 records for a run of tasks: drawn, rendered, checked and encoded, into one part's files.

A part is what one process builds (app/exports/parallel.py runs several and stitches them): its training
records as JSON lines (`train.jsonl`) and as the body of a JSON array (`train.body`: records joined by ",\n";
the first part's opens the array, so the stitching renames it into place), and its validation records as an
array body (`val.body`). This is the export's hot loop — 1.66M records at
Vision-Flan scale — so it reads rows straight from the driver and checks the clean case in a few comparisons;
everything it decides is the same whichever process runs it."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orjson import dumps, loads
from sqlalchemy import Engine
from sqlmodel import Session

from app.core.storage import Media
from app.exports.contract import Violation, pair_checker
from app.exports.files import ARRAY_FIRST_LEAD, ARRAY_LEAD, ARRAY_OPENING, escape_non_ascii, stage1_schema
from app.exports.image_tokens import counter_for
from app.exports.sampling import SPLIT_SALT, choose, draw_instance_batches, unit
from app.models import InstructionVersion, SourceDataset, Task
from app.prompts.rendering import TemplateProblem, renderer_for
from app.prompts.specs import spec_of_version
from app.schemas.export_spec import ExportSpec

VIOLATIONS_KEPT = 200
IMAGE_LIST = "images.tsv"  # a version on object storage: its images, named in the media bucket
IMAGE_DIR = "images"

# A record's JSON is assembled around its orjson-encoded strings: the bytes of orjson.dumps({"id", ["image",]
# "task_name", "conversations": [human turn, gpt turn]}) (a test compares them), at a third of the cost. Most of
# that is malloc's: orjson's output buffers, held a batch at a time, are slow to allocate; short-lived ones are not.
_ID, _IMAGE, _GPT, _END = b'{"id":', b',"image":', b'},{"from":"gpt","value":', b"}]}"


@dataclass(frozen=True)
class TaskPlan:
    task: Task
    dataset: SourceDataset | None
    versions: list[InstructionVersion]

    @property
    def expected(self) -> int:
        return self.task.instance_count


@dataclass
class Tally:
    per_task: dict[str, Counter] = field(default_factory=dict)
    versions_used: dict[str, Counter] = field(default_factory=dict)  # task -> instruction version -> records
    excluded: int = 0
    violations: list[str] = field(default_factory=list)

    def leave_out(self, problems: list[Violation]) -> None:
        self.excluded += 1
        for problem in problems:
            if len(self.violations) < VIOLATIONS_KEPT:
                self.violations.append(str(problem))

    def merge(self, other: Tally) -> None:
        """Adds a later part's tally (parts cover disjoint tasks, in order: the first violations stay first)."""
        self.per_task.update(other.per_task)
        self.versions_used.update(other.versions_used)
        self.excluded += other.excluded
        self.violations = (self.violations + other.violations)[:VIOLATIONS_KEPT]


class ImageFolder:
    """The version's images, named by content, so an image shared by several tasks is there once: hard links to
    a media folder on the same file system, copies otherwise (from a bucket, a download each). Several processes
    may add the same image at once: a file that exists already is that image, and a copy appears only whole.

    Without a media store (`media=None`) the version names its images in the media bucket instead (a version on
    object storage): nothing is copied, and each process lists the names it added in a file of its own
    (`NAMES`), read back by `referenced_names`."""

    RECENT = 100_000  # names added lately, to skip their link call; bounded: a version may hold millions
    NAMES = ".referenced-"

    def __init__(self, root: Path, media: Media | None):
        self.root, self.media = root, media
        self.recent: set[str] = set()
        root.mkdir(exist_ok=True)
        self._names = open(root / f"{self.NAMES}{os.getpid()}", "a") if media is None else None  # noqa: SIM115

    def add(self, sha256: str, image_format: str) -> str:
        name = f"{sha256}.{image_format.lower()}"
        if name not in self.recent:
            if self.media is not None:
                self.media.copy_to(sha256, self.root / name)
            else:
                self._names.write(name + "\n")
            if len(self.recent) >= self.RECENT:
                self.recent.clear()
            self.recent.add(name)
        return name

    def close(self) -> None:
        if self._names is not None:
            self._names.close()


def referenced_names(root: Path) -> set[str]:
    """The names every process's `ImageFolder(root, media=None)` added under `root`."""
    names: set[str] = set()
    for listing in root.glob(f"{ImageFolder.NAMES}*"):
        names.update(listing.read_text().split())
    return names


class _Sink:
    """A part's records of one kind, written a batch at a time as an array body, and for training records also
    as JSON lines and as Arrow record batches (for the Parquet file: built from the values in hand, so the
    stitching never parses the JSON back)."""

    def __init__(self, folder: Path, name: str, *, training: bool, opens_array: bool):
        self._body = open(folder / f"{name}.body", "wb")  # noqa: SIM115 - closed by close()
        if opens_array:  # the first part: its body becomes the start of the array file, renamed, never copied
            self._body.write(ARRAY_OPENING)
        self._first_lead = ARRAY_FIRST_LEAD if opens_array else b""
        self._lines = open(folder / f"{name}.jsonl", "wb") if training else None  # noqa: SIM115
        self._columns = _Columns(folder / f"{name}.arrow") if training else None
        self.records: list[bytes] = []
        # Each training record's values, a list per column: transposing tuples (zip(*rows)) costs more than
        # the Arrow conversion itself.
        self.ids: list[str] = []
        self.images: list[str | None] = []
        self.prompts: list[str] = []
        self.targets: list[str] = []
        self.count = 0

    def flush(self, task_name: str) -> None:
        if self.records:
            self._body.write((ARRAY_LEAD if self.count else self._first_lead) + ARRAY_LEAD.join(self.records))
            if self._lines is not None:
                self._lines.write(b"\n".join(self.records) + b"\n")
                self._columns.write(task_name, self.ids, self.images, self.prompts, self.targets)
                for column in (self.ids, self.images, self.prompts, self.targets):
                    column.clear()
            self.count += len(self.records)
            self.records.clear()

    def close(self) -> None:
        self._body.close()
        if self._lines is not None:
            self._lines.close()
            self._columns.close()


class _Columns:
    """Records as an Arrow IPC stream of stage-1 rows."""

    def __init__(self, path: Path):
        import pyarrow as pa  # imported before the parts fork (app/exports/parallel.py), so this is free

        self.pa, self.schema = pa, stage1_schema()
        self._stream = pa.ipc.new_stream(str(path), self.schema)
        self._roles: dict[int, Any] = {}  # batch size -> ["human", "gpt", ...] as Arrow

    def write(self, task_name: str, ids: list[str], images: list[str | None], prompts: list[str],
              targets: list[str]) -> None:
        pa, size = self.pa, len(ids)
        roles = self._roles.get(size)
        if roles is None:
            roles = self._roles[size] = pa.array(["human", "gpt"] * size, pa.string())
        values: list[str | None] = [None] * (2 * size)
        values[0::2], values[1::2] = prompts, targets
        turns = pa.StructArray.from_arrays([roles, pa.array(values, pa.string())], names=["from", "value"])
        conversations = pa.ListArray.from_arrays(pa.array(range(0, 2 * size + 1, 2), pa.int32()), turns)
        self._stream.write_batch(pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.string()), pa.array(images, pa.string()),
             pa.repeat(pa.scalar(task_name, pa.string()), size), conversations], schema=self.schema))

    def close(self) -> None:
        self._stream.close()


def write_part(engine: Engine, plans: list[TaskPlan], spec: ExportSpec, media: Media | None,
               count_tokens: Callable[[str], int], folder: Path, images_root: Path,
               report: Callable[[int, str], None], *, first: bool = True) -> Tally:
    """Writes the plans' records into `folder` (train.jsonl, train.body, val.body) and returns the tally. The
    `first` part's bodies open their JSON arrays. `report(records, message)` is called every few thousand records
    and after each task."""
    tally = Tally()
    images = ImageFolder(images_root, media)
    check = pair_checker(count_tokens, spec.max_tokens, spec.image_tokens)
    tokens_of_image = counter_for(spec.model_family)  # None: every image takes spec.image_tokens
    train = _Sink(folder, "train", training=True, opens_array=first)
    val = _Sink(folder, "val", training=False, opens_array=first)
    split_seed, ratio = spec.seed ^ SPLIT_SALT, spec.validation_ratio
    with Session(engine) as session:
        for item in plans:
            choices = [(version.id, renderer_for(spec_of_version(version))) for version in item.versions]
            only = choices[0] if len(choices) == 1 else None  # most tasks: no seeded choice to make
            task_name, trained, validated = item.task.name, 0, 0
            task_and_human = b',"task_name":' + dumps(task_name) + b',"conversations":[{"from":"human","value":'
            used: Counter = tally.versions_used.setdefault(task_name, Counter())
            keep_train, keep_val = train.records.append, val.records.append
            keep_id, keep_image, keep_prompt, keep_target = (train.ids.append, train.images.append,
                                                             train.prompts.append, train.targets.append)
            for rows in draw_instance_batches(session, task_id=item.task.id, seed=spec.seed, cap=spec.per_task_cap,
                                              revisions_through=spec.revisions_through, as_of=spec.as_of):
                for instance_id, input_text, options, raw, preferred, sha256, image_format, width, height in rows:
                    if options.__class__ is str:  # SQLite hands JSON over as text; PostgreSQL decoded already
                        options = loads(options)
                    version_id, renderer = only or choose(choices, spec.seed, instance_id)
                    record_id = f"{task_name}/{instance_id}/v{version_id}"  # task, instance, instruction version
                    has_image = sha256 is not None
                    try:
                        prompt, target = renderer(input_text, options, raw, preferred, has_image)
                    except TemplateProblem as problem:
                        tally.leave_out([Violation(record_id, "render", str(problem))])
                        continue
                    problems = check(record_id, prompt, target, has_image,
                                     tokens_of_image(width, height) if tokens_of_image and has_image else None)
                    if problems:
                        tally.leave_out(problems)
                        continue
                    if has_image:
                        image = images.add(sha256, image_format)
                        data = b"".join((_ID, dumps(record_id), _IMAGE, dumps(image), task_and_human, dumps(prompt),
                                         _GPT, dumps(target), _END))
                    else:  # no image key at all: `"image": null` crashes the trainer's loader
                        image = None
                        data = b"".join((_ID, dumps(record_id), task_and_human, dumps(prompt), _GPT, dumps(target),
                                         _END))
                    if not data.isascii():  # as ascii_json does (inlined: a call per record is 5% of an export)
                        data = escape_non_ascii(data)
                    if ratio and unit(split_seed, instance_id) < ratio:
                        keep_val(data)
                        validated += 1
                    else:
                        keep_train(data)
                        keep_id(record_id)
                        keep_image(image)
                        keep_prompt(prompt)
                        keep_target(target)
                        trained += 1
                    if only is None:  # with one version, counted once per task below (a few % of an export)
                        used[version_id] += 1
                train.flush(task_name)
                val.flush(task_name)
                report(len(rows), f"{task_name}: {trained + validated:,} records")  # also keeps a lease alive
            if only is not None and trained + validated:
                used[only[0]] = trained + validated
            tally.per_task[task_name] = Counter({"train": trained, "validation": validated})
            report(0, f"{task_name} done")
    train.close()
    val.close()
    images.close()
    return tally
