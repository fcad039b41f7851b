"""Authorization through ids in URLs: holding the right role is not enough to act on someone else's item.
Nobody decides an item another reviewer holds, edits or submits another author's draft, or sees or revokes
another user's tokens, whichever id they put in the URL, through the pages or the API."""

from __future__ import annotations

from sqlmodel import select

from app.models import Instruction, InstructionVersion, Review, Role, SolveTestItem, SpotCheckItem, User
from app.services import users as user_service
from tests.factories import bearer, login, make_user, soup
from tests.review_helpers import approve, htmx, make_qc_task, signed_in, submit_instruction, team


def test_nobody_decides_an_item_another_reviewer_holds(app, db):
    people = team(db)
    task = make_qc_task(db, "VQA+owned", instances=8)
    _, version, review = submit_instruction(db, task, people["author"])
    holder = db.get(User, review.reviewer_id)
    intruder = people["r2"] if holder.id == people["r1"].id else people["r1"]
    client, _ = signed_in(app, holder)
    as_holder, as_intruder = bearer(db, holder), bearer(db, intruder)

    # An instruction review assigned to and claimed by its reviewer.
    claimed = client.post("/api/v1/review/instructions/next", headers=as_holder).json()
    attempt = client.post(f"/api/v1/review/instructions/{claimed['id']}/decision", headers=as_intruder,
                          json={"decision": "reject", "comment": "mine now", "lock_version": claimed["lock_version"]})
    assert attempt.status_code == 409 and attempt.json()["error"]["code"] == "conflict"
    db.expire_all()
    assert db.get(Review, review.id).decision is None and db.get(Review, review.id).reviewer_id == holder.id

    # Solve-test and spot-check items claimed by the holder: the intruder's answers change nothing.
    approve(db, db.get(Review, review.id))  # opens a solve test of 4 and a spot check of 4 beside it
    solve = client.post("/api/v1/review/solve/next", headers=as_holder).json()
    spot = client.post("/api/v1/review/spot/next", headers=as_holder).json()
    intruder_client, intruder_csrf = signed_in(app, intruder)
    attempts = [
        client.post(f"/api/v1/review/solve/{solve['id']}/answer", headers=as_intruder,
                    json={"answer": "cat", "lock_version": solve["lock_version"]}),
        client.post(f"/api/v1/review/spot/{spot['id']}/verdict", headers=as_intruder,
                    json={"verdict": "wrong_target", "lock_version": spot["lock_version"]}),
        intruder_client.post(f"/review/solve/{solve['id']}/answer", headers=htmx(intruder_csrf),
                             data={"answer": "cat", "lock_version": solve["lock_version"]}),
        intruder_client.post(f"/review/spot/{spot['id']}", headers=htmx(intruder_csrf),
                             data={"verdict": "wrong_target", "lock_version": spot["lock_version"]}),
    ]
    assert [response.status_code for response in attempts] == [409] * 4
    assert "Another reviewer holds this item" in attempts[2].text
    db.expire_all()
    solve_item, spot_item = db.get(SolveTestItem, solve["id"]), db.get(SpotCheckItem, spot["id"])
    assert (solve_item.answer, solve_item.solver_id) == (None, holder.id)
    assert (spot_item.verdict, spot_item.reviewer_id) == (None, holder.id)
    # The holder still can: the intruder's attempts did not even move the item's version.
    done = client.post(f"/api/v1/review/spot/{spot['id']}/verdict", headers=as_holder,
                       json={"verdict": "correct", "lock_version": spot["lock_version"]})
    assert done.status_code == 200


def test_nobody_edits_or_submits_another_authors_draft(client, db):
    task = make_qc_task(db, "VQA+drafts", instances=4)
    owner, other, admin = make_user(db, Role.author), make_user(db, Role.author), make_user(db, Role.admin)
    csrf = login(client, owner.email)
    url = client.post(f"/tasks/{task.id}/instructions", data={"csrf_token": csrf, "label": "main"}).headers["location"]
    draft = {"csrf_token": csrf, "lock_version": "1", "text": "Name the animal.", "input_template": "",
             "output_template": "", "options_style": "paren_letters", "image_placement": "before"}
    assert client.post(url + "/draft", data=draft).status_code == 200

    client.cookies.clear()
    csrf = login(client, other.email)
    page = soup(client.get(url))
    assert page.select_one("#read-only-note") and page.select_one("#submit-form") is None
    assert page.select_one("#draft-form")["onsubmit"] == "return false"  # no autosave either
    edit = client.post(url + "/draft", data={**draft, "csrf_token": csrf, "lock_version": "2", "text": "Hijacked."})
    submitted = client.post(url + "/submit", data={"csrf_token": csrf})
    assert (edit.status_code, submitted.status_code) == (403, 403)
    # The preview still works for them: trying changes is not saving them.
    preview = client.post(url + "/preview", data={**draft, "csrf_token": csrf, "text": "Try this."},
                          headers=htmx(csrf))
    assert preview.status_code == 200
    db.expire_all()
    instruction = db.exec(select(Instruction)).one()
    assert (instruction.draft_text, instruction.lock_version) == ("Name the animal.", 2)
    assert db.exec(select(InstructionVersion)).all() == []

    client.cookies.clear()
    csrf = login(client, admin.email)  # an admin may take over a draft, e.g. when its author has left
    assert client.post(url + "/draft", data={**draft, "csrf_token": csrf, "lock_version": "2"}).status_code == 200


def test_nobody_sees_or_revokes_another_users_tokens(client, db):
    owner, other = make_user(db, Role.author), make_user(db, Role.reviewer)
    row, secret = user_service.create_token(db, user_id=owner.id, name="owner-nightly-export", actor_id=owner.id)
    admin = make_user(db, Role.admin)
    csrf = login(client, other.email)
    account = client.get("/account").text
    assert "owner-nightly-export" not in account and secret not in account
    assert client.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": csrf}).status_code == 404
    assert client.get(f"/api/v1/users/{owner.id}", headers=bearer(db, other)).status_code == 403
    client.cookies.clear()
    login(client, admin.email)
    for url in (f"/admin/users/{owner.id}", f"/api/v1/users/{owner.id}"):
        answer = client.get(url, headers=bearer(db, admin) if url.startswith("/api") else {})
        assert answer.status_code == 200 and secret not in answer.text and row.token_hash not in answer.text
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
