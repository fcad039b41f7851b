"""Blind solve tests, spot checks, final verification and the task's state machine, end to end."""

from __future__ import annotations

from collections import Counter

import pytest
from alembic import command
from sqlalchemy import update
from sqlmodel import select

from app.core.failures import Conflict, Invalid
from app.core.migrate import alembic_config
from app.models import (
    Instance,
    InstructionVersion,
    QcStatus,
    Review,
    Role,
    SolveTest,
    SpotCheck,
    Task,
    TaskStatus,
    User,
)
from app.qc.stats import sample_size_for, wilson
from app.services import checks, solve_tests, spot_checks, task_states
from tests.factories import bearer, make_user, soup
from tests.review_helpers import approve, htmx, make_qc_task, signed_in, submit_instruction, team


def _solve_all(client, csrf, answers) -> list:
    """Answers each item the queue hands out with answers(instance raw output, options) -> answer."""
    pages = []
    page = soup(client.post("/review/solve/next", headers=htmx(csrf)))
    while page.select_one("#item") is not None:
        item = page.select_one("#item")
        pages.append(page)
        if page.select_one(".revealed-target"):  # free text: judge it
            matched = "yes" if page.select_one(".your-answer").text.strip() == "right" else "no"
            response = client.post(f"/review/solve/{item['data-item-id']}/judge", headers=htmx(csrf),
                                   data={"matched": matched, "lock_version": item["data-lock-version"]})
        else:
            response = client.post(f"/review/solve/{item['data-item-id']}/answer", headers=htmx(csrf),
                                   data={"answer": answers(page), "lock_version": item["data-lock-version"]})
        assert response.status_code == 200, response.text
        page = soup(response)
    return pages


def _approved_task(db, people, name, kind="option", instances=12):
    task = make_qc_task(db, name, instances=instances, kind=kind)
    _, version, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    return task, version


def _target_of(db, page):
    item = page.select_one("#item")
    instance_id = db.exec(select(Instance.id).join(solve_tests.SolveTestItem).where(
        solve_tests.SolveTestItem.id == int(item["data-item-id"]))).one()
    return db.get(Instance, instance_id).raw_output


def test_an_option_task_is_solved_blind_and_passes_at_its_threshold(app, db):
    people = team(db)
    task, _ = _approved_task(db, people, "SHAPES+which")
    client, csrf = signed_in(app, people["r1"])
    targets = []

    def answer(page):
        target = _target_of(db, page)
        targets.append(target)
        assert target not in page.select_one("pre.prompt").text.split("Options:")[0]  # blind: no target shown
        options = [button["value"] for button in page.select("button[name=answer]")]
        assert options == ["cat", "dog", "bird"]
        return target if len(targets) != 2 else next(o for o in options if o != target)  # one miss

    pages = _solve_all(client, csrf, answer)
    assert len(pages) == 4
    test = db.exec(select(SolveTest).where(SolveTest.task_id == task.id)).one()
    db.refresh(test)
    assert test.status == QcStatus.passed  # 3 of 4, threshold 3
    figures = solve_tests.figures(db, test=test)
    assert (figures.matched, figures.judged) == (3, 4)
    result = soup(client.get(f"/solve-tests/{test.id}"))
    assert "3" in result.select_one("#solve-figures").text and len(result.select("#solve-items tbody tr")) == 4


def test_short_answers_match_after_normalisation_and_a_test_fails_once_it_cannot_pass(app, db):
    people = team(db)
    task, _ = _approved_task(db, people, "COUNT+apples", kind="short")
    client, csrf = signed_in(app, people["r1"])
    seen = []

    def answer(page):
        target = _target_of(db, page)  # e.g. "2 apples"
        seen.append(target)
        number = target.split()[0]
        words = {"0": "zero", "1": "One", "2": "two", "3": "Three"}
        return f"{words[number]} Apples." if len(seen) == 1 else "no idea"

    pages = _solve_all(client, csrf, answer)
    test = db.exec(select(SolveTest).where(SolveTest.task_id == task.id)).one()
    db.refresh(test)
    # "Two Apples." matched "2 apples"; then two misses of 4 with 3 needed: it can no longer pass.
    assert test.status == QcStatus.failed and len(pages) == 3
    assert solve_tests.figures(db, test=test).matched == 1
    assert db.get(Task, task.id).status == TaskStatus.in_review


