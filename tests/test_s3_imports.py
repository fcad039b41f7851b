"""Imports that read their file and images from object storage (moto's server on 127.0.0.1): streamed records,
images under an s3:// prefix, stored in the media bucket; missing objects are named, nothing half-stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.core.objectstore import Bucket
from app.core.storage import open_media
from app.ingest.object_files import READ_BUFFER, ObjectPath
from app.models import Image, Instance
from tests.test_image_pool import jpeg


@pytest.fixture
def settings(s3_settings):
    return s3_settings


@pytest.fixture
def environment(s3_environment):
    """The command line reads its settings from the environment, as on a worker machine."""
    return s3_environment


def upload_dataset(bucket: str, rows: list[dict], *, as_array: bool = False) -> str:
    """The rows as s3://…/incoming/in.jsonl (or a JSON array), each row's image under incoming/images/."""
    incoming = Bucket(f"{bucket}/incoming")
    for row in rows:
        if row.get("img_path", "").startswith("images/k"):
            incoming.put(row["img_path"], jpeg(int(row["img_path"][8:-4])))
    name = "in.json" if as_array else "in.jsonl"
    body = json.dumps(rows, indent=1) if as_array else "".join(json.dumps(row) + "\n" for row in rows)
    incoming.put(name, ("\ufeff" + body).encode("utf-8"))  # a BOM, as some exporters write
    return f"{bucket}/incoming/{name}"


def rows(count: int) -> list[dict]:
    return [{"instance_id": f"i{k}", "img_path": f"images/k{k % 7}.jpg", "options": None, "raw_output": "red",
             "input_text": f"Question {k}: what colour is it?", "dataset_name": "SHAPES", "task_name": "colour"}
            for k in range(count)]


@pytest.mark.parametrize("as_array", [False, True], ids=["jsonl", "json-array"])
def test_a_file_and_its_images_on_object_storage_are_imported_into_the_media_bucket(app, db, settings, bucket,
                                                                                    environment, as_array):
    given = rows(30) + [{**rows(1)[0], "instance_id": "gone", "img_path": "images/missing.jpg"}]
    url = upload_dataset(bucket, given, as_array=as_array)
    result = CliRunner().invoke(cli, ["import", "unified", url, "--image-root", f"{bucket}/incoming"])
    assert result.exit_code == 1, result.output  # one record refused, named by its line
    assert "missing.jpg does not exist under the image root" in result.output, result.output
    assert db.exec(select(func.count()).select_from(Instance)).one() == 30, result.output
    assert db.exec(select(func.count()).select_from(Image)).one() == 7
    assert len(list(open_media(settings.media_location).bucket.list())) == 7

    again = CliRunner().invoke(cli, ["import", "unified", url, "--image-root", f"{bucket}/incoming"])
    assert again.exit_code == 1 and db.exec(select(func.count()).select_from(Instance)).one() == 30


def test_a_file_that_is_not_there_is_named_and_nothing_is_imported(app, db, bucket, environment):
    result = CliRunner().invoke(cli, ["import", "unified", f"{bucket}/incoming/nothing.jsonl"])
    assert result.exit_code == 2 and "file: no such file" in result.output
    result = CliRunner().invoke(cli, ["import", "unified", upload_dataset(bucket, rows(3)),
                                      "--image-root", f"{bucket}/incoming/images.zip"])
    assert result.exit_code == 2 and "image-root: no such folder" in result.output
    assert db.exec(select(func.count()).select_from(Instance)).one() == 0


def test_an_object_is_read_as_a_stream_a_buffer_at_a_time(bucket):
    data = b"".join(b'{"n": %d}\n' % k for k in range(300_000))  # 3 MB: three buffers' worth
    Bucket(bucket).put("big.jsonl", data)
    path = ObjectPath(f"{bucket}/big.jsonl")
    assert (path.name, path.suffix, path.stat().st_size, path.is_file()) == ("big.jsonl", ".jsonl", len(data), True)
    with path.open("rb") as stream:
        assert stream.readline() == b'{"n": 0}\n'
        assert stream.raw.read_so_far <= READ_BUFFER  # one buffer fetched, not the file
        assert sum(1 for _ in stream) == 300_000 - 1
        assert stream.raw.read_so_far == len(data)
    with path.open("r", encoding="utf-8") as text:
        assert text.read(8) == '{"n": 0}'


