"""Records whose key (task, instance id) is already taken. One whose content is the same is an exact
duplicate: counted and skipped, as a re-run or a resumed import expects. One whose content differs is a
conflict: refused by line, naming its key and the fields that differ, and the stored record is kept.

Two places find them. The reading side looks up the keys the database held before the import began, and
compares the text fields (not the image: a resumed import must not read every image again). The writing
side learns from the insert that a chunk held keys taken earlier in the same import (or twice in the chunk),
and compares those rows, image included, with what was stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from app.models import Instance

TEXT_FIELDS = ("input_text", "options", "raw_output", "human_preferred_output")
IN_CLAUSE = 500  # keys per IN (...) lookup on SQLite


def stored_texts(connection: Connection, task_id: int, source_ids: list[str]) -> dict[str, tuple]:
    """The TEXT_FIELDS of those of `source_ids` the task already has, by source id. On PostgreSQL one array
    parameter, planned afresh each time (prepare=False): a generic plan cached while the table was small
    would scan the whole table for every lookup once it is large, which made resuming a big import crawl."""
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        cursor.execute(f"SELECT source_id, {', '.join(TEXT_FIELDS)} FROM instance "
                       "WHERE task_id = %s AND source_id = ANY(%s)", (task_id, source_ids), prepare=False)
        return {row[0]: row[1:] for row in cursor.fetchall()}
    found: dict[str, tuple] = {}
    columns = [getattr(Instance, name) for name in TEXT_FIELDS]
    for start in range(0, len(source_ids), IN_CLAUSE):
        batch = source_ids[start:start + IN_CLAUSE]
        found.update((row[0], tuple(row[1:])) for row in connection.execute(
            select(Instance.source_id, *columns).where(Instance.task_id == task_id, Instance.source_id.in_(batch))))
    return found


def texts(input_text: str | None, options_json: str | None, raw_output: str,
          human_preferred_output: str | None) -> tuple:
    """An incoming row's TEXT_FIELDS as the database gives them back (options parsed)."""
    options = None if options_json is None else orjson.loads(options_json)
    return input_text, options, raw_output, human_preferred_output


def differing(incoming: tuple, stored: tuple, names: tuple[str, ...] = TEXT_FIELDS) -> list[str]:
    return [name for name, mine, theirs in zip(names, incoming, stored, strict=True) if mine != theirs]


def conflict_reason(task_name: str, source_id: str, fields: list[str]) -> str:
    return (f"instance {source_id!r} of {task_name} is already stored with a different {', '.join(fields)}; "
            "the stored record was kept")


def last_instance_id(connection: Connection) -> int:
    """Rows inserted after this call have larger ids: how the writing side tells its own rows apart."""
    return int(connection.execute(select(func.coalesce(func.max(Instance.id), 0))).scalar_one())


def skipped_conflicts(connection: Connection, values: list[tuple], last_id: int) -> Iterable[tuple[int, list[str]]]:
    """For rows just inserted with ON CONFLICT DO NOTHING (tuples in bulk.COLUMNS order), after rows with ids up
    to `last_id` existed: (index, differing fields) of each row that was skipped and differs from the stored one."""
    wanted: dict[int, list[str]] = {}
    for value in values:
        wanted.setdefault(value[0], []).append(value[1])
    stored: dict[tuple[int, str], Any] = {}
    for task_id, source_ids in wanted.items():
        for start in range(0, len(source_ids), IN_CLAUSE):
            batch = source_ids[start:start + IN_CLAUSE]
            for row in connection.execute(select(
                    Instance.id, Instance.source_id, Instance.image_id, Instance.input_text, Instance.options,
                    Instance.raw_output, Instance.human_preferred_output).where(
                    Instance.task_id == task_id, Instance.source_id.in_(batch))):
                stored[task_id, row.source_id] = row
    seen: set[tuple[int, str]] = set()
    for index, (task_id, source_id, image_id, input_text, options, raw_output, preferred, *_) in enumerate(values):
        key = (task_id, source_id)
        row = stored[key]
        if row.id > last_id and key not in seen:  # the first of its key in the chunk, and it was inserted
            seen.add(key)
            continue
        seen.add(key)
        fields = differing((image_id, *texts(input_text, options, raw_output, preferred)),
                           (row.image_id, row.input_text, row.options, row.raw_output, row.human_preferred_output),
                           ("image", *TEXT_FIELDS))
        if fields:
            yield index, fields
