"""Dataset and task metadata from YAML: created or updated by name, every problem named, or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from app.ingest.metadata import MetadataInvalid, apply_metadata
from app.ingest.record_files import MalformedFile
from app.models import AuditEvent, Role, SourceDataset, Task
from tests.factories import make_task, make_user

GOOD = """\
datasets:
  - name: GEOMETRY3K
    url: https://lupantech.github.io/inter-gps/
    licence: CC BY-NC-SA 4.0
    annotator: ada@lab.org
    citation: |
      @inproceedings{lu2021inter,
        title={Inter-GPS}}
    tasks:
      - name: GEOMETRY3K+geometry_question_answer
        group: question answering
        category: Math
        description: Answer geometry questions about a diagram.
      - name: diagram_classification
        group: classification
  - name: TextVQA
    tasks: []
"""


def write(tmp_path: Path, text: str, name: str = "meta.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_datasets_and_tasks_are_created_then_updated(db, tmp_path):
    annotator = make_user(db, Role.author, email="ada@lab.org")
    existing = make_task(db, "GEOMETRY3K+geometry_question_answer", instances=2)
    report = apply_metadata(db, path=write(tmp_path, GOOD), actor_id=None)
    assert report.datasets_created == ["GEOMETRY3K", "TextVQA"]
    assert report.tasks_created == ["GEOMETRY3K+diagram_classification"]
    assert report.tasks_updated == ["GEOMETRY3K+geometry_question_answer"]
    dataset = db.exec(select(SourceDataset).where(SourceDataset.name == "GEOMETRY3K")).one()
    assert dataset.annotator_id == annotator.id and dataset.citation.startswith("@inproceedings")
    db.refresh(existing)
    assert (existing.category, existing.task_group, existing.source_dataset_id) == ("Math", "question answering",
                                                                                   dataset.id)
    assert existing.instance_count == 2 and existing.lock_version == 2
    again = apply_metadata(db, path=write(tmp_path, GOOD.replace("category: Math", "category: Geometry")),
                           actor_id=annotator.id)
    assert again.datasets_updated == ["GEOMETRY3K", "TextVQA"] and again.tasks_created == []
    db.refresh(existing)
    assert existing.category == "Geometry"
    update = db.exec(select(AuditEvent).where(AuditEvent.action == "task.update",
                                              AuditEvent.entity_id == str(existing.id))
                     .order_by(AuditEvent.id.desc())).first()
    assert update.before["category"] == "Math" and update.after["category"] == "Geometry"
    assert update.actor_id == annotator.id


def test_json_files_work_too(db, tmp_path):
    report = apply_metadata(db, path=write(tmp_path, '{"datasets": [{"name": "VQA", "tasks": [{"name": "vqa"}]}]}',
                                           "meta.json"), actor_id=None)
    assert report.tasks_created == ["VQA+vqa"]


def test_every_problem_is_named_with_its_line_and_nothing_is_written(db, tmp_path):
    bad = """\
datasets:
  - name: GEO+METRY
  - name: CHARTS
    annotator: nobody@lab.org
    url: ftp://charts
    tasks:
      - name: OTHER+chart_qa
      - name: chart_kind
        group: regression
      - category: Charts
  - name: TextVQA
  - name: TextVQA
"""
    with pytest.raises(MetadataInvalid) as error:
        apply_metadata(db, path=write(tmp_path, bad), actor_id=None)
    problems = error.value.problems
    assert "meta.yaml:2: name: must be non-empty and contain neither '+' nor '/'" in problems
    assert "meta.yaml:4: annotator: no user with the email nobody@lab.org" in problems
    assert "meta.yaml:5: url: must start with http:// or https://" in problems
    assert "meta.yaml: datasets: TextVQA appears more than once" in problems
    assert db.exec(select(SourceDataset)).all() == [] and db.exec(select(Task)).all() == []


def test_task_problems_point_at_the_task(db, tmp_path):
    bad = """\
datasets:
  - name: CHARTS
    tasks:
      - name: OTHER+chart_qa
      - name: chart_kind
        group: regression
      - category: Charts
"""
    with pytest.raises(MetadataInvalid) as error:
        apply_metadata(db, path=write(tmp_path, bad), actor_id=None)
    assert error.value.problems == [
        "meta.yaml:4: name: OTHER+chart_qa does not belong to CHARTS",
        "meta.yaml:6: group: must be one of question answering, classification or generation",
        "meta.yaml:7: tasks: each task needs a name",  # the task's mapping starts there
    ]


def test_unreadable_files_say_where(db, tmp_path):
    """A file that cannot be read at all is a MalformedFile (the CLI's exit 2), not refused entries (exit 1)."""
    with pytest.raises(MalformedFile, match=r"meta.yaml:3: not valid YAML"):
        apply_metadata(db, path=write(tmp_path, "datasets:\n  - name: A\n   bad: [unclosed\n"), actor_id=None)
    with pytest.raises(MalformedFile, match="must hold a `datasets:` list"):
        apply_metadata(db, path=write(tmp_path, "- just a list\n"), actor_id=None)


def test_values_of_the_wrong_shape_are_refused_by_line_not_a_traceback(db, tmp_path):
    """Found by fuzzing (tests/test_fuzz_importers.py): each of these was a TypeError or a database error."""
    bad = """\
datasets:
  - name: A
    annotator: [ada@lab.org]
    tasks:
      - name: t
        group: [classification]
      - name: u
        description: {long: text}
      - name: "v\\0w"
  - name: B
    tasks: 5
"""
    with pytest.raises(MetadataInvalid) as error:
        apply_metadata(db, path=write(tmp_path, bad), actor_id=None)
    problems = error.value.problems
    assert problems[0] == "meta.yaml:3: annotator: no user with the email ['ada@lab.org']"
    assert problems[1].startswith("meta.yaml:6: group: must be one of")
    assert problems[2] == "meta.yaml:8: description: must be text"
    assert problems[3].startswith("meta.yaml:9: name: contains a NUL character")
    assert problems[4] == "meta.yaml:11: tasks: must be a list of tasks"
    assert db.exec(select(SourceDataset)).all() == []
