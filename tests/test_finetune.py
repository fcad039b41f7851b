"""The two-stage fine-tune on the CPU with the tiny random LLaVA: the loss goes down, the result previews,
and a run that dies resumes from its last checkpoint."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.exports.spec import ExportSpec
from app.models import Job, JobMetric, ModelOutput, RegisteredModel, Role, Task
from app.schemas import PreviewIn
from app.services import previews
from app.services import versions as version_service
from app.services.demo import load_demo
from tests.factories import make_user, soup
from tests.review_helpers import signed_in

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")


@pytest.fixture
def demo_version(db, settings):
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    version = version_service.create(db, spec=ExportSpec(task_ids=[shapes.id], validation_ratio=0.3), name="demo",
                                     actor_id=None, enqueue=False)
    return version_service.run_build(settings, version_id=version.id)


def test_a_fine_tune_lowers_the_loss_draws_it_and_its_model_previews(app, db, settings, tiny_model, demo_version):
    from worker.__main__ import Worker

    admin = make_user(db, Role.admin)
    client, csrf = signed_in(app, admin)
    client.post("/models", data={"csrf_token": csrf, "name": "tiny", "path": str(tiny_model), "device": "cpu"})
    base_id = db.exec(select(RegisteredModel.id).where(RegisteredModel.name == "tiny")).one()
    assert soup(client.get(f"/versions/{demo_version.id}")).select_one("#finetune-form") is not None
    started = client.post(f"/versions/{demo_version.id}/finetune", data={
        "csrf_token": csrf, "base_model_id": str(base_id), "stage1_lr": "1e-3", "stage2_lr": "1e-3",
        "stage2_steps": "0", "max_steps": "24", "save_every": "8"})
    assert started.status_code == 303
    job_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert Worker(settings).run_once() is True
    db.expire_all()
    job = db.get(Job, job_id)
    assert job.status == "succeeded", job.error
    losses = [m.loss for m in db.exec(select(JobMetric).where(JobMetric.job_id == job_id).order_by(JobMetric.id))]
    trained = demo_version.manifest["counts"]["SHAPES+shape_classification"]["train"]
    assert len(losses) == trained  # one epoch of the training records (the 24-step cap is not reached)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it learns
    page = soup(client.get(f"/jobs/{job_id}"))
    assert page.select_one("#loss-curve polyline.loss-stage1") is not None
    assert "Registered as" in page.select_one("#finetune-done").text
    validation = demo_version.manifest["counts"]["SHAPES+shape_classification"]["validation"]
    assert job.result["evaluation"]["SHAPES+shape_classification"]["total"] == validation > 0
    assert page.select_one('#evaluation tr[data-task="SHAPES+shape_classification"]') is not None
    tuned = db.get(RegisteredModel, job.result["model_id"])
    shapes_id = db.exec(select(Task.id).where(Task.name == "SHAPES+shape_classification")).one()
    preview = previews.start(db, task_id=shapes_id, actor_id=admin.id,
                             data=PreviewIn(model_id=tuned.id, size=3, batch_size=3, max_new_tokens=4))
    assert Worker(settings).run_once() is True
    assert len(db.exec(select(ModelOutput).where(ModelOutput.job_id == preview.id)).all()) == 3


def test_a_fine_tune_that_dies_resumes_from_its_last_checkpoint(settings, tiny_model, demo_version, tmp_path):
    from worker.finetune import FinetuneConfig, main, saved_step

    config = FinetuneConfig(version=version_service.folder_of(settings, demo_version), base=tiny_model,
                            out=tmp_path / "ft", stage1_lr=1e-3, stage2_steps=0, max_steps=12, save_every=4,
                            device="cpu")
    steps: list[int] = []
    with pytest.raises(InterruptedError):
        main(config, on_loss=lambda stage, step, loss: steps.append(step), should_stop=lambda: len(steps) >= 6)
    assert steps == [1, 2, 3, 4, 5, 6] and saved_step(config.out, "stage1") == 4  # died after step 6
    resumed: list[int] = []
    final = main(config, on_loss=lambda stage, step, loss: resumed.append(step))
    assert resumed == list(range(5, 13))  # picked up after the checkpoint at step 4
    assert (final / "config.json").exists() and saved_step(config.out, "stage1") == 12


def test_a_lora_fine_tune_learns_and_saves_a_plain_model_that_loads(settings, tiny_model, demo_version, tmp_path):
    from worker.finetune import FinetuneConfig, main
    from worker.loading import load

    config = FinetuneConfig(version=version_service.folder_of(settings, demo_version), base=tiny_model,
                            out=tmp_path / "lora", stage1_lr=5e-3, stage2_steps=0, device="cpu", lora=True)
    losses: list[float] = []
    final = main(config, on_loss=lambda stage, step, loss: losses.append(loss))
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4
    merged = load(str(final), "float32", "cpu")  # no adapter folder: the LoRA weights were merged in
    assert type(merged.model).__name__ == "LlavaForConditionalGeneration"
    assert not (final / "adapter_config.json").exists()


@pytest.mark.parametrize("launcher", [[], ["-m", "torch.distributed.run", "--nproc_per_node", "1"]],
                         ids=["python", "torchrun"])
def test_the_training_script_runs_on_its_own(settings, tiny_model, demo_version, tmp_path, launcher):
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "standalone"
    command = [sys.executable, *launcher, "-m" if not launcher else "--module", "worker.finetune",
               "--version", str(version_service.folder_of(settings, demo_version)), "--base", str(tiny_model),
               "--out", str(out), "--max-steps", "3", "--stage2-steps", "0", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fine-tuned model:" in done.stdout and (out / "model" / "config.json").exists()


def test_two_processes_train_data_parallel_and_share_each_step(settings, tiny_model, demo_version, tmp_path):
    """torchrun with two CPU processes (gloo): each takes half of every step's examples, so one epoch is
    half the steps; only rank 0 writes the checkpoint and the model."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = version_service.folder_of(settings, demo_version)
    records = len(json.loads((folder / "stage1.json").read_text()))
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--module", "worker.finetune", "--version", str(folder), "--base", str(tiny_model), "--out", str(out),
               "--stage2-steps", "0", "--device", "cpu", "--save-every", "1000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads((out / "checkpoints" / "stage1" / "step.json").read_text())["step"]
    assert steps == -(-records // 2)  # both processes worked on every step
    losses = [line for line in done.stdout.splitlines() if line.startswith("stage1 ")]
    assert len(losses) == steps  # printed once per step, by rank 0 only
    assert (out / "model" / "config.json").exists()
