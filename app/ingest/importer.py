"""Importing instances: streamed, in chunks that each commit whole, idempotent, resumable.

Each file format has a parser from one record to an InstanceDraft (`unified.parse_unified`,
`llava.parse_llava`); reading, validating and writing are the same for all of them. Reading and
validating run in a forked process beside the writing (app/ingest/background.py): two cores, one import.

The reading side parses and validates each record, drops those whose (task, source id) the database held
before the import began (with its own connection, before touching their images), and checks and stores the
images of the rest (app/ingest/intake.py). The writing side makes a chunk one transaction: its tasks (created
on first sight, with their source dataset), its images' rows, and its instances. A killed import leaves
whole chunks only; running it again skips what is there and finishes the rest. A duplicate within the file
is left out by the insert itself (ON CONFLICT DO NOTHING) and counted from what it inserted; a record whose key
is taken but whose content differs is refused as a conflict (app/ingest/duplicates.py)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from app.core.db import make_engine
from app.core.forked import available_cores
from app.core.storage import Media
from app.ingest import CHUNK_SIZE, duplicates
from app.ingest.background import iterate_in_background
from app.ingest.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageRejected
from app.ingest.intake import ImageIntake, StoredImage
from app.ingest.llava import parse_llava
from app.ingest.record_files import BadLine, Record, read_records
from app.ingest.report import ImportReport, Rejection
from app.ingest.unified import FieldProblem, InstanceDraft, parse_unified
from app.models import SourceDataset, Task, utcnow
from app.services import audit
from app.services.bulk_rows import as_json, get_or_create, insert_instances, stable_rkey
from app.services.tasks import refresh_instance_counts

PROGRESS_EVERY = 20_000  # records between progress reports at the latest


@dataclass(frozen=True)
class ImportOptions:
    image_root: Path | None = None
    chunk_size: int = CHUNK_SIZE
    max_per_task: int | None = None
    seed: int = 0
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    image_workers: int | None = None  # processes checking images; one per core when None


Parser = Callable[[Any, int], InstanceDraft]  # (record, line) -> draft, or FieldProblem
Reader = Callable[[Path], Iterable[Record | BadLine]]
FORMATS: dict[str, Parser] = {"unified": parse_unified, "llava": parse_llava}


class InstanceImporter:
    def __init__(self, engine: Engine, media: Media, options: ImportOptions, *, file_format: str = "unified",
                 parse: Parser | None = None, read: Reader = read_records, actor_id: int | None = None,
                 on_progress: Callable[[int], None] | None = None):
        """`file_format` names a known parser; `parse` (with `read`) brings another, e.g. a field mapping."""
        self.engine, self.media, self.options = engine, media, options
        self.file_format, self.parse, self.read = file_format, parse or FORMATS[file_format], read
        self.actor_id = actor_id
        self.on_progress = on_progress or (lambda seen: None)
        self._task_ids: dict[str, int] = {}
        self.images = ImageIntake(media, options.image_root, max_bytes=options.max_image_bytes,
                                  max_pixels=options.max_image_pixels,
                                  workers=options.image_workers or available_cores())

    def run(self, path: Path) -> ImportReport:
        try:
            return self._run(path)
        finally:
            self.images.close()

    def _run(self, path: Path) -> ImportReport:
        started = time.perf_counter()
        report = ImportReport(source=path.name, max_per_task=self.options.max_per_task,
                              seed=self.options.seed if self.options.max_per_task else None)
        url = self.engine.url.render_as_string(hide_password=False)

        def reading() -> Iterator[Chunk]:
            return prepared_chunks(read_chunks(path, self.options, self.parse, self.read), url, self.images)

        for chunk in iterate_in_background(reading):
            for rejection in chunk.rejections:
                report.reject(rejection.file, rejection.line, rejection.field, rejection.reason)
            report.not_sampled += chunk.not_sampled
            report.duplicates += chunk.duplicates
            report.images_stored += chunk.images_stored
            if chunk.rows:
                self._write_chunk(chunk, report)
            self.on_progress(chunk.seen)
        report.seconds = round(time.perf_counter() - started, 3)
        self._record_audit(report)
        return report

    def _write_chunk(self, chunk: Chunk, report: ImportReport) -> None:
        if chunk.images_stored:  # written by the reading process, not yet synced: before any row points at them
            self.media.make_durable()
        with self.engine.begin() as connection:
            for name, dataset in chunk.datasets.items():
                if name not in self._task_ids:
                    self._task_ids[name] = self._task_id(connection, name, dataset, report)
            image_ids = self.images.image_ids(connection, chunk.images.values())
            task_ids, touched, values = self._task_ids, set(), []
            for task_name, source_id, image, input_text, options, raw, preferred, rkey, provenance in chunk.rows:
                task_id = task_ids[task_name]
                touched.add(task_id)
                values.append((task_id, source_id, image_ids[image] if image is not None else None, input_text,
                               options, raw, preferred, "train", "active", rkey, provenance))
            last_id = duplicates.last_instance_id(connection)
            inserted = insert_instances(connection, values, utcnow())
            report.imported += inserted
            skipped = len(values) - inserted
            if skipped:  # taken earlier in this import, or twice in the chunk: exact duplicates, or conflicts
                for index, fields in duplicates.skipped_conflicts(connection, values, last_id):
                    task_name, source_id = chunk.rows[index][:2]
                    report.reject(chunk.file, chunk.lines[index], ",".join(fields),
                                  duplicates.conflict_reason(task_name, source_id, fields))
                    skipped -= 1
            report.duplicates += skipped
            refresh_instance_counts(connection, task_ids=sorted(touched))

    def _task_id(self, connection: Connection, name: str, dataset_name: str, report: ImportReport) -> int:
        existing = connection.execute(select(Task.id).where(Task.name == name)).scalar()
        if existing is not None:
            return existing
        dataset_id = get_or_create(connection, SourceDataset, "name", dataset_name,
                                    {"created_at": utcnow(), "updated_at": utcnow()})
        task_id = get_or_create(connection, Task, "name", name, {
            "source_dataset_id": dataset_id, "task_group": "question answering", "status": "draft",
            "instance_count": 0, "lock_version": 1, "created_at": utcnow(), "updated_at": utcnow()})
        report.tasks_created.append(name)
        return task_id

    def _record_audit(self, report: ImportReport) -> None:
        with self.engine.begin() as connection:
            audit.record_on(connection, actor_id=self.actor_id, action=f"import.{self.file_format}",
                            entity_type="import", entity_id=report.source, after=report.counts())


# An instance on the reading side: a plain tuple (it crosses a process boundary, and tuples pickle several
# times faster than objects) of (line, task_name, source_id, image, input_text, options, raw_output,
# human_preferred_output, rkey, provenance), with the JSON columns serialised and the random key made. The
# writing side gets it without the line, and with `image` turned from the file's path into its sha256.
LINE, TASK, SOURCE_ID, IMAGE = range(4)


def _row(draft: InstanceDraft, task_name: str) -> tuple:
    return (draft.line, task_name, draft.source_id, draft.image_path, draft.input_text, as_json(draft.options),
            draft.raw_output, draft.human_preferred_output, stable_rkey(draft.task_name, draft.source_id),
            as_json(draft.provenance))


@dataclass
class Chunk:
    """What the reading side hands the writing side: rows to write, and what it refused or skipped on the way."""

    file: str
    rows: list[tuple] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # each row's line, once the rows have lost theirs
    datasets: dict[str, str] = field(default_factory=dict)  # task name -> its dataset's name
    rejections: list[Rejection] = field(default_factory=list)
    not_sampled: int = 0
    duplicates: int = 0  # already in the database before the import began
    images: dict[str, StoredImage] = field(default_factory=dict)  # by sha256: the rows' images, all stored
    images_stored: int = 0  # files this chunk added to the media store
    seen: int = 0  # records read so far, for progress


def read_chunks(path: Path, options: ImportOptions, parse: Parser, read: Reader = read_records) -> Iterator[Chunk]:
    """Reads, validates and samples the file; no database. Yields a chunk per `chunk_size` rows (and at
    least every PROGRESS_EVERY records, so that progress moves while a sample skips most of a file)."""
    plan = _sample_plan(path, parse, read, options.max_per_task, options.seed) if options.max_per_task else None
    ordinals: Counter[str] = Counter()
    names: dict[str, str] = {}  # one string object per task name: pickle sends it once a chunk
    chunk, since_last = Chunk(path.name), 0
    for seen, item in enumerate(read(path), start=1):
        chunk.seen, since_last = seen, since_last + 1
        if isinstance(item, BadLine):
            chunk.rejections.append(Rejection(item.file or path.name, item.line, item.field, item.reason))
        else:
            try:
                draft = parse(item.data, item.line)
            except FieldProblem as problem:
                chunk.rejections.append(Rejection(path.name, item.line, problem.field, problem.reason))
            else:
                ordinal = ordinals[draft.task_name]
                ordinals[draft.task_name] += 1
                if plan is None or plan.selected(draft.task_name, ordinal):
                    task_name = names.setdefault(draft.task_name, draft.task_name)
                    chunk.rows.append(_row(draft, task_name))
                    chunk.datasets[task_name] = draft.dataset_name
                else:
                    chunk.not_sampled += 1
        if len(chunk.rows) >= options.chunk_size or since_last >= PROGRESS_EVERY:
            yield chunk
            chunk, since_last = Chunk(path.name, seen=seen), 0
    yield chunk


def prepared_chunks(chunks: Iterator[Chunk], database_url: str, images: ImageIntake) -> Iterator[Chunk]:
    """The chunks without the rows the database already held when this began (looked up on a connection of
    its own, so it can run in another process), and with their images checked and stored: a row whose image
    is refused is a rejection, the others name their image by sha256. Closes `images`' pool and source when
    done (in the reading process, its own copy of them)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            existing_tasks = {name: task_id for name, task_id in connection.execute(select(Task.name, Task.id))}
        for chunk in chunks:
            if existing_tasks:
                chunk = _without_present(chunk, engine, existing_tasks)
            _take_images(chunk, images)
            yield chunk
    finally:
        images.close()
        engine.dispose()


