"""Two workers that share nothing but PostgreSQL and the object store: separate data folders, one database, one
S3 server. An import, an export, a preview, a score and a fine-tune are queued at once; the worker that runs the
import is killed in the middle of it. Every job ends exactly once, the import is finished by the other worker after the
lease with nothing lost or doubled, nothing is doubled by the others, and every result is where both can read
it. (A fine-tune taken over this way resumes only where `<data dir>/finetunes` is shared: README, Production.)"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from sqlmodel import func, select

from app.core.objectstore import Bucket
from app.core.storage import open_media
from app.models import Image, Instance, InstanceScore, Job, JobStatus, ModelOutput, RegisteredModel, Role, Task
from app.schemas import FinetuneIn, PreviewIn, ScoreIn
from app.schemas.export_spec import ExportSpec
from app.schemas.jobs import ImportPayload
from app.services import jobs as job_service
from app.services import previews, scores
from app.services import versions as version_service
from tests.factories import make_user
from tests.review_helpers import signed_in
from tests.test_faults import wait_for, worker_process
from tests.test_s3_journey import approved_task_from_the_bucket

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")

RECORDS = 120_000  # long enough on PostgreSQL to be killed in the middle of


@pytest.fixture
def settings(s3_settings):
    return s3_settings


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # several machines: PostgreSQL
def test_two_workers_sharing_nothing_but_the_database_and_the_bucket_finish_every_job_once(
        app, db, settings, bucket, tiny_model, s3_environment, tmp_path):
    task, _ = approved_task_from_the_bucket(db, bucket)
    admin = make_user(db, Role.admin)
    client, csrf = signed_in(app, admin)
    client.post("/models", data={"csrf_token": csrf, "name": "tiny", "path": str(tiny_model), "device": "cpu"})
    model_id = db.exec(select(RegisteredModel.id).where(RegisteredModel.name == "tiny")).one()
    Bucket(f"{bucket}/incoming").put("many.jsonl", "".join(
        json.dumps({"instance_id": f"m{k}", "img_path": None, "options": None, "input_text": f"Q{k}?",
                    "raw_output": f"a{k % 9}", "dataset_name": "MANY", "task_name": "words"}) + "\n"
        for k in range(RECORDS)).encode())

    built = version_service.create(db, spec=ExportSpec(task_ids=[task.id], validation_ratio=0.25), name="v0",
                                   actor_id=admin.id, enqueue=False, exports_on_bucket=True)
    version_service.run_build(settings, version_id=built.id)  # published to the bucket: a fine-tune may use it
    db.expire_all()

    # Everything at once: a big import, an export, a preview, a score and a fine-tune.
    importing = job_service.enqueue(db, ImportPayload(format="unified", file="many.jsonl"), created_by_id=None)
    version = version_service.create(db, spec=ExportSpec(task_ids=[task.id], validation_ratio=0.25), name="v1",
                                     actor_id=admin.id, exports_on_bucket=True)
    preview = previews.start(db, task_id=task.id, actor_id=admin.id,
                             data=PreviewIn(model_id=model_id, size=3, batch_size=3, max_new_tokens=4))
    scoring = scores.start(db, task_id=task.id, data=ScoreIn(model_id=model_id), actor_id=admin.id)
    tuning = version_service.start_finetune(db, version_id=built.id, actor_id=admin.id, data=FinetuneIn(
        base_model_id=model_id, stage1_lr=2e-3, global_batch_size=2, per_device_batch_size=2, stage2_steps=0,
        eval_per_task=2))
    db.commit()
    jobs = [importing.id, version.job_id, preview.id, scoring.id, tuning.id]

    def job(job_id: int) -> Job:
        db.rollback()  # a fresh snapshot each time
        return db.get(Job, job_id)

    def many() -> int:
        db.rollback()
        return db.exec(select(func.count()).select_from(Instance).join(Task)
                       .where(Task.name == "MANY+words")).one()

    # Each with a data folder of its own: what the two share is in their environment.
    workers = {name: worker_process(tmp_path / name, settings.database_url, media_url=settings.media_url,
                                    exports_url=settings.exports_url, import_root=f"{bucket}/incoming")
               for name in ("a", "b")}
    try:
        wait_for(lambda: many() >= 10_000, 120, "the import's first chunks")
        owner = job(importing.id).lease_owner
        assert owner, "the import ended before it could be killed: give it more records"
        killed = next(name for name, process in workers.items() if owner.endswith(f":{process.pid}"))
        workers[killed].send_signal(signal.SIGKILL)
        workers[killed].wait()
        survivor = workers["b" if killed == "a" else "a"]
        wait_for(lambda: all(job(job_id).status not in (JobStatus.queued, JobStatus.running) for job_id in jobs),
                 300, "every job to end", survivor)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)

    ended = {job_id: job(job_id) for job_id in jobs}
    assert all(j.status == JobStatus.succeeded for j in ended.values()), {j.id: j.error for j in ended.values()}
    assert ended[importing.id].attempts == 2  # the killed worker's, then the survivor's after the lease
    assert many() == RECORDS  # nothing lost, nothing doubled
    assert len(db.exec(select(ModelOutput).where(ModelOutput.job_id == preview.id)).all()) == 3
    assert db.exec(select(func.count()).select_from(InstanceScore)
                   .where(InstanceScore.job_id == scoring.id)).one() == 24
    tuned = db.exec(select(RegisteredModel).where(RegisteredModel.source_job_id == tuning.id)).all()
    assert len(tuned) == 1  # one model, registered once
    # It lives in the data folder of the worker that trained it: the folder other workers must share to use it.
    assert any(Path(tuned[0].path).is_relative_to(tmp_path / name / "finetunes") for name in ("a", "b"))
    # Every result is where both can read it: the version and the images on the bucket, nothing in a data folder.
    assert Bucket(settings.exports_url).size(f"{version.id}/manifest.json") is not None
    media = open_media(settings.media_location)
    assert all(media.read(sha).startswith(b"\xff\xd8") for sha in db.exec(select(Image.sha256)).all())
    for name in ("a", "b"):
        assert not (tmp_path / name / "media").exists() and not (tmp_path / name / "exports").exists()