def test_free_text_is_judged_by_the_solver_after_answering(app, db):
    people = team(db)
    task, _ = _approved_task(db, people, "CAPTION+street", kind="free")
    client, csrf = signed_in(app, people["r2"])
    first = soup(client.post("/review/solve/next", headers=htmx(csrf)))
    target = _target_of(db, first)
    assert target not in first.text  # blind until answered
    item = first.select_one("#item")
    judged = soup(client.post(f"/review/solve/{item['data-item-id']}/answer", headers=htmx(csrf),
                              data={"answer": "right", "lock_version": item["data-lock-version"]}))
    assert judged.select_one(".revealed-target").text == target  # now shown, to judge against
    assert soup(client.get("/review/solve")).select_one(".revealed-target") is not None  # still theirs on reload
    skipped = soup(client.post("/review/solve/next", headers=htmx(csrf), data={"skip": item["data-item-id"]}))
    assert skipped.select_one("#item")["data-item-id"] == item["data-item-id"]  # an answer waits for its judgement
    assert skipped.select_one(".skip") is None
    _solve_all(client, csrf, lambda page: "right")
    test = db.exec(select(SolveTest).where(SolveTest.task_id == task.id)).one()
    db.refresh(test)
    assert test.status == QcStatus.passed


def test_spot_check_verdicts_flag_instances_and_give_a_wilson_interval(app, db):
    people = team(db)
    task, version = _approved_task(db, people, "SHAPES+spot", instances=30)
    opened_on_approval = checks.open_check_of(db, checks.SPOT, task_id=task.id)
    with pytest.raises(Conflict, match="never replaced silently"):
        spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, size=10, max_error_rate=0.3,
                           version_id=version.id, seed=5)
    first = spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, size=10, max_error_rate=0.3,
                               version_id=version.id, seed=5,
                               permission=checks.Permission(reason="a smaller check", replaces=opened_on_approval))
    db.commit()
    check = spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, size=10, max_error_rate=0.3,
                               version_id=version.id, seed=5,
                               permission=checks.Permission(reason="the same seed again", replaces=first.id))
    db.commit()
    sampled = [item.instance_id for item, _ in checks.items_of(db, checks.SPOT, check_id=check.id)]
    assert sampled == [item.instance_id for item, _ in checks.items_of(db, checks.SPOT, check_id=first.id)]  # same seed
    db.refresh(first)
    assert first.status == QcStatus.cancelled  # one spot check of a task runs at a time
    assert first.cancel_reason == "replaced by a new spot check: the same seed again"
    assert check.override_reason == "the same seed again"
    client, csrf = signed_in(app, people["r1"])
    page = soup(client.post("/review/spot/next", headers=htmx(csrf)))
    count = 0
    while page.select_one("#item") is not None:
        item = page.select_one("#item")
        assert page.select_one("pre.target") is not None  # rendered as the export renders it
        verdict = "wrong_target" if count == 0 else "correct"
        page = soup(client.post(f"/review/spot/{item['data-item-id']}", headers=htmx(csrf),
                                data={"verdict": verdict, "note": "label says dog" if count == 0 else "",
                                      "lock_version": item["data-lock-version"]}))
        count += 1
    assert count == 10
    db.expire_all()
    check = db.get(SpotCheck, check.id)
    figures = spot_checks.figures(db, check=check)
    assert (figures.errors, figures.decided) == (1, 10)
    expected = wilson(1, 10)
    assert figures.interval == expected and expected.high == pytest.approx(0.4042, abs=1e-3)
    assert check.status == QcStatus.failed  # upper bound 40% is not under the 30% maximum
    task = db.get(Task, task.id)
    assert (task.flagged_count, task.instance_count) == (1, 29)  # flagged: left out of exports
    flagged = db.exec(select(Instance).where(Instance.task_id == task.id, Instance.status == "flagged")).one()
    assert flagged.id in sampled
    result = soup(client.get(f"/spot-checks/{check.id}"))
    assert result.select_one("#error-rate").text == "10.0%" and result.select_one("#interval").text == "1.8–40.4%"
    assert result.select_one("svg.interval") is not None


