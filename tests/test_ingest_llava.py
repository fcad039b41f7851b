"""Importing released Vision-Flan / LLaVA training records back into tasks and instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.importer import ImportOptions, InstanceImporter
from app.ingest.record_files import MalformedFile
from app.ingest.requests import request_model
from app.models import AuditEvent, Instance, Instruction, Task
from app.prompts.rendering import InstructionSpec
from app.prompts.specs import render_instance


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


def import_released(app, settings, path: Path, image_root: Path, **fields):
    """Through the request the CLI, the browser and the worker use."""
    wanted = request_model("llava")(format="llava", file=str(path), image_root=str(image_root), **fields)
    return wanted.run(engine=app.state.engine, media=MediaStore(settings.media_dir), located=wanted.locate(None),
                      actor_id=None)


VQA_INSTRUCTION = "Look at the image and answer the question in one or two words."
QUESTIONS = ["What is on the table?", "What colour is the cup?", "Where is the cup?", "What is this?"]


def vision_flan_rows() -> list[dict]:
    rows = [released(k, conversations=conversation(f"<image>\n{VQA_INSTRUCTION}\nQuestion: {q}", f"answer {k}"))
            for k, q in enumerate(QUESTIONS)]
    rows += [released(10 + k, task_name="COCO+caption", conversations=conversation(
        "<image>\nWrite a short caption for the image.", f"caption {k}")) for k in range(3)]
    rows += [released(20 + k, task_name="FEW+pairs", conversations=conversation(
        f"<image>\nCompare the two objects. Object {k}.", "same")) for k in range(2)]  # too few to tell
    return rows


def test_each_tasks_shared_instruction_is_taken_out_of_the_input_and_becomes_its_imported_draft(
        app, db, settings, image_root, tmp_path):
    path = tmp_path / "released.json"
    path.write_text(json.dumps(vision_flan_rows()))
    report = import_released(app, settings, path, image_root)
    assert (report.imported, report.rejected_count) == (9, 0)
    assert report.instructions_separated == {"VQA-E+image_question_answer": VQA_INSTRUCTION,
                                             "COCO+caption": "Write a short caption for the image."}
    inputs = dict(db.exec(select(Instance.source_id, Instance.input_text)).all())
    assert inputs["1000"] == "Question: What is on the table?"  # cut at the line break, not inside "Question: "
    assert inputs["1010"] is None  # the whole prompt was the instruction
    assert inputs["1020"] == "Compare the two objects. Object 0."  # two records: left as they came
    drafts = dict(db.exec(select(Task.name, Instruction.draft_text).join(Task)
                          .where(Instruction.label == "imported")).all())
    assert drafts == {"VQA-E+image_question_answer": VQA_INSTRUCTION,
                      "COCO+caption": "Write a short caption for the image."}

    # Exported with that instruction, each record carries it once.
    instance = db.exec(select(Instance).where(Instance.source_id == "1000")).one()
    rendered, problem = render_instance(InstructionSpec(text=VQA_INSTRUCTION), instance, has_image=True)
    assert problem is None and rendered.prompt.count(VQA_INSTRUCTION) == 1
    assert rendered.prompt == f"<image>\n{VQA_INSTRUCTION}\n\nQuestion: What is on the table?"

    again = import_released(app, settings, path, image_root)  # the same cut again: duplicates, no conflicts
    assert (again.imported, again.duplicates, again.rejected_count, again.tasks_given_instructions) == (0, 9, 0, [])


def test_an_instruction_file_names_what_to_cut(app, db, settings, image_root, tmp_path):
    path = tmp_path / "released.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in vision_flan_rows()))
    given = tmp_path / "instructions.yaml"
    given.write_text("- task: FEW+pairs\n  instruction: Compare the two objects.\n"
                     "- task: VQA-E+image_question_answer\n  instruction: Answer in a word.\n")  # not what they say
    report = import_released(app, settings, path, image_root, instruction_file=str(given))
    inputs = dict(db.exec(select(Instance.source_id, Instance.input_text)).all())
    assert inputs["1020"] == "Object 0." and inputs["1021"] == "Object 1."
    assert inputs["1000"].startswith(VQA_INSTRUCTION)  # a record that does not start with it keeps its text
    assert inputs["1010"] == "Write a short caption for the image."  # no instruction given for its task
    assert sorted(report.tasks_given_instructions) == ["FEW+pairs", "VQA-E+image_question_answer"]
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    with pytest.raises(MalformedFile, match="holds no instructions"):
        import_released(app, settings, path, image_root, instruction_file=str(empty))