def test_an_import_started_in_the_browser_cannot_name_a_bucket_outside_its_import_root(tmp_path):
    from app.core.failures import Invalid
    from app.ingest.requests import request_model

    wanted = request_model("unified")(format="unified", file="s3://studio/secret.jsonl", image_root="s3://studio")
    with pytest.raises(Invalid) as refused:
        wanted.locate(tmp_path)  # the browser's and the worker's imports are confined to the import root
    assert set(refused.value.fields) == {"file", "image_root"}


def test_tables_on_object_storage_csv_streamed_parquet_through_a_local_copy_and_joined(app, db, bucket, environment,
                                                                                       tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    incoming = Bucket(f"{bucket}/incoming")
    incoming.put("questions.csv", b"qid,question,image\nq1,What colour?,images/k1.jpg\nq2,What shape?,images/k2.jpg\n")
    incoming.put("answers.csv", b"qid,answer\nq1,red\nq2,round\n")
    for k in (1, 2):
        incoming.put(f"images/k{k}.jpg", jpeg(k))
    pq.write_table(pa.table({"qid": ["p1", "p2", "p3"], "question": ["a?", "b?", "c?"], "answer": ["x", "y", "z"]}),
                   tmp_path / "more.parquet")
    incoming.upload_file("more.parquet", tmp_path / "more.parquet")

    joined = CliRunner().invoke(cli, [
        "import", "table", f"{bucket}/incoming/questions.csv", "--join", f"{bucket}/incoming/answers.csv",
        "--on", "qid", "--map", "qid->instance_id", "--map", "question->input_text", "--map", "image->img_path",
        "--map", "answer->raw_output", "--dataset", "VQA", "--task", "joined", "--image-root", f"{bucket}/incoming"])
    assert joined.exit_code == 0, joined.output
    parquet = CliRunner().invoke(cli, [
        "import", "table", f"{bucket}/incoming/more.parquet", "--map", "qid->instance_id",
        "--map", "question->input_text", "--map", "answer->raw_output", "--dataset", "VQA", "--task", "parquet"])
    assert parquet.exit_code == 0, parquet.output
    assert db.exec(select(func.count()).select_from(Instance)).one() == 5
    assert db.exec(select(func.count()).select_from(Image)).one() == 2


def test_an_import_root_on_object_storage_serves_the_browsers_imports_and_confines_them_to_its_prefix(
        app, db, settings, bucket, tmp_path):
    from app.core.failures import Invalid
    from app.ingest.requests import request_model
    from app.models import Role
    from tests.factories import make_user, soup
    from tests.review_helpers import signed_in
    from worker.__main__ import Worker

    upload_dataset(bucket, rows(12))
    Bucket(f"{bucket}/incoming-secrets").put("keys.jsonl", b'{"instance_id": "x"}\n')
    on_bucket = settings.model_copy(update={"import_root": f"{bucket}/incoming"})
    app.state.settings = on_bucket
    client, csrf = signed_in(app, make_user(db, Role.author))
    assert f"{bucket}/incoming" in soup(client.get("/imports")).text  # the page says where files are read from
    started = client.post("/imports", data={"csrf_token": csrf, "format": "unified", "file": "in.jsonl",
                                            "image_root": "."})
    assert started.status_code == 303, soup(started).select_one(".form-message")
    assert Worker(on_bucket).run_once() is True
    assert db.exec(select(func.count()).select_from(Instance)).one() == 12
    for name in ("../incoming-secrets/keys.jsonl", "/incoming/in.jsonl", f"{bucket}/incoming/in.jsonl",
                 "images/../../incoming-secrets/keys.jsonl", "..", "./../x", "..\\\\incoming-secrets\\\\keys.jsonl"):
        wanted = request_model("unified")(format="unified", file=name)
        with pytest.raises(Invalid) as refused:
            wanted.locate(on_bucket.resolved_import_root)
        assert refused.value.fields["file"].startswith("must be under the import root"), name
    refused_page = client.post("/imports", data={"csrf_token": csrf, "format": "unified",
                                                 "file": "../incoming-secrets/keys.jsonl"})
    assert refused_page.status_code == 422 and "must be under the import root" in refused_page.text
    located = request_model("unified")(format="unified", file="./in.jsonl").locate(on_bucket.resolved_import_root)
    assert str(located.file) == f"{bucket}/incoming/in.jsonl"
