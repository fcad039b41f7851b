"""What a person sees in Chromium: signing in, htmx forms with 422s, live filters, toasts, escaping."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.models import Role
from tests.factories import PASSWORD, make_dataset, make_task, make_user

# One database: what the browser shows does not depend on the database (the pages' own tests run on both).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_shows_the_dashboard_and_wrong_passwords_a_message(page: Page, db):
    user = make_user(db, Role.author)
    sign_in(page, user.email, "wrong password")
    expect(page.get_by_role("alert")).to_have_text("Email or password is not correct.")
    sign_in(page, user.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/$"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_htmx_form_shows_422_errors_in_place_then_redirects(page: Page, db):
    user = make_user(db, Role.author)
    sign_in(page, user.email)
    page.goto("/datasets/new")
    page.get_by_label("Name").fill("A+B")
    page.get_by_label("Licence").fill("MIT")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#name-error")).to_have_text("must be non-empty and contain neither '+' nor '/'")
    expect(page).to_have_url(re.compile(r"/datasets/new$"))  # swapped in place, no navigation
    expect(page.get_by_label("Licence")).to_have_value("MIT")
    page.get_by_label("Name").fill("ChartQA")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="ChartQA")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/datasets/\d+$"))


def test_task_search_filters_live_and_keeps_the_url(page: Page, db):
    for name in ("GEO+angles", "GEO+areas", "OCR+signs"):
        make_task(db, name)
    user = make_user(db, Role.reviewer)
    sign_in(page, user.email)
    page.goto("/tasks")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_role("searchbox", name="Search").fill("GEO")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"/tasks\?q=GEO"))
    page.get_by_role("searchbox", name="Search").fill("nothing-like-this")
    expect(page.locator("#no-tasks")).to_be_visible()


def test_htmx_errors_appear_as_a_toast(page: Page, db):
    user = make_user(db, Role.reviewer)
    sign_in(page, user.email)
    page.goto("/tasks")
    page.evaluate("htmx.ajax('GET', '/tasks/999', {target: '#task-table'})")
    expect(page.locator("#toasts .toast")).to_have_text("There is no task with id 999.")
    expect(page.locator("table.tasks, #no-tasks")).to_have_count(1)  # the table was left alone


def test_script_in_user_text_is_shown_not_run(page: Page, db):
    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    make_dataset(db, "XSS", notes=payload)
    make_task(db, f"XSS+{payload}")
    user = make_user(db, Role.reviewer)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, user.email)
    page.goto("/datasets/1")
    expect(page.get_by_text(payload)).to_be_visible()
    page.goto("/tasks")
    expect(page.get_by_role("link", name=f"XSS+{payload}")).to_be_visible()
    assert dialogs == []


def test_api_docs_render_under_the_content_security_policy(page: Page):
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
    assert problems == []


def test_an_import_job_page_updates_itself_until_the_job_ends(page: Page, db, settings):
    import json
    import threading

    from PIL import Image as PILImage

    from worker.__main__ import Worker

    root = settings.resolved_import_root
    root.mkdir(parents=True)
    PILImage.new("RGB", (8, 8), "red").save(root / "a.png")
    (root / "in.jsonl").write_text("\n".join(json.dumps({"instance_id": k, "img_path": "a.png", "raw_output": "red",
                                                         "dataset_name": "C", "task_name": "t"}) for k in range(3)))
    user = make_user(db, Role.author)
    sign_in(page, user.email)
    page.goto("/imports")
    page.get_by_label("File").fill("in.jsonl")
    page.get_by_label("Image folder").fill(".")
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#job-status")).to_have_attribute("data-status", "queued")
    worker = threading.Timer(1.0, lambda: Worker(settings).run_once())
    worker.start()
    # no reload: the status fragment polls itself and stops once the job has ended
    expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded", timeout=15_000)
    expect(page.locator("[data-field=imported]")).to_have_text("3")
    worker.join()


def test_typing_in_the_instruction_editor_updates_the_preview(page: Page, db):
    task = make_task(db, "SHAPES+shape_qa", instances=5)
    author = make_user(db, Role.author)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, author.email)
    page.goto(f"/tasks/{task.id}")
    page.get_by_label("Instruction label").fill("main")
    page.get_by_role("button", name="New instruction").click()
    expect(page.get_by_role("heading", name="Instruction “main”")).to_be_visible()
    expect(page.locator("article.sample")).to_have_count(5)
    page.get_by_label("Instruction").fill("Say what the <script>alert(1)</script> shape is.")
    expect(page.locator("article.sample pre.prompt").first).to_have_text(
        re.compile(r"^Say what the <script>alert\(1\)</script> shape is\."))
    page.get_by_label("Output template").fill("Answer: {{ raw_output }}")
    expect(page.locator("article.sample pre.target").first).to_have_text(re.compile(r"^Answer: answer \d$"))
    # every instance of this small task is checked while typing, with counts
    page.get_by_label("Output template").fill("{{ raw_output[99] }}")
    expect(page.locator("#lint-all li").first).to_contain_text("5 of 5 instances")
    # a draft that cannot render at all is said so once: the list above the samples, not on each of them
    page.get_by_label("Output template").fill("{{ nope }}")
    expect(page.locator("#lint")).to_contain_text("unknown field(s): nope")
    expect(page.locator("#unrendered")).to_contain_text("does not render on any of these 5 instances")
    expect(page.locator("article.sample")).to_have_count(0)
    expect(page.locator("#lint-blocked")).to_be_visible()
    # autosave: the draft is kept without pressing anything
    expect(page.locator("#lock-version")).not_to_have_value("1", timeout=10_000)
    page.reload()  # the saved draft, script and all, comes back as text
    expect(page.get_by_label("Instruction")).to_have_value("Say what the <script>alert(1)</script> shape is.")
    assert dialogs == []


def test_editor_keys_and_pinning(page: Page, db):
    task = make_task(db, "SHAPES+keys", instances=10)
    author = make_user(db, Role.author)
    sign_in(page, author.email)
    page.goto(f"/tasks/{task.id}")
    page.get_by_role("button", name="New instruction").click()
    expect(page.locator("article.sample")).to_have_count(8)
    page.get_by_label("Instruction").fill("Pinned check.")
    page.keyboard.press("Control+s")
    expect(page.locator("#lock-version")).to_have_value("2", timeout=1_500)  # saved before autosave would fire
    expect(page.locator("article.sample pre.prompt").first).to_have_text(re.compile(r"^Pinned check"))
    page.locator("h1").click()  # leave the text field: j/k step through the preview
    page.keyboard.press("j")
    expect(page.locator("article.sample").first).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator("article.sample").nth(1)).to_be_focused()
    second = page.locator("article.sample").nth(1).get_attribute("data-source-id")
    page.locator("article.sample").nth(1).get_by_role("button", name="pin").click()
    expect(page.locator("article.sample").first).to_have_attribute("data-source-id", second)
    page.get_by_role("button", name=re.compile("Shuffle")).click()
    expect(page.locator("article.sample.pinned")).to_have_attribute("data-source-id", second)
    expect(page.locator("article.sample").first).to_have_class(re.compile("pinned"))
