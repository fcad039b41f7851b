"""The whole journey in Chromium, as the people who use the studio go through it: import a dataset, write an
instruction with its live preview, submit it, approve it with the keyboard, blind-solve and spot-check the
task, verify it (two reviewers, one a native speaker), build a version and download its manifest, then
preview a model on the task and see its outputs."""

from __future__ import annotations

import json
import threading

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from app.core.config import Settings
from app.models import Instance, Role, SolveTestItem, Task, User
from tests.e2e.test_browser import sign_in
from tests.e2e.test_review_keyboard import press_and_wait
from tests.factories import make_user

COLOURS = ("red", "green", "blue")


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    """Small quality checks, so that the journey stays short."""
    return Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, page_size=3,
                    solve_test_size=4, solve_test_pass=3, spot_check_max_error_rate=0.5,
                    spot_check_expected_error_rate=0.05, _env_file=None)


def _run_jobs(settings) -> None:
    from worker.__main__ import Worker

    worker = Worker(settings)
    while worker.run_once():
        pass


def _as(browser, live_server, email: str) -> Page:
    tab = browser.new_context(base_url=live_server).new_page()
    tab.set_default_timeout(15_000)
    sign_in(tab, email)
    return tab


def test_from_import_to_a_downloaded_version_and_a_model_preview(page: Page, browser, live_server, db, settings,
                                                                tiny_model):
    from PIL import Image as PILImage

    root = settings.resolved_import_root
    root.mkdir(parents=True)
    for colour in COLOURS:
        PILImage.new("RGB", (32, 32), colour).save(root / f"{colour}.png")
    records = [{"instance_id": k, "img_path": f"{COLOURS[k % 3]}.png", "options": list(COLOURS),
                "raw_output": COLOURS[k % 3], "dataset_name": "SWATCH", "task_name": "colour"} for k in range(12)]
    (root / "swatches.jsonl").write_text("\n".join(json.dumps(record) for record in records))
    author, reviewer = make_user(db, Role.author), make_user(db, Role.reviewer)
    admin = make_user(db, Role.admin)

    # The author imports the dataset in the browser; the worker runs the job.
    sign_in(page, author.email)
    page.goto("/imports")
    page.get_by_label("File").fill("swatches.jsonl")
    page.get_by_label("Image folder").fill(".")
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#job-status")).to_be_visible()
    _run_jobs(settings)
    expect(page.locator("[data-field=imported]")).to_have_text("12")
    task = db.exec(select(Task).where(Task.name == "SWATCH+colour")).one()

    # ... writes the instruction with its live preview, and submits it.
    page.goto(f"/tasks/{task.id}")
    page.get_by_label("Instruction label").fill("main")
    page.get_by_role("button", name="New instruction").click()
    page.get_by_label("Instruction").fill("Which colour fills the image? Choose one option.")
    expect(page.locator("article.sample pre.prompt").first).to_contain_text("Which colour fills the image?")
    page.keyboard.press("Control+Enter")  # at once, before any autosave: the submission carries the text
    expect(page.locator("#versions li").first).to_contain_text("in review")

    # The reviewer approves it with the keyboard.
    review = _as(browser, live_server, reviewer.email)
    review.goto("/review/instructions")
    expect(review.locator(".instruction-text")).to_have_text("Which colour fills the image? Choose one option.")
    press_and_wait(review, "a")
    expect(review.locator("#queue-empty")).to_be_visible()

    # The approval opened a blind solve test: digits pick the options (the right ones, looked up here).
    review.goto("/review/solve")
    while review.locator("#queue-empty").count() == 0:
        item_id = int(review.locator("#item").get_attribute("data-item-id"))
        instance_id = db.exec(select(SolveTestItem.instance_id).where(SolveTestItem.id == item_id)).one()
        press_and_wait(review, str(COLOURS.index(db.get(Instance, instance_id).raw_output) + 1))
    # ... and a spot check: every item is fine.
    review.goto("/review/spot")
    while review.locator("#queue-empty").count() == 0:
        press_and_wait(review, "c")
    db.expire_all()
    assert db.get(Task, task.id).status == "accepted"

    # Final verification: two other reviewers (whoever approved an instruction does not verify it), one of them a
    # native speaker.
    native, second = make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    db.get(User, native.id).native_english = True
    db.commit()
    for person in (_as(browser, live_server, second.email), _as(browser, live_server, native.email)):
        person.goto("/review/verify")
        press_and_wait(person, "a")
    db.expire_all()
    assert db.get(Task, task.id).status == "verified"

    # The author builds a version (the verified task is ticked) and downloads its manifest.
    page.goto("/versions")
    page.get_by_role("button", name="Build the version").click()
    expect(page.get_by_role("heading", name="v1")).to_be_visible()
    _run_jobs(settings)
    page.reload()
    with page.expect_download() as download:
        page.get_by_role("link", name="manifest.json").click()
    manifest = json.loads(download.value.path().read_text())
    assert manifest["counts"]["SWATCH+colour"]["train"] + manifest["counts"]["SWATCH+colour"].get("validation", 0) \
        == 12

    # An admin registers the tiny model; the author previews it on the task and sees its outputs.
    admin_tab = _as(browser, live_server, admin.email)
    admin_tab.goto("/models")
    admin_tab.get_by_label("Name").fill("tiny")
    admin_tab.get_by_label("Local path").fill(str(tiny_model))
    admin_tab.get_by_label("Device").fill("cpu")
    admin_tab.get_by_role("button", name="Register").click()
    expect(admin_tab.locator("#models")).to_contain_text("tiny")
    page.goto(f"/tasks/{task.id}")
    page.get_by_label("Instances").fill("4")
    page.get_by_label("New tokens at most").fill("3")
    page.get_by_role("button", name="Run the preview (a job)").click()
    expect(page.locator("#job-status")).to_be_visible()
    threading.Timer(0.5, _run_jobs, args=(settings,)).start()
    expect(page.locator("#preview-done")).to_be_visible(timeout=30_000)  # the status polls itself
    page.reload()
    expect(page.locator("#outputs tbody tr")).to_have_count(4)

