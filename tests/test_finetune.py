"""The fine-tune as a job, from the browser's form to the registered model: both stages on the CPU with the tiny
random LLaVA, its progress and results on the job page, and a retried job that finds its run finished."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import update
from sqlmodel import select

from app.core.storage import MediaStore
from app.demo.workspace import load_demo
from app.ingest.conversations import ConversationImporter, PoolOptions
from app.models import ConversationPool, Job, JobMetric, ModelOutput, RegisteredModel, Role, Task
from app.schemas import PreviewIn
from app.schemas.export_spec import ExportSpec
from app.services import previews
from app.services import versions as version_service
from tests.factories import make_user, soup
from tests.review_helpers import signed_in
from tests.training_data import stage2_record

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")


def _pool(app, settings, tmp_path) -> int:
    from PIL import Image

    (tmp_path / "pool-images").mkdir()
    Image.new("RGB", (40, 32), "orange").save(tmp_path / "pool-images" / "img1.png")
    rows = [stage2_record(k, "img1.png" if k % 3 else None) for k in range(10)]
    (tmp_path / "pool.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    ConversationImporter(app.state.engine, MediaStore(settings.media_dir),
                         PoolOptions(pool="chat", image_root=tmp_path / "pool-images")).run(tmp_path / "pool.jsonl")
    with app.state.engine.connect() as connection:
        return connection.execute(select(ConversationPool.id).where(ConversationPool.name == "chat")).scalar_one()


@pytest.fixture
def two_stage_version(app, db, settings, tmp_path):
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    spec = ExportSpec(task_ids=[shapes.id], validation_ratio=0.3, conversation_pool_id=_pool(app, settings, tmp_path),
                      stage2_size=8, per_task_cap=24,  # a few steps: what the job does, not what the model learns
                      stage2_unreviewed=True)
    version = version_service.create(db, spec=spec, name="demo", actor_id=None, enqueue=False)
    return version_service.run_build(settings, version_id=version.id)


def finetune_job(client, csrf: str, db, settings, version_id: int, form: dict[str, str]) -> Job:
    """Starts a fine-tune of the version from its page's form, runs it as the worker does, and returns the job."""
    from worker.__main__ import Worker

    started = client.post(f"/versions/{version_id}/finetune", data={"csrf_token": csrf, **form})
    assert started.status_code == 303, started.text
    job_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert Worker(settings).run_once() is True
    db.expire_all()
    return db.get(Job, job_id)


def _digest(folder) -> str:
    return hashlib.sha256(b"".join(path.read_bytes() for path in sorted(folder.iterdir()))).hexdigest()