def _without_present(chunk: Chunk, engine: Engine, existing_tasks: dict[str, int]) -> Chunk:
    wanted: dict[int, list[str]] = {}
    for row in chunk.rows:
        task_id = existing_tasks.get(row[TASK])
        if task_id is not None:
            wanted.setdefault(task_id, []).append(row[SOURCE_ID])
    if not wanted:
        return chunk
    with engine.connect() as connection:  # a short read: a long-lived snapshot would hold SQLite's WAL back
        present = {(task_id, source_id): stored for task_id, source_ids in wanted.items()
                   for source_id, stored in duplicates.stored_texts(connection, task_id, source_ids).items()}
    if present:
        kept = []
        for row in chunk.rows:
            stored = present.get((existing_tasks.get(row[TASK]), row[SOURCE_ID]))
            if stored is None:
                kept.append(row)
            elif fields := duplicates.differing(duplicates.texts(*row[IMAGE + 1:IMAGE + 5]), stored):
                chunk.rejections.append(Rejection(chunk.file, row[LINE], ",".join(fields),
                                                  duplicates.conflict_reason(row[TASK], row[SOURCE_ID], fields)))
            else:
                chunk.duplicates += 1
        chunk.rows = kept
    return chunk


def _take_images(chunk: Chunk, images: ImageIntake) -> None:
    """Checks and stores the rows' images, and makes each row what the writing side wants."""
    stored_before, rows, lines = images.stored, [], []
    taken = images.take_many(row[IMAGE] for row in chunk.rows if row[IMAGE] is not None)
    for row in chunk.rows:
        if row[IMAGE] is None:
            rows.append(row[1:])
            lines.append(row[LINE])
            continue
        image = taken[row[IMAGE]]
        if isinstance(image, ImageRejected):
            chunk.rejections.append(Rejection(chunk.file, row[LINE], "img_path", str(image)))
            continue
        chunk.images[image.sha256] = image
        rows.append((row[TASK], row[SOURCE_ID], image.sha256, *row[IMAGE + 1:]))
        lines.append(row[LINE])
    chunk.rows, chunk.lines = rows, lines
    chunk.images_stored = images.stored - stored_before


class _SamplePlan:
    """Which instances of each task to keep under --max-per-task: a seeded sample of ordinals, as bitmaps."""

    def __init__(self, counts: Counter[str], limit: int, seed: int):
        self.bitmaps: dict[str, bytearray] = {}
        for task, count in counts.items():
            if count > limit:
                bitmap = bytearray((count + 7) // 8)
                for ordinal in random.Random(f"{seed}:{task}").sample(range(count), limit):
                    bitmap[ordinal >> 3] |= 1 << (ordinal & 7)
                self.bitmaps[task] = bitmap

    def selected(self, task: str, ordinal: int) -> bool:
        bitmap = self.bitmaps.get(task)
        return bitmap is None or bool(bitmap[ordinal >> 3] & (1 << (ordinal & 7)))


def _sample_plan(path: Path, parse: Parser, read: Reader, limit: int, seed: int) -> _SamplePlan:
    counts: Counter[str] = Counter()
    for item in read(path):
        if isinstance(item, BadLine):
            continue
        try:
            counts[parse(item.data, item.line).task_name] += 1
        except FieldProblem:
            continue
    return _SamplePlan(counts, limit, seed)