def test_spot_check_size_can_come_from_a_wanted_confidence_and_double_review_gives_kappa(app, db):
    people = team(db)
    task, version = _approved_task(db, people, "SHAPES+kappa", instances=80)
    check = spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, max_error_rate=0.25,
                               expected_error_rate=0.02, double_review=True, version_id=version.id,
                               permission=checks.Permission(reason="double review", replaces=checks.open_check_of(
                                   db, checks.SPOT, task_id=task.id)))
    db.commit()
    assert check.size == sample_size_for(0.25, expected_error_rate=0.02) == check.size
    one, csrf1 = signed_in(app, people["r1"])
    two, csrf2 = signed_in(app, people["r2"])
    def first_verdict(item_id: int) -> str:
        return "correct" if item_id % 5 else "bad_image"

    def second_verdict(item_id: int) -> str:
        return "bad_image" if item_id % 10 == 0 or item_id % 7 == 0 else "correct"

    decided = {}
    for client, csrf, name in ((one, csrf1, "r1"), (two, csrf2, "r2")) * (2 * check.size):
        page = soup(client.post("/review/spot/next", headers=htmx(csrf)))
        item = page.select_one("#item")
        if item is None:
            continue
        item_id = int(item["data-item-id"])
        second = "second, independent verdict" in page.select_one("h2").text
        assert second == (item_id in decided)
        if second:
            assert decided[item_id] != name  # never your own item twice
        verdict = second_verdict(item_id) if second else first_verdict(item_id)
        response = client.post(f"/review/spot/{item_id}", headers=htmx(csrf),
                               data={"verdict": verdict, "lock_version": item["data-lock-version"]})
        assert response.status_code == 200
        decided[item_id] = name
    db.expire_all()
    check = db.get(SpotCheck, check.id)
    figures = spot_checks.figures(db, check=check)
    assert figures.second_decided == check.size and check.status != QcStatus.open
    # the counts each first verdict kept (the dashboard reads them) agree with the items; second verdicts not in them
    assert (check.decided_count, check.error_count) == (figures.decided, figures.errors)
    assert figures.decided == check.size and 0 < figures.errors < check.size
    # checks made before the counts existed get them from their items when the migration runs
    db.execute(update(SpotCheck).where(SpotCheck.id == check.id).values(decided_count=0, error_count=0))
    db.commit()
    config = alembic_config(app.state.engine.url.render_as_string(hide_password=False), configure_logging=False)
    command.stamp(config, "head")  # the test database is made from the models, which are the head's schema
    command.downgrade(config, "0006")
    command.upgrade(config, "head")
    db.expire_all()
    assert (db.get(SpotCheck, check.id).decided_count, db.get(SpotCheck, check.id).error_count) == \
        (figures.decided, figures.errors)
    assert spot_checks.figures(db, check=db.get(SpotCheck, check.id)).second_decided == check.size  # items kept
    # Cohen's kappa from the 2 x 2 table of the scripted verdicts, worked out here by hand.
    table = Counter((first_verdict(item_id) == "correct", second_verdict(item_id) == "correct") for item_id in decided)
    both_bad, first_only, second_only = table[(False, False)], table[(False, True)], table[(True, False)]
    assert both_bad and first_only and second_only, "the script should disagree both ways and agree on some errors"
    n = check.size
    observed = (both_bad + table[(True, True)]) / n
    by_chance = ((both_bad + first_only) * (both_bad + second_only)
                 + (n - both_bad - first_only) * (n - both_bad - second_only)) / n**2
    assert figures.kappa == pytest.approx((observed - by_chance) / (1 - by_chance), abs=1e-12)
    assert figures.errors == both_bad + first_only


def _clean_spot_check(app, db, reviewer, task) -> None:
    """The reviewer finds nothing wrong with any item of the task's open spot check."""
    check = db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id, SpotCheck.status == "open")).one()
    client, csrf = signed_in(app, reviewer)
    for _ in range(check.size):
        page = soup(client.post("/review/spot/next", headers=htmx(csrf))).select_one("#item")
        client.post(f"/review/spot/{page['data-item-id']}", headers=htmx(csrf),
                    data={"verdict": "correct", "lock_version": page["data-lock-version"]})
    db.expire_all()


def _accepted_task(app, db, people, name: str, *, instances: int):
    """A task exempt from the solve test, approved and cleanly spot-checked by r1: accepted."""
    task = make_qc_task(db, name, instances=instances)
    task.solve_test_required = False
    db.add(task)
    db.commit()
    _, version, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    _clean_spot_check(app, db, people["r1"], task)
    assert db.get(Task, task.id).status == TaskStatus.accepted
    return task, version


