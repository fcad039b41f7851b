"""Gates that hold: a failed check sends its task back and keeps it out of verification and versions, a later
failure outweighs an earlier pass, and the people a check judges cannot weaken, replace or re-roll it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.core.failures import Conflict, Forbidden, Invalid
from app.core.migrate import alembic_config
from app.models import (
    AuditEvent,
    Instruction,
    QcStatus,
    Review,
    Role,
    SpotCheck,
    SpotCheckItem,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from app.schemas.export_spec import ExportSpec
from app.services import checks, queues, spot_checks, verifications, version_files
from app.services import versions as version_service
from app.services.qc import QcDefaults
from app.services.verification_rounds import VERIFY
from tests.factories import bearer, make_user, soup
from tests.review_helpers import SMALL_QC, approve, htmx, make_qc_task, signed_in, submit_instruction, team


def _verdicts(db, reviewer: User, verdict) -> None:
    """The reviewer works the spot queue dry, `verdict(k)` for the k-th item."""
    k = 0
    while (item_id := queues.next_item(db, queue=queues.SPOT, user=reviewer, lease_s=600)) is not None:
        item = db.get(SpotCheckItem, item_id, populate_existing=True)
        spot_checks.record_verdict(db, item_id=item_id, lock_version=item.lock_version, user_id=reviewer.id,
                                   verdict=verdict(k), note=None)
        k += 1


def _accepted(db, people, name: str, instances: int = 12) -> Task:
    """Approved by its reviewer, no solve test needed, spot-checked clean by someone else: accepted."""
    task = make_qc_task(db, name, instances=instances)
    task.solve_test_required = False
    db.add(task)
    db.commit()
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)
    db.refresh(review)
    other = people["r2"] if review.reviewer_id == people["r1"].id else people["r1"]
    _verdicts(db, other, lambda k: "correct")
    db.expire_all()
    assert db.get(Task, task.id).status == TaskStatus.accepted
    return task


def _fail_a_spot_check(db, people, task: Task) -> SpotCheck:
    """An admin opens another spot check (with a reason: one already passed) and it finds every item wrong."""
    check = spot_checks.create(db, task_id=task.id, actor_id=people["admin"].id, size=4, max_error_rate=0.5,
                               permission=checks.Permission(reason="audit"))
    db.commit()
    _verdicts(db, people["r1"], lambda k: "wrong_target")
    db.expire_all()
    return db.get(SpotCheck, check.id)


def test_a_failed_check_sends_an_accepted_task_back_and_withdraws_its_verification(app, db):
    people = team(db)
    task = _accepted(db, people, "GATES+failed")
    slots = db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY)).all()
    assert len(slots) == 2 and all(slot.decided_at is None for slot in slots)

    failed = _fail_a_spot_check(db, people, task)

    assert failed.status == QcStatus.failed
    assert db.get(Task, task.id).status == TaskStatus.checks_failed  # a later failure outweighs the earlier pass
    assert db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY)).all() == []
    assert checks.failing(db, task_ids=[task.id]) == {"GATES+failed": f"spot check #{failed.id} failed"}
    history = [event.after for event in db.exec(select(AuditEvent).where(AuditEvent.task_id == task.id))]
    assert {"status": "checks_failed", "reason": "spot check failed: 4/4 errors"} in history
    # nothing is left to verify, and the task page says why
    client, csrf = signed_in(app, people["r2"])
    assert soup(client.post("/review/verify/next", headers=htmx(csrf))).select_one("#item") is None
    page = soup(client.get(f"/tasks/{task.id}"))
    assert "checks failed" in page.select_one("mark.status").text


def test_undoing_the_verdict_that_failed_a_check_brings_the_accepted_task_back(app, db):
    from app.services import verdict_undo

    people = team(db)
    task = _accepted(db, people, "GATES+undone")
    failed = _fail_a_spot_check(db, people, task)
    assert db.get(Task, task.id).status == TaskStatus.checks_failed
    last = db.exec(select(SpotCheckItem.id).where(SpotCheckItem.spot_check_id == failed.id)
                   .order_by(SpotCheckItem.decided_at.desc())).first()
    verdict_undo.undo_last_verdict(db, item_id=last, user_id=people["r1"].id, lease_s=600)
    db.expire_all()
    assert db.get(SpotCheck, failed.id).status == QcStatus.open
    assert db.get(Task, task.id).status == TaskStatus.accepted  # its earlier pass stands again
    slots = db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY)).all()
    assert len(slots) == 2 and all(slot.decided_at is None for slot in slots)  # a verification round again
    assert checks.failing(db, task_ids=[task.id]) == {}


def test_a_verified_task_goes_back_when_a_later_check_fails(app, db):
    people = team(db)
    task = _accepted(db, people, "GATES+verified")
    approver = db.exec(select(Review.reviewer_id).where(Review.task_id == task.id, Review.decision == "approve")).one()
    native = people["admin"]
    native.native_english = True
    db.add(native)
    db.commit()
    verifiers = [native, people["r2"] if approver == people["r1"].id else people["r1"]]
    for verifier in verifiers:
        slot_id = queues.next_item(db, queue=queues.VERIFY, user=verifier, lease_s=600)
        verifications.decide(db, review_id=slot_id, lock_version=db.get(Review, slot_id).lock_version,
                             user_id=verifier.id, decision="approve", comment=None)
    db.expire_all()
    assert db.get(Task, task.id).status == TaskStatus.verified

    _fail_a_spot_check(db, people, task)
    assert db.get(Task, task.id).status == TaskStatus.checks_failed

    # an admin checks again (the instruction did not change: it takes a reason) and it passes: verified again,
    # since the verifiers judged the instructions, which did not change either
    with pytest.raises(Forbidden, match="instruction has not changed"):
        spot_checks.open_requested(db, task_id=task.id, data=_spot_in(), defaults=SMALL_QC, actor_id=people["r1"].id,
                                   is_admin=False)
    spot_checks.open_requested(db, task_id=task.id, data=_spot_in(reason="the wrong targets were fixed"),
                               defaults=SMALL_QC, actor_id=people["admin"].id, is_admin=True)
    _verdicts(db, people["r2"], lambda k: "correct")
    db.expire_all()
    assert db.get(Task, task.id).status == TaskStatus.verified


def _spot_in(**fields):
    from app.schemas import SpotCheckIn

    return SpotCheckIn(**fields)


def test_checks_cannot_be_weakened_replaced_or_rerolled_by_reviewers(app, db):
    people = team(db)
    task = make_qc_task(db, "GATES+weaken", instances=60)
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review, defaults=QcDefaults())  # the settings' defaults: 20 to solve, a spot check of 59
    running = checks.open_check_of(db, checks.SOLVE, task_id=task.id)
    reviewer, csrf = signed_in(app, people["r1"])
    url = f"/tasks/{task.id}/solve-tests"

    weak = reviewer.post(url, data={"csrf_token": csrf, "size": "1", "pass_threshold": "1"})
    assert weak.status_code == 403
    assert "1 instance, fewer than the default 20" in weak.text and "replaces the running solve test" in weak.text
    same = reviewer.post(url, data={"csrf_token": csrf})  # the defaults, but in place of the running test
    assert same.status_code == 403
    api = bearer(db, people["r1"])
    assert reviewer.post(f"/api/v1/tasks/{task.id}/spot-checks", headers=api,
                         json={"max_error_rate": 0.99}).status_code == 403
    seeded = reviewer.post(f"/api/v1/tasks/{task.id}/spot-checks", headers=api, json={"seed": 7})
    assert seeded.status_code == 403 and "chosen seed" in seeded.json()["error"]["message"]
    db.expire_all()
    assert checks.open_check_of(db, checks.SOLVE, task_id=task.id) == running  # still running, not replaced

    admin, admin_csrf = signed_in(app, people["admin"])
    no_reason = admin.post(url, data={"csrf_token": admin_csrf, "size": "1", "pass_threshold": "1"})
    assert no_reason.status_code == 422 and "Say why" in no_reason.text
    replaced = admin.post(url, data={"csrf_token": admin_csrf, "size": "5", "pass_threshold": "5",
                                     "reason": "the task is being rebuilt"})
    assert replaced.status_code == 303
    db.expire_all()
    old = checks.get(db, checks.SOLVE, check_id=running)
    assert old.status == QcStatus.cancelled  # on the record, with why
    assert old.cancel_reason == "replaced by a new solve test: the task is being rebuilt"
    new = checks.get(db, checks.SOLVE, check_id=checks.open_check_of(db, checks.SOLVE, task_id=task.id))
    assert (new.size, new.pass_threshold, new.override_reason) == (5, 5, "the task is being rebuilt")


def test_after_a_failure_only_an_admin_or_a_changed_instruction_opens_a_check_that_can_clear_it(app, db):
    people = team(db)
    task = make_qc_task(db, "GATES+reroll", instances=40, kind="short")
    instruction, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)  # SMALL_QC: a solve test of 4 (pass at 3) and a spot check beside it
    solver = people["r2"] if review.reviewer_id == people["r1"].id else people["r1"]
    client, csrf = signed_in(app, solver)
    for _ in range(2):  # two misses of 4 with 3 needed: failed
        item = soup(client.post("/review/solve/next", headers=htmx(csrf))).select_one("#item")
        client.post(f"/review/solve/{item['data-item-id']}/answer", headers=htmx(csrf),
                    data={"answer": "nothing like it", "lock_version": item["data-lock-version"]})
    db.expire_all()
    assert checks.standing(db, checks.SOLVE, task_id=task.id) == QcStatus.failed
    assert db.get(Task, task.id).status == TaskStatus.checks_failed

    again = client.post(f"/tasks/{task.id}/solve-tests", data={"csrf_token": csrf})  # the defaults, re-rolled
    assert again.status_code == 403 and "failed and the instruction has not changed" in again.text

    # the author revises; the new version's approval opens a fresh test with the defaults, which can clear it
    _, _, second = submit_instruction(db, task, people["author"], text="Pick the animal shown.",
                                      instruction=instruction)
    assert db.get(Task, task.id).status == TaskStatus.in_review
    approve(db, second)
    fresh = checks.get(db, checks.SOLVE, check_id=checks.open_check_of(db, checks.SOLVE, task_id=task.id))
    assert fresh.override_reason is None and fresh.instruction_version_id == second.instruction_version_id


def test_a_version_with_a_failed_task_is_refused_unless_an_admin_says_why_and_the_card_states_it(app, db, settings):
    people = team(db)
    task = _accepted(db, people, "GATES+version")
    failed = _fail_a_spot_check(db, people, task)
    spec = ExportSpec(task_ids=[task.id])
    with pytest.raises(Conflict, match=f"GATES\\+version: spot check #{failed.id} failed"):
        version_service.create(db, spec=spec, name="v1", actor_id=people["author"].id, enqueue=False)
    with pytest.raises(Invalid, match="Say why"):
        version_service.create(db, spec=spec, name="v1", actor_id=people["admin"].id, enqueue=False,
                               may_override=True)
    author, csrf = signed_in(app, people["author"])
    refused = author.post("/api/v1/versions", headers=bearer(db, people["author"]),
                          json={"spec": {"task_ids": [task.id]}, "qc_override_reason": "I say so"})
    assert refused.status_code == 409  # an author's reason overrides nothing
    version = version_service.create(db, spec=spec, name="v1", actor_id=people["admin"].id, enqueue=False,
                                     may_override=True, qc_override_reason="a baseline that shows the errors")
    version = version_service.run_build(settings, version_id=version.id)
    card = (version_files.folder_of(settings, version) / "README.md").read_text()
    assert "## Built over failed quality checks" in card
    assert f"a baseline that shows the errors (over failed checks: GATES+version: spot check #{failed.id} failed)" \
        in card
    assert f"- GATES+version: spot check #{failed.id} failed (4 problems in 4 checked); opened by an admin against " \
           "the defaults: audit" in card


def test_the_verification_screen_shows_what_the_checks_found(app, db):
    people = team(db)
    task = _accepted(db, people, "GATES+screen")
    verifier = make_user(db, Role.admin)  # admins are never drawn to review instructions
    client, csrf = signed_in(app, verifier)
    page = soup(client.post("/review/verify/next", headers=htmx(csrf)))
    assert page.select_one("#item") is not None
    check = db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id)).one()
    assert page.select_one("#verify-spot").text.startswith(f"#{check.id} passed: 0 problems in {check.size} checked")
    assert page.select_one("#verify-solve").text == "not required"
    assert page.select_one("#verify-flagged").text == "0"


def test_one_person_holds_one_slot_of_a_round_under_concurrent_claims(app, db, live_server):
    """Eight simultaneous "next" requests from one verifier, over and over on fresh tasks: never both slots."""
    people = team(db)
    verifier = make_user(db, Role.admin)
    verifier.native_english = True  # eligible for both slots: only the rule keeps them apart
    db.add(verifier)
    db.commit()
    headers = bearer(db, verifier)
    for round_number in range(8):
        task = _accepted(db, people, f"GATES+race_{round_number}", instances=6)
        with httpx2.Client(base_url=live_server, headers=headers, timeout=60) as client:
            got = _at_once(client, "/api/v1/review/verify/next", times=8)
        # each answer is the one slot they hold, or (a request that met both slots locked by the others) nothing
        assert {r.status_code for r in got} <= {200, 204}, [(r.status_code, r.text[:80]) for r in got]
        assert len({response.json()["id"] for response in got if response.status_code == 200}) == 1
        db.expire_all()
        mine = db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY,
                                            Review.reviewer_id == verifier.id)).all()
        assert len(mine) == 1
        other = db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY,
                                             Review.id != mine[0].id)).one()
        with httpx2.Client(base_url=live_server, headers=headers, timeout=60) as client:
            decided = client.post(f"/api/v1/review/verify/{mine[0].id}/decision",
                                  json={"decision": "approve", "lock_version": mine[0].lock_version})
            assert decided.status_code == 200, decided.text
            # the other slot is never theirs: not by claiming it, nor by deciding it unclaimed
            assert {r.status_code for r in _at_once(client, "/api/v1/review/verify/next", times=8)} == {204}
            stolen = client.post(f"/api/v1/review/verify/{other.id}/decision",
                                 json={"decision": "approve", "lock_version": other.lock_version})
            assert stolen.status_code == 409
        db.expire_all()
        assert db.get(Task, task.id).status == TaskStatus.accepted  # one approval verifies nothing


def _at_once(client, url: str, *, times: int) -> list:
    start = threading.Barrier(times)

    def post():
        start.wait()
        return client.post(url)

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(lambda _: post(), range(times)))


def test_the_database_refuses_one_person_in_two_slots_of_a_round(app, db):
    people = team(db)
    task = _accepted(db, people, "GATES+constraint")
    first, second = db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY)).all()
    for slot in (first, second):
        slot.reviewer_id = people["admin"].id
        db.add(slot)
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_whoever_approved_the_instruction_does_not_verify_it_unless_the_setting_allows(app, db):
    people = team(db)
    task = _accepted(db, people, "GATES+approver")
    approver = db.get(User, db.exec(select(Review.reviewer_id).where(Review.task_id == task.id,
                                                                     Review.decision == "approve")).one())
    assert queues.next_item(db, queue=queues.VERIFY, user=approver, lease_s=600) is None
    slot = db.exec(select(Review).where(Review.task_id == task.id, Review.subject == VERIFY,
                                        Review.needs_native_english.is_(False))).one()
    slot.reviewer_id = approver.id  # held somehow: the decision refuses it again
    db.add(slot)
    db.commit()
    with pytest.raises(Forbidden, match="approved this task's instruction"):
        verifications.decide(db, review_id=slot.id, lock_version=slot.lock_version, user_id=approver.id,
                             decision="approve", comment=None)
    db.rollback()
    assert queues.next_item(db, queue=queues.VERIFY, user=approver, lease_s=600, reviewer_may_verify=True) == slot.id


def test_the_migration_sends_back_what_the_old_rules_let_through(app, db):
    """A task accepted over a failed spot check goes to checks_failed; a round one person decided twice is
    repaired (their second slot opens again for someone else) and its task is no longer verified."""
    people = team(db)
    over_failure = _accepted(db, people, "GATES+old_failure")
    db.add(SpotCheck(task_id=over_failure.id, seed=1, size=4, status=QcStatus.failed, error_count=4,
                     decided_count=4))
    db.commit()
    double = _accepted(db, people, "GATES+old_double")
    admin_id, over_id, double_id = people["admin"].id, over_failure.id, double.id
    db.close()  # no transaction of the test's left open: the migration takes its locks
    config = alembic_config(app.state.engine.url.render_as_string(hide_password=False), configure_logging=False)
    command.stamp(config, "head")  # the test database is made from the models, which are the head's schema
    command.downgrade(config, "0008")
    with app.state.engine.begin() as connection:  # what the old rules allowed: both slots decided by one person
        connection.execute(text("UPDATE review SET reviewer_id = :user, decision = 'approve', decided_at = :now "
                                "WHERE task_id = :task AND subject = 'task_verification'"),
                           {"user": admin_id, "now": utcnow(), "task": double_id})
        connection.execute(text("UPDATE task SET status = 'verified' WHERE id = :task"), {"task": double_id})
    command.upgrade(config, "head")
    db.expire_all()

    assert db.get(Task, over_id).status == TaskStatus.checks_failed
    assert db.get(Task, double_id).status == TaskStatus.accepted
    slots = db.exec(select(Review).where(Review.task_id == double_id, Review.subject == VERIFY)
                    .order_by(Review.id)).all()
    assert [(slot.reviewer_id, slot.decision) for slot in slots] == [(admin_id, "approve"), (None, None)]
    voided = db.exec(select(AuditEvent).where(AuditEvent.task_id == double_id,
                                              AuditEvent.action == "verification.void")).one()
    assert voided.before["reviewer_id"] == admin_id
    assert db.exec(select(AuditEvent).where(AuditEvent.task_id == over_id,
                                            AuditEvent.action == "task.transition")
                   .order_by(AuditEvent.id.desc())).first().after["status"] == "checks_failed"


def test_a_failed_check_holds_a_verified_task_back_even_while_a_new_version_is_reviewed(app, db):
    people = team(db)
    task = _accepted(db, people, "GATES+pending")
    task.status = "verified"  # as two verifiers would leave it
    db.add(task)
    db.commit()
    instruction = db.exec(select(Instruction).where(Instruction.task_id == task.id)).one()
    submit_instruction(db, task, people["author"], text="A clearer wording.", instruction=instruction)
    assert db.get(Task, task.id).status == TaskStatus.verified  # a new version alone does not reopen it
    _fail_a_spot_check(db, people, task)
    assert db.get(Task, task.id).status == TaskStatus.checks_failed
