"""The model half's pages without a model run: the Jobs list and its filters, a fine-tune's page from its recorded
progress, a model's provenance, the version page's fine-tune form and forms that keep their values, destructive
buttons that ask first, and the charts' geometry."""

from __future__ import annotations

from sqlmodel import select

from app.demo import model_half as demo_models
from app.demo.workspace import load_demo
from app.models import ConversationPool, Job, JobMetric, JobStatus, Role, Task, utcnow
from app.qc.charts import change_chart, fitted_ticks, loss_chart, nice_ticks
from app.schemas.jobs import ExportPayload, ImportPayload
from app.services import jobs as job_service
from app.services import registered_models as model_service
from tests.factories import make_user, soup
from tests.review_helpers import htmx, signed_in


def _demo_version(db, settings):
    load_demo(db, data_dir=settings.data_dir)
    return demo_models.add_version(settings, db)


def _finetune_job(db, *, version_id: int, base_id: int, user_id: int, skipped: str | None = None) -> Job:
    plan = [{"stage": "stage1", "steps": 4, "skipped": None, "description": "stage1: 8 records, 4 steps of 2"},
            {"stage": "stage2", "steps": 0 if skipped else 2, "skipped": skipped,
             "description": f"stage2: skipped ({skipped})" if skipped else "stage2: 4 records, 2 steps of 2"}]
    job = Job(kind="finetune", status=JobStatus.running, created_by_id=user_id, progress=0.4,
              payload={"version_id": version_id, "base_model_id": base_id},
              result={"plan": plan, "launch": {"config": None, "processes": 1, "reason": "no GPU on this worker"}})
    db.add(job)
    db.commit()
    for step, loss in enumerate((5.0, 4.0, 3.5, 3.0), start=1):
        db.add(JobMetric(job_id=job.id, stage="stage1", step=step, loss=loss, lr=1e-5, samples_per_s=10.0,
                         tokens_per_s=900.0, created_at=utcnow()))
    db.commit()
    return job