def test_a_fine_tune_job_trains_both_stages_shows_them_and_registers_a_model_previews_use(
        app, db, settings, tiny_model, two_stage_version):
    from safetensors.torch import load_file

    from worker.__main__ import Worker

    admin = make_user(db, Role.admin)
    client, csrf = signed_in(app, admin)
    client.post("/models", data={"csrf_token": csrf, "name": "tiny", "path": str(tiny_model), "device": "cpu"})
    base_id = db.exec(select(RegisteredModel.id).where(RegisteredModel.name == "tiny")).one()
    form = soup(client.get(f"/versions/{two_stage_version.id}")).select_one("#finetune-form")
    assert form.select_one("[name=stage2_steps]") is not None  # the version has a stage 2
    job = finetune_job(client, csrf, db, settings, two_stage_version.id, {
        "base_model_id": str(base_id), "stage1_lr": "2e-3", "stage2_lr": "2e-3", "stage2_steps": "3",
        "global_batch_size": "2", "per_device_batch_size": "2", "save_steps": "4", "eval_per_task": "6"})
    job_id = job.id
    assert job.status == "succeeded", job.error
    trained = two_stage_version.manifest["counts"]["SHAPES+shape_classification"]["train"]
    plan = {stage["stage"]: stage for stage in job.result["plan"]}
    assert plan["stage1"]["steps"] == -(-trained // 2) and plan["stage2"]["steps"] == 3
    metrics = db.exec(select(JobMetric).where(JobMetric.job_id == job_id).order_by(JobMetric.id)).all()
    assert [m.step for m in metrics if m.stage == "stage1"] == list(range(1, plan["stage1"]["steps"] + 1))
    assert [m.step for m in metrics if m.stage == "stage2"] == [1, 2, 3]
    assert all(m.lr is not None and m.samples_per_s > 0 and m.tokens_per_s > 0 for m in metrics)
    losses = [m.loss for m in metrics if m.stage == "stage1"]
    assert sum(losses[-3:]) < sum(losses[:3])  # it learns
    tuned = db.get(RegisteredModel, job.result["model_id"])
    assert (tuned.source_job_id, tuned.version_id, tuned.base_model_id) == (job_id, two_stage_version.id, base_id)
    out = settings.data_dir / "finetunes" / f"job-{job_id}"
    assert tuned.path == str(out / "stage2" / "model")
    first, second = load_file(out / "stage1" / "model" / "model.safetensors"), load_file(
        f"{tuned.path}/model.safetensors")
    assert any((first[key] - second[key]).abs().max() > 0 for key in first)  # stage 2 trained on from stage 1

    page = soup(client.get(f"/jobs/{job_id}"))
    assert page.select_one("#loss-chart polyline.loss-stage1") and page.select_one("#loss-chart polyline.loss-stage2")
    assert page.select_one("#loss-chart .stage-boundary") is not None
    assert {label.text for label in page.select("#loss-chart .axis-label")} == {"step", "loss"}
    assert page.select_one(f'#finetune-links a[href="/versions/{two_stage_version.id}"]') is not None
    assert page.select_one(f'#finetune-links a[href="/models/{base_id}"]') is not None
    assert page.select_one(f'#finetune-links a[href="/models/{tuned.id}"]') is not None
    validation = two_stage_version.manifest["counts"]["SHAPES+shape_classification"]["validation"]
    row = page.select_one('#evaluation tr[data-task="SHAPES+shape_classification"]')
    assert row is not None and row.select_one("[data-field=total]").text.strip() == str(min(validation, 6))
    assert page.select_one('#evaluation-chart [data-task="SHAPES+shape_classification"]') is not None
    assert job.result["evaluation"]["unscored"] == [] and page.select_one("#evaluation-unscored") is None
    assert [item.text for item in page.select("#finetune-plan li")][0].startswith("stage1:")

    preview = previews.start(db, task_id=two_stage_version.spec["task_ids"][0], actor_id=admin.id,
                             data=PreviewIn(model_id=tuned.id, size=3, batch_size=3, max_new_tokens=4))
    assert Worker(settings).run_once() is True
    assert len(db.exec(select(ModelOutput).where(ModelOutput.job_id == preview.id)).all()) == 3

    # The job retried after training (say it died while registering): nothing is trained or saved again.
    before = _digest(out / "stage2" / "model")
    db.execute(update(Job).where(Job.id == job_id).values(status="queued", attempts=1))
    db.commit()
    progress = (out / "progress.jsonl").read_text().count('"stage_start"')
    assert Worker(settings).run_once() is True
    db.expire_all()
    assert db.get(Job, job_id).status == "succeeded" and db.get(Job, job_id).result["model_id"] == tuned.id
    assert (out / "progress.jsonl").read_text().count('"stage_start"') == progress
    assert _digest(out / "stage2" / "model") == before


def test_a_model_of_a_family_the_worker_does_not_know_is_refused_naming_the_ones_it_does(
        app, db, settings, tiny_model, two_stage_version, tmp_path):
    import json
    import shutil

    from app.schemas.model_families import UnsupportedFamily
    from app.schemas.recipe import FinetuneConfig
    from worker.finetune import main

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    admin = make_user(db, Role.admin)
    client, csrf = signed_in(app, admin)
    (other / "config.json").write_text(json.dumps({**config, "model_type": "paligemma"}))
    refused = client.post("/models", data={"csrf_token": csrf, "name": "other", "path": str(other), "device": "cpu"},
                          headers={"HX-Request": "true"})
    assert refused.status_code == 422
    said = soup(refused).text
    assert "is a paligemma model" in said and "Qwen2-VL (qwen2_vl)" in said and "Idefics3 (idefics3)" in said
    form = soup(refused).select_one("#model-form")  # the form again, as it was sent, the path's fault beside it
    assert form.select_one("[name=path]")["value"] == str(other) and form.select_one("[name=name]")["value"] == "other"
    assert form.select_one("#path-error").text == "a family the worker does not know"
    # A folder that changed after it was registered: the fine-tune's form refuses it, and so does the worker.
    (other / "config.json").write_text(json.dumps(config))
    client.post("/models", data={"csrf_token": csrf, "name": "other", "path": str(other), "device": "cpu"})
    base_id = db.exec(select(RegisteredModel.id).where(RegisteredModel.name == "other")).one()
    (other / "config.json").write_text(json.dumps({**config, "model_type": "paligemma"}))
    refused = client.post(f"/versions/{two_stage_version.id}/finetune", data={
        "csrf_token": csrf, "base_model_id": str(base_id)}, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    said = soup(refused).select_one("#finetune-form").text
    assert "is a paligemma model" in said and "LLaVA-1.5 (llava)" in said
    assert soup(refused).select_one("#base_model_id-error") is not None
    assert db.exec(select(Job).where(Job.kind == "finetune")).first() is None
    # The training script refuses it too (a worker whose model folder the web cannot read), before any work.
    with pytest.raises(UnsupportedFamily, match="paligemma"):
        main(FinetuneConfig(version=tmp_path / "nowhere", base=other, out=tmp_path / "run", device="cpu"))
    assert not (tmp_path / "run").exists()
