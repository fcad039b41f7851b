"""One key must not silently remove an instance: a spot-check verdict says what it did, and its reviewer may take
it back until they give the next one (the item comes back to them, the instance back into exports, and a check
the verdict completed opens again)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.core.failures import Conflict, Forbidden
from app.models import AuditEvent, Instance, Role, SpotCheck, SpotCheckItem, Task
from app.services import spot_checks, verdict_undo
from tests.factories import make_user, soup
from tests.review_helpers import htmx, make_qc_task, signed_in, submit_instruction


@pytest.fixture
def people(db):
    return {"author": make_user(db, Role.author), "r1": make_user(db, Role.reviewer),
            "r2": make_user(db, Role.reviewer)}


def _open_check(db, people, name: str, size: int) -> Task:
    task = make_qc_task(db, name, instances=size + 2)
    submit_instruction(db, task, people["author"])
    spot_checks.create(db, task_id=task.id, actor_id=people["r2"].id, size=size, max_error_rate=0.4)
    db.commit()
    return task


def _judge(client, csrf, verdict: str) -> tuple:
    item = soup(client.post("/review/spot/next", headers=htmx(csrf))).select_one("#item")
    page = soup(client.post(f"/review/spot/{item['data-item-id']}", headers=htmx(csrf),
                            data={"verdict": verdict, "lock_version": item["data-lock-version"]}))
    return int(item["data-item-id"]), page


def test_a_verdict_says_what_it_did_and_its_reviewer_takes_it_back(app, db, people):
    task = _open_check(db, people, "UNDO+animals", size=3)
    client, csrf = signed_in(app, people["r1"])
    item_id, page = _judge(client, csrf, "wrong_target")
    instance = db.get(Instance, db.get(SpotCheckItem, item_id).instance_id)
    assert f"{instance.source_id} is flagged (wrong target)" in page.select_one("#queue-message").text
    assert instance.status == "flagged"
    undo = page.select_one("#undo-verdict")
    assert undo["hx-post"] == f"/review/spot/{item_id}/undo" and "z" in undo.text
    next_item = page.select_one("#item")["data-item-id"]  # what the queue handed on meanwhile

    again = soup(client.post(undo["hx-post"], headers=htmx(csrf)))
    assert f"Verdict on {instance.source_id} undone" in again.select_one("#queue-message").text
    assert again.select_one("#item")["data-item-id"] == str(item_id)  # back to judge it again
    db.expire_all()
    item, check = db.get(SpotCheckItem, item_id), db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id)).one()
    assert item.verdict is None and item.decided_at is None and item.reviewer_id == people["r1"].id
    assert (check.decided_count, check.error_count) == (0, 0)
    assert db.get(Instance, instance.id).status == "active" and db.get(Task, task.id).flagged_count == 0
    assert db.get(SpotCheckItem, int(next_item)).reviewer_id is None  # handed back to the queue
    assert "spot_check.verdict_undo" in db.exec(select(AuditEvent.action)).all()

    # judged again, then the next one: the first can no longer be undone, and nobody else's can be
    _judge(client, csrf, "correct")
    _judge(client, csrf, "correct")
    with pytest.raises(Conflict, match="only your last one"):
        verdict_undo.undo_last_verdict(db, item_id=item_id, user_id=people["r1"].id, lease_s=600)
    last = db.exec(select(SpotCheckItem.id).where(SpotCheckItem.decided_at.is_not(None))
                   .order_by(SpotCheckItem.decided_at.desc())).first()
    with pytest.raises(Forbidden):
        verdict_undo.undo_last_verdict(db, item_id=last, user_id=people["r2"].id, lease_s=600)


def test_undoing_the_verdict_that_completed_a_check_opens_it_again(app, db, people):
    task = _open_check(db, people, "UNDO+closing", size=2)
    client, csrf = signed_in(app, people["r1"])
    _judge(client, csrf, "wrong_target")
    db.expire_all()
    status_while_open = db.get(Task, task.id).status
    item_id, page = _judge(client, csrf, "wrong_target")  # 2 of 2 wrong: the check fails
    db.expire_all()
    check = db.exec(select(SpotCheck).where(SpotCheck.task_id == task.id)).one()
    assert check.status == "failed"
    assert page.select_one("#undo-verdict") is not None
    client.post(page.select_one("#undo-verdict")["hx-post"], headers=htmx(csrf))
    db.expire_all()
    check = db.get(SpotCheck, check.id)
    assert check.status == "open" and check.completed_at is None and check.decided_count == 1
    assert db.get(Task, task.id).status == status_while_open  # in line with its review work again
    # the other flagged instance stays flagged: its verdict stands
    assert db.get(Task, task.id).flagged_count == 1


def test_a_verdict_a_fix_was_proposed_from_stands_until_the_fix_is_withdrawn(app, db, people):
    _open_check(db, people, "UNDO+fixed", size=3)
    client, csrf = signed_in(app, people["r1"])
    item_id, page = _judge(client, csrf, "wrong_target")
    offer = page.select_one("#fix-offer form:not(.suggestion)")
    instance = db.get(Instance, db.get(SpotCheckItem, item_id).instance_id)
    right = next(option for option in instance.options if option != instance.raw_output)
    client.post(offer["hx-post"], headers=htmx(csrf), data={
        "raw_output": right, "reason": "a bird", "lock_version": offer.select_one("[name=lock_version]")["value"]})
    refused = client.post(f"/review/spot/{item_id}/undo", headers=htmx(csrf))
    assert refused.status_code == 409 and "withdraw it" in refused.text
