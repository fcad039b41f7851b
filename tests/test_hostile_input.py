"""A corpus of hostile files: each gets a clear error that says what and where, and nothing of it is stored.

The corpus is built here, byte by byte, so that what each file is stays readable next to what is expected."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.image_sources import ImageSourceInvalid
from app.ingest.importer import ImportOptions, InstanceImporter
from app.ingest.record_files import MAX_RECORD_CHARS, MalformedFile
from app.ingest.unified import MAX_TEXT_CHARS
from app.models import Image, Instance, Task
from tests.test_ingest_unified import png_claiming, record


def jpeg(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, "green").save(out, format="JPEG")
    return out.getvalue()


def deflate_bomb() -> bytes:
    """A real PNG of 8,000 x 8,000 black pixels: 64 M pixels in a few kilobytes."""
    out = io.BytesIO()
    PILImage.new("1", (8000, 8000)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def zip_with_lying_size() -> bytes:
    """A zip whose one image entry's headers claim fewer bytes than it holds."""
    buffer = io.BytesIO()
    data = jpeg()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("liar.jpg", data)
    raw = bytearray(buffer.getvalue())
    true_size, claimed = len(data).to_bytes(4, "little"), (len(data) // 2).to_bytes(4, "little")
    assert raw.count(true_size) >= 4  # compressed and uncompressed sizes, in the local and central headers
    return bytes(raw.replace(true_size, claimed))


CORPUS_FILES = {
    "ok.jpg": jpeg(),
    "truncated.jpg": jpeg((400, 300))[:-300],
    "bomb.png": deflate_bomb(),
    "header-lies.png": png_claiming(40_000, 40_000),  # a few hundred bytes claiming 1.6 G pixels
    "script.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
    "script.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(3)</script></svg>',
    "text.jpg": b"GIF89a but not really an image",
}

# (image path in the record, field at fault, what the report says)
IMAGE_CASES = [
    ("truncated.jpg", "img_path", "truncated"),
    ("bomb.png", "img_path", "decompression bomb"),
    ("header-lies.png", "img_path", "decompression bomb"),
    ("script.svg", "img_path", "SVG/XML is not accepted"),
    ("script.png", "img_path", "SVG/XML is not accepted"),
    ("text.jpg", "img_path", "not an image"),
    ("../outside.jpg", "img_path", "outside the image root"),
    ("/etc/hostname", "img_path", "outside the image root"),
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, data in CORPUS_FILES.items():
        (root / name).write_bytes(data)
    (tmp_path / "outside.jpg").write_bytes(jpeg((10, 10)))
    return root


def run(app, settings, path: Path, image_root: Path | None):
    importer = InstanceImporter(app.state.engine, MediaStore(settings.media_dir), ImportOptions(image_root=image_root))
    return importer.run(path)


def stored(db, settings) -> tuple[int, int, int]:
    """(instances, image rows, files in the media store)."""
    files = sum(1 for path in Path(settings.media_dir).rglob("*") if path.is_file())
    return (db.exec(select(func.count()).select_from(Instance)).one(),
            db.exec(select(func.count()).select_from(Image)).one(), files)


def write_lines(path: Path, rows: list) -> Path:
    with path.open("wb") as out:
        for row in rows:
            out.write(row if isinstance(row, bytes) else json.dumps(row).encode())
            out.write(b"\n")
    return path


def assert_rejections(report, file: str, expected: dict[int, tuple[str, str]]) -> None:
    by_line = {rejection.line: rejection for rejection in report.rejected}
    assert sorted(by_line) == sorted(expected), report.rejected
    for line, (field, reason) in expected.items():
        rejection = by_line[line]
        assert (rejection.file, rejection.field) == (file, field), rejection
        assert reason in rejection.reason, rejection


def test_each_hostile_image_is_named_in_the_report_and_nothing_of_it_is_stored(app, db, settings, corpus, tmp_path):
    rows = [record(0, img_path="ok.jpg")] + [record(k, img_path=path) for k, (path, _, _) in enumerate(IMAGE_CASES, 1)]
    report = run(app, settings, write_lines(tmp_path / "images.jsonl", rows), corpus)
    assert_rejections(report, "images.jsonl", {k + 1: (field, reason) for k, (_, field, reason) in
                                               enumerate(IMAGE_CASES, 1)})
    assert report.imported == 1
    assert stored(db, settings) == (1, 1, 1)  # the good record and its image, nothing else


def test_hostile_archives_serve_no_entry_outside_their_root_and_no_links(app, db, settings, tmp_path):
    zipped = tmp_path / "images.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("ok.jpg", jpeg())
        archive.writestr("../escape.jpg", jpeg((12, 12)))
        archive.writestr("/absolute.jpg", jpeg((13, 13)))
        archive.writestr("bomb.png", deflate_bomb())
    rows = [record(0, img_path="ok.jpg"), record(1, img_path="../escape.jpg"), record(2, img_path="escape.jpg"),
            record(3, img_path="/absolute.jpg"), record(4, img_path="bomb.png"), record(5, img_path="./ok.jpg")]
    report = run(app, settings, write_lines(tmp_path / "zip.jsonl", rows), zipped)
    assert_rejections(report, "zip.jsonl", {
        2: ("img_path", "outside the image root"), 3: ("img_path", "not in the image archive"),
        4: ("img_path", "outside the image root"), 5: ("img_path", "decompression bomb")})
    assert report.imported == 2 and stored(db, settings) == (2, 1, 1)  # ok.jpg twice, stored once
    assert not (tmp_path / "escape.jpg").exists()  # read in place: nothing was ever extracted

    tarred = tmp_path / "images.tar"
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg((14, 14)))
    with tarfile.open(tarred, "w") as archive:
        archive.add(corpus_file(tmp_path, "fine.jpg", jpeg((15, 15))), arcname="fine.jpg")
        for name, kind in (("symlink.jpg", tarfile.SYMTYPE), ("hardlink.jpg", tarfile.LNKTYPE)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, str(secret)
            archive.addfile(link)
        archive.add(corpus_file(tmp_path, "climb.jpg", jpeg((16, 16))), arcname="../../climb.jpg")
    rows = [record(10, img_path="fine.jpg"), record(11, img_path="symlink.jpg"), record(12, img_path="hardlink.jpg"),
            record(13, img_path="../../climb.jpg")]
    report = run(app, settings, write_lines(tmp_path / "tar.jsonl", rows), tarred)
    assert_rejections(report, "tar.jsonl", {2: ("img_path", "a link or special file"),
                                            3: ("img_path", "a link or special file"),
                                            4: ("img_path", "outside the image root")})
    assert report.imported == 1 and stored(db, settings) == (3, 2, 2)


def corpus_file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / "loose" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_an_archive_entry_whose_header_lies_about_its_size_is_refused(app, db, settings, tmp_path):
    (tmp_path / "liar.zip").write_bytes(zip_with_lying_size())
    report = run(app, settings, write_lines(tmp_path / "in.jsonl", [record(0, img_path="liar.jpg")]),
                 tmp_path / "liar.zip")
    assert_rejections(report, "in.jsonl", {1: ("img_path", "")})
    assert report.rejected[0].reason.startswith(("damaged archive entry", "truncated JPEG"))
    assert stored(db, settings) == (0, 0, 0)


def test_an_image_root_that_is_no_archive_fails_before_anything_is_written(app, db, settings, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [record(0, img_path="a.jpg")])
    (tmp_path / "images.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "images.tar.gz").write_bytes(b"\x1f\x8b compressed")
    for root, message in ((tmp_path / "images.zip", "not a readable zip archive"),
                          (tmp_path / "images.tar.gz", "neither a folder nor a .zip or .tar")):
        with pytest.raises(ImageSourceInvalid, match=message):
            run(app, settings, path, root)
    assert db.exec(select(func.count()).select_from(Task)).one() == 0


def test_malformed_lines_and_wrong_encodings_are_named_by_line(app, db, settings, corpus, tmp_path):
    rows = [record(0, img_path="ok.jpg"),
            b'{"instance_id": "i1", "raw_output": ',  # cut off
            b"{'instance_id': 'i2'}",  # Python, not JSON
            # Latin-1 bytes in a UTF-8 file
            json.dumps(record(3, img_path="ok.jpg", input_text="caf\u00e9"), ensure_ascii=False).encode("latin-1"),
            b"[1, 2, 3]",
            record(5, img_path="ok.jpg", raw_output=None)]
    report = run(app, settings, write_lines(tmp_path / "lines.jsonl", rows), corpus)
    assert_rejections(report, "lines.jsonl", {2: ("record", "not valid JSON"), 3: ("record", "not valid JSON"),
                                              4: ("record", "not valid UTF-8"), 5: ("record", "must be a JSON object"),
                                              6: ("raw_output", "is required")})
    assert stored(db, settings)[0] == 1

    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text(json.dumps(record(0)) + "\n", encoding="utf-16")
    with pytest.raises(MalformedFile, match="UTF-16 or UTF-32") as error:
        run(app, settings, utf16, corpus)
    assert (error.value.path, error.value.line) == (utf16, 1)
    latin1_array = tmp_path / "latin1.json"
    latin1_array.write_bytes(b'[\n{"instance_id": "x", "input_text": "caf\xe9"}\n]')
    with pytest.raises(MalformedFile, match="not valid UTF-8"):
        run(app, settings, latin1_array, corpus)
    assert stored(db, settings)[0] == 1


def test_oversized_text_is_refused_without_holding_it(app, db, settings, corpus, tmp_path):
    """A 200 MB field: on a JSONL line it is skipped as too long (never joined into one string); in a JSON
    array it stops the import where the record starts; a merely long field (over 1 Mi characters) is
    refused by name."""
    huge = tmp_path / "huge.jsonl"
    head = b'{"instance_id": "big", "input_text": "'
    tail = b'", "raw_output": "x", "dataset_name": "D", "task_name": "t"}'
    with huge.open("wb") as out:
        out.write(json.dumps(record(0, img_path="ok.jpg")).encode() + b"\n" + head)
        block = b"A" * (1 << 20)
        for _ in range(200):
            out.write(block)
        out.write(tail + b"\n")
        out.write(json.dumps(record(2, img_path="ok.jpg", input_text="B" * (MAX_TEXT_CHARS + 1))).encode() + b"\n")
        out.write(json.dumps(record(3, img_path="ok.jpg")).encode() + b"\n")
    report = run(app, settings, huge, corpus)
    assert_rejections(report, "huge.jsonl", {
        2: ("record", f"longer than the {MAX_RECORD_CHARS >> 20} MiB allowed"),
        3: ("input_text", f"more than the {MAX_TEXT_CHARS:,} allowed")})
    assert report.imported == 2
    assert db.exec(select(func.max(func.length(Instance.input_text)))).one() < 100

    array = tmp_path / "huge.json"
    with array.open("wb") as out:
        out.write(b"[\n" + json.dumps(record(4, img_path="ok.jpg")).encode() + b",\n" + head)
        for _ in range(70):
            out.write(block)
        out.write(tail + b"\n]")
    with pytest.raises(MalformedFile, match="larger than the 64 MiB allowed starts here") as error:
        run(app, settings, array, corpus)
    assert error.value.line == 3
