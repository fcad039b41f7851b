"""Dataset versions on S3-compatible object storage (moto's server on 127.0.0.1): published files first and the
manifest last, the same bytes as a local build, read back by downloads, `pull`, `validate` and the worker's
cache; a store cut mid-upload publishes nothing and a retry completes the version; missing or corrupted objects
are clear errors that leave nothing half-made."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import cli
from app.core.objectstore import Bucket, ObjectMissing, StorageUnavailable
from app.core.storage import open_media, relative_key
from app.demo.workspace import load_demo
from app.exports.build import build
from app.exports.remote import NotPublished, pull
from app.exports.validate import validate_version
from app.models import Task, VersionStatus
from app.prompts.tokens import estimate
from app.schemas.export_spec import ExportSpec
from app.services import quality_figures, version_files
from app.services import versions as version_service
from tests.netcut import CuttableProxy
from tests.review_helpers import signed_in, team


@pytest.fixture
def settings(s3_settings):
    return s3_settings


@pytest.fixture
def shapes_version(app, db, settings):
    """A version (building) of the demo's shapes task, its images in the media bucket."""
    load_demo(db, data_dir=settings.data_dir, media=open_media(settings.media_location))
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    spec = ExportSpec(task_ids=[shapes.id], seed=3, validation_ratio=0.25)
    return version_service.create(db, spec=spec, name="flan-s3", actor_id=None, enqueue=False)


def test_a_version_is_published_with_the_same_files_as_a_local_build_and_names_its_images(app, settings,
                                                                                          shapes_version):
    built = version_service.run_build(settings, version_id=shapes_version.id)
    assert built.status == VersionStatus.ready
    exports, key = Bucket(settings.exports_url), str(built.id)
    objects = dict(exports.list(f"{key}/"))
    assert set(objects) == {f"{key}/{name}" for name in built.manifest["files"]} | {f"{key}/manifest.json"}
    assert "images.tsv" in built.manifest["files"] and not any("/images/" in name for name in objects)
    assert not version_files.folder_of(settings, built).exists()  # the local build is gone once published

    spec = ExportSpec.model_validate(built.spec)
    with Session(app.state.engine) as session:
        review = quality_figures.review_figures(session, task_ids=spec.task_ids)
    local = build(app.state.engine, spec=spec, destination=settings.data_dir / "l",
                  media=open_media(settings.media_location), count_tokens=estimate, name=built.name, review=review)
    published = {name: entry for name, entry in built.manifest["files"].items() if name != "images.tsv"}
    assert published == local["files"]  # the same bytes, images fetched from the bucket for the local one
    assert (built.manifest["images"], built.manifest["images_digest"]) == (local["images"], local["images_digest"])

    copy = pull(exports, key, open_media(settings.media_location), settings.data_dir / "pulled")
    assert copy == built.manifest and list(validate_version(settings.data_dir / "pulled")) == []
    assert sorted(path.name for path in (settings.data_dir / "pulled" / "images").iterdir()) == \
        sorted(path.name for path in (settings.data_dir / "l" / "images").iterdir())


def test_the_hf_layout_of_a_version_on_object_storage_holds_the_images_from_the_media_bucket(
        app, db, settings, load_offline):
    media = open_media(settings.media_location)
    load_demo(db, data_dir=settings.data_dir, media=media)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    version = version_service.create(db, spec=ExportSpec(task_ids=[shapes.id], per_task_cap=40, layouts=["hf"]),
                                     name="hf-s3", actor_id=None, enqueue=False)
    built = version_service.run_build(settings, version_id=version.id)
    assert built.status == VersionStatus.ready and "images.tsv" in built.manifest["files"]  # no images copied
    pull(Bucket(settings.exports_url), str(built.id), media, settings.data_dir / "pulled")
    assert list(validate_version(settings.data_dir / "pulled")) == []
    rows = load_offline(str(settings.data_dir / "pulled" / "hf"), split="stage1")
    stage1 = json.loads((settings.data_dir / "pulled" / "stage1.json").read_text())
    assert rows.num_rows == len(stage1) == 40
    row = rows.with_format("arrow")[0:1].to_pylist()[0]  # the raw bytes, not decoded
    assert row["images"][0]["bytes"] == media.read(stage1[0]["image"].split(".")[0])


def test_downloads_stream_from_the_bucket_and_stay_confined_to_the_version(app, db, settings, shapes_version):
    built = version_service.run_build(settings, version_id=shapes_version.id)
    client, _ = signed_in(app, team(db)["r1"])
    stage1 = client.get(f"/versions/{built.id}/files/stage1.json")
    assert stage1.status_code == 200
    assert stage1.content == Bucket(settings.exports_url).get(f"{built.id}/stage1.json")
    image = json.loads(stage1.content)[0]["image"]
    picture = client.get(f"/versions/{built.id}/files/images/{image}")
    assert picture.status_code == 200 and picture.content == open_media(settings.media_location).read(image[:64])
    for hostile in ("..%2Fsecret_key", "images/..%2F..%2Fmanifest.json", "images/nothex.jpg", "stage3.json"):
        assert client.get(f"/versions/{built.id}/files/{hostile}").status_code == 404, hostile


