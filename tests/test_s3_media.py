"""Images on S3-compatible object storage (moto's server on 127.0.0.1, tests/s3server.py): written once by a
conditional put, imported by a pool of processes, shown to signed-in users by the app, thumbnails beside them."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func
from sqlmodel import select

from app.core.config import Settings
from app.core.objectstore import Bucket, ObjectMissing, StorageUnavailable
from app.core.storage import ObjectMediaStore, open_media, relative_key, thumbnail_key
from app.ingest.importer import ImportOptions, InstanceImporter
from app.models import Image, Instance, Role
from app.services.images import add_image
from tests.factories import login, make_user
from tests.test_image_pool import DISTINCT, as_folder, image_files, jpeg


@pytest.fixture
def settings(s3_settings):
    return s3_settings


def test_an_image_is_written_once_and_a_second_writer_changes_nothing(settings):
    media = open_media(settings.media_location)
    assert isinstance(media, ObjectMediaStore)
    digest = media.put(b"first bytes")
    assert digest == hashlib.sha256(b"first bytes").hexdigest()
    assert media.put_new(digest, b"first bytes") is False  # the conditional put refused the second write
    assert media.read(digest) == b"first bytes"
    assert media.exists(digest) and not media.exists("0" * 64)
    keys = [key for key, _ in media.bucket.list()]
    assert keys == [relative_key(digest)]  # under the URL's prefix, nothing else


def test_a_missing_image_is_a_clear_error_naming_where_it_should_be(settings):
    media = open_media(settings.media_location)
    with pytest.raises(ObjectMissing, match=rf"{settings.media_url}/00/0{{64}} does not exist"):
        media.read("0" * 64)


def test_a_bucket_that_does_not_exist_is_named(s3_endpoint):
    with pytest.raises(StorageUnavailable, match="the bucket does not exist"):
        Bucket("s3://no-such-bucket-here/media").put("x", b"1")


def test_urls_that_are_not_a_folder_or_a_bucket_are_refused(tmp_path):
    for url, message in (("s3://", "names no bucket"), ("s3:///media", "names no bucket"),
                         ("gs://bucket/media", "s3://bucket/prefix")):
        with pytest.raises(ValueError, match=message):
            Settings(mode="test", data_dir=tmp_path, media_url=url, _env_file=None)
    assert Settings(mode="test", data_dir=tmp_path, media_url="s3://b/p/", _env_file=None).media_url == "s3://b/p"


def test_an_import_checked_by_a_pool_of_processes_stores_each_image_once_in_the_bucket(app, db, settings, tmp_path):
    files = image_files()
    root = as_folder(tmp_path / "images", files)
    dataset = tmp_path / "in.jsonl"
    dataset.write_text("".join(json.dumps({
        "instance_id": f"i{k}", "img_path": path, "options": None, "input_text": "What colour?", "raw_output": "red",
        "dataset_name": "SHAPES", "task_name": "colour"}) + "\n" for k, path in enumerate(files)))
    media = open_media(settings.media_location)

    report = InstanceImporter(app.state.engine, media, ImportOptions(image_root=root, image_workers=2)).run(dataset)

    assert report.imported == len(files) - 1 and report.images_stored == DISTINCT  # the copy is the same image
    stored = dict(media.bucket.list())
    expected = {hashlib.sha256(data).hexdigest(): len(data) for name, data in files.items() if name != "broken.jpg"}
    assert stored == {relative_key(sha): size for sha, size in expected.items()}
    assert db.exec(select(func.count()).select_from(Image)).one() == DISTINCT

    again = InstanceImporter(app.state.engine, media, ImportOptions(image_root=root, image_workers=2)).run(dataset)
    assert again.imported == 0 and again.images_stored == 0
    assert db.exec(select(func.count()).select_from(Instance)).one() == len(files) - 1


def test_signed_in_users_get_images_and_thumbnails_streamed_by_the_app(app, db, client, settings):
    media = open_media(settings.media_location)
    picture = jpeg(7)
    image = add_image(db, media, picture)
    db.commit()
    assert client.get(f"/media/{image.sha256}").status_code in (303, 401)  # signed out: nothing

    login(client, make_user(db, Role.reviewer).email)
    response = client.get(f"/media/{image.sha256}")
    assert response.status_code == 200 and response.content == picture
    assert response.headers["content-type"] == "image/jpeg" and "immutable" in response.headers["cache-control"]

    thumb = client.get(f"/media/{image.sha256}/thumb")
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert media.bucket.get(thumbnail_key(image.sha256)) == thumb.content  # beside the image, for other processes
    assert (settings.thumbnail_dir / image.sha256[:2] / f"{image.sha256}.jpg").read_bytes() == thumb.content


def test_an_image_whose_object_is_gone_is_a_404_that_says_so(app, db, client, settings):
    media = open_media(settings.media_location)
    image = add_image(db, media, jpeg(8))
    db.commit()
    media.bucket.client.delete_object(Bucket=media.bucket.name, Key=media.bucket.key(relative_key(image.sha256)))
    login(client, make_user(db, Role.reviewer).email)
    for path in (f"/media/{image.sha256}", f"/media/{image.sha256}/thumb"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 404, path
        assert "missing" in response.text and image.sha256 in response.text
