"""Bulk fixes through the web: the form's live preview and its refusals in words, the fix's page as its reviewer
sees it (the same preview, the decision), the API a script uses, the report, and the blind rule on both."""

from __future__ import annotations

import csv
import io
import json

from sqlmodel import select

from app.models import BulkFix, Role, SolveTestItem
from app.services import checks
from app.services.blinding import HIDDEN
from tests.factories import bearer, make_user, soup
from tests.review_helpers import approve, htmx, make_qc_task, signed_in, submit_instruction, team
from worker.__main__ import Worker


def _form(task_id: int, **fields) -> dict:
    return {"task_ids": str(task_id), "action": "replace", "find": "dog", "replace_with": "puppy",
            "whole_value": "on", "reason": "the class list says puppy", **fields}


def test_the_form_previews_live_and_proposes_what_it_previewed(app, db, settings):
    task = make_qc_task(db, "BULKPAGE+animals", instances=6)
    author, reviewer = make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    client, csrf = signed_in(app, author)
    page = client.get(f"/bulk-fixes/new?task_id={task.id}&status=active")
    assert page.status_code == 200
    form = soup(page)
    assert form.select_one(f"select[name=task_ids] option[value='{task.id}']").has_attr("selected")
    assert form.select_one("select[name=status] option[selected]").text == "active"

    shown = client.post("/bulk-fixes/preview", data=_form(task.id), headers=htmx(csrf))
    assert shown.status_code == 200
    counts = soup(shown).select_one("#bulk-counts").get_text(" ", strip=True)
    assert counts.startswith("6 instances change")
    assert len(soup(shown).select("#bulk-changes tr[data-instance]")) == 6 + 2  # two of them change the target too
    assert db.exec(select(BulkFix)).first() is None

    refused = client.post("/bulk-fixes/preview", data=_form(task.id, find=""), headers=htmx(csrf))
    assert refused.status_code == 422 and "find: cannot be empty" in refused.text

    proposed = client.post("/bulk-fixes", data={**_form(task.id), "csrf_token": csrf})
    assert proposed.status_code == 303
    fix_url = proposed.headers["location"]
    mine = soup(client.get(fix_url))
    assert mine.select_one("#bulk-decide") is None and "Withdraw it" in mine.text  # its author does not decide
    assert mine.select_one("#bulk-counts").get_text(" ", strip=True).startswith("6 instances change")

    other, other_csrf = signed_in(app, reviewer)
    theirs = soup(other.get(fix_url))
    assert theirs.select_one("#bulk-decide button[value=accept]").text.strip() == "Accept all 6 changes"
    assert [tr["data-instance"] for tr in theirs.select("#bulk-changes tr[data-instance]")] == \
        [tr["data-instance"] for tr in mine.select("#bulk-changes tr[data-instance]")]
    lock = theirs.select_one("#bulk-decide input[name=lock_version]")["value"]
    refusal = other.post(f"{fix_url}/decision", data={"decision": "reject", "lock_version": lock,
                                                      "csrf_token": other_csrf})
    assert refusal.status_code == 422 and "a comment is required" in refusal.text
    assert other.post(f"{fix_url}/decision", data={"decision": "accept", "lock_version": lock,
                                                   "csrf_token": other_csrf}).status_code == 303
    assert "Applying: 0 of 6" in soup(other.get(f"{fix_url}/status")).text

    assert Worker(settings).run_once()
    done = soup(other.get(fix_url))
    assert "6 instances fixed" in done.select_one("#bulk-applied").text
    report = list(csv.DictReader(io.StringIO(other.get(f"{fix_url}/report.csv").text)))
    assert len(report) == 8 and {row["outcome"] for row in report} == {"applied"}
    assert {row["after"] for row in report if row["field"] == "raw_output"} == {"puppy"}


