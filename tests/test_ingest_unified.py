"""Importing the Vision-Flan unified format: what gets in, what is refused (and why, where), and re-runs."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.importer import ImportOptions, InstanceImporter
from app.ingest.record_files import MalformedFile
from app.models import AuditEvent, Image, Instance, SourceDataset, Task, utcnow


def picture(fmt: str = "JPEG", size=(32, 24), colour="red") -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header says it is width x height (with a valid CRC): a decompression bomb."""
    data = bytearray(picture("PNG"))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def record(k: int, task: str = "shape_qa", dataset: str = "SHAPES", **fields) -> dict:
    base = {"instance_id": f"i{k}", "img_path": "red.jpg", "options": None, "input_text": "What colour?",
            "raw_output": "red", "dataset_name": dataset, "task_name": task}
    return {**base, **fields}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    (root / "red.jpg").write_bytes(picture("JPEG", colour="red"))
    (root / "blue.png").write_bytes(picture("PNG", colour="blue"))
    (root / "truncated.jpg").write_bytes(picture("JPEG", size=(200, 150))[:-100])  # scan data cut short
    (root / "truncated.png").write_bytes(picture("PNG")[:-20])
    (root / "bomb.png").write_bytes(png_claiming(60_000, 60_000))
    (root / "script.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    (root / "notes.jpg").write_text("this is not an image")
    noise = io.BytesIO()
    PILImage.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(noise, format="PNG")
    (root / "huge.png").write_bytes(noise.getvalue())  # ~270 KB: over the 100 KB limit the test sets
    (root / "sub").mkdir()
    (tmp_path / "outside.jpg").write_bytes(picture())
    (root / "sub" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    return root


def importer(app, settings, images: Path | None, **options) -> InstanceImporter:
    return InstanceImporter(app.state.engine, MediaStore(settings.media_dir),
                           ImportOptions(image_root=images, **options))


def count(db, model) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


def test_a_clean_file_imports_tasks_datasets_images_and_instances(app, db, settings, images, tmp_path):
    rows = [record(k) for k in range(5)] + [record(k, task="colour", dataset="OTHER", img_path="blue.png")
                                            for k in range(3)]
    rows.append(record(9, img_path=None, input_text=None, raw_output=3))  # text-only, numeric answer
    report = importer(app, settings, images, chunk_size=4).run(write_jsonl(tmp_path / "in.jsonl", rows))
    assert (report.imported, report.duplicates, report.rejected_count) == (9, 0, 0)
    assert sorted(report.tasks_created) == ["OTHER+colour", "SHAPES+shape_qa"]
    assert report.images_stored == 2 and count(db, Image) == 2
    tasks = {task.name: task for task in db.exec(select(Task)).all()}
    assert tasks["SHAPES+shape_qa"].instance_count == 6 and tasks["OTHER+colour"].instance_count == 3
    assert sorted(db.exec(select(SourceDataset.name)).all()) == ["OTHER", "SHAPES"]
    text_only = db.exec(select(Instance).where(Instance.source_id == "i9")).one()
    assert text_only.image_id is None and text_only.raw_output == "3" and text_only.input_text is None
    assert abs((utcnow() - text_only.created_at).total_seconds()) < 60
    stored = db.exec(select(Image).where(Image.format == "jpeg")).one()
    assert (stored.width, stored.height) == (32, 24)
    assert MediaStore(settings.media_dir).path_for(stored.sha256).read_bytes() == (images / "red.jpg").read_bytes()
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "import.unified")).one()
    assert event.after["imported"] == 9


REJECTIONS = [
    ("{not json", "record", "not valid JSON"),
    (b'{"instance_id": "\xff"}', "record", "not valid UTF-8"),
    ("[1, 2]", "record", "must be a JSON object"),
    (record(1, instance_id=None), "instance_id", "is required"),
    (record(2, raw_output="  "), "raw_output", "is required"),
    (record(3, dataset_name="A+B"), "dataset_name", "without + or /"),
    (record(4, task_name=""), "task_name", "is required"),
    (record(5, options="a, b"), "options", "list of non-empty strings"),
    (record(6, options=["only"]), "options", "at least two"),
    (record(7, input_text=["x"]), "input_text", "must be a string or null"),
    (record(8, img_path="../outside.jpg"), "img_path", "outside the image root"),
    (record(9, img_path="/etc/hostname"), "img_path", "outside the image root"),
    (record(10, img_path="sub/link.jpg"), "img_path", "outside the image root"),
    (record(11, img_path="missing.jpg"), "img_path", "does not exist"),
    (record(12, img_path="sub"), "img_path", "is not a file"),
    (record(13, img_path="notes.jpg"), "img_path", "not an image"),
    (record(14, img_path="script.svg"), "img_path", "SVG"),
    (record(15, img_path="truncated.jpg"), "img_path", "truncated JPEG"),
    (record(16, img_path="truncated.png"), "img_path", "truncated"),
    (record(17, img_path="bomb.png"), "img_path", "decompression bomb"),
    (record(18, img_path="huge.png"), "img_path", "more than the 100,000 allowed"),
]