def test_two_verifications_one_native_verify_an_accepted_task(app, db):
    people = team(db)
    other = make_qc_task(db, "VQA+other", instances=2)
    submit_instruction(db, other, people["author"], text="Answer the question about the picture.")
    task, _ = _accepted_task(app, db, people, "VQA+verified", instances=4)
    native = make_user(db, Role.reviewer)  # after the approval: never drawn to review the instruction
    native.native_english = True
    db.add(native)
    db.commit()
    # whoever approved the instruction does not verify it (STUDIO_VERIFIER_MAY_BE_REVIEWER is off)
    approver = _approver(db, task)
    other = people["r2"] if approver.id == people["r1"].id else people["r1"]
    refused, csrf_a = signed_in(app, approver)
    assert soup(refused.post("/review/verify/next", headers=htmx(csrf_a))).select_one("#item") is None

    r2, csrf2 = signed_in(app, other)
    slot = soup(r2.post("/review/verify/next", headers=htmx(csrf2))).select_one("#item")
    assert slot is not None and "native" not in soup(r2.get("/review/verify")).select_one("h2").text
    assert soup(r2.post("/review/verify/next", headers=htmx(csrf2))).select_one("#item")["data-item-id"] == \
        slot["data-item-id"]  # the non-native slot; the native one is not offered to r2
    nat, csrf3 = signed_in(app, native)
    native_page = soup(nat.post("/review/verify/next", headers=htmx(csrf3)))
    assert "native English speaker" in native_page.select_one("h2").text
    overlap = native_page.select("ol.overlap li")  # the other task's instruction shares most of its words
    assert [item.text.split(" (")[0] for item in overlap] == ["VQA+other / main"]
    assert float(overlap[0]["data-score"]) >= 0.5
    nat_slot = native_page.select_one("#item")
    for client, csrf, item in ((r2, csrf2, slot), (nat, csrf3, nat_slot)):
        response = client.post(f"/review/verify/{item['data-item-id']}", headers=htmx(csrf),
                               data={"decision": "approve", "lock_version": item["data-lock-version"]})
        assert response.status_code == 200
    db.expire_all()
    assert db.get(Task, task.id).status == TaskStatus.verified
    dashboard = soup(r2.get("/"))
    row = dashboard.select_one('#task-quality tr[data-task="VQA+verified"]')
    assert "verified" in row.text and row.select_one("svg.interval") is not None


def _approver(db, task) -> User:
    """The reviewer who approved the task's instruction (drawn at random among the reviewers)."""
    approver = select(Review.reviewer_id).where(Review.task_id == task.id, Review.decision == "approve",
                                                Review.subject == "instruction_version")
    return db.get(User, db.exec(approver).one())


def test_a_verification_asking_for_changes_sends_the_instruction_back(app, db):
    people = team(db)
    task, version = _accepted_task(app, db, people, "VQA+sent_back", instances=2)
    client, csrf = signed_in(app, people["r2"] if _approver(db, task).id == people["r1"].id else people["r1"])
    slot = soup(client.post("/review/verify/next", headers=htmx(csrf))).select_one("#item")
    refused = client.post(f"/review/verify/{slot['data-item-id']}", headers=htmx(csrf),
                          data={"decision": "request_changes", "lock_version": slot["data-lock-version"]})
    assert refused.status_code == 422
    client.post(f"/review/verify/{slot['data-item-id']}", headers=htmx(csrf),
                data={"decision": "request_changes", "comment": "Not fluent.",
                      "lock_version": slot["data-lock-version"]})
    db.expire_all()
    assert db.get(Task, task.id).status == TaskStatus.changes_requested
    assert db.get(InstructionVersion, version.id).status == "changes_requested"


def test_illegal_transitions_are_refused_with_the_rules(app, db):
    with pytest.raises(Conflict, match="cannot go from draft to verified.*two final verifications"):
        task_states.check_transition("draft", "verified")
    task_states.check_transition("accepted", "verified")
    assert task_states.path(TaskStatus.draft, TaskStatus.verified) == ["in_review", "accepted", "verified"]
    assert task_states.path(TaskStatus.verified, TaskStatus.draft) == []  # only an admin retires and reopens
    admin = make_user(db, Role.admin)
    task = make_qc_task(db, "VQA+retire", instances=1)
    with pytest.raises(Invalid):
        task_states.set_status_by_hand(db, task_id=task.id, to="verified", actor_id=admin.id, reason="because")
    client, csrf = signed_in(app, admin)
    retired = client.post(f"/tasks/{task.id}/status", data={"csrf_token": csrf, "status": "retired",
                                                            "reason": "duplicate of another task"})
    assert retired.status_code == 303
    db.expire_all()
    assert db.get(Task, task.id).status == TaskStatus.retired
    with pytest.raises(Conflict, match="retired"):
        solve_tests.create(db, task_id=task.id, actor_id=admin.id, size=1, pass_threshold=1)
    reviewer, csrf_r = signed_in(app, make_user(db, Role.reviewer))
    assert reviewer.post(f"/tasks/{task.id}/status", data={"csrf_token": csrf_r, "status": "draft",
                                                          "reason": "x"}).status_code == 403


