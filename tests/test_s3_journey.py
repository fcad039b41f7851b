"""The whole journey on object storage (moto's server on 127.0.0.1), with no shared folder between the steps'
data: import from s3:// into the media bucket, review, export as a job that publishes to the exports bucket,
`validate` through the version's URL, and a fine-tune job that trains on the copy the worker pulls."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.core.objectstore import Bucket
from app.models import RegisteredModel, Role, Task, VersionStatus
from app.services import version_files
from app.services import versions as version_service
from tests.factories import make_user
from tests.review_helpers import approve, signed_in, submit_instruction, team
from tests.test_finetune import finetune_job
from tests.test_s3_imports import upload_dataset

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")


@pytest.fixture
def settings(s3_settings):
    return s3_settings


def approved_task_from_the_bucket(db, bucket: str) -> tuple[Task, dict]:
    """24 colour questions and their 5 pictures imported from the bucket by the command line into the media bucket,
    as the task SHAPES+colour with an approved instruction; the task and its team."""
    colours = ["red", "green", "blue"]
    rows = [{"instance_id": f"i{k}", "img_path": f"images/k{k % 5}.jpg", "options": colours, "raw_output":
             colours[k % 3], "input_text": f"Which colour is shape {k}?", "dataset_name": "SHAPES",
             "task_name": "colour"} for k in range(24)]
    imported = CliRunner().invoke(cli, ["import", "unified", upload_dataset(bucket, rows),
                                        "--image-root", f"{bucket}/incoming"])
    assert imported.exit_code == 0, imported.output
    task = db.exec(select(Task).where(Task.name == "SHAPES+colour")).one()
    people = team(db)
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    return task, people


def test_import_review_export_validate_and_fine_tune_with_everything_on_object_storage(
        app, db, settings, bucket, tiny_model, s3_environment):
    from worker.__main__ import Worker

    task, people = approved_task_from_the_bucket(db, bucket)
    client, csrf = signed_in(app, people["author"])
    created = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(task.id), "name": "on-s3",
                                             "per_task_cap": "100", "seed": "1", "validation_ratio": "0.25",
                                             "conversation_pool_id": "", "stage2_size": "0"})
    assert created.status_code == 303, created.text
    version_id = int(created.headers["location"].rsplit("/", 1)[1])
    assert Worker(settings).run_once() is True  # the export job: build, then publish
    version = version_service.get(db, version_id=version_id)
    db.refresh(version)
    assert version.status == VersionStatus.ready, version.error
    url = version_files.where(settings, version)
    assert Bucket(settings.exports_url).size(f"{version_id}/manifest.json") is not None
    assert not version_files.folder_of(settings, version).exists()  # nothing kept on the worker's disk

    validated = CliRunner().invoke(cli, ["validate", url])
    assert validated.exit_code == 0, validated.output

    admin = make_user(db, Role.admin)
    admin_client, admin_csrf = signed_in(app, admin)
    admin_client.post("/models", data={"csrf_token": admin_csrf, "name": "tiny", "path": str(tiny_model),
                                       "device": "cpu"})
    base_id = db.exec(select(RegisteredModel.id).where(RegisteredModel.name == "tiny")).one()
    job = finetune_job(admin_client, admin_csrf, db, settings, version_id, {
        "base_model_id": str(base_id), "stage1_lr": "2e-3", "global_batch_size": "2", "per_device_batch_size": "2",
        "save_steps": "50", "eval_per_task": "4"})
    assert job.status == "succeeded", job.error
    trained = version.manifest["counts"]["SHAPES+colour"]["train"]
    assert {stage["stage"]: stage["steps"] for stage in job.result["plan"]}["stage1"] == -(-trained // 2)
    copies = list(settings.version_cache_dir.iterdir())
    copy = next(folder for folder in copies if folder.name.startswith(f"{version_id}-"))
    records = json.loads((copy / "stage1.json").read_text())
    assert len(records) == trained and all((copy / "images" / record["image"]).is_file() for record in records)
