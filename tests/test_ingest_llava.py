"""Importing released Vision-Flan / LLaVA training records back into tasks and instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlmodel import select

from app.ingest.importer import ImportOptions, InstanceImporter
from app.models import AuditEvent, Instance, Task
from app.storage import MediaStore


def conversation(human: str, gpt: str) -> list[dict]:
    return [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]


def released(k: int, **fields) -> dict:
    base = {"id": 1000 + k, "image": "coco/a.jpg", "task_name": "VQA-E+image_question_answer",
            "conversations": conversation("<image>\nWhat is on the table? Answer briefly.", f"a cup {k}")}
    return {**base, **fields}


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    (tmp_path / "imgs" / "coco").mkdir(parents=True)
    PILImage.new("RGB", (16, 16), "blue").save(tmp_path / "imgs" / "coco" / "a.jpg")
    return tmp_path / "imgs"


def run(app, settings, image_root, rows, tmp_path):
    path = tmp_path / "released.json"
    path.write_text(json.dumps(rows))
    importer = InstanceImporter(app.state.engine, MediaStore(settings.media_dir), ImportOptions(image_root=image_root),
                                file_format="llava")
    return importer.run(path)


def test_released_records_become_instances_of_their_tasks(app, db, settings, image_root, tmp_path):
    rows = [released(k) for k in range(3)]
    rows.append({"id": "t1", "task_name": "TEXT+summarise", "note": "kept",
                 "conversations": conversation("Summarise: the cat sat.", "A cat sat.")})
    report = run(app, settings, image_root, rows, tmp_path)
    assert (report.imported, report.rejected_count) == (4, 0)
    assert sorted(report.tasks_created) == ["TEXT+summarise", "VQA-E+image_question_answer"]
    first = db.exec(select(Instance).where(Instance.source_id == "1000")).one()
    assert first.input_text == "What is on the table? Answer briefly."  # <image> token removed
    assert first.raw_output == "a cup 0" and first.image_id is not None and first.options is None
    text_only = db.exec(select(Instance).where(Instance.source_id == "t1")).one()
    assert text_only.image_id is None and text_only.provenance == {"format": "llava", "note": "kept"}
    assert db.exec(select(Task.instance_count).where(Task.name == "VQA-E+image_question_answer")).one() == 3
    assert db.exec(select(AuditEvent.action).where(AuditEvent.entity_type == "import")).one() == "import.llava"
    again = run(app, settings, image_root, rows, tmp_path)
    assert (again.imported, again.duplicates) == (0, 4)


@pytest.mark.parametrize(("row", "field", "reason"), [
    (released(1, task_name="no_dataset_prefix"), "task_name", "DATASET+task"),
    (released(2, id=None), "id", "is required"),
    (released(3, image=""), "image", "one relative path"),
    (released(4, conversations=conversation("<image>\nQ?", "A") * 2), "conversations", "one human turn"),
    (released(5, conversations=[{"from": "gpt", "value": "A"}, {"from": "human", "value": "Q"}]),
     "conversations", "turns must go human, gpt"),
    (released(6, conversations=conversation("<image>", "A")), "conversations", "human turn is empty"),
    (released(7, conversations=conversation("Q?", "  ")), "conversations", "gpt turn is empty"),
    (released(8, conversations=conversation("Q?", "<image> A")), "conversations", "gpt turn contains"),
    (released(9, image="../escape.jpg"), "img_path", "outside the image root"),
])
def test_malformed_released_records_are_rejected(app, db, settings, image_root, tmp_path, row, field, reason):
    report = run(app, settings, image_root, [released(0), row], tmp_path)
    assert report.imported == 1 and report.rejected_count == 1
    rejection = report.rejected[0]
    assert (rejection.line, rejection.field) == (1, field) and reason in rejection.reason
