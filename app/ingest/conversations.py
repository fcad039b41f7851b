"""Stage-2 conversation pools: LLaVA-Instruct-style multi-turn records, imported as they are.

    {"id", "image" (relative to the image root; absent for text-only),
     "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": "..."}, ...]}

LLaVA-Instruct ids repeat (they are COCO image ids), so a record's key in its pool is its position in
the file: re-running an import skips what is there and adds the rest. Records the LLaVA trainer would
silently mask or crash on are refused here, each with its line and reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from app.core.storage import Media
from app.ingest.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageRejected
from app.ingest.intake import ImageIntake
from app.ingest.record_files import BadLine, read_records
from app.ingest.report import ImportReport
from app.ingest.unified import FieldProblem, source_id, within_limit
from app.models import ConversationItem, ConversationKind, ConversationPool, utcnow
from app.qc.conversation_shape import shape_problem
from app.services import audit
from app.services.bulk_rows import get_or_create, insert_conversation_items, stable_rkey
from app.services.synthesis.store import SYNTHESIZED

CHUNK = 2_000


class PoolRefused(ValueError):
    """The pool named cannot take an imported file."""


@dataclass(frozen=True, slots=True)
class ConversationDraft:
    line: int
    position: int
    source_id: str | None
    image_path: str | None
    conversations: list[dict[str, str]]


def parse_conversation(data: Any, line: int, position: int) -> ConversationDraft:
    if not isinstance(data, dict):
        raise FieldProblem("record", f"must be a JSON object, not {type(data).__name__}")
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise FieldProblem("image", "must be one relative path (a string), or absent")
    turns = data.get("conversations")
    problem = shape_problem(turns, has_image=image is not None)
    if problem:
        raise FieldProblem("conversations", problem)
    cleaned = [{"from": turn["from"], "value": within_limit(turn["value"], "conversations")} for turn in turns]
    raw_id = data.get("id")
    return ConversationDraft(line, position, None if raw_id is None else source_id(raw_id, field="id"), image, cleaned)


@dataclass(frozen=True)
class PoolOptions:
    pool: str
    image_root: Path | None = None
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    kind: str | None = None  # a ConversationKind; default: from the file's name, as LLaVA-Instruct names its three


def kind_of_file(name: str) -> str | None:
    """LLaVA-Instruct's files say their kind: conversation_58k, detail_23k, complex_reasoning_77k."""
    lowered = name.lower()
    return next((kind.value for kind in ConversationKind if lowered.startswith(kind.value)), None)


class ConversationImporter:
    def __init__(self, engine: Engine, media: Media, options: PoolOptions, *, actor_id: int | None = None,
                 on_progress: Callable[[int], None] | None = None):
        self.engine, self.options, self.actor_id = engine, options, actor_id
        self.on_progress = on_progress or (lambda seen: None)
        self.images = ImageIntake(media, options.image_root, max_bytes=options.max_image_bytes,
                                  max_pixels=options.max_image_pixels)

    def run(self, path: Path) -> ImportReport:
        try:
            return self._run(path)
        finally:
            self.images.close()

    def _run(self, path: Path) -> ImportReport:
        started = time.perf_counter()
        report = ImportReport(source=path.name)
        with self.engine.begin() as connection:
            pool_id = get_or_create(connection, ConversationPool, "name", self.options.pool, {
                "source": path.name, "image_root": str(self.options.image_root or "") or None,
                "created_by_id": self.actor_id, "created_at": utcnow()})
            if connection.execute(select(ConversationPool.source).where(ConversationPool.id == pool_id)).scalar() \
                    == SYNTHESIZED:
                raise PoolRefused(f"pool {self.options.pool!r} holds synthesized conversations: import the file into "
                                  "a pool of its own")
        kind = self.options.kind or kind_of_file(path.name)
        chunk: list[ConversationDraft] = []
        position = 0
        for item in read_records(path):
            if isinstance(item, BadLine):
                report.reject(path.name, item.line, "record", item.reason)
                position += 1
                continue
            try:
                chunk.append(parse_conversation(item.data, item.line, position))
            except FieldProblem as problem:
                report.reject(path.name, item.line, problem.field, problem.reason)
            position += 1
            if len(chunk) >= CHUNK:
                self._write(pool_id, path.name, chunk, report, kind)
                chunk = []
                self.on_progress(position)
        self._write(pool_id, path.name, chunk, report, kind)
        report.images_stored = self.images.stored
        report.seconds = round(time.perf_counter() - started, 3)
        with self.engine.begin() as connection:
            audit.record_on(connection, actor_id=self.actor_id, action="import.conversations",
                            entity_type="conversation_pool", entity_id=pool_id, after=report.counts())
        return report

    def _write(self, pool_id: int, file: str, drafts: list[ConversationDraft], report: ImportReport,
               kind: str | None) -> None:
        if not drafts:
            return
        with self.engine.begin() as connection:
            present = set(connection.execute(select(ConversationItem.position).where(
                ConversationItem.pool_id == pool_id,
                ConversationItem.position.between(drafts[0].position, drafts[-1].position))).scalars())
            rows = []
            for draft in drafts:
                if draft.position in present:
                    report.duplicates += 1
                    continue
                image_id = None
                if draft.image_path is not None:
                    image = self.images.take(draft.image_path)
                    if isinstance(image, ImageRejected):
                        report.reject(file, draft.line, "image", str(image))
                        continue
                    image_id = self.images.image_id(connection, image)
                rows.append({"pool_id": pool_id, "position": draft.position, "source_id": draft.source_id,
                             "image_id": image_id, "conversations": draft.conversations, "kind": kind,
                             "rkey": stable_rkey(self.options.pool, draft.position)})
            if rows:
                self.images.make_durable()  # before the rows that point at the images commit
                insert_conversation_items(connection, rows)
            report.imported += len(rows)
