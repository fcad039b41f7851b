"""A bulk fix in the browser: from a task's instances to the form, whose preview follows what is typed; proposed;
found by a second reviewer on the Review page and accepted; applied by the worker while its page shows the
progress; the instances hold the new values."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from app.models import Instance, Role
from tests.e2e.test_browser import sign_in
from tests.factories import make_user
from tests.review_helpers import make_qc_task
from worker.__main__ import Worker


# The browser's part does not depend on the database; the services' tests run the same fix on both.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_bulk_fix_is_previewed_proposed_accepted_and_applied(page: Page, db, settings, browser, live_server):
    task = make_qc_task(db, "BULKUI+animals", instances=9)
    author, reviewer = make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    sign_in(page, author.email)
    page.goto(f"/tasks/{task.id}/instances?q=dog")
    page.locator("#bulk-fix-these").click()
    expect(page.locator("select[name=task_ids] option[selected]")).to_have_text(task.name)
    expect(page.locator("input[name=q]")).to_have_value("dog")
    page.locator("input[name=find]").fill("dog")
    page.locator("input[name=replace_with]").fill("puppy")
    # the preview follows: the three instances whose input or target says "dog", each with its options
    expect(page.locator("#bulk-counts")).to_contain_text("3 instances change")
    expect(page.locator("#bulk-changes tr[data-instance]")).to_have_count(3 + 3)
    page.locator("input[name=reason]").fill("The class list says puppy.")
    page.get_by_role("button", name="Propose for review").click()
    expect(page.locator("h1")).to_contain_text("proposed")
    fix_url = page.url

    other = browser.new_context(base_url=live_server).new_page()
    sign_in(other, reviewer.email)
    other.goto("/review")
    other.locator("#bulk-waiting a").click()
    other.locator(f"a[href='{fix_url.removeprefix(live_server)}']").click()
    expect(other.locator("#bulk-counts")).to_contain_text("3 instances change")
    other.get_by_role("button", name="Accept all 3 changes").click()
    expect(other.locator("#bulk-status")).to_contain_text("Applying: 0 of 3")
    assert Worker(settings).run_once()
    expect(other.locator("#bulk-applied")).to_contain_text("3 instances fixed")  # the status polled itself
    db.expire_all()
    targets = db.exec(select(Instance.raw_output).where(Instance.task_id == task.id)).all()
    assert "dog" not in targets and targets.count("puppy") == 3
    other.context.close()
