"""A finding fixed end to end in the browser: a spot checker marks a wrong target and proposes the model's
suggestion from the same screen, a second reviewer accepts it with the keyboard in the corrections queue, the
instance is back in exports, a new version holds the corrected target, and its trace shows the chain."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from playwright.sync_api import Page, expect
from sqlmodel import select

from app.models import Instance, InstanceScore, RegisteredModel, Revision, Role, SolveTestItem, SpotCheck, SpotCheckItem
from app.schemas.export_spec import ExportSpec
from app.services import solve_tests
from app.services import versions as version_service
from tests.e2e.test_browser import sign_in
from tests.e2e.test_review_keyboard import press_and_wait
from tests.factories import make_user
from tests.review_helpers import SMALL_QC, approve, make_qc_task, submit_instruction


def _scored_by_a_model_that_disagrees(db, task, version_id: int) -> RegisteredModel:
    model = RegisteredModel(name="tiny-judge", path="/models/tiny-judge", dtype="float32", device="cpu")
    db.add(model)
    db.flush()
    for instance in db.exec(select(Instance).where(Instance.task_id == task.id)):
        probabilities = [0.05, 0.05, 0.05]
        probabilities[(instance.options.index(instance.raw_output) + 1) % 3] = 0.9
        db.add(InstanceScore(instance_id=instance.id, task_id=task.id, model_id=model.id, loss=2.0,
                             instruction_version_id=version_id, greedy_matched=False,
                             option_probabilities=probabilities))
    db.commit()
    return model


def _solve_blind(db, solver) -> None:
    """The approval's blind solve test, answered right (through the service): its spot check opens after it."""
    from app.services import queues

    while (item_id := queues.next_item(db, queue=queues.SOLVE, user=solver, lease_s=600)) is not None:
        item = db.get(SolveTestItem, item_id, populate_existing=True)
        solve_tests.answer(db, item_id=item_id, lock_version=item.lock_version, user_id=solver.id,
                           text=db.get(Instance, item.instance_id).raw_output, defaults=SMALL_QC)


def test_a_wrong_target_is_fixed_by_the_models_suggestion_and_a_second_reviewer(page: Page, db, settings):
    author, checker, second = make_user(db, Role.author), make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    task = make_qc_task(db, "FIXES+animals", instances=6)
    _, version, review = submit_instruction(db, task, author, text="Which animal is shown? Pick one option.")
    approve(db, review)
    _solve_blind(db, second if review.reviewer_id == checker.id else checker)
    model = _scored_by_a_model_that_disagrees(db, task, version.id)
    check = db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id)).one()

    sign_in(page, checker.email)
    page.goto("/review/spot")
    flagged = db.get(Instance, db.get(SpotCheckItem, int(page.locator("#item").get_attribute("data-item-id")))
                     .instance_id)
    press_and_wait(page, "w")
    expect(page.locator("#queue-message")).to_contain_text(f"{flagged.source_id} is flagged")
    suggested = flagged.options[(flagged.options.index(flagged.raw_output) + 1) % 3]
    expect(page.locator("#fix-offer .suggestion strong")).to_have_text(suggested)
    page.locator("#propose-suggestion").click()
    expect(page.locator(".suggestion.notice")).to_contain_text("corrections queue")
    for _ in range(check.size - 1):
        press_and_wait(page, "c")
    db.expire_all()
    assert db.get(Instance, flagged.id).status == "flagged"

    page.context.clear_cookies()
    sign_in(page, second.email)
    page.goto("/review/corrections")
    expect(page.locator("#fix-changes ins")).to_have_text(suggested)
    expect(page.locator("#fix-reason")).to_contain_text(model.name)
    press_and_wait(page, "a")
    expect(page.locator("#queue-message")).to_contain_text("Accepted")
    db.expire_all()
    fixed = db.get(Instance, flagged.id)
    assert (fixed.status, fixed.raw_output) == ("active", suggested)

    # Fixes do not pass the failed check: an admin builds over it, with the reason the card states (or the task is
    # checked again first).
    built = version_service.create(db, spec=ExportSpec(task_ids=[task.id]), name="fixed", actor_id=None,
                                   enqueue=False, may_override=True, qc_override_reason="its one bad target is fixed")
    built = version_service.run_build(settings, version_id=built.id)
    records = json.loads((settings.data_dir / "exports" / str(built.id) / "stage1.json").read_text())
    record = next(record for record in records if record["id"].split("/")[1] == str(fixed.id))
    assert suggested in record["conversations"][1]["value"]
    page.goto(f"/versions/trace?{urlencode({'id': record['id']})}")
    chain = page.locator("#fixes ol.chain li")
    expect(chain).to_have_count(2)
    expect(chain.nth(1)).to_contain_text(model.name)
    expect(chain.nth(1)).to_contain_text(second.display_name)


def test_the_doubt_view_proposes_the_models_suggestion_with_one_key(page: Page, db):
    author = make_user(db, Role.author)
    task = make_qc_task(db, "KEYS+animals", instances=4)
    _, version, _ = submit_instruction(db, task, author)
    model = _scored_by_a_model_that_disagrees(db, task, version.id)
    sign_in(page, author.email)
    page.goto(f"/tasks/{task.id}/instances?order=doubt")
    expect(page.locator("#grid-keys")).to_be_visible()
    page.keyboard.press("j")
    page.keyboard.press("j")
    second = page.locator(".instance-card").nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("p")
    expect(second.locator(".suggestion.notice")).to_contain_text("corrections queue")
    expect(page.locator(".suggestion.notice")).to_have_count(1)  # only the card in focus
    proposed = db.exec(select(Revision)).all()
    assert len(proposed) == 1 and proposed[0].origin == "model_suggestion" and proposed[0].origin_id == model.id
    assert proposed[0].record_id == int(second.get_attribute("data-instance-id"))