def test_each_bad_record_is_rejected_with_line_field_and_reason(app, db, settings, images, tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [record(0)] + [row for row, _, _ in REJECTIONS] + [record(99)]
    with path.open("wb") as out:
        for row in lines:
            out.write(row if isinstance(row, bytes) else (row if isinstance(row, str) else json.dumps(row)).encode())
            out.write(b"\n")
    report = importer(app, settings, images, max_image_bytes=100_000).run(path)
    assert report.imported == 2 and report.rejected_count == len(REJECTIONS)
    by_line = {rejection.line: rejection for rejection in report.rejected}
    for line, (_, field, reason) in enumerate(REJECTIONS, start=2):
        rejection = by_line[line]
        assert (rejection.file, rejection.field) == ("bad.jsonl", field), rejection
        assert reason in rejection.reason, rejection
    assert sorted(db.exec(select(Instance.source_id)).all()) == ["i0", "i99"]
    assert count(db, Image) == 1  # only red.jpg: nothing of the rejected images was stored
    assert [p.name for p in Path(settings.media_dir).rglob("*") if p.is_file()] == [
        db.exec(select(Image.sha256)).one()]


def test_running_again_inserts_nothing_twice(app, db, settings, images, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [record(k) for k in range(6)] + [record(2)])  # i2 twice in the file
    first = importer(app, settings, images, chunk_size=4).run(path)
    assert (first.imported, first.duplicates) == (6, 1)
    again = importer(app, settings, images).run(path)
    assert (again.imported, again.duplicates, again.images_stored) == (0, 7, 0)
    assert count(db, Instance) == 6 and count(db, Image) == 1


def test_an_import_stopped_by_a_malformed_file_keeps_whole_chunks_and_finishes_when_run_again(
        app, db, settings, images, tmp_path):
    good = [record(k) for k in range(10)]
    path = tmp_path / "in.json"
    broken = ",\n".join(json.dumps(row) for row in good[:7]) + ",\n{broken\n"
    path.write_text("[\n" + broken + "]")
    with pytest.raises(MalformedFile) as error:
        importer(app, settings, images, chunk_size=3).run(path)
    assert error.value.line == 9
    assert count(db, Instance) == 6  # two whole chunks of three; the third never committed
    path.write_text(json.dumps(good))
    report = importer(app, settings, images, chunk_size=3).run(path)
    assert (report.imported, report.duplicates) == (4, 6)
    assert sorted(db.exec(select(Instance.source_id)).all()) == sorted(f"i{k}" for k in range(10))
    assert db.exec(select(Task.instance_count)).one() == 10


def test_max_per_task_keeps_a_seeded_sample_and_takes_all_of_small_tasks(app, db, settings, images, tmp_path):
    rows = [record(k, task="big") for k in range(40)] + [record(k, task="small") for k in range(5)]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    report = importer(app, settings, images, max_per_task=10, seed=3).run(path)
    assert (report.imported, report.not_sampled, report.max_per_task, report.seed) == (15, 30, 10, 3)
    chosen = set(db.exec(select(Instance.source_id).join(Task).where(Task.name == "SHAPES+big")).all())
    assert len(chosen) == 10
    # the same seed draws the same sample (another database, same file)
    other = tmp_path / "again.db"
    from app.core.db import make_engine
    from app.models import metadata

    engine = make_engine(f"sqlite:///{other}")
    metadata.create_all(engine)
    InstanceImporter(engine, MediaStore(tmp_path / "media2"), ImportOptions(image_root=images, max_per_task=10,
                                                                           seed=3)).run(path)
    with engine.connect() as connection:
        again = set(connection.execute(select(Instance.source_id).join(Task)
                                       .where(Task.name == "SHAPES+big")).scalars())
    engine.dispose()
    assert again == chosen


def test_images_are_refused_without_an_image_root(app, db, settings, tmp_path):
    report = importer(app, settings, None).run(write_jsonl(tmp_path / "in.jsonl",
                                                           [record(1), record(2, img_path=None)]))
    assert report.imported == 1
    assert report.rejected[0].field == "img_path" and "no image root" in report.rejected[0].reason


def test_nul_characters_and_deep_nesting_are_refused_by_record_alike_on_both_databases(app, db, settings, images,
                                                                                     tmp_path):
    """PostgreSQL cannot store NUL (SQLite can): refused by record everywhere, by field, never a traceback."""
    deep: object = "bottom"
    for _ in range(40):
        deep = {"down": deep}
    very_deep = "[" * 3000 + "]" * 3000  # past orjson's nesting limit: the line is refused as not JSON
    rows = [record(0),
            record(1, input_text="What\u0000colour?"),
            record(2, img_path="red.jpg\u0000.png"),
            record(3, raw_output="re\u0000d"),
            record(4, options=["red", "bl\u0000ue"]),
            record(5, instance_id="i\u00005"),
            record(6, source_note="kept\u0000as provenance"),
            record(7, **{"key\u0000": "value"}),
            record(8, extra=deep),
            '{"instance_id": "i9", "nested": ' + very_deep + "}",
            record(10)]
    report = importer(app, settings, images).run(write_jsonl(tmp_path / "nul.jsonl", rows))
    refused = {(rejection.line, rejection.field): rejection.reason for rejection in report.rejected}
    assert report.imported == 2 and report.rejected_count == 9, refused
    for line, field in [(2, "input_text"), (3, "img_path"), (4, "raw_output"), (5, "options"), (6, "instance_id"),
                        (7, "source_note"), (8, "record")]:
        assert "NUL character" in refused[(line, field)], (line, field, refused)
    assert "nested deeper than 32 levels" in next(reason for (line, _), reason in refused.items() if line == 9)
    assert "not valid JSON" in next(reason for (line, _), reason in refused.items() if line == 10)
    assert sorted(db.exec(select(Instance.source_id)).all()) == ["i0", "i10"]


def test_a_json_array_with_a_record_nested_thousands_deep_stops_with_where_not_a_traceback(app, settings, images,
                                                                                          tmp_path):
    source = tmp_path / "deep.json"
    source.write_text("[" + json.dumps(record(0)) + ',\n{"instance_id": "i1", "x": ' + "[" * 100_000
                      + "]" * 100_000 + "}]")
    with pytest.raises(MalformedFile, match="deep.json:2: a record nested deeper than the reader can follow"):
        importer(app, settings, images).run(source)


def test_a_key_taken_with_different_content_is_a_conflict_named_by_line_and_fields_exact_copies_are_counted(
        app, db, settings, images, tmp_path):
    rows = [record(k) for k in range(4)]
    rows += [record(1),  # line 5: an exact copy, in the same chunk as the first
             record(2, raw_output="blue", options=["red", "blue"]),  # line 6: same key, other answer and options
             record(3, img_path="blue.png"),  # line 7: same key and text, another image
             record(0, input_text="What shape?")]  # line 8: in a later chunk than its first
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    report = importer(app, settings, images, chunk_size=6).run(path)
    assert (report.imported, report.duplicates, report.rejected_count) == (4, 1, 3)
    assert {(r.line, r.field) for r in report.rejected} == {(6, "options,raw_output"), (7, "image"),
                                                           (8, "input_text")}
    assert all("instance 'i" in r.reason and "SHAPES+shape_qa" in r.reason and "stored record was kept" in r.reason
               for r in report.rejected)
    assert sorted(db.exec(select(Instance.raw_output)).all()) == ["red"] * 4  # the first of each key was kept

    # Against what an earlier import stored: the text fields are compared; the image is not read again.
    later = write_jsonl(tmp_path / "later.jsonl", [record(1), record(2, raw_output="green"),
                                                   record(3, img_path="blue.png"), record(9)])
    again = importer(app, settings, images).run(later)
    assert (again.imported, again.duplicates, again.rejected_count) == (1, 2, 1)
    assert [(r.line, r.field) for r in again.rejected] == [(2, "raw_output")]


def test_what_fuzzing_found_in_json_arrays_is_refused_by_record(app, db, settings, images, tmp_path):
    """tests/test_fuzz_importers.py found these: Python's json module (which reads JSON arrays) accepts a lone
    surrogate escape, integers of any size and NaN, and each then failed on the way into the database."""
    lines = [json.dumps(record(0)),
             json.dumps(record(1)).replace('"What colour?"', '"What \\ud800 colour?"'),
             json.dumps(record(2, note=2**70)),
             json.dumps(record(3, score=0)).replace('"score": 0', '"score": NaN'),
             json.dumps(record(4, note=-2**63))]
    path = tmp_path / "in.json"
    path.write_text("[\n" + ",\n".join(lines) + "\n]")
    report = importer(app, settings, images).run(path)
    assert report.imported == 2
    assert [(r.line, r.field) for r in report.rejected] == [(3, "record"), (4, "note"), (5, "score")]
    assert "surrogate" in report.rejected[0].reason and "64 bits" in report.rejected[1].reason
    assert "NaN" in report.rejected[2].reason
