"""Model previews on the CPU with the tiny random LLaVA model: the real worker, the real model code path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from app.demo.workspace import load_demo
from app.models import Instance, Job, ModelOutput, Role, utcnow
from tests.factories import make_user, soup
from tests.review_helpers import signed_in

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")


def test_a_preview_stores_one_output_per_instance_and_shows_them_beside_the_targets(app, db, settings, tiny_model):
    from worker.__main__ import Worker

    load_demo(db, data_dir=settings.data_dir)
    admin = make_user(db, Role.admin)
    client, csrf = signed_in(app, admin)
    assert client.post("/models", data={"csrf_token": csrf, "name": "tiny", "path": str(tiny_model),
                                        "dtype": "float32", "device": "cpu"}).status_code == 303
    task_id = db.exec(select(Instance.task_id).limit(1)).one()  # SHAPES+shape_classification: options, images
    page = soup(client.get(f"/tasks/{task_id}"))
    assert page.select_one("#preview-form") is not None
    model_id = page.select_one("#preview-form select[name=model_id] option")["value"]
    started = client.post(f"/tasks/{task_id}/previews", data={"csrf_token": csrf, "model_id": model_id, "size": "6",
                                                              "batch_size": "4", "max_new_tokens": "5", "seed": "1"})
    assert started.status_code == 303
    job_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert Worker(settings).run_once() is True  # the real worker loop loads the model and generates
    outputs = db.exec(select(ModelOutput).where(ModelOutput.job_id == job_id)).all()
    assert len(outputs) == 6 and len({o.instance_id for o in outputs}) == 6
    assert all(isinstance(o.output, str) and o.latency_ms > 0 and o.model_name == "tiny" for o in outputs)
    result = soup(client.get(f"/previews/{job_id}"))
    rows = result.select("#outputs tbody tr")
    assert len(rows) == 6 and all(row.select_one(".model-output") is not None for row in rows)
    assert "option accuracy" in result.select_one("#preview-score").text
    seconds = db.get(Job, job_id).result["seconds"]  # where the job's time went, shown with the outputs
    assert seconds["generate"] > 0 and seconds["prepare"] > 0 and "generate" in result.select_one("#preview-time").text

    # As if its worker had died after writing: the lease runs out, the job runs again, and rewrites its rows.
    db.execute(update(Job).where(Job.id == job_id).values(status="running", lease_owner="dead:1", attempts=1,
                                                            lease_expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert Worker(settings).run_once() is True
    db.expire_all()
    assert db.get(Job, job_id).status == "succeeded" and db.get(Job, job_id).attempts == 2
    assert len(db.exec(select(ModelOutput).where(ModelOutput.job_id == job_id)).all()) == 6

    # A second model on the same instances (same seed and size), compared side by side.
    client.post("/models", data={"csrf_token": csrf, "name": "tiny-again", "path": str(tiny_model), "device": "cpu"})
    other_model = soup(client.get(f"/tasks/{task_id}")).select("#preview-form select[name=model_id] option")[1]
    second = client.post(f"/tasks/{task_id}/previews", data={"csrf_token": csrf, "model_id": other_model["value"],
                                                             "size": "6", "batch_size": "2", "max_new_tokens": "5",
                                                             "seed": "1"})
    assert Worker(settings).run_once() is True
    second_id = int(second.headers["location"].rsplit("/", 1)[1])
    assert soup(client.get(f"/previews/{second_id}")).select_one("#compare-previews") is not None
    compared = soup(client.get("/previews/compare", params={"a": job_id, "b": second_id}))
    assert len(compared.select("#comparison tbody tr")) == 6  # the same instances, both answered
