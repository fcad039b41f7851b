"""Scoring a task with the tiny random LLaVA model on the CPU: the real worker and the real model code path."""

from __future__ import annotations

import math

import pytest
from sqlmodel import select

from app.demo.workspace import load_demo
from app.models import Instance, InstanceScore, InstanceStatus, Job, Role, Task
from app.schemas import ScoreIn
from app.services import quality_figures, scores
from app.services import registered_models as model_service
from tests.factories import bearer, make_user, soup
from tests.review_helpers import signed_in

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")


def _scored_task(db, settings, tiny_model):
    from worker.__main__ import Worker

    load_demo(db, data_dir=settings.data_dir)
    admin = make_user(db, Role.admin)
    model = model_service.register(db, name="tiny", path=str(tiny_model), dtype="float32", device="cpu",
                                   actor_id=admin.id)
    task = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()  # options and images
    job = scores.start(db, task_id=task.id, data=ScoreIn(model_id=model.id, batch_size=4), actor_id=admin.id)
    assert Worker(settings).run_once() is True
    db.refresh(job)
    return task, model, job


def test_a_score_job_scores_every_active_instance_and_scoring_again_replaces(db, settings, tiny_model):
    from worker.__main__ import Worker

    task, model, job = _scored_task(db, settings, tiny_model)
    assert job.status == "succeeded", job.error
    active = db.exec(select(Instance).where(Instance.task_id == task.id,
                                            Instance.status == InstanceStatus.active)).all()
    rows = {row.instance_id: row for row in db.exec(select(InstanceScore).where(InstanceScore.task_id == task.id))}
    assert set(rows) == {instance.id for instance in active} and job.result["scored"] == len(active)
    assert job.result["scored_per_s"] > 0
    for instance in active:
        row = rows[instance.id]
        assert math.isfinite(row.loss) and row.loss > 0 and row.model_id == model.id
        assert len(row.option_probabilities) == len(instance.options)
        assert sum(row.option_probabilities) == pytest.approx(1.0)
        target = row.option_probabilities[instance.options.index(instance.raw_output)]
        best_other = max(p for k, p in enumerate(row.option_probabilities)
                         if instance.options[k] != instance.raw_output)
        assert row.margin == pytest.approx(target - best_other)

    losses = {instance_id: row.loss for instance_id, row in rows.items()}  # the rows themselves are replaced
    again = scores.start(db, task_id=task.id, data=ScoreIn(model_id=model.id, batch_size=3), actor_id=None)
    assert Worker(settings).run_once() is True
    db.expire_all()
    assert db.get(Job, again.id).status == "succeeded"
    rescored = {row.instance_id: row for row in db.exec(select(InstanceScore).where(InstanceScore.task_id == task.id))}
    assert set(rescored) == set(losses) and all(row.job_id == again.id for row in rescored.values())
    assert all(rescored[k].loss == pytest.approx(losses[k], rel=1e-4) for k in losses)  # batching changes nothing


def test_the_loss_is_the_models_own_and_greedy_matched_means_greedy_decoding_gives_the_target(tiny_model):
    from PIL import Image as PILImage

    from worker.loading import load
    from worker.score import Question, score, teacher_forced
    from worker.training.batching import PaddingCollator
    from worker.training.encoding import encode

    torch.manual_seed(0)
    loaded = load(str(tiny_model), "float32", "cpu")
    image = PILImage.new("RGB", (32, 32), "red")
    question = Question("<image>\nWhat colour is it?", "red", image, None)
    [result] = score(loaded, [question])
    encoded = encode(loaded.processor, [{"from": "human", "value": question.prompt},
                                        {"from": "gpt", "value": "red"}], image, max_length=2048)
    batch = PaddingCollator(loaded.processor.tokenizer.pad_token_id or 0)(
        [{"input_ids": encoded.input_ids, "labels": encoded.labels, **encoded.image_inputs}])
    with torch.inference_mode():
        reference = loaded.model(**batch).loss.item()  # transformers' own mean token loss over the labels
    assert result.loss == pytest.approx(reference, rel=1e-4)

    # The model's own greedy continuation, token by token: every label is then the argmax.
    prompt_ids = encoded.input_ids[:encoded.labels.index(next(label for label in encoded.labels if label != -100))]
    ids = list(prompt_ids)
    for _ in range(3):
        with torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([ids]), **encoded.image_inputs).logits
        ids.append(int(logits[0, -1].argmax()))
    own = {"input_ids": ids, "labels": [-100] * len(prompt_ids) + ids[len(prompt_ids):],
           **encoded.image_inputs}
    changed = {**own, "labels": own["labels"][:-1] + [(ids[-1] + 1) % loaded.model.config.text_config.vocab_size]}
    changed["input_ids"] = ids[:-1] + [changed["labels"][-1]]
    greedy = teacher_forced(loaded, [own, changed]).greedy
    assert greedy == [True, False]