def test_a_script_proposes_decides_and_reads_the_report_through_the_api(app, db, client, settings):
    task = make_qc_task(db, "BULKAPI+animals", instances=4)
    author, reviewer, writer = (make_user(db, Role.reviewer), make_user(db, Role.reviewer),
                                make_user(db, Role.author))
    body = {"query": {"task_ids": [task.id]}, "reason": "capitalise",
            "change": {"action": "replace", "find": "cat", "replace_with": "Cat"}}
    preview = client.post("/api/v1/bulk-fixes/preview", json=body, headers=bearer(db, author))
    assert preview.status_code == 200 and preview.json()["change_count"] == 4
    bad = client.post("/api/v1/bulk-fixes", json={**body, "change": {"action": "replace"}}, headers=bearer(db, author))
    assert bad.status_code == 422
    created = client.post("/api/v1/bulk-fixes", json=body, headers=bearer(db, author))
    assert created.status_code == 201, created.text
    fix = created.json()
    decision = {"decision": "accept", "lock_version": fix["lock_version"]}
    # an author (not a reviewer) does not decide; nor does the fix's own author
    assert client.post(f"/api/v1/bulk-fixes/{fix['id']}/decision", json=decision,
                       headers=bearer(db, writer)).status_code == 403
    assert client.post(f"/api/v1/bulk-fixes/{fix['id']}/decision", json=decision,
                       headers=bearer(db, author)).status_code == 403
    accepted = client.post(f"/api/v1/bulk-fixes/{fix['id']}/decision", json=decision, headers=bearer(db, reviewer))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert Worker(settings).run_once()
    lines = [json.loads(line) for line in client.get(f"/api/v1/bulk-fixes/{fix['id']}/report",
                                                     headers=bearer(db, author)).text.splitlines()]
    assert len(lines) == 4 and {line["outcome"] for line in lines} == {"applied"}
    assert all("Cat" in line["changes"]["options"]["after"] for line in lines)
    undo = client.post(f"/api/v1/bulk-fixes/{fix['id']}/undo", json={"reason": "lower case was right"},
                       headers=bearer(db, reviewer))
    assert undo.status_code == 201 and undo.json()["undoes_id"] == fix["id"] and undo.json()["change_count"] == 4


def test_values_a_blind_reviewer_may_not_see_stay_hidden_and_the_decision_is_someone_elses(app, db, client):
    people = team(db)
    task = make_qc_task(db, "BULKBLIND+animals", instances=12)
    _, _, review = submit_instruction(db, task, people["author"])
    approve(db, review)  # opens a blind solve test, which reviewers other than the instruction's author answer
    solve_id = checks.open_check_of(db, checks.SOLVE, task_id=task.id)
    hidden = set(db.exec(select(SolveTestItem.instance_id).where(SolveTestItem.solve_test_id == solve_id)))
    assert hidden
    fix = client.post("/api/v1/bulk-fixes", headers=bearer(db, people["author"]), json={
        "query": {"task_ids": [task.id]}, "reason": "puppy",
        "change": {"action": "replace", "find": "dog", "replace_with": "puppy"}}).json()
    assert fix["change_count"] == 12  # the instruction's author sees every target
    blind = bearer(db, people["r1"])
    preview = client.get(f"/api/v1/bulk-fixes/{fix['id']}/preview", headers=blind).json()
    masked = {item["instance_id"] for item in preview["changes"] if item["changes"]["options"]["after"] == HIDDEN}
    assert masked == hidden
    report = [json.loads(line) for line in client.get(f"/api/v1/bulk-fixes/{fix['id']}/report",
                                                      headers=blind).text.splitlines()]
    assert {line["instance_id"] for line in report if line["changes"]["options"]["before"] == HIDDEN} == hidden
    refused = client.post(f"/api/v1/bulk-fixes/{fix['id']}/decision", headers=blind,
                          json={"decision": "accept", "lock_version": fix["lock_version"]})
    assert refused.status_code == 409 and "someone else decides" in refused.json()["error"]["message"]


def test_the_csv_report_never_hands_a_spreadsheet_a_formula(app, db):
    task = make_qc_task(db, "BULKCSV+animals", instances=3)
    author = make_user(db, Role.reviewer)
    client, csrf = signed_in(app, author)
    fix_url = client.post("/bulk-fixes", data={**_form(task.id, replace_with="=HYPERLINK(\"x\")"),
                                               "csrf_token": csrf}).headers["location"]
    rows = list(csv.DictReader(io.StringIO(client.get(f"{fix_url}/report.csv").text)))
    targets = [row["after"] for row in rows if row["field"] == "raw_output"]
    assert targets and all(value == "'=HYPERLINK(\"x\")" for value in targets)
