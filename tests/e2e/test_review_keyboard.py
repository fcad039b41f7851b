"""A reviewer works the queues with the keyboard alone in Chromium: review, blind solve, spot check."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from app.models import Instance, Instruction, Review, Role, SolveTest, SolveTestItem, SpotCheck, SpotCheckItem, Task
from tests.e2e.test_browser import sign_in
from tests.factories import make_user
from tests.review_helpers import make_qc_task, submit_instruction

# One database: the keys are the page's script; the queues' database rules have their own tests on both.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def press(page: Page, key: str) -> None:
    """Presses the key once the page takes keys (they are ignored while a decision is on its way)."""
    page.wait_for_function("() => document.documentElement.dataset.review === 'ready'")
    page.keyboard.press(key)


def press_and_wait(page: Page, key: str) -> None:
    """Presses the key on the item shown, and waits until the next item (or the empty queue) replaced it and
    takes keys again."""
    shown = page.locator("#item").get_attribute("data-item-id")
    page.wait_for_function("() => document.documentElement.dataset.review === 'ready'")
    page.keyboard.press(key)
    page.wait_for_function("(old) => { const item = document.querySelector('#item');"
                           " return (!item || item.dataset.itemId !== old)"
                           " && document.documentElement.dataset.review === 'ready'; }", arg=shown)


def test_a_reviewer_decides_with_keys_only(page: Page, db):
    author, reviewer = make_user(db, Role.author), make_user(db, Role.reviewer)
    task = make_qc_task(db, "SHAPES+keys", instances=6)
    instruction, _, review = submit_instruction(db, task, author, text="Which animal is shown? Pick one option.")
    assert review.reviewer_id == reviewer.id
    sign_in(page, reviewer.email)

    page.goto("/review/instructions")
    expect(page.locator(".instruction-text")).to_have_text("Which animal is shown? Pick one option.")
    page.keyboard.press("?")
    expect(page.locator("#review-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#review-help")).to_be_hidden()
    # "r" needs a comment: it opens the comment field; Ctrl+Enter sends it as "request changes".
    press(page, "r")
    expect(page.locator("textarea[name=comment]")).to_be_focused()
    page.keyboard.type("Say that the answer is one of the options.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#queue-empty")).to_be_visible()
    db.expire_all()
    assert db.get(Instruction, instruction.id).status == "changes_requested"

    _, _, second = submit_instruction(db, task, author, text="Which animal is shown? Answer with one option.",
                                      instruction=instruction)
    assert second.reviewer_id == reviewer.id  # the only reviewer there is
    press(page, "n")  # look again
    expect(page.locator("#item")).to_have_attribute("data-item-id", str(second.id))
    press(page, "j")  # j/k move between the choices, Enter takes the selected one
    press(page, "k")
    expect(page.get_by_role("button", name="Approve a")).to_be_focused()
    press(page, "Enter")
    expect(page.locator("#queue-empty")).to_be_visible()
    db.expire_all()
    assert db.get(Review, second.id).decision == "approve"

    # Approval opened a blind solve test: digits pick options (the right ones, looked up here), and the target
    # stays hidden.
    test = db.exec(select(SolveTest).where(SolveTest.task_id == task.id)).one()
    page.goto("/review/solve")
    answered = 0
    while page.locator("#queue-empty").count() == 0:
        expect(page.locator(".revealed-target")).to_have_count(0)
        item_id = int(page.locator("#item").get_attribute("data-item-id"))
        instance = db.get(Instance, db.get(SolveTestItem, item_id).instance_id)
        press_and_wait(page, str(instance.options.index(instance.raw_output) + 1))
        answered += 1
        assert answered <= test.size
    db.refresh(test)
    assert test.status == "passed"

    # The task is too small for a spot check beside the solve test (they share no instance): it opened once the
    # test passed, over the whole task. "w" marks a wrong target (the instance is flagged), "c" the rest correct.
    check = db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id)).one()
    page.goto("/review/spot")
    first = page.locator("#item").get_attribute("data-item-id")
    press_and_wait(page, "w")
    # the verdict says what it did, and offers the fix beside the next item; "z" takes it back
    expect(page.locator("#queue-message")).to_contain_text("is flagged (wrong target) and left out of exports")
    press_and_wait(page, "z")
    expect(page.locator("#queue-message")).to_contain_text("undone: judge it again")
    expect(page.locator("#item")).to_have_attribute("data-item-id", first)
    press_and_wait(page, "w")
    expect(page.locator("#fix-offer select[name=raw_output]")).to_be_visible()
    for _ in range(check.size - 1):
        press_and_wait(page, "c")
        expect(page.locator("#queue-message")).to_contain_text(" is correct.")
    expect(page.locator("#queue-empty")).to_be_visible()
    verdicts = db.exec(select(SpotCheckItem.verdict).where(SpotCheckItem.spot_check_id == check.id)).all()
    assert sorted(verdicts).count("wrong_target") == 1 and len(verdicts) == check.size
    db.expire_all()
    assert db.get(Task, task.id).flagged_count == 1
    page.goto(f"/tasks/{task.id}/history")
    expect(page.locator('#history tr[data-action="instance.flag"]')).to_have_count(2)  # flagged, undone, again
    expect(page.locator('#history tr[data-action="instance.unflag"]')).to_have_count(1)