def test_a_store_cut_mid_upload_publishes_nothing_and_a_retry_completes_the_version(
        settings, shapes_version, s3_endpoint, monkeypatch):
    proxy = CuttableProxy(int(s3_endpoint.rsplit(":", 1)[1]), cut_after=6_000)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    try:
        with pytest.raises(StorageUnavailable):
            version_service.run_build(settings, version_id=shapes_version.id)
        assert proxy.cut and proxy.forwarded > 0
        proxy.restore()
        exports = Bucket(settings.exports_url)
        uploaded = dict(exports.list(f"{shapes_version.id}/"))
        assert uploaded and f"{shapes_version.id}/manifest.json" not in uploaded  # nobody can read half a version
        with pytest.raises(NotPublished):
            pull(exports, str(shapes_version.id), open_media(settings.media_location), settings.data_dir / "x")
        assert not (settings.data_dir / "x").exists()
        assert (version_files.folder_of(settings, shapes_version) / "manifest.json").is_file()  # kept for the retry

        built = version_service.run_build(settings, version_id=shapes_version.id)  # the job's next attempt
    finally:
        proxy.close()
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    assert built.status == VersionStatus.ready
    copy = settings.data_dir / "pulled"
    pull(Bucket(settings.exports_url), str(built.id), open_media(settings.media_location), copy)
    assert list(validate_version(copy)) == []


def test_validate_reads_a_version_through_its_url_and_names_a_corrupted_file(settings, shapes_version, s3_environment):
    built = version_service.run_build(settings, version_id=shapes_version.id)
    url = version_files.where(settings, built)
    assert url == f"{settings.exports_url}/{built.id}"
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", url])
    assert result.exit_code == 0, result.output
    assert "every file matches the manifest" in result.output

    exports = Bucket(settings.exports_url)
    original = exports.get(f"{built.id}/stage1.json")
    exports.put(f"{built.id}/stage1.json", original.replace(b"shape", b"shapE", 1))  # same size, other bytes
    result = runner.invoke(cli, ["validate", url])
    assert result.exit_code == 1 and "stage1.json: changed file" in result.output

    result = runner.invoke(cli, ["validate", f"{settings.exports_url}/999"])
    assert result.exit_code == 1 and "is not a published version" in result.output


def test_a_missing_image_stops_a_pull_with_its_name_and_leaves_no_folder(settings, shapes_version):
    built = version_service.run_build(settings, version_id=shapes_version.id)
    media = open_media(settings.media_location)
    name = (Bucket(settings.exports_url).get(f"{built.id}/images.tsv").decode().split("\t", 1)[0])
    media.bucket.client.delete_object(Bucket=media.bucket.name, Key=media.bucket.key(relative_key(name[:64])))
    with pytest.raises(ObjectMissing, match=name[:64]):
        pull(Bucket(settings.exports_url), str(built.id), media, settings.data_dir / "pulled")
    assert not (settings.data_dir / "pulled").exists()
    assert [path.name for path in settings.data_dir.iterdir() if path.name.startswith(".pulling")] == []


def test_the_worker_keeps_pulled_versions_within_its_cache_limit(app, db, settings, shapes_version):
    first = version_service.run_build(settings, version_id=shapes_version.id)
    folder = version_files.local_copy(settings, first)
    assert (folder / "stage1.json").is_file() and any((folder / "images").iterdir())
    Bucket(settings.exports_url).delete_under(f"{first.id}/")
    assert version_files.local_copy(settings, first) == folder  # from the cache: not pulled again

    second = version_service.create(db, spec=ExportSpec(task_ids=first.spec["task_ids"], seed=4), name="again",
                                    actor_id=None, enqueue=False)
    second = version_service.run_build(settings, version_id=second.id)
    small = settings.model_copy(update={"version_cache_gb": 1e-9})  # room for one copy only: the newest
    assert version_files.local_copy(small, second).is_dir() and not folder.exists()


def test_images_as_a_tar_is_refused_in_the_form_when_versions_live_on_object_storage(app, db, settings):
    """A version kept on object storage names its images in the media bucket: asking for images.tar is said beside
    the box when the form is sent (and by the API), not found out when the build fails."""
    from app.models import DatasetVersion

    load_demo(db, data_dir=settings.data_dir, media=open_media(settings.media_location))
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    people = team(db)
    client, csrf = signed_in(app, people["author"])
    refused = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(shapes.id), "name": "tarred",
                                             "images_as_tar": "on"}, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert "not with versions kept on object storage" in refused.text and "images.tar" in refused.text
    api = client.post("/api/v1/versions", json={"spec": {"task_ids": [shapes.id], "images_as_tar": True}},
                      headers={"X-CSRF-Token": csrf})
    assert api.status_code == 422 and api.json()["error"]["fields"] == {
        "images_as_tar": "not with versions kept on object storage"}
    assert db.exec(select(DatasetVersion)).all() == []