def test_a_task_is_scored_from_its_page_and_read_most_doubtful_first_in_the_browser_and_the_api(
        app, db, settings, tiny_model):
    from worker.__main__ import Worker

    load_demo(db, data_dir=settings.data_dir)
    author = make_user(db, Role.author)
    client, csrf = signed_in(app, author)
    model_service.register(db, name="tiny", path=str(tiny_model), dtype="float32", device="cpu", actor_id=None)
    task = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    unranked = soup(client.get(f"/tasks/{task.id}/instances?order=doubt"))
    assert "has not been scored yet" in unranked.select_one("#doubt-source").text
    assert unranked.select(".instance-card") and not unranked.select(".instance-card .doubt")  # listed, unranked
    form = soup(client.get(f"/tasks/{task.id}")).select_one("#score-form")
    started = client.post(form["action"], data={"csrf_token": csrf, "batch_size": "4",
                                                "model_id": form.select_one("option")["value"]})
    assert started.status_code == 303 and started.headers["location"].startswith("/jobs/")
    assert Worker(settings).run_once() is True
    done = soup(client.get(started.headers["location"] + "/status")).select_one("#score-done")
    assert f"{task.instance_count} instances scored by tiny" in done.text
    assert done.select_one("a")["href"] == f"/tasks/{task.id}/instances?order=doubt"

    token = bearer(db, author)
    api = client.get(f"/api/v1/tasks/{task.id}/doubt?limit=5", headers=token).json()
    assert api["model_name"] == "tiny" and api["scored"] == task.instance_count
    assert [item["rank"] for item in api["items"]] == [1, 2, 3, 4, 5]
    page = soup(client.get(f"/tasks/{task.id}/instances?order=doubt"))
    cards = page.select(".instance-card")
    assert [int(card["data-instance-id"]) for card in cards] == [item["instance_id"] for item in api["items"]][:3]
    assert [int(card.select_one(".doubt")["data-rank"]) for card in cards] == [1, 2, 3]  # page_size is 3 in tests
    assert "Ranked by the doubt of tiny" in page.select_one("#doubt-source").text
    following = soup(client.get(page.select_one("a[rel=next]")["href"]))
    assert [int(card.select_one(".doubt")["data-rank"]) for card in following.select(".instance-card")] == [4, 5, 6]
    assert client.get(f"/api/v1/tasks/{task.id}/doubt?model_id=999", headers=token).status_code == 404
    suspects = soup(client.get(f"/tasks/{task.id}/instances?order=suspects")).select(".instance-card .doubt")
    assert all(card.select_one("mark.suspect") for card in suspects)
    assert len(suspects) == min(3, sum(item["suspect"] for item in client.get(
        f"/api/v1/tasks/{task.id}/doubt?limit=10000", headers=token).json()["items"]))


