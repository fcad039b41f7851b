"""Images checked by a pool of processes (an import of many new images): the same answers, counts and files
as one process gives, from a folder or an archive, and refusals still named by line."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func
from sqlmodel import select

from app.core.storage import MediaStore
from app.ingest.images import ImageRejected
from app.ingest.importer import ImportOptions, InstanceImporter
from app.ingest.intake import PARALLEL_FROM, ImageIntake, StoredImage
from app.models import Image, Instance

DISTINCT = PARALLEL_FROM + 40  # enough new paths in one chunk for the pool to be used


def jpeg(number: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (8 + number % 5, 8), (number % 256, 0, 0)).save(out, format="JPEG",
                                                                      comment=f"image {number}".encode())
    return out.getvalue()


def image_files() -> dict[str, bytes]:
    """DISTINCT images in two folders, one of them also under a second path, and one broken file."""
    files = {f"{'a' if k % 2 else 'b'}/{k}.jpg": jpeg(k) for k in range(DISTINCT)}
    files["copies/same-as-0.jpg"] = files["b/0.jpg"]
    files["broken.jpg"] = jpeg(9999)[:-60]
    return files


def as_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def as_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_an_import_checked_by_a_pool_stores_each_image_once_and_names_each_refusal(app, db, settings, tmp_path, kind):
    files = image_files()
    root = as_folder(tmp_path / "images", files) if kind == "folder" else as_zip(tmp_path / "images.zip", files)
    paths = [*files, "../outside.jpg", "missing.jpg"]
    dataset = tmp_path / "in.jsonl"
    dataset.write_text("".join(json.dumps({
        "instance_id": f"i{k}", "img_path": path, "options": None, "input_text": "What colour?", "raw_output": "red",
        "dataset_name": "SHAPES", "task_name": "colour"}) + "\n" for k, path in enumerate(paths)))

    report = InstanceImporter(app.state.engine, MediaStore(settings.media_dir),
                              ImportOptions(image_root=root, image_workers=2)).run(dataset)

    refused = {rejection.line: rejection.reason for rejection in report.rejected}
    assert sorted(refused) == [len(files), len(files) + 1, len(files) + 2]  # broken, outside, missing
    assert "truncated" in refused[len(files)] and "outside the image root" in refused[len(files) + 1]
    assert (report.imported, report.images_stored) == (DISTINCT + 1, DISTINCT)
    assert db.exec(select(func.count()).select_from(Image)).one() == DISTINCT
    media = MediaStore(settings.media_dir)
    for image in db.exec(select(Image)).all():
        assert hashlib.sha256(media.path_for(image.sha256).read_bytes()).hexdigest() == image.sha256
    both = db.exec(select(Instance.image_id).where(Instance.source_id.in_(["i0", f"i{DISTINCT}"]))).all()
    assert len(both) == 2 and len(set(both)) == 1  # one image under two paths: one row, one file


def test_the_pool_answers_as_one_process_does_and_remembers_what_it_saw(tmp_path):
    files = image_files()
    root = as_zip(tmp_path / "images.zip", files)
    answers = {}
    for workers in (1, 2):
        intake = ImageIntake(MediaStore(tmp_path / f"media-{workers}"), root, max_bytes=1 << 20, max_pixels=10**6,
                             workers=workers)
        try:
            answers[workers] = intake.take_many([*files, "missing.jpg"])
            assert intake.stored == DISTINCT
            again = intake.take_many(files)  # remembered: nothing read or stored twice
            assert intake.stored == DISTINCT and again == {path: answers[workers][path] for path in files}
        finally:
            intake.close()
    one, pooled = answers[1], answers[2]
    assert list(pooled) == list(one)  # the paths' order is kept
    for path in one:
        if isinstance(one[path], StoredImage):
            assert pooled[path] == one[path]
        else:
            assert isinstance(pooled[path], ImageRejected) and str(pooled[path]) == str(one[path])
    assert sorted(p.name for p in (tmp_path / "media-2").rglob("*") if p.is_file()) == \
        sorted(p.name for p in (tmp_path / "media-1").rglob("*") if p.is_file())
