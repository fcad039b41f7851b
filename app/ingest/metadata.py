"""Source datasets and their tasks' metadata from a YAML or JSON file: all of it, or none of it.

    datasets:
      - name: GEOMETRY3K
        url: https://lupantech.github.io/inter-gps/
        licence: CC BY-NC-SA 4.0
        annotator: ada@lab.org            # a user's email
        citation: |
          @inproceedings{lu2021inter, ...}
        tasks:
          - name: GEOMETRY3K+geometry_question_answer
            group: question answering     # question answering | classification | generation
            category: Math
            description: Answer geometry questions about a diagram.

Datasets and tasks are matched by name: new ones are created, existing ones updated. Every problem is
reported with its line and field before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from app.core.validation_words import in_words
from app.ingest.record_files import MalformedFile
from app.ingest.unified import FieldProblem, task_and_dataset
from app.ingest.yaml_lines import EntriesRefused, line_of, load_with_lines
from app.models import TaskGroup, User
from app.schemas import DatasetIn, TaskMetadataIn
from app.services import datasets
from app.services import tasks as task_service


class MetadataInvalid(EntriesRefused):
    pass


@dataclass
class MetadataReport:
    datasets_created: list[str] = field(default_factory=list)
    datasets_updated: list[str] = field(default_factory=list)
    tasks_created: list[str] = field(default_factory=list)
    tasks_updated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"datasets: {len(self.datasets_created)} created, {len(self.datasets_updated)} updated; "
                f"tasks: {len(self.tasks_created)} created, {len(self.tasks_updated)} updated")

    def as_dict(self) -> dict:
        return {"summary": self.summary(), **vars(self)}


def load_metadata(path: Path) -> list[dict[str, Any]]:
    document = load_with_lines(path)
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), list):
        raise MalformedFile(path, 1, "the file must hold a `datasets:` list")
    return document["datasets"]


def apply_metadata(session: Session, *, path: Path, actor_id: int | None) -> MetadataReport:
    entries = load_metadata(path)
    users = {user.email: user.id for user in session.exec(select(User))}
    problems: list[str] = []
    plans = [_plan(path.name, entry, users, problems) for entry in entries]
    names = [plan[0].name for plan in plans if plan]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems += [f"{path.name}: datasets: {name} appears more than once" for name in repeated]
    if problems:
        raise MetadataInvalid(problems)
    report = MetadataReport()
    for dataset_in, tasks in plans:
        dataset, created = datasets.put_dataset(session, data=dataset_in, actor_id=actor_id)
        (report.datasets_created if created else report.datasets_updated).append(dataset.name)
        for values in tasks:
            name = values.pop("name")
            created = task_service.put_metadata(session, name=name, dataset_id=dataset.id, values=values,
                                                actor_id=actor_id)
            (report.tasks_created if created else report.tasks_updated).append(name)
    session.commit()
    return report


def _plan(file: str, entry: Any, users: dict[str, int], problems: list[str]):
    if not isinstance(entry, dict):
        problems.append(f"{file}: datasets: each entry must be a mapping")
        return None
    annotator = entry.get("annotator")
    if annotator is not None and (not isinstance(annotator, str) or annotator not in users):
        problems.append(f"{file}:{line_of(entry, 'annotator')}: annotator: no user with the email {annotator}")
    fields = {key: entry.get(key) for key in ("name", "url", "citation", "licence", "notes")}
    try:
        dataset = DatasetIn(**fields, annotator_id=users.get(annotator) if isinstance(annotator, str) else None)
    except ValidationError as error:
        _report(file, entry, error, problems)
        return None
    listed = entry.get("tasks") or []
    if not isinstance(listed, list):
        problems.append(f"{file}:{line_of(entry, 'tasks')}: tasks: must be a list of tasks")
        return None
    tasks = []
    for task in listed:
        if not isinstance(task, dict) or not isinstance(task.get("name"), str):
            where = line_of(task) if isinstance(task, dict) else line_of(entry, "tasks")
            problems.append(f"{file}:{where}: tasks: each task needs a name")
            continue
        try:
            name, _ = task_and_dataset(dataset.name, task["name"])
        except FieldProblem as problem:
            problems.append(f"{file}:{line_of(task, 'name')}: name: {problem.reason}")
            continue
        if not name.startswith(dataset.name + "+"):
            problems.append(f"{file}:{line_of(task, 'name')}: name: {name} does not belong to {dataset.name}")
        try:
            values = TaskMetadataIn(task_group=task.get("group", TaskGroup.question_answering),
                                    category=task.get("category"), description=task.get("description"),
                                    lock_version=0)
        except ValidationError as error:
            _report(file, task, error, problems, names={"task_group": "group"})
            continue
        tasks.append({"name": name, **values.model_dump(include={"task_group", "category", "description"})})
    return dataset, tasks


def _report(file: str, entry: dict, error: ValidationError, problems: list[str],
            names: dict[str, str] | None = None) -> None:
    for problem in error.errors():
        key = str(problem["loc"][0]) if problem["loc"] else "entry"
        key = (names or {}).get(key, key)
        problems.append(f"{file}:{line_of(entry, key)}: {key}: {in_words(problem)}")