def test_the_jobs_page_lists_every_job_filtered_by_kind_status_and_who_started_it(app, db):
    author, other = make_user(db, Role.author), make_user(db, Role.admin)
    mine = [job_service.enqueue(db, ImportPayload(format="unified", file=f"f{k}.jsonl"), created_by_id=author.id)
            for k in range(4)]
    theirs = job_service.enqueue(db, ExportPayload(version_id=7), created_by_id=other.id)
    client, _ = signed_in(app, author)
    page = soup(client.get("/jobs"))
    kinds = [row["data-kind"] for row in page.select("#jobs tbody tr")]
    assert kinds == ["export", "import", "import"]  # 3 a page in tests
    older = page.select_one("#older-jobs")["href"]
    rest = soup(client.get(older))
    assert [a.text for a in rest.select("#jobs tbody tr td:first-child a")] == [f"#{mine[1].id}",
                                                                                f"#{mine[0].id}"]
    by_kind = soup(client.get("/jobs", params={"kind": "export"}))
    assert [a.text for a in by_kind.select("#jobs tbody a[href^='/jobs/']")] == [f"#{theirs.id}"]
    assert by_kind.select_one("#jobs a[href='/versions/7']") is not None  # what it worked on, linked
    by_person = soup(client.get("/jobs", params={"by": str(other.id), "status": "queued"}))
    assert len(by_person.select("#jobs tbody tr")) == 1
    fragment = client.get("/jobs", params={"status": "failed"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="jobs-table">') and "No job matches" in fragment.text


def test_a_fine_tune_page_shows_its_recipe_progress_chart_links_and_a_skipped_stage(app, db, settings):
    version = _demo_version(db, settings)
    admin = make_user(db, Role.admin)
    base = model_service.register(db, name="base", path="/models/base", actor_id=admin.id)
    job = _finetune_job(db, version_id=version.id, base_id=base.id, user_id=admin.id,
                        skipped="the version has no stage2.json records")
    client, _ = signed_in(app, admin)
    page = soup(client.get(f"/jobs/{job.id}"))
    assert page.select_one("#job-status[hx-trigger='every 1s']") is not None  # it polls while running
    assert "Stage 2 skipped" in page.select_one("#skipped-stages li[data-stage=stage2]").text
    assert [item["data-stage"] for item in page.select("#finetune-plan li")] == ["stage1", "stage2"]
    assert "no GPU on this worker" in page.select_one("#finetune-recipe summary").text
    assert "3.0000" in page.select_one("#finetune-latest").text and "900 tokens/s" in page.select_one(
        "#finetune-latest").text
    assert len(page.select("#loss-chart polyline.loss-stage1")) == 1
    assert page.select_one("#loss-chart .stage-boundary") is None  # no stage 2 to mark
    assert page.select_one(f"#finetune-links a[href='/versions/{version.id}']").text == version.name
    assert page.select_one(f"#finetune-links a[href='/models/{base.id}']").text == "base"
    assert page.select_one("#finetune-done") is None  # nothing registered yet


def test_a_models_page_says_where_it_comes_from(app, db, settings):
    version = _demo_version(db, settings)
    admin = make_user(db, Role.admin)
    base = model_service.register(db, name="base", path="/models/base", actor_id=admin.id)
    job = _finetune_job(db, version_id=version.id, base_id=base.id, user_id=admin.id)
    tuned = model_service.register(db, name="tuned", path="/runs/1/stage2/model", actor_id=None,
                                   source_job_id=job.id, version_id=version.id, base_model_id=base.id)
    scored = {"tasks": {"A+one": {"total": 4, "before": 1, "after": 3, "change": 0.5}},
              "unscored": ["B+two", "C+three"], "mean_before": 0.25, "mean_after": 0.75}
    job.status, job.result = JobStatus.succeeded, {**job.result, "model_id": tuned.id, "model": tuned.name,
                                                   "evaluation": scored}
    db.add(job)
    db.commit()
    client, _ = signed_in(app, make_user(db, Role.reviewer))
    page = soup(client.get(f"/models/{tuned.id}"))
    provenance = page.select_one("#model-provenance")
    assert {a["href"] for a in provenance.select("a")} == {f"/jobs/{job.id}", f"/models/{base.id}",
                                                           f"/versions/{version.id}"}
    assert "25.0% → 75.0%" in page.select_one("#model-evaluation").text
    job_page = soup(client.get(f"/jobs/{job.id}"))
    assert job_page.select_one("#evaluation-none") is None
    # the run's summary stays once it ended: its last step's loss and throughput
    summary = job_page.select_one("#finetune-summary").text
    assert "loss 3.0000" in summary and "900 tokens/s" in summary and job_page.select_one("#finetune-latest") is None
    # a page that shows what a job makes is loaded again once the job has ended (not while it runs)
    assert client.get(f"/jobs/{job.id}/status", params={"reload_when_done": "true"}).headers["HX-Refresh"] == "true"
    assert "HX-Refresh" not in client.get(f"/jobs/{job.id}/status").headers
    assert [row["data-task"] for row in job_page.select("#evaluation tbody tr")] == ["A+one"]
    # 4 records cannot show a change: the page says so rather than reading +50 points as one
    assert "too few to tell" in job_page.select_one("#evaluation tbody tr[data-task='A+one']").text
    assert "one answer moves their accuracy by 25 points" in job_page.select_one("#evaluation-thin").text
    assert "2 tasks of the version with no validation record to score (B+two, C+three)" in \
        job_page.select_one("#evaluation-unscored").text
    assert "25.0% → 75.0%" in soup(client.get(f"/versions/{version.id}")).select_one(
        f"#version-finetunes tr[data-job='{job.id}']").text

    # Nothing scored (a version without validation records): the pages say so, and show no 0% means.
    job.result = {**job.result, "evaluation": {**scored, "tasks": {}, "mean_before": 0.0, "mean_after": 0.0}}
    db.add(job)
    db.commit()
    job_page = soup(client.get(f"/jobs/{job.id}"))
    assert job_page.select_one("#evaluation") is None and job_page.select_one("#evaluation-none") is not None
    assert soup(client.get(f"/models/{tuned.id}")).select_one("#model-evaluation") is None
    assert "%" not in soup(client.get(f"/versions/{version.id}")).select_one(
        f"#version-finetunes tr[data-job='{job.id}']").text
    base_page = soup(client.get(f"/models/{base.id}"))
    assert base_page.select_one(f"#model-finetunes a[href='/models/{tuned.id}']") is not None
    assert base_page.select_one("#model-provenance") is None  # registered by hand
    listing = soup(client.get("/models"))
    assert listing.select_one(f"#models a[href='/models/{tuned.id}']") is not None
    version_page = soup(client.get(f"/versions/{version.id}"))
    assert version_page.select_one(f"#version-finetunes tr[data-job='{job.id}'] a[href='/models/{tuned.id}']")


def test_the_fine_tune_form_offers_stage2_only_with_a_stage2_and_keeps_its_values_when_refused(app, db, settings):
    version = _demo_version(db, settings)
    admin = make_user(db, Role.admin)
    base = model_service.register(db, name="base", path="/models/base", actor_id=admin.id)
    client, csrf = signed_in(app, admin)
    form = soup(client.get(f"/versions/{version.id}")).select_one("#finetune-form")
    assert form.select_one("[name=stage2_steps]") is not None and form.select_one("#no-stage2") is None
    assert form.select_one("#no-validation") is None  # the demo version has a validation split
    refused = client.post(f"/versions/{version.id}/finetune", headers=htmx(csrf), data={
        "base_model_id": str(base.id), "stage1_lr": "fast", "global_batch_size": "64", "stage2_steps": "-3"})
    assert refused.status_code == 422
    form = soup(refused).select_one("#finetune-form")
    assert form.select_one("[name=stage1_lr]")["value"] == "fast" and form.select_one("#stage1_lr-error")
    assert form.select_one("[name=global_batch_size]")["value"] == "64"  # kept
    assert form.select_one("#stage2_steps-error") is not None
    assert db.exec(select(Job).where(Job.kind == "finetune")).first() is None
    # A version without stage 2 offers no stage-2 settings, and says so; one without validation records says
    # that nothing can be scored before and after.
    shapes = db.exec(select(Task).where(Task.name == demo_models.VERSION_TASK)).one()
    created = client.post("/versions", data={"csrf_token": csrf, "task_ids": str(shapes.id), "name": "no-chat",
                                             "validation_ratio": "0", "per_task_cap": "100", "seed": "0"})
    version_id = int(created.headers["location"].rsplit("/", 1)[1])
    from app.services import versions as version_service

    version_service.run_build(settings, version_id=version_id)
    form = soup(client.get(f"/versions/{version_id}")).select_one("#finetune-form")
    assert form.select_one("[name=stage2_steps]") is None and form.select_one("#no-stage2") is not None
    assert form.select_one("#no-validation") is not None


def test_the_fine_tune_form_starts_from_a_recipe_the_user_picks(app, db, settings):
    version = _demo_version(db, settings)
    assert "hf/README.md" in version.manifest["files"]  # the demo's version is a Hugging Face dataset too
    author = make_user(db, Role.author)
    model_service.register(db, name="base", path="/models/base", actor_id=author.id)
    client, _ = signed_in(app, author)
    paper = soup(client.get(f"/versions/{version.id}")).select_one("#finetune-form")
    assert paper.select_one("#recipes [aria-current]").text.startswith("The paper's recipe")
    assert (paper.select_one("[name=stage1_lr]")["value"], paper.select_one("[name=stage1_epochs]")["value"]) == (
        "2e-05", "1.0")
    quick = soup(client.get(paper.select_one("#recipes a")["href"])).select_one("#finetune-form")
    assert quick.select_one("#recipes [aria-current]").text.startswith("A quick run of a small model on a CPU")
    values = {name: quick.select_one(f"[name={name}]")["value"]
              for name in ("stage1_lr", "stage1_epochs", "global_batch_size", "eval_per_task")}
    assert values == {"stage1_lr": "0.002", "stage1_epochs": "20", "global_batch_size": "8", "eval_per_task": "100"}
    assert quick.select_one("[name=recipe]")["value"] == "quick"
    assert client.get(f"/versions/{version.id}?recipe=fastest").status_code == 422  # only the recipes there are


def test_the_new_version_form_warns_of_a_validation_split_too_thin_to_read_a_change_on(app, db, settings):
    load_demo(db, data_dir=settings.data_dir)
    shapes = db.exec(select(Task).where(Task.name == demo_models.VERSION_TASK)).one()  # 299 active instances
    client, csrf = signed_in(app, make_user(db, Role.author))

    def warning(**query) -> str:
        fragment = soup(client.get("/versions/validation-estimate", params=query, headers={"HX-Request": "true"}))
        return fragment.select_one("#validation-estimate").text.strip()

    thin = warning(task_ids=[shapes.id], validation_ratio="0.02", per_task_cap="10000")
    assert "At a validation share of 0.02, 1 ticked task would get fewer than 20 validation records" in thin
    assert f"{shapes.name}: about 6" in thin and "A share of 0.07 gives it 20." in thin
    capped = warning(task_ids=[shapes.id], validation_ratio="0.5", per_task_cap="30")
    assert "about 15" in capped and "A share of 0.67 gives it 20." in capped
    assert "too few for 20 at any share" in warning(task_ids=[shapes.id], validation_ratio="0.5", per_task_cap="15")
    # Enough records, no validation asked for, no task ticked, or values the form itself will refuse: no warning.
    for query in ({"validation_ratio": "0.25"}, {"validation_ratio": "0"}, {"validation_ratio": "lots"},
                  {"validation_ratio": "0.02", "per_task_cap": "many"}):
        assert warning(task_ids=[shapes.id], **query) == ""
    assert warning(validation_ratio="0.02") == ""
    # The page draws it as first shown, and a refused form keeps it for what was sent.
    page = soup(client.get("/versions"))
    assert page.select_one("#version-form #validation-estimate") is not None
    refused = client.post("/versions", headers=htmx(csrf), data={"task_ids": str(shapes.id), "name": "thin",
                                                                  "validation_ratio": "0.02", "seed": "-1"})
    assert refused.status_code == 422 and "about 6" in soup(refused).select_one("#validation-estimate").text


def test_a_new_version_form_sent_without_a_task_comes_back_with_its_values_and_a_message(app, db, settings):
    load_demo(db, data_dir=settings.data_dir)
    pool = db.exec(select(ConversationPool)).one()
    client, csrf = signed_in(app, make_user(db, Role.author))
    refused = client.post("/versions", headers=htmx(csrf), data={
        "name": "mine", "per_task_cap": "500", "seed": "3", "validation_ratio": "0.1",
        "conversation_pool_id": str(pool.id), "stage2_size": "12"})
    assert refused.status_code == 422
    form = soup(refused).select_one("#version-form")
    assert form is not None and soup(refused).select_one("h1") is None  # the form, not a whole error page
    assert form.select_one("#task_ids-error") is not None
    assert form.select_one("[name=name]")["value"] == "mine" and form.select_one("[name=seed]")["value"] == "3"
    assert form.select_one(f"[name=conversation_pool_id] option[value='{pool.id}']").has_attr("selected")
    plain = client.post("/versions", data={"csrf_token": csrf, "name": "mine"})  # without htmx: the whole page
    assert plain.status_code == 422 and soup(plain).select_one("#version-form #task_ids-error") is not None


def test_destructive_actions_look_destructive_and_ask_first(app, db, settings):
    version = _demo_version(db, settings)
    client, _ = signed_in(app, make_user(db, Role.admin))
    delete = soup(client.get(f"/versions/{version.id}")).select_one("#delete-version")
    assert delete["hx-confirm"].startswith(f"Delete version {version.name}")
    assert "danger" in delete.select_one("button")["class"]
    task = db.exec(select(Task).where(Task.name == demo_models.VERSION_TASK)).one()
    retire = soup(client.get(f"/tasks/{task.id}")).select_one("#status-form")
    assert "Retire" in retire["hx-confirm"] and "danger" in retire.select_one("button")["class"]


def test_chart_ticks_and_geometry():
    assert nice_ticks(5.7) == [0, 2, 4, 6] and nice_ticks(0.034) == [0, 0.01, 0.02, 0.03, 0.04]
    chart = loss_chart([("stage1", 1, 4.0), ("stage1", 2, 2.0), ("stage2", 1, 3.0)], {"stage1": 2, "stage2": 2})
    stage1 = [tuple(map(float, point.split(","))) for point in chart.lines["stage1"].split()]
    stage2 = [tuple(map(float, point.split(","))) for point in chart.lines["stage2"].split()]
    assert stage1[0][0] < stage1[1][0] < chart.boundary < stage2[0][0]  # stage 2 goes on after stage 1
    assert stage1[0][1] < stage2[0][1] < stage1[1][1]  # higher loss, higher on the chart (smaller y)
    assert chart.x_ticks[0].label == "0" and chart.y_ticks[-1].label == "4"
    assert chart.dots == {"stage2": tuple(stage2[0])}  # a stage of one step is a point, not an invisible line
    # each stage's losses are summed up apart: they are losses on two different datasets
    assert chart.summary == "stage 1: loss 4.000 → 2.000 over 2 steps; stage 2: loss 3.000 → 3.000 over 1 step"
    # the y axis fits the data: a loss between 2.31 and 2.47 is not drawn as a flat line near the top of 0..3
    close = loss_chart([("stage1", step, 2.47 - 0.04 * step) for step in range(5)])
    labels = [float(tick.label) for tick in close.y_ticks]
    assert 2.2 <= labels[0] <= 2.31 and 2.47 <= labels[-1] <= 2.6
    heights = [float(point.split(",")[1]) for point in close.lines["stage1"].split()]
    assert heights[-1] - heights[0] > 0.6 * (close.bottom - 10)  # the fall spans most of the plot
    assert fitted_ticks(3.0, 3.0) == [2.6, 2.8, 3.0, 3.2, 3.4]
    assert loss_chart([]) is None and change_chart({}) is None
    change = change_chart({"a": {"total": 10, "before": 2, "after": 7, "change": 0.5},
                           "b": {"total": 10, "before": 5, "after": 0, "change": -0.5}})
    gain, drop = change.rows
    assert gain.gained and gain.x == change.zero and not drop.gained and drop.x + drop.bar_width == change.zero
