"""Markup typed into any text field is shown as text on every page, never run or parsed, checked in Chromium.

Every text a person or an imported file can set carries a payload that would add elements marked
`data-xss` (and call alert) if it reached the page unescaped; every page an admin can open is loaded with
real ids, and the DOM must hold no such element and no dialog may open. The check is on the DOM, so it
holds even where the Content-Security-Policy would have blocked the script anyway."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from sqlmodel import select

from app.models import (
    ConversationItem,
    ConversationPool,
    ConversationReview,
    Instance,
    JobStatus,
    Role,
    SolveTest,
    SpotCheck,
    utcnow,
)
from app.schemas.bulk_fixes import BulkFixIn, BulkQuery, ReplaceChange
from app.schemas.export_spec import ExportSpec
from app.schemas.jobs import FinetunePayload, ImportPayload
from app.services import bulk_fixes
from app.services import jobs as job_service
from app.services import registered_models as model_service
from app.services import users as user_service
from app.services import versions as version_service
from app.services.blinding import NONE
from app.services.qc import QcDefaults
from tests.e2e.test_browser import sign_in
from tests.factories import make_dataset, make_task, make_user
from tests.review_helpers import approve, submit_instruction
from tests.test_access import all_routes

# One database: escaping is the templates' and the browser's, whatever the database.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# No "/" or "+": the payload must also pass as a dataset or task name.
PAYLOAD = "\"'><img src=x data-xss onerror=alert(1)><svg data-xss onload=alert(2)>"
QC = QcDefaults(solve_test_size=2, solve_test_pass=1, max_error_rate=0.5, expected_error_rate=0.05)


def hostile_workspace(db) -> dict[str, int | str]:
    """A little of everything, with the payload in each text field; returns the ids pages are opened with."""
    admin = make_user(db, Role.admin, Role.author, email="admin@example.org")
    author = make_user(db, Role.author, email="author@example.org")
    reviewer = make_user(db, Role.reviewer, email="reviewer@example.org")
    for person in (admin, author, reviewer):
        person.display_name = f"{PAYLOAD} {person.email}"
        db.add(person)
    dataset = make_dataset(db, PAYLOAD, url=f"https://example.org/?q={PAYLOAD}", citation=PAYLOAD, licence=PAYLOAD,
                           notes=PAYLOAD, annotator_id=author.id)
    task = make_task(db, f"{PAYLOAD}+{PAYLOAD}", dataset=dataset, instances=4, category=PAYLOAD,
                     description=PAYLOAD)
    for instance in db.exec(select(Instance).where(Instance.task_id == task.id)):
        instance.input_text, instance.raw_output = PAYLOAD, PAYLOAD
        instance.options, instance.human_preferred_output = [PAYLOAD, "plain"], PAYLOAD
        db.add(instance)
    db.commit()
    instruction, version, review = submit_instruction(db, task, author, text=PAYLOAD)
    instruction.draft_input_template = PAYLOAD
    db.add(instruction)
    db.commit()
    approve(db, review, QC, comment=PAYLOAD)
    user_service.create_token(db, user_id=admin.id, name=PAYLOAD, actor_id=admin.id)
    pool = ConversationPool(name=PAYLOAD, source=PAYLOAD)
    db.add(pool)
    db.flush()
    conversation = ConversationItem(pool_id=pool.id, position=0, source_id=PAYLOAD, rkey=0, conversations=[
        {"from": "human", "value": PAYLOAD}, {"from": "gpt", "value": PAYLOAD}])
    db.add(conversation)
    db.flush()
    db.add(ConversationReview(conversation_id=conversation.id, pool_id=pool.id, rkey=0))
    model = model_service.register(db, name=PAYLOAD, path=f"/models/{PAYLOAD}", actor_id=admin.id)
    built = version_service.create(db, spec=ExportSpec(task_ids=[task.id]), name=PAYLOAD, actor_id=admin.id,
                                   enqueue=False)
    finetune = job_service.enqueue(db, FinetunePayload(version_id=built.id, base_model_id=model.id),
                                   created_by_id=admin.id)
    finetune.result = {"plan": [{"stage": "stage1", "steps": 1, "skipped": None, "description": PAYLOAD},
                                {"stage": "stage2", "steps": 0, "skipped": PAYLOAD, "description": PAYLOAD}],
                       "launch": {"config": None, "processes": 1, "reason": PAYLOAD}}
    db.add(finetune)
    job = job_service.enqueue(db, ImportPayload(format="unified", file=PAYLOAD), created_by_id=admin.id)
    job.status, job.error, job.progress_message, job.finished_at = JobStatus.failed, PAYLOAD, PAYLOAD, utcnow()
    db.add(job)
    db.commit()
    instance_id = db.exec(select(Instance.id).where(Instance.task_id == task.id)).first()
    fix = bulk_fixes.propose(db, author_id=author.id, blindfold=NONE, self_accept_allowed=False, data=BulkFixIn(
        query=BulkQuery(task_ids=[task.id]), reason=PAYLOAD,
        change=ReplaceChange(action="replace", find="plain", replace_with=f"{PAYLOAD} 2")))
    return {"user_id": author.id, "dataset_id": dataset.id, "task_id": task.id, "instance_id": instance_id,
            "instruction_id": instruction.id, "job_id": job.id, "version_id": built.id, "model_id": model.id,
            "finetune_id": finetune.id, "fix_id": fix.id, "pool_id": pool.id, "position": 0,
            "test_id": db.exec(select(SolveTest.id)).first(), "check_id": db.exec(select(SpotCheck.id)).first(),
            "queue_name": "solve"}


def page_urls(app, ids: dict) -> list[str]:
    """Every page an admin can open (GET, not the API, not files), with real ids in it."""
    skipped = {"/healthz", "/openapi.json", "/docs", "/login", "/media/{sha256}", "/media/{sha256}/thumb",
               "/versions/{version_id}/files/{name:path}", "/bulk-fixes/{fix_id}/report.csv"}
    urls = []
    for method, path, _ in all_routes(app):
        if method != "GET" or path.startswith("/api/") or path in skipped:
            continue
        url = path
        for name, value in ids.items():
            url = url.replace("{" + name + "}", str(value))
        assert "{" not in url, f"{path}: give the test an id for it"
        urls.append(url)
    return sorted(set(urls))


def test_payloads_in_every_text_field_render_as_text_on_every_page(page: Page, app, db):
    ids = hostile_workspace(db)
    urls = page_urls(app, ids) + [f"/instructions/{ids['instruction_id']}/history?old=1&new=1",
                                  f"/tasks?q={PAYLOAD}", f"/versions/trace?id={PAYLOAD}",
                                  f"/jobs/{ids['finetune_id']}", "/review/conversations"]
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(f"{page.url}: {dialog.message}"), dialog.dismiss()))
    sign_in(page, "admin@example.org")
    shown_on = []
    for url in urls:
        response = page.goto(url)
        assert response is not None and response.status < 500, (url, response and response.status)
        page.wait_for_load_state("networkidle")  # htmx fragments that load themselves (previews, lint) too
        injected = page.evaluate("document.querySelectorAll('[data-xss]').length")
        assert injected == 0, f"{url}: the payload became markup"
        if PAYLOAD in page.inner_text("body"):
            shown_on.append(url)
    assert dialogs == []
    # Not vacuous: the payload is there, as text, on the pages that show these fields.
    for expected in ("/datasets/{dataset_id}", "/tasks/{task_id}", "/tasks/{task_id}/instances",
                     "/instructions/{instruction_id}", "/admin/users", "/account", "/models", "/versions",
                     "/jobs/{job_id}", "/jobs", "/models/{model_id}", "/jobs/{finetune_id}", "/bulk-fixes",
                     "/bulk-fixes/{fix_id}", "/review/conversations"):
        url = expected.format(**ids)
        assert url in shown_on, f"{url} does not show the payload as text"
