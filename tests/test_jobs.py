"""The job queue and the worker: leases, retries, cancellation, and an import run as a job."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from PIL import Image as PILImage
from sqlmodel import select

from app.models import Instance, Job, JobStatus, Role
from app.schemas.jobs import ImportPayload
from app.services import jobs as job_service
from app.services.job_queue import LeaseLost, claim, finish, heartbeat, requeue_expired
from tests.factories import login, make_user, soup
from worker.__main__ import Worker

LEASE = timedelta(seconds=30)
AN_IMPORT = ImportPayload(format="unified", file="in.jsonl")


def test_two_workers_never_claim_the_same_job(app, db):
    first, second = (job_service.enqueue(db, ImportPayload(format="unified", file=f"{n}.jsonl"), created_by_id=None)
                     for n in (1, 2))
    engine = app.state.engine
    a = claim(engine, owner="a", kinds=["import"], lease=LEASE)
    b = claim(engine, owner="b", kinds=["import"], lease=LEASE)
    assert {a.id, b.id} == {first.id, second.id} and a.attempts == 1
    assert claim(engine, owner="c", kinds=["import"], lease=LEASE) is None
    assert claim(engine, owner="c", kinds=["preview"], lease=LEASE) is None
    with pytest.raises(LeaseLost):
        heartbeat(engine, job_id=a.id, owner="b", lease=LEASE, progress=0.5)
    assert heartbeat(engine, job_id=a.id, owner="a", lease=LEASE, progress=0.5, message="halfway") is False


def test_an_expired_lease_is_retried_then_failed(app, db):
    job = job_service.enqueue(db, AN_IMPORT, created_by_id=None, max_attempts=2)
    engine = app.state.engine
    for attempt in (1, 2):
        claimed = claim(engine, owner=f"w{attempt}", kinds=["import"], lease=timedelta(seconds=-1))  # dies at once
        assert claimed.id == job.id and claimed.attempts == attempt
        assert requeue_expired(engine) == 1
    db.refresh(job)
    assert job.status == JobStatus.failed and "no attempts are left" in job.error


def test_a_failure_with_attempts_left_is_queued_again(app, db):
    job = job_service.enqueue(db, AN_IMPORT, created_by_id=None, max_attempts=2)
    engine = app.state.engine
    claim(engine, owner="w", kinds=["import"], lease=LEASE)
    finish(engine, job_id=job.id, owner="w", status=JobStatus.failed, error="boom")
    db.refresh(job)
    assert (job.status, job.error) == (JobStatus.queued, "boom")
    claim(engine, owner="w", kinds=["import"], lease=LEASE)
    finish(engine, job_id=job.id, owner="w", status=JobStatus.failed, error="boom again")
    db.refresh(job)
    assert (job.status, job.attempts, job.error) == (JobStatus.failed, 2, "boom again")


def test_cancelling(app, db):
    queued = job_service.enqueue(db, AN_IMPORT, created_by_id=None)
    assert job_service.cancel(db, job_id=queued.id, actor_id=None, is_admin=True).status == JobStatus.cancelled
    running = job_service.enqueue(db, AN_IMPORT, created_by_id=None)
    claim(app.state.engine, owner="w", kinds=["import"], lease=LEASE)
    job_service.cancel(db, job_id=running.id, actor_id=None, is_admin=True)
    assert heartbeat(app.state.engine, job_id=running.id, owner="w", lease=LEASE, progress=0.1) is True


def _incoming(settings, rows: list[dict]) -> None:
    root = settings.resolved_import_root
    (root / "imgs").mkdir(parents=True)
    PILImage.new("RGB", (8, 8), "red").save(root / "imgs" / "a.png")
    (root / "in.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n{broken\n")


def test_an_import_started_in_the_browser_runs_in_the_worker(app, client, db, settings):
    rows = [{"instance_id": k, "img_path": "a.png", "raw_output": "red", "dataset_name": "C", "task_name": "name"}
            for k in range(4)]
    _incoming(settings, rows)
    csrf = login(client, make_user(db, Role.author).email)
    refused = client.post("/imports", data={"csrf_token": csrf, "format": "unified", "file": "../secret_key",
                                            "image_root": "nope"}, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert soup(refused).select_one("#file-error").text == "must be under the import root"
    assert soup(refused).select_one("#image_root-error").text == "no such folder, .zip or .tar under the import root"
    started = client.post("/imports", data={"csrf_token": csrf, "format": "unified", "file": "in.jsonl",
                                            "image_root": "imgs", "max_per_task": "", "seed": "0"})
    assert started.status_code == 303
    job_url = started.headers["location"]
    status = soup(client.get(job_url + "/status")).select_one("#job-status")
    assert status["data-status"] == "queued" and status["hx-trigger"] == "every 1s"

    assert Worker(settings).run_once() is True  # the real worker loop, one job

    finished = soup(client.get(job_url + "/status")).select_one("#job-status")
    assert finished["data-status"] == "succeeded" and finished.get("hx-trigger") is None  # polling stops
    assert finished.select_one("[data-field=imported]").text == "4"
    assert finished.select_one("[data-field=rejected]").text == "1"
    assert [td.text for td in finished.select(".rejections tbody td")][:3] == ["in.jsonl", "5", "record"]
    assert len(db.exec(select(Instance)).all()) == 4
    job = db.exec(select(Job)).one()
    assert job.result["imported"] == 4 and job.progress == 1.0


def test_a_failing_import_job_says_why(app, client, db, settings):
    settings.resolved_import_root.mkdir(parents=True)
    (settings.resolved_import_root / "bad.json").write_text('[{"instance_id": 1},\n{oops')
    job = job_service.enqueue(db, ImportPayload(format="unified", file="bad.json"),
                              created_by_id=None, max_attempts=1)
    Worker(settings).run_once()
    db.refresh(job)
    assert job.status == JobStatus.failed and job.error.startswith("bad.json:2: not valid JSON")


def test_every_format_can_be_imported_from_the_browser(app, client, db, settings):
    from app.models import ConversationItem, SourceDataset, Task

    root = settings.resolved_import_root
    root.mkdir(parents=True)
    (root / "qa.csv").write_text("id,q,a\n1,What?,That\n2,Who?,Them\n")
    (root / "pool.jsonl").write_text(json.dumps({"id": "1", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}) + "\n")
    (root / "meta.yaml").write_text("datasets:\n  - name: DOCS\n    licence: MIT\n    tasks:\n      - name: qa\n"
                                    "        category: OCR\n")
    csrf = login(client, make_user(db, Role.admin).email)
    form = soup(client.get("/imports/form?format=table", headers={"HX-Request": "true"}))
    assert form.select_one("textarea[name=map]") is not None and form.select_one("input[name=pool]") is None
    bad = client.post("/imports", data={"csrf_token": csrf, "format": "table", "file": "qa.csv", "map": "q=input"})
    assert bad.status_code == 422 and "write it as" in soup(bad).select_one("#map-error").text
    no_pool = client.post("/imports", data={"csrf_token": csrf, "format": "conversations", "file": "pool.jsonl"})
    assert no_pool.status_code == 422 and soup(no_pool).select_one("#pool-error") is not None
    for data in ({"format": "table", "file": "qa.csv", "map": "q->input_text\na->raw_output\nid->instance_id",
                  "dataset": "DOCS", "task": "qa"},
                 {"format": "conversations", "file": "pool.jsonl", "pool": "chat"},
                 {"format": "metadata", "file": "meta.yaml"}):
        assert client.post("/imports", data={"csrf_token": csrf, **data}).status_code == 303
        assert Worker(settings).run_once() is True
    jobs = db.exec(select(Job).order_by(Job.id)).all()
    assert [job.status for job in jobs] == [JobStatus.succeeded] * 3, [job.error for job in jobs]
    assert jobs[0].result["imported"] == 2 and jobs[1].result["imported"] == 1
    assert "tasks: 0 created, 1 updated" in jobs[2].result["summary"]
    assert db.exec(select(Task.category).where(Task.name == "DOCS+qa")).one() == "OCR"
    assert db.exec(select(SourceDataset.licence).where(SourceDataset.name == "DOCS")).one() == "MIT"
    assert len(db.exec(select(ConversationItem)).all()) == 1
    page = soup(client.get(f"/jobs/{jobs[2].id}"))
    assert "1 updated" in page.select_one("#import-summary").text


def test_the_worker_refuses_what_the_form_refuses_with_the_same_words(app, client, db, settings):
    """One schema per import format: a job queued around the form (by the API, or a payload edited in the
    database) is held to the same rules, and its paths to the import root."""
    root = settings.resolved_import_root
    root.mkdir(parents=True)
    (root / "qa.csv").write_text("id,q,a\n1,What?,That\n")
    csrf = login(client, make_user(db, Role.admin).email)
    refused = soup(client.post("/imports", data={"csrf_token": csrf, "format": "table", "file": "qa.csv",
                                                 "map": "q=input"})).select_one("#map-error").text
    payloads = [{"format": "table", "file": "qa.csv", "map": ["q=input"]},
                {"format": "unified", "file": "../../secret_key"},
                {"format": "conversations", "file": "qa.csv", "pool": "", "actor_id": 1}]
    jobs = [job_service.enqueue(db, ImportPayload(**payload), created_by_id=None, max_attempts=1)
            for payload in payloads]
    for _ in jobs:
        assert Worker(settings).run_once() is True
    for job in jobs:
        db.refresh(job)
    assert [job.status for job in jobs] == [JobStatus.failed] * 3
    assert refused in jobs[0].error  # "--map 'q=input': write it as 'source column->field'"
    assert "file: must be under the import root" in jobs[1].error
    assert "pool" in jobs[2].error and "at least 1 character" in jobs[2].error


def test_a_two_file_layout_is_joined_from_the_browser_with_the_joined_file_confined_to_the_import_root(
        app, client, db, settings):
    root = settings.resolved_import_root
    root.mkdir(parents=True)
    (root / "questions.json").write_text(json.dumps({"questions": [
        {"question_id": 1, "question": "What?"}, {"question_id": 2, "question": "Who?"}]}))
    (root / "answers.csv").write_text("question_id,answer\n1,That\n3,Nobody\n")
    csrf = login(client, make_user(db, Role.author).email)
    form = soup(client.get("/imports/form?format=table", headers={"HX-Request": "true"}))
    assert {field["name"] for field in form.select("details input")} == {"records", "join", "join_records", "on",
                                                                        "image_pattern"}
    fields = {"csrf_token": csrf, "format": "table", "file": "questions.json", "records": "questions",
              "map": "question_id->instance_id\nquestion->input_text\nanswer->raw_output", "dataset": "QA",
              "task": "qa", "join_records": "", "image_pattern": "", "image_root": ""}
    outside = client.post("/imports", data={**fields, "join": "../secret_key", "on": "question_id"})
    assert outside.status_code == 422
    assert soup(outside).select_one("#join-error").text == "must be under the import root"
    no_key = client.post("/imports", data={**fields, "join": "answers.csv", "on": ""})
    assert no_key.status_code == 422 and "needs both the file" in soup(no_key).select_one("#on-error").text
    assert client.post("/imports", data={**fields, "join": "answers.csv", "on": "question_id"}).status_code == 303
    assert Worker(settings).run_once() is True
    job = db.exec(select(Job)).one()
    assert job.status == JobStatus.succeeded, job.error
    assert (job.result["imported"], job.result["rejected_count"]) == (1, 2)
    assert {(r["file"], r["line"]) for r in job.result["rejected"]} == {("questions.json", 1), ("answers.csv", 3)}
    assert db.exec(select(Instance.raw_output)).all() == ["That"]


def test_instructions_imported_from_the_browser_belong_to_who_started_it(app, client, db, settings):
    from app.models import Instruction, InstructionVersion
    from tests.factories import make_task

    make_task(db, "DOCS+qa", instances=2)
    root = settings.resolved_import_root
    root.mkdir(parents=True)
    (root / "instructions.yaml").write_text("- task: DOCS+qa\n  instruction: Answer the question.\n")
    author = make_user(db, Role.author)
    csrf = login(client, author.email)
    form = soup(client.get("/imports/form?format=instructions", headers={"HX-Request": "true"}))
    assert form.select_one("input[name=submit][type=checkbox]") is not None
    assert form.select_one("input[name=image_root]") is None
    started = client.post("/imports", data={"csrf_token": csrf, "format": "instructions", "file": "instructions.yaml",
                                            "submit": "1"})
    assert started.status_code == 303
    assert Worker(settings).run_once() is True
    job = db.exec(select(Job)).one()
    assert job.status == JobStatus.succeeded, job.error
    assert job.result["submitted"] == ["DOCS+qa / main v1"]
    assert db.exec(select(Instruction.author_id)).one() == author.id
    assert db.exec(select(InstructionVersion.author_id)).one() == author.id


def test_every_kind_has_a_payload_and_a_handler_and_the_database_refuses_any_other(app, db):
    """A typo in a kind would otherwise queue a job nobody ever claims."""
    from sqlalchemy.exc import IntegrityError

    from app.models import JobKind
    from app.schemas.jobs import PAYLOADS, RESULTS
    from worker.__main__ import HANDLERS

    assert set(HANDLERS) == set(PAYLOADS) == set(RESULTS) == set(JobKind)
    db.add(Job(kind="imprt", payload={}))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    assert db.exec(select(Job)).all() == []


def test_payloads_queued_by_an_earlier_studio_still_read(app, db):
    """Jobs wait in the queue across an upgrade: the payloads written before they were typed still parse, with
    the defaults the handlers used to fill in."""
    from app.schemas.jobs import read

    finetune = read("finetune", {"version_id": 3, "base_model_id": 2, "stage1_lr": 1e-4, "max_steps": None,
                                 "lora": True, "lora_rank": 4, "a_field_since_removed": 1})
    assert (finetune.version_id, finetune.stage1_lr, finetune.seed, finetune.eval_per_task) == (3, 1e-4, 0, 20)
    assert read("score", {"task_id": 1, "model_id": 2, "instruction_version_id": 3}).batch_size == 8
    lint = read("lint", {"task_id": 1, "spec": {"text": "Answer."}, "token_budget": 2048, "tokenizer_path": None,
                         "skip_instance_ids": [4]})
    assert lint.spec.text == "Answer." and lint.skip_instance_ids == [4]
    imported = read("import", {"format": "table", "file": "qa.csv", "map": ["q=input"], "actor_id": 5})
    assert imported.actor_id == 5 and imported.request() == {"format": "table", "file": "qa.csv", "map": ["q=input"]}


def test_results_recorded_by_an_earlier_studio_still_read(app, db):
    """The pages read a job's result through its kind's model: the shapes the worker has written read, with
    defaults for what they lacked and what a later studio adds kept."""
    from app.schemas.jobs import read_result

    assert read_result("score", None) is None
    imported = read_result("import", {"source": "a.jsonl", "imported": 3, "duplicates": 1, "rejected_count": 1,
                                      "rejected": [{"file": "a.jsonl", "line": 4, "field": "raw_output",
                                                    "reason": "missing"}], "tasks_created": ["A+b"]})
    assert (imported.imported, imported.rejected[0].line, imported.summary, imported.seconds) == (3, 4, None, 0.0)
    metadata = read_result("import", {"summary": "metadata.yaml: 1 dataset created", "datasets_created": ["A"]})
    assert metadata.imported is None and metadata.summary.startswith("metadata.yaml")
    score = read_result("score", {"scored": 10, "skipped": 0, "seconds": 2.0, "scored_per_s": 5.0, "model": "m"})
    assert (score.scored, score.instruction_version_id) == (10, None)
    lint = read_result("lint", {"issues": [{"severity": "error", "field": "text", "message": "x", "count": 2,
                                            "examples": [1, 2]}], "checked": 9})
    assert lint.issues[0].count == 2 and lint.checked == 9
    assert read_result("export", {"version_id": 4, "records": 7, "content_hash": "ab"}).records == 7
    with pytest.raises(ValueError, match="version_id"):
        read_result("export", {"records": 7})


def test_a_payload_that_does_not_fit_its_kind_fails_the_job_saying_which_field(app, db, settings):
    job = Job(kind="preview", payload={"model_id": 1}, max_attempts=1)
    db.add(job)
    db.commit()
    assert Worker(settings).run_once() is True
    db.refresh(job)
    assert job.status == JobStatus.failed and "task_id" in job.error and "Field required" in job.error
