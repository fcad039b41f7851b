"""`import table` on the academic two-file layouts: records under a key of one JSON object, a second file
joined on a key (VQAv2 questions + annotations, COCO captions + images), orphans on both sides by file and
line, image paths made from columns; and whole-file errors for tables. Run through the same request object
the browser's form, the worker and the CLI use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from pydantic import ValidationError
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.record_files import MalformedFile
from app.ingest.requests import failure, request_model
from app.ingest.tabular import FieldMapping
from app.models import Image, Instance

VQA_MAP = ["question_id->instance_id", "question->input_text", "multiple_choice_answer->raw_output"]


def import_table(app, settings, **fields):
    wanted = request_model("table")(format="table", **fields)
    return wanted.run(engine=app.state.engine, media=MediaStore(settings.media_dir), located=wanted.locate(None),
                      actor_id=None)


def write_json(path: Path, document) -> Path:
    # One record per line, as the releases are laid out after pretty-printing: lines are what reports name.
    lines = ["{"]
    for position, (key, value) in enumerate(document.items()):
        comma = "," if position < len(document) - 1 else ""
        if isinstance(value, list):
            lines.append(f"{json.dumps(key)}: [")
            lines += [json.dumps(item) + ("," if i < len(value) - 1 else "") for i, item in enumerate(value)]
            lines.append("]" + comma)
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}{comma}")
    path.write_text("\n".join(lines + ["}"]))
    return path


@pytest.fixture
def vqa(tmp_path: Path) -> Path:
    images = tmp_path / "train2014"
    images.mkdir()
    for image_id, colour in ((9, "red"), (42, "blue")):
        PILImage.new("RGB", (10, 10), colour).save(images / f"COCO_train2014_{image_id:012d}.jpg")
    questions = [{"image_id": 9, "question": "What colour is it?", "question_id": 90},
                 {"image_id": 42, "question": "What colour is it?", "question_id": 420},
                 {"image_id": 42, "question": "Is it round?", "question_id": 421},
                 {"image_id": 9, "question": "Any answer?", "question_id": 999}]  # line 8: no annotation
    annotations = [{"question_id": 90, "image_id": 9, "multiple_choice_answer": "red", "answers": [{"answer": "red"}]},
                   {"question_id": 420, "image_id": 42, "multiple_choice_answer": "blue", "answers": []},
                   {"question_id": 421, "image_id": 42, "multiple_choice_answer": "no", "answers": []},
                   {"question_id": 421, "image_id": 42, "multiple_choice_answer": "yes", "answers": []},  # line 6
                   {"question_id": 777, "image_id": 9, "multiple_choice_answer": "two", "answers": []}]  # line 7
    write_json(tmp_path / "questions.json", {"info": {"year": 2017}, "task_type": "Open-Ended",
                                             "questions": questions})
    write_json(tmp_path / "annotations.json", {"annotations": annotations, "license": {"name": "CC"}})
    return tmp_path


def test_vqav2_questions_join_their_annotations_and_orphans_on_both_sides_are_named(app, db, settings, vqa):
    report = import_table(app, settings, file=str(vqa / "questions.json"), records="questions",
                          join=str(vqa / "annotations.json"), join_records="annotations", on="question_id",
                          image_pattern="COCO_train2014_{image_id:012d}.jpg", image_root=str(vqa / "train2014"),
                          map=VQA_MAP, dataset="VQAv2", task="vqa")
    assert report.imported == 3
    assert sorted((r.file, r.line, r.field) for r in report.rejected) == [
        ("annotations.json", 6, "question_id"), ("annotations.json", 7, "question_id"),
        ("questions.json", 8, "question_id")]
    reasons = {r.line: r.reason for r in report.rejected}
    assert "repeats line 5; the first is used" in reasons[6]
    assert "no record of questions.json has question_id = 777" in reasons[7]
    assert "no record of annotations.json has question_id = 999" in reasons[8]
    stored = {row.source_id: row for row in db.exec(select(Instance)).all()}
    assert {key: row.raw_output for key, row in stored.items()} == {"90": "red", "420": "blue", "421": "no"}
    assert stored["90"].input_text == "What colour is it?"
    assert stored["90"].image_id != stored["420"].image_id == stored["421"].image_id
    # Only the joined file's mapped columns come along; the main file's other columns are provenance.
    assert stored["90"].provenance == {"source.image_id": 9}


def test_coco_captions_join_the_images_list_of_the_same_file_on_differently_named_keys(app, db, settings, tmp_path):
    (tmp_path / "val2017").mkdir()
    for name, colour in (("000000000139.jpg", "red"), ("000000000285.jpg", "green")):
        PILImage.new("RGB", (10, 10), colour).save(tmp_path / "val2017" / name)
    captions = write_json(tmp_path / "captions_val2017.json", {
        "info": {"version": "1.0"},
        "images": [{"id": 139, "file_name": "000000000139.jpg", "width": 10},
                   {"id": 285, "file_name": "000000000285.jpg", "width": 10}],
        "annotations": [{"image_id": 139, "id": 1001, "caption": "A red square."},
                        {"image_id": 139, "id": 1002, "caption": "Something red."},
                        {"image_id": 285, "id": 1003, "caption": "A green square."}]})
    report = import_table(app, settings, file=str(captions), records="annotations", join=str(captions),
                          join_records="images", on="image_id=id", image_root=str(tmp_path / "val2017"),
                          map=["id->instance_id", "caption->raw_output", "file_name->img_path"],
                          dataset="COCO", task="captioning")
    assert (report.imported, report.rejected_count) == (3, 0)
    rows = db.exec(select(Instance.source_id, Instance.raw_output, Image.width).join(Image)).all()
    # "id" is in both lists: the main file's (the caption's) wins.
    assert sorted(rows) == [("1001", "A red square.", 10), ("1002", "Something red.", 10),
                            ("1003", "A green square.", 10)]
    assert len(set(db.exec(select(Instance.image_id)).all())) == 2


def test_a_mapping_file_carries_the_join_and_the_pattern(app, db, settings, vqa):
    spec = vqa / "vqa.yaml"
    spec.write_text("records: questions\njoin:\n  file: annotations.json\n  records: annotations\n"
                    "  on: question_id\nimage_pattern: 'COCO_train2014_{image_id:012d}.jpg'\n"
                    "fields:\n  instance_id: question_id\n  input_text: question\n"
                    "  raw_output: multiple_choice_answer\ndataset_name: VQAv2\ntask_name: vqa\n")
    fields = FieldMapping.read_file(spec)
    assert fields["join"] == str(vqa / "annotations.json")  # beside the mapping file
    report = import_table(app, settings, file=str(vqa / "questions.json"), image_root=str(vqa / "train2014"),
                          **fields)
    assert report.imported == 3 and report.rejected_count == 3


def test_joins_and_patterns_that_cannot_work_are_refused_before_reading(tmp_path):
    model = request_model("table")
    base = {"format": "table", "file": "x.csv", "map": VQA_MAP, "dataset": "D", "task": "t"}
    with pytest.raises(ValidationError, match="needs both the file"):
        model(**base, join="a.json")
    with pytest.raises(ValidationError, match="needs both the file"):
        model(**base, on="question_id")
    with pytest.raises(ValidationError, match="write the key column"):
        model(**base, join="a.json", on="=x")
    with pytest.raises(ValidationError, match="must name a column"):
        model(**base, image_pattern="{image_id.__class__}.jpg")
    with pytest.raises(ValidationError, match="filled twice"):
        model(**{**base, "map": [*VQA_MAP, "f->img_path"]}, image_pattern="{f}.jpg")


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("empty.csv", b"", "empty.csv:1: holds no records (an empty CSV file"),
    ("header.csv", b"id,question,answer\n", "header.csv:1: holds no records (a header line and no rows)"),
    ("twice.csv", b"id,q,q\n1,a,b\n", "twice.csv:1: the header repeats the column(s) q"),
    ("garbage.parquet", b"PAR1 this is not parquet", "garbage.parquet:1: not a readable Parquet file"),
    ("object.json", b'{"questions": [{"question_id": 1}]}', "object.json:1: the top-level object has no key"),
])
def test_a_table_that_holds_no_records_or_cannot_be_read_is_one_clear_error(app, db, settings, tmp_path, name,
                                                                             content, expected):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MalformedFile) as error:
        import_table(app, settings, file=str(tmp_path / name), map=VQA_MAP, dataset="D", task="t",
                     **({"records": "annotations"} if name.endswith(".json") else {}))
    assert failure(error.value).startswith(expected)
    assert db.exec(select(Instance)).all() == []


def test_a_top_level_key_that_is_not_text_stops_the_file_with_where(tmp_path):
    from app.ingest.record_files import read_records

    path = tmp_path / "odd.json"
    path.write_text('{"\\ud800": 1, "questions": [{"a": 1}]}')
    with pytest.raises(MalformedFile, match="odd.json:1: expected a key"):
        list(read_records(path, "questions"))
