"""Instructions through the JSON API, as a script writes them: create, read, save drafts with lock_version,
submit, list and diff versions, under the editor's rules."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.models import AuditEvent, Review, Role, Task
from tests.factories import bearer, make_task, make_user

DRAFT = {"text": "Name the colour of the shape.", "input_template": "{{ input_text }}",
         "output_template": "{{ raw_output }}", "options_style": "paren_letters", "image_placement": "before"}


@pytest.fixture
def task(db) -> Task:
    return make_task(db, "SHAPES+colour", instances=3)


def test_an_author_writes_saves_and_submits_an_instruction_and_reads_its_versions_and_diff(client, db, task):
    author = make_user(db, Role.author)
    auth = bearer(db, author)
    created = client.post(f"/api/v1/tasks/{task.id}/instructions", headers=auth, json={"label": "main"})
    assert created.status_code == 201, created.text
    instruction = created.json()
    assert (instruction["author_id"], instruction["status"], instruction["draft"]["text"]) == (author.id, "draft", "")
    url = f"/api/v1/instructions/{instruction['id']}"

    saved = client.put(f"{url}/draft", headers=auth, json={**DRAFT, "lock_version": instruction["lock_version"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["draft"]["text"] == DRAFT["text"]
    assert saved.json()["lock_version"] == instruction["lock_version"] + 1
    stale = client.put(f"{url}/draft", headers=auth, json={**DRAFT, "text": "Lost?",
                                                           "lock_version": instruction["lock_version"]})
    assert stale.status_code == 409 and stale.json()["error"]["fields"] == {"lock_version": "stale"}
    assert client.get(url, headers=auth).json()["draft"]["text"] == DRAFT["text"]  # nothing overwritten

    first = client.post(f"{url}/submit", headers=auth)
    assert first.status_code == 201, first.text
    assert (first.json()["number"], first.json()["status"], first.json()["text"]) == (1, "in_review", DRAFT["text"])
    assert db.exec(select(Review).where(Review.instruction_version_id == first.json()["id"])).one()
    lock = client.get(url, headers=auth).json()["lock_version"]
    second = client.put(f"{url}/draft", headers=auth, json={**DRAFT, "text": "Name the shape's colour, in one word.",
                                                            "options_style": "dot_numbers", "lock_version": lock})
    assert second.status_code == 200, second.text
    assert client.post(f"{url}/submit", headers=auth).json()["number"] == 2

    versions = client.get(f"{url}/versions", headers=auth).json()
    assert [version["number"] for version in versions] == [2, 1]
    diff = client.get(f"{url}/versions/1/diff/2", headers=auth).json()
    assert (diff["older"], diff["newer"], diff["settings_changed"]) == (1, 2, ["options_style"])
    assert {"kind": "removed", "text": "the"} in diff["text"] and {"kind": "added", "text": ","} in diff["text"]
    assert "".join(piece["text"] for piece in diff["text"] if piece["kind"] != "removed") == \
        "Name the shape's colour, in one word."
    assert all(piece["kind"] == "same" for piece in diff["input_template"])
    assert client.get(f"{url}/versions/1/diff/7", headers=auth).status_code == 404
    listed = client.get(f"/api/v1/tasks/{task.id}/instructions", headers=bearer(db, make_user(db, Role.reviewer)))
    assert [item["id"] for item in listed.json()] == [instruction["id"]]
    assert {event.action for event in db.exec(select(AuditEvent))} >= {"instruction.create", "instruction.submit"}


def test_only_the_author_or_an_admin_changes_a_draft_and_reviewers_only_read(client, db, task):
    owner = bearer(db, make_user(db, Role.author))
    instruction = client.post(f"/api/v1/tasks/{task.id}/instructions", headers=owner, json={}).json()
    assert instruction["label"] == "main"
    url = f"/api/v1/instructions/{instruction['id']}"
    body = {**DRAFT, "lock_version": instruction["lock_version"]}

    other = client.put(f"{url}/draft", headers=bearer(db, make_user(db, Role.author)), json=body)
    assert other.status_code == 403 and "author (or an admin)" in other.json()["error"]["message"]
    reviewer = bearer(db, make_user(db, Role.reviewer))
    assert client.put(f"{url}/draft", headers=reviewer, json=body).status_code == 403
    assert client.post(f"/api/v1/tasks/{task.id}/instructions", headers=reviewer, json={}).status_code == 403
    assert client.get(url, headers=reviewer).status_code == 200
    assert client.put(f"{url}/draft", headers=bearer(db, make_user(db, Role.admin)), json=body).status_code == 200
    assert client.get(url).status_code == 401


def test_a_submit_that_the_editor_would_refuse_is_a_422_with_the_lint_message(client, db, task):
    auth = bearer(db, make_user(db, Role.author))
    instruction = client.post(f"/api/v1/tasks/{task.id}/instructions", headers=auth, json={"label": "v"}).json()
    url = f"/api/v1/instructions/{instruction['id']}"
    empty = client.post(f"{url}/submit", headers=auth)
    assert empty.status_code == 422 and empty.json()["error"]["fields"] == {"text": "empty"}
    client.put(f"{url}/draft", headers=auth, json={**DRAFT, "input_template": "{{ input_txt }}",
                                                   "lock_version": instruction["lock_version"]})
    broken = client.post(f"{url}/submit", headers=auth)
    assert broken.status_code == 422 and "input_txt" in broken.json()["error"]["message"]
    assert client.get(f"{url}/versions", headers=auth).json() == []
    assert client.post(f"/api/v1/tasks/{task.id}/instructions", headers=auth,
                       json={"label": "  "}).status_code == 422
    assert client.post("/api/v1/tasks/987654/instructions", headers=auth, json={}).status_code == 404
