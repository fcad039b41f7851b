"""Instruction review through the pages: random assignment, decisions, rounds, leases and stale pages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from app.models import (
    AuditEvent,
    Instruction,
    InstructionVersion,
    QcStatus,
    Review,
    Role,
    SolveTest,
    SpotCheck,
    SpotCheckItem,
    Task,
    utcnow,
)
from app.services import spot_checks
from tests.factories import make_user, soup
from tests.review_helpers import (
    approve,
    htmx,
    instruction_reviews,
    make_qc_task,
    signed_in,
    submit_instruction,
    team,
)


def test_a_submitted_version_goes_to_a_random_reviewer_who_did_not_write_it(app, db):
    author = make_user(db, Role.author, Role.reviewer)  # an author who also reviews
    reviewers = {make_user(db, Role.reviewer).id for _ in range(3)}
    assigned = set()
    for k in range(12):
        task = make_qc_task(db, f"DS+task_{k}", instances=2)
        _, _, review = submit_instruction(db, task, author)
        assert review.reviewer_id != author.id
        assigned.add(review.reviewer_id)
        assert db.get(Task, task.id).status == "in_review"
    assert assigned <= reviewers and len(assigned) >= 2  # drawn at random, never the author
    client, csrf = signed_in(app, author)
    empty = client.post("/review/instructions/next", headers=htmx(csrf))
    assert soup(empty).select_one("#queue-empty") is not None
    forbidden = client.post(f"/review/instructions/{review.id}", headers=htmx(csrf),
                            data={"decision": "approve", "lock_version": review.lock_version})
    assert forbidden.status_code == 403 and "never review their own" in forbidden.text


def test_decisions_move_the_instruction_and_the_task_and_count_rounds(app, db):
    people = team(db)
    task = make_qc_task(db, "VQA+colours")
    instruction, version, review = submit_instruction(db, task, people["author"])
    reviewer = db.get(type(people["r1"]), review.reviewer_id)
    client, csrf = signed_in(app, reviewer)
    page = soup(client.post("/review/instructions/next", headers=htmx(csrf)))
    item = page.select_one("#item")
    assert item["data-item-id"] == str(review.id)
    assert "Answer the question about the image." in page.select_one(".instruction-text").text
    assert len(page.select("article.sample")) == 3  # rendered on real instances
    lock = item["data-lock-version"]
    no_comment = client.post(f"/review/instructions/{review.id}", headers=htmx(csrf),
                             data={"decision": "request_changes", "lock_version": lock})
    assert no_comment.status_code == 422 and "comment is required" in no_comment.text
    asked = client.post(f"/review/instructions/{review.id}", headers=htmx(csrf),
                        data={"decision": "request_changes", "comment": "Say which options are allowed.",
                              "lock_version": lock})
    assert asked.status_code == 200 and "Decision recorded." in asked.text
    db.expire_all()
    assert db.get(Instruction, instruction.id).status == "changes_requested"
    assert db.get(Task, task.id).status == "changes_requested"
    author_client, _ = signed_in(app, people["author"])
    editor = soup(author_client.get(f"/instructions/{instruction.id}"))
    assert "Say which options are allowed." in editor.select_one(".review-comment").text

    _, version2, review2 = submit_instruction(db, task, people["author"], text="Pick one of the options.",
                                              instruction=instruction)
    assert review2.round == 2 and db.get(Task, task.id).status == "in_review"
    approve(db, review2)
    db.expire_all()
    assert db.get(InstructionVersion, version2.id).status == "approved"
    assert db.get(Task, task.id).status == "in_review"  # approved, but its quality checks are still open
    assert db.exec(select(SolveTest.status).where(SolveTest.task_id == task.id)).all() == [QcStatus.open]
    assert db.exec(select(SpotCheck.status).where(SpotCheck.task_id == task.id)).all() == [QcStatus.open]
    history = soup(author_client.get(f"/tasks/{task.id}/history"))
    actions = [row["data-action"] for row in history.select("#history tbody tr")]
    for action in ("instruction.submit", "review.assign", "review.decide", "task.transition", "solve_test.open",
                   "spot_check.open"):
        assert action in actions
    assert actions.count("review.decide") == 2


def test_a_decision_on_a_stale_page_is_refused_and_overwrites_nothing(app, db):
    people = team(db)
    task = make_qc_task(db, "VQA+stale")
    _, _, review = submit_instruction(db, task, people["author"])
    reviewer = db.get(type(people["r1"]), review.reviewer_id)
    first_tab, csrf = signed_in(app, reviewer)
    shown = soup(first_tab.post("/review/instructions/next", headers=htmx(csrf)))
    lock = shown.select_one("#item")["data-lock-version"]
    decided = first_tab.post(f"/review/instructions/{review.id}", headers=htmx(csrf),
                             data={"decision": "reject", "comment": "Unclear.", "lock_version": lock})
    assert decided.status_code == 200
    again = first_tab.post(f"/review/instructions/{review.id}", headers=htmx(csrf),
                           data={"decision": "approve", "lock_version": lock})
    assert again.status_code == 409 and "not recorded" in again.text
    db.expire_all()
    assert (db.get(Review, review.id).decision, db.get(Review, review.id).comment) == ("reject", "Unclear.")


def test_leases_keep_items_apart_and_abandoned_claims_return_to_the_queue(app, db):
    people = team(db)
    task = make_qc_task(db, "VQA+leases")
    _, version, review = submit_instruction(db, task, people["author"])
    check = spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, max_error_rate=0.5, size=3,
                               version_id=version.id)
    db.commit()
    one, csrf1 = signed_in(app, people["r1"])
    two, csrf2 = signed_in(app, people["r2"])
    a = soup(one.post("/review/spot/next", headers=htmx(csrf1))).select_one("#item")
    b = soup(two.post("/review/spot/next", headers=htmx(csrf2))).select_one("#item")
    assert a["data-item-id"] != b["data-item-id"]  # never the same item
    again = soup(one.get("/review/spot")).select_one("#item")
    assert again["data-item-id"] == a["data-item-id"]  # a reload gives back the item you hold
    # r1 walks away: once the lease runs out, the item is anyone's again.
    db.execute(update(SpotCheckItem).where(SpotCheckItem.id == int(a["data-item-id"]))
               .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    decided_b = two.post(f"/review/spot/{b['data-item-id']}", headers=htmx(csrf2),
                         data={"verdict": "correct", "lock_version": b["data-lock-version"]})
    taken_over = soup(decided_b).select_one("#item")
    assert taken_over["data-item-id"] == a["data-item-id"]
    late = one.post(f"/review/spot/{a['data-item-id']}", headers=htmx(csrf1),
                    data={"verdict": "wrong_target", "lock_version": a["data-lock-version"]})
    assert late.status_code == 409 and "Another reviewer holds this item" in late.text
    skipped = soup(two.post("/review/spot/next", headers=htmx(csrf2), data={"skip": taken_over["data-item-id"]}))
    third = skipped.select_one("#item")["data-item-id"]
    assert third not in (a["data-item-id"], b["data-item-id"])
    db.expire_all()
    assert db.get(SpotCheckItem, int(a["data-item-id"])).reviewer_id is None  # skipped: back in the queue
    assert check.id == db.get(SpotCheckItem, int(third)).spot_check_id


def test_authors_are_kept_out_of_checks_of_their_own_instructions(app, db):
    people = team(db)
    writer = make_user(db, Role.author, Role.reviewer)
    task = make_qc_task(db, "VQA+own")
    _, _, review = submit_instruction(db, task, writer)
    approve(db, review)
    client, csrf = signed_in(app, writer)
    for queue in ("solve", "spot"):
        assert soup(client.post(f"/review/{queue}/next", headers=htmx(csrf))).select_one("#queue-empty") is not None
    other, csrf2 = signed_in(app, people["r1"])
    assert soup(other.post("/review/solve/next", headers=htmx(csrf2))).select_one("#item") is not None


def test_the_audit_log_records_who_decided(app, db):
    people = team(db)
    task = make_qc_task(db, "VQA+audit")
    _, version, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "review.decide")).one()
    assert (event.actor_id, event.task_id, event.after["decision"]) == (review.reviewer_id, task.id, "approve")
    assert [r.decision for r in instruction_reviews(db, db.get(Instruction, version.instruction_id))] == ["approve"]


def test_a_reviewer_who_leaves_hands_back_what_they_held(app, db):
    from app.schemas import UserUpdate
    from app.services import users as user_service

    people = team(db)
    task = make_qc_task(db, "VQA+leaver")
    _, version, review = submit_instruction(db, task, people["author"])
    leaving = db.get(type(people["r1"]), review.reviewer_id)
    staying = people["r2"] if leaving.id == people["r1"].id else people["r1"]
    spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, max_error_rate=0.5, size=2,
                       version_id=version.id)
    db.commit()
    client, csrf = signed_in(app, leaving)
    held = soup(client.post("/review/spot/next", headers=htmx(csrf))).select_one("#item")["data-item-id"]
    user_service.update_user(db, user_id=leaving.id, data=UserUpdate(is_active=False), actor_id=people["admin"].id)
    db.expire_all()
    assert db.get(Review, review.id).reviewer_id == staying.id  # reassigned, never to the author
    item = db.get(SpotCheckItem, int(held))
    assert (item.reviewer_id, item.lease_expires_at) == (None, None)  # back in the queue now
    other, csrf2 = signed_in(app, staying)
    assert soup(other.post("/review/spot/next", headers=htmx(csrf2))).select_one("#item")["data-item-id"] == held
    assert "review.reassign" in db.exec(select(AuditEvent.action)).all()


def test_queue_counts_stop_at_a_cap_where_a_page_asks_for_one_and_say_so(app, db):
    from app.services import queues

    people = team(db)
    task = make_qc_task(db, "VQA+capped", instances=12)
    _, version, _ = submit_instruction(db, task, people["author"])
    spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, max_error_rate=0.5, size=6,
                       version_id=version.id)
    db.commit()
    exact = {row.queue.name: row for row in queues.overview(db, reviewer=people["r1"])}
    capped = {row.queue.name: row for row in queues.overview(db, reviewer=people["r1"], cap=4)}
    assert (exact["spot"].undecided, exact["spot"].for_me) == (6, 6)
    assert (capped["spot"].undecided, capped["spot"].for_me) == (5, 5)  # counted to cap + 1, no further
    assert (capped["spot"].shown(capped["spot"].undecided), exact["spot"].shown(6)) == ("4+", "6")
    assert capped["instructions"].undecided == exact["instructions"].undecided == 1  # under the cap: exact
    assert capped["instructions"].shown(1) == "1"


def test_a_solver_who_leaves_gives_back_an_answer_still_waiting_for_their_judgement(app, db):
    """Each queue owns how its items go back (`holdings`), on a skip and when their holder leaves: a free-text
    answer only its solver could judge goes back with the answer cleared, for someone else to solve afresh."""
    from app.models import SolveTestItem
    from app.schemas import UserUpdate
    from app.services import queues, solve_tests
    from app.services import users as user_service
    from tests.review_helpers import SMALL_QC, approve

    people = team(db)
    task = make_qc_task(db, "VQA+free", kind="free")
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    solver = people["r2"] if review.reviewer_id == people["r1"].id else people["r1"]
    item_id = queues.next_item(db, queue=queues.SOLVE, user=solver, lease_s=600)
    item = db.get(SolveTestItem, item_id)
    solve_tests.answer(db, item_id=item_id, lock_version=item.lock_version, user_id=solver.id, text="a street",
                       defaults=SMALL_QC)
    db.refresh(item)
    assert item.answered_at is not None and item.judged_at is None and not queues.SOLVE.skippable(item)

    user_service.update_user(db, user_id=solver.id, data=UserUpdate(is_active=False), actor_id=people["admin"].id)
    db.expire_all()
    item = db.get(SolveTestItem, item_id)
    assert (item.solver_id, item.answer, item.answered_at, item.matched, item.lease_expires_at) == (None,) * 5
    assert queues.SOLVE.release_reset(SolveTestItem.solver_id)["answer"] is None  # a skip clears by the same rule
