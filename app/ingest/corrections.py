"""Fixes from a file: a team's corrections list, proposed as revisions for a second person to accept.

    instance_id,task,source_id,field,value,reason            (CSV, a header row; or JSONL with these keys)
    123,,,raw_output,airplane,spelling
    ,VQAv2+vqa,vqa-0001,raw_output,2,counted again
    ,VQAv2+vqa,vqa-0001,options,"[""1"", ""2"", ""3""]",the options were cut

A row changes one field of one instance, named by its id or by task and source id: input_text, options (a JSON
list, or empty for none), raw_output, human_preferred_output (empty clears it) or split. An instance's rows are
one fix; its reasons are joined. All or nothing: every problem is listed with its line (an unknown instance or
field, a value the Correct form would refuse, a target outside its options, a fix already waiting, an instance
whose target the person may not see while a blind solve test runs), and only a file without any is proposed,
in one transaction."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from app.core import access
from app.core.failures import AppError
from app.core.validation_words import in_words
from app.ingest.record_files import BadLine, MalformedFile, read_records
from app.ingest.yaml_lines import EntriesRefused
from app.models import Instance, RevisionOrigin, Task
from app.schemas.revisions import EDITABLE, InstanceFixIn
from app.services import blinding, instance_revisions, users
from app.services.revisions import Origin

COLUMNS = ("instance_id", "task", "source_id", "field", "value", "reason")
MAX_ROWS = 100_000  # a file is one transaction; a bigger change is a bulk fix


class CorrectionsInvalid(EntriesRefused):
    pass


@dataclass
class CorrectionsReport:
    file: str
    proposed: list[int] = field(default_factory=list)  # revision ids
    instances: int = 0

    def summary(self) -> str:
        return f"{self.file}: {len(self.proposed):,} fixes proposed for a second person to accept"

    def as_dict(self) -> dict:
        return {"summary": self.summary(), "proposed": self.proposed, "instances": self.instances}


@dataclass
class _Row:
    line: int
    data: dict[str, Any]


def import_corrections(session: Session, *, path: Path, actor_id: int | None) -> CorrectionsReport:
    if actor_id is None:
        raise CorrectionsInvalid([f"{path.name}: a fix needs its author: name one (--author)"])
    rows = _rows(path)
    problems: list[str] = []
    fixes = _group(session, path.name, rows, problems)
    waiting = instance_revisions.waiting_fixes(session, instance_ids=[instance.id for instance, _ in fixes])
    problems += [f"{path.name}:{lines[0].line}: a fix of this instance is already waiting for review "
                 f"(#{waiting[instance.id]})" for instance, lines in fixes if instance.id in waiting]
    may_solve = access.REVIEWERS.allows(frozenset(users.roles_of(session, actor_id)))  # as the pages decide it
    blindfold = blinding.for_user(session, user_id=actor_id, may_solve=may_solve)
    report = CorrectionsReport(path.name, instances=len(fixes))
    for instance, lines in fixes:
        if instance.id in waiting:
            continue
        where = f"{path.name}:{lines[0].line}"
        values: dict[str, Any] = {}
        for row in lines:
            values[row.data["field"]] = _value(row.data["field"], row.data.get("value"))
        reason = "; ".join(dict.fromkeys(str(row.data.get("reason") or "").strip() for row in lines)).strip("; ")
        try:
            data = InstanceFixIn(lock_version=instance.lock_version, reason=reason or "from a corrections file",
                                 **values)
        except ValidationError as error:
            problems += [f"{where}: {problem['loc'][0] if problem['loc'] else 'row'}: "
                         f"{in_words(problem)}" for problem in error.errors()]
            continue
        try:
            revision = instance_revisions.propose_fix(
                session, instance_id=instance.id, data=data, author_id=actor_id, blindfold=blindfold, commit=False,
                origin=Origin(RevisionOrigin.file, None, {"file": path.name, "line": lines[0].line}))
        except AppError as error:
            fields = ", ".join(error.fields or {})
            problems.append(f"{where}: {fields + ': ' if fields else ''}{error.message}")
            continue
        report.proposed.append(revision.id)
    if problems:
        session.rollback()
        raise CorrectionsInvalid(problems)
    session.commit()
    return report


def _rows(path: Path) -> list[_Row]:
    if path.suffix.lower() == ".csv":
        return _csv_rows(path)
    rows = []
    for record in read_records(path):
        if isinstance(record, BadLine):
            raise MalformedFile(path, record.line, record.reason)
        if not isinstance(record.data, dict):
            raise MalformedFile(path, record.line, "each line must be a JSON object")
        rows.append(_Row(record.line, record.data))
        _refuse_too_many(path, rows)
    return rows


def _csv_rows(path: Path) -> list[_Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedFile(path, 1, "the file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"field", "value"} - set(reader.fieldnames or ())
    if missing:
        raise MalformedFile(path, 1, f"the header must name the columns {', '.join(COLUMNS)} (missing: "
                                     f"{', '.join(sorted(missing))})")
    rows = []
    for data in reader:
        rows.append(_Row(reader.line_num, {key: value for key, value in data.items() if key}))
        _refuse_too_many(path, rows)
    if not rows:
        raise MalformedFile(path, 1, "the file holds no corrections")
    return rows


def _refuse_too_many(path: Path, rows: list) -> None:
    if len(rows) > MAX_ROWS:
        raise MalformedFile(path, rows[-1].line, f"more than {MAX_ROWS:,} corrections: propose a bulk fix instead")


def _group(session: Session, file: str, rows: list[_Row], problems: list[str]) -> list[tuple[Instance, list[_Row]]]:
    """Each row's instance, found by id or by task and source id; an instance's rows together."""
    by_id = {instance.id: instance for instance in session.exec(select(Instance).where(Instance.id.in_(
        {int(row.data["instance_id"]) for row in rows if str(row.data.get("instance_id") or "").isdigit()})))}
    named = defaultdict(set)
    for row in rows:
        if row.data.get("task") and row.data.get("source_id"):
            named[str(row.data["task"])].add(str(row.data["source_id"]))
    by_name: dict[tuple[str, str], Instance] = {}
    for task_name, source_ids in named.items():
        for found, task in session.exec(select(Instance, Task.name).join(Task, Task.id == Instance.task_id).where(
                Task.name == task_name, Instance.source_id.in_(source_ids))):
            by_name[(task, found.source_id)] = found
    fixes: dict[int, tuple[Instance, list[_Row]]] = {}
    seen: dict[tuple[int | None, str], int] = {}
    instance: Instance | None
    for row in rows:
        where, data = f"{file}:{row.line}", row.data
        if data.get("field") not in EDITABLE:
            problems.append(f"{where}: field: {data.get('field')!r} is not one of {', '.join(EDITABLE)}")
            continue
        if str(data.get("instance_id") or "").strip():
            key = str(data["instance_id"]).strip()
            instance = by_id.get(int(key)) if key.isdigit() else None
            if instance is None:
                problems.append(f"{where}: instance_id: no instance {key}")
                continue
        else:
            instance = by_name.get((str(data.get("task") or ""), str(data.get("source_id") or "")))
            if instance is None:
                problems.append(f"{where}: source_id: no instance {data.get('source_id')!r} in task "
                                f"{data.get('task')!r} (name an instance by instance_id, or by task and source_id)")
                continue
        if (instance.id, data["field"]) in seen:
            problems.append(f"{where}: field: {data['field']} of this instance is changed on line "
                            f"{seen[(instance.id, data['field'])]} already")
            continue
        seen[(instance.id, data["field"])] = row.line
        fixes.setdefault(instance.id, (instance, []))[1].append(row)
    return list(fixes.values())


def _value(name: str, value: Any) -> Any:
    """A cell as the field takes it: options as a JSON list (empty: none), an emptied optional text cleared."""
    if name == "options":
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # the schema says what is wrong with it
        return value
    if name in ("input_text", "human_preferred_output") and value == "":
        return None
    return value