def test_an_admin_opens_a_targeted_spot_check_whose_rate_is_weighted_and_whose_reviewers_see_no_doubt(
        app, db, settings, tiny_model):
    from app.models import SpotCheck, SpotCheckItem
    from app.qc.targeted import error_rate
    from tests.review_helpers import htmx

    task, model, _ = _scored_task(db, settings, tiny_model)
    admin, reviewer = make_user(db, Role.admin), make_user(db, Role.reviewer)
    admin_client, admin_csrf = signed_in(app, admin)
    form = soup(admin_client.get(f"/tasks/{task.id}")).select_one("#new-spot-check")
    assert [option.text for option in form.select("select[name=targeted_by_model_id] option")][1:] == [
        "by the doubt of tiny (targeted, weighted)"]
    wanted = {"csrf_token": admin_csrf, "max_error_rate": "0.5", "size": "10", "seed": "3",
              "targeted_by_model_id": str(model.id), "uniform_share": "0.3"}
    reviewer_client, reviewer_csrf = signed_in(app, reviewer)
    assert soup(reviewer_client.get(f"/tasks/{task.id}")).select_one("select[name=targeted_by_model_id]") is None
    refused = reviewer_client.post(f"/tasks/{task.id}/spot-checks", data={**wanted, "csrf_token": reviewer_csrf})
    assert refused.status_code == 403  # a targeted check is an admin's choice
    unexplained = admin_client.post(f"/tasks/{task.id}/spot-checks", data=wanted)
    assert unexplained.status_code == 422  # smaller and laxer than the defaults, with a chosen seed: say why
    opened = admin_client.post(f"/tasks/{task.id}/spot-checks", data={**wanted, "reason": "a targeted look"})
    assert opened.status_code == 303
    check = db.get(SpotCheck, int(opened.headers["location"].rsplit("/", 1)[1]))
    assert check.targeted and check.targeted_by_model_id == model.id and check.uniform_share == 0.3
    items = db.exec(select(SpotCheckItem).where(SpotCheckItem.spot_check_id == check.id)).all()
    assert len(items) == check.size > 0
    floor = 0.3 * 10 / task.instance_count
    assert all(floor - 1e-9 <= item.inclusion_probability <= 1 for item in items)

    verdicts = {}
    while (item := soup(reviewer_client.post("/review/spot/next", headers=htmx(reviewer_csrf))).select_one("#item")):
        assert "risk" not in item.text.lower() and "doubt" not in item.text.lower()  # nothing to bias the verdict
        item_id = int(item["data-item-id"])
        verdicts[item_id] = "correct" if len(verdicts) % 3 else "wrong_target"
        reviewer_client.post(f"/review/spot/{item_id}", headers=htmx(reviewer_csrf),
                             data={"verdict": verdicts[item_id], "lock_version": item["data-lock-version"]})
    db.expire_all()
    check = db.get(SpotCheck, check.id)
    assert check.status in ("passed", "failed") and len(verdicts) == check.size
    expected = error_rate([(verdicts[item.id] != "correct", item.inclusion_probability) for item in items])
    api = admin_client.get(f"/api/v1/spot-checks/{check.id}", headers=bearer(db, admin)).json()
    assert api["method"] == "targeted" and api["error_rate"] == pytest.approx(expected.interval.rate)
    assert api["interval_high"] == pytest.approx(expected.interval.high)
    assert check.status == ("passed" if expected.interval.high < 0.5 else "failed")
    page = soup(admin_client.get(f"/spot-checks/{check.id}"))
    assert "targeted" in page.select_one("#spot-method").text
    assert f"this draw holds {check.size}" in page.select_one("#spot-method").text  # its size varies by design
    errors = sum(1 for verdict in verdicts.values() if verdict != "correct")
    sentence = page.select_one("#weighted-sentence").text
    assert sentence.startswith(f"The {errors} problem")
    assert f"{100 * expected.interval.rate:.1f}% of the whole task's targets wrong" in sentence
    [row] = quality_figures.per_task(db, task_ids=[task.id])  # what the dashboard and the dataset card report
    assert row.spot_method == "targeted, weighted" and row.interval.high == pytest.approx(expected.interval.high)


def test_a_versions_tasks_are_scored_with_the_instruction_versions_its_records_used(app, db, settings, tiny_model):
    from app.schemas.export_spec import ExportSpec
    from app.services import versions as version_service
    from worker.__main__ import Worker

    load_demo(db, data_dir=settings.data_dir)
    author = make_user(db, Role.author)
    model = model_service.register(db, name="tiny", path=str(tiny_model), dtype="float32", device="cpu",
                                   actor_id=None)
    task = db.exec(select(Task).where(Task.name == "SHAPES+shape_classification")).one()
    version = version_service.create(db, spec=ExportSpec(task_ids=[task.id], per_task_cap=10, seed=0), name="v-s",
                                     actor_id=author.id, enqueue=False)
    version = version_service.run_build(settings, version_id=version.id)
    [used] = version.manifest["instruction_versions"][task.name]
    client, csrf = signed_in(app, author)
    form = soup(client.get(f"/versions/{version.id}")).select_one("#version-score-form")
    started = client.post(form["action"], data={"csrf_token": csrf, "model_id": str(model.id), "batch_size": "8"})
    assert started.status_code == 303 and started.headers["location"] == "/jobs?kind=score"
    assert Worker(settings).run_once() is True
    job = db.exec(select(Job).where(Job.kind == "score")).one()
    assert job.status == "succeeded" and job.payload["instruction_version_id"] == int(used)
    assert db.exec(select(InstanceScore).where(InstanceScore.instruction_version_id == int(used))).first()
    listed = soup(client.get("/jobs?kind=score")).select("#jobs tbody tr")
    assert [row["data-kind"] for row in listed] == ["score"]

    # An admin audits the version: a targeted spot check of each of its tasks, drawn by the model's doubt.
    assert soup(client.get(f"/versions/{version.id}")).select_one("#version-audit-form") is None  # authors: no
    admin_client, admin_csrf = signed_in(app, make_user(db, Role.admin))
    audit = soup(admin_client.get(f"/versions/{version.id}")).select_one("#version-audit-form")
    opened = admin_client.post(audit["action"], data={"csrf_token": admin_csrf, "model_id": str(model.id)})
    assert opened.status_code == 303
    from app.models import SpotCheck

    [check] = db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id, SpotCheck.status == "open")).all()
    assert check.targeted and check.targeted_by_model_id == model.id