def test_the_review_api_claims_decides_and_reports(app, db):
    people = team(db)
    task = make_qc_task(db, "API+review", instances=30)
    _, _, review = submit_instruction(db, task, people["author"])
    reviewer: User = db.get(User, review.reviewer_id)
    client, csrf = signed_in(app, reviewer)
    token = client.post("/api/v1/me/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    api = {"Authorization": f"Bearer {token}"}
    counts = client.get("/api/v1/review/queues", headers=api).json()
    assert counts["instructions"] == {"for_me": 1, "undecided": 1}
    item = client.post("/api/v1/review/instructions/next", headers=api).json()
    assert (item["id"], item["task_name"]) == (review.id, "API+review")
    stale = client.post(f"/api/v1/review/instructions/{item['id']}/decision", headers=api,
                        json={"decision": "approve", "lock_version": item["lock_version"] - 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    done = client.post(f"/api/v1/review/instructions/{item['id']}/decision", headers=api,
                       json={"decision": "approve", "lock_version": item["lock_version"]})
    assert done.json() == {"decision": "approve"}
    assert client.post("/api/v1/review/instructions/next", headers=api).status_code == 204
    solve = client.post("/api/v1/review/solve/next", headers=api).json()
    assert solve["answer_kind"] == "option" and solve["target"] is None and solve["options"] == ["cat", "dog", "bird"]
    answered = client.post(f"/api/v1/review/solve/{solve['id']}/answer", headers=api,
                           json={"answer": "bird", "lock_version": solve["lock_version"]})
    assert answered.status_code == 200 and isinstance(answered.json()["matched"], bool)
    weaker = {"size": 3, "max_error_rate": 0.5, "seed": 1}
    refused = client.post(f"/api/v1/tasks/{task.id}/spot-checks", headers=api, json=weaker)
    assert refused.status_code == 403, refused.text  # the people a check judges never weaken it
    message = refused.json()["error"]["message"]
    assert "3 instances, fewer than the default" in message and "a chosen seed" in message
    admin_api = bearer(db, people["admin"])
    assert client.post(f"/api/v1/tasks/{task.id}/spot-checks", headers=admin_api, json=weaker).status_code == 422
    opened = client.post(f"/api/v1/tasks/{task.id}/spot-checks", headers=admin_api,
                         json={**weaker, "reason": "a quick look before the full check"})
    assert opened.status_code == 201 and opened.json()["size"] == 3
    spot = client.post("/api/v1/review/spot/next", headers=api).json()
    client.post(f"/api/v1/review/spot/{spot['id']}/verdict", headers=api,
                json={"verdict": "ambiguous", "lock_version": spot["lock_version"]})
    report = client.get(f"/api/v1/spot-checks/{opened.json()['id']}", headers=api).json()
    assert (report["errors"], report["decided"]) == (1, 1) and report["interval_high"] == pytest.approx(1.0)


def test_an_admin_may_exempt_a_task_from_the_solve_test_and_nobody_else(app, db):
    people = team(db)
    task = make_qc_task(db, "RELEASED+vqa", instances=4)
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    author, csrf = signed_in(app, people["author"])
    form = {"csrf_token": csrf, "task_group": "question answering", "lock_version": "0",
            "solve_test_required": "false"}
    db.refresh(task)
    author.post(f"/tasks/{task.id}", data={**form, "lock_version": str(task.lock_version)})
    db.expire_all()
    assert db.get(Task, task.id).solve_test_required is True  # an author's form cannot exempt it
    admin, csrf = signed_in(app, people["admin"])
    assert 'name="solve_test_required"' in admin.get(f"/tasks/{task.id}/edit").text
    task = db.get(Task, task.id)
    saved = admin.post(f"/tasks/{task.id}", data={**form, "csrf_token": csrf, "lock_version": str(task.lock_version)})
    assert saved.status_code == 303
    db.expire_all()
    assert db.get(Task, task.id).solve_test_required is False
