"""Filling a migrated database with Vision-Flan-scale tasks and instances for the benches, fast (Core bulk
inserts, no importer): realistic records by default (bench/realistic.py: an image per instance, distinct for
the first 200,000; input text of a few hundred characters with a long tail; options in a third of the tasks),
or with `thin=True` the records the benches used before (no image, no input, no options, output "a"), so that
old and new figures can be compared. Given `media`, the images' files are written into that media store, as
an export needs them."""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlmodel import Session

from app.core.storage import MediaStore
from app.models import Image, Instance, Task, TaskStatus, utcnow
from app.services.tasks import refresh_instance_counts
from bench import realistic

CATEGORIES = ["Perception", "OCR", "Counting", "Reasoning", "Science", "Charts", "Captioning"]
GROUPS = ["question answering", "classification", "generation"]
BATCH = 50_000


def task_name(k: int) -> str:
    return f"DATASET{k // 2:03d}+task_{k:03d}"


def fill(url: str, tasks: int, instances: int, seed: int, *, media: Path | None = None, thin: bool = False) -> None:
    engine = create_engine(url)
    now = utcnow()
    started = time.perf_counter()
    statuses = list(TaskStatus)
    with engine.begin() as connection:
        connection.execute(insert(Task.__table__), [
            {"name": task_name(k), "task_group": GROUPS[k % 3], "category": CATEGORIES[k % 7],
             "status": statuses[k % len(statuses)], "lock_version": 1, "created_at": now, "updated_at": now}
            for k in range(tasks)])
        task_ids = [row[0] for row in connection.execute(text("select id from task order by id"))]
    per_task = instances // tasks
    image_ids = [] if thin else _images(engine, min(realistic.DISTINCT_IMAGES, per_task * tasks), seed, media)
    rng, content = random.Random(seed), realistic.Records(seed)
    batch, done = [], 0
    for t, task_id in enumerate(task_ids):
        for k in range(per_task):
            row = {"task_id": task_id, "source_id": str(k), "raw_output": "a", "split": "train",
                   "status": "active" if k % 50 else "flagged", "rkey": rng.getrandbits(31), "created_at": now}
            if not thin:
                options = content.options(t)
                row.update(image_id=image_ids[done % len(image_ids)], input_text=content.input_text(t),
                           options=options, raw_output=content.target(options))
            batch.append(row)
            if len(batch) == BATCH:
                done += _flush(engine, Instance, batch)
                print(f"\r  inserted {done:,} / {per_task * tasks:,} instances", end="", file=sys.stderr)
    done += _flush(engine, Instance, batch)
    with Session(engine) as session:
        refresh_instance_counts(session, task_ids=task_ids)
        session.commit()
    os.sync()  # what the fill wrote is on disk before anything is timed (or a bench's first fsync waits for it)
    elapsed = time.perf_counter() - started
    print(f"\r  inserted {done:,} {'thin' if thin else 'realistic'} instances in {elapsed:.1f} s "
          f"({done / elapsed:,.0f}/s)", file=sys.stderr)
    engine.dispose()


def _images(engine, count: int, seed: int, media: Path | None) -> list[int]:
    """`count` distinct small JPEGs: their rows, and their files when `media` is given; returns their ids."""
    store = MediaStore(media) if media is not None else None
    rng, now, batch = random.Random(f"images:{seed}"), utcnow(), []
    for number in range(count):
        data = realistic.image_bytes(number, rng)
        sha256 = hashlib.sha256(data).hexdigest()
        if store is not None:
            store.put_new(sha256, data)
        batch.append({"sha256": sha256, "width": realistic.IMAGE_SIZE[0], "height": realistic.IMAGE_SIZE[1],
                      "format": "jpeg", "bytes": len(data), "created_at": now})
        if len(batch) == BATCH:
            _flush(engine, Image, batch)
    _flush(engine, Image, batch)
    if store is not None:
        store.make_durable()
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("select id from image order by id"))]


def _flush(engine, model, batch: list[dict]) -> int:
    if not batch:
        return 0
    with engine.begin() as connection:
        connection.execute(insert(model.__table__), batch)
    count = len(batch)
    batch.clear()
    return count
