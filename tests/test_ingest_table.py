"""Generic tables with a field mapping: CSV, JSONL, Parquet and a datasets save_to_disk folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.importer import ImportOptions, InstanceImporter
from app.ingest.record_files import estimate_records
from app.ingest.tabular import FieldMapping, MappingInvalid, read_rows
from app.models import Instance, Task

ROWS = [
    {"id": 1, "question": "Which bar is tallest?", "answer": "blue", "choices": '["red", "blue"]',
     "file_name": "c.png"},
    {"id": 2, "question": "How many bars?", "answer": "3", "choices": "", "file_name": "c.png"},
    {"id": 3, "question": "Title?", "answer": "Sales", "choices": "Sales|Costs|Both", "file_name": None},
]
MAP = ["question->input_text", "answer->raw_output", "choices->options", "file_name->img_path", "id->instance_id"]


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    (tmp_path / "imgs").mkdir()
    PILImage.new("RGB", (12, 12), "blue").save(tmp_path / "imgs" / "c.png")
    return tmp_path / "imgs"


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(app, settings, image_root, path, mapping):
    return InstanceImporter(app.state.engine, MediaStore(settings.media_dir), ImportOptions(image_root=image_root),
                            file_format="table", parse=mapping.parser(), read=read_rows).run(path)


def check_imported(db):
    rows = {row.source_id: row for row in db.exec(select(Instance)).all()}
    assert set(rows) == {"1", "2", "3"}
    assert rows["1"].options == ["red", "blue"] and rows["2"].options is None
    assert rows["3"].options == ["Sales", "Costs", "Both"] and rows["3"].image_id is None
    assert rows["1"].input_text == "Which bar is tallest?" and rows["2"].raw_output == "3"
    assert db.exec(select(Task.name)).one() == "ChartQA+chart_qa"


def mapping() -> FieldMapping:
    return FieldMapping.parse(MAP, {"dataset_name": "ChartQA", "task_name": "chart_qa"})


def test_csv(app, db, settings, image_root, tmp_path):
    path = write_csv(tmp_path / "qa.csv", [{**row, "extra": "kept"} for row in ROWS])
    assert estimate_records(path) == 3
    report = run(app, settings, image_root, path, mapping())
    assert (report.imported, report.rejected_count) == (3, 0)
    check_imported(db)
    assert db.exec(select(Instance.provenance).where(Instance.source_id == "1")).one() == {"source.extra": "kept"}


def test_jsonl_with_a_mapping_file(app, db, settings, image_root, tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in ROWS))
    spec = tmp_path / "map.yaml"
    spec.write_text("fields:\n  input_text: question\n  raw_output: answer\n  options: choices\n"
                    "  img_path: file_name\n  instance_id: id\ndataset_name: ChartQA\ntask_name: chart_qa\n")
    fields = FieldMapping.read_file(spec)
    report = run(app, settings, image_root, path, FieldMapping.parse(
        fields["map"], {"dataset_name": fields["dataset"], "task_name": fields["task"]}))
    assert report.imported == 3
    check_imported(db)


def test_parquet_and_a_save_to_disk_folder(app, db, settings, image_root, tmp_path):
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "qa.parquet")
    assert run(app, settings, image_root, tmp_path / "qa.parquet", mapping()).imported == 3
    check_imported(db)
    folder = tmp_path / "saved"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    (folder / "dataset_info.json").write_text("{}")
    again = run(app, settings, image_root, folder, mapping())
    assert (again.imported, again.duplicates) == (0, 3)  # same rows, same keys: nothing twice


def test_bad_rows_are_named_by_line_and_column(app, db, settings, image_root, tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('id,question,answer,choices,file_name\n1,Q,A,,c.png\n2,Q,,,c.png\n3,Q,A,"[bad",c.png\n'
                    "4,Q,A,,../c.png,surplus\n5,Q,A,,nope.png\n")
    report = run(app, settings, image_root, path, mapping())
    assert report.imported == 1
    problems = {(r.line, r.field) for r in report.rejected}
    assert problems == {(3, "raw_output"), (4, "options"), (5, "record"), (6, "img_path")}
    wrong = FieldMapping.parse(["question->input_text", "answer->raw_output", "nope->instance_id"],
                               {"dataset_name": "D", "task_name": "t"})
    report = run(app, settings, image_root, write_csv(tmp_path / "b.csv", ROWS), wrong)
    assert report.rejected[0].field == "nope" and "column missing" in report.rejected[0].reason


def test_mappings_that_cannot_work_are_refused_up_front():
    with pytest.raises(MappingInvalid, match="write it as"):
        FieldMapping.parse(["question=input_text"], {})
    with pytest.raises(MappingInvalid, match="unknown field"):
        FieldMapping.parse(["q->question_text"], {})
    with pytest.raises(MappingInvalid, match="nothing fills instance_id, dataset_name, task_name"):
        FieldMapping.parse(["a->raw_output"], {})
