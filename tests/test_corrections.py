"""Fixing instances as reviewed revisions: proposed by one person, accepted or rejected by another, applied only
onto the values they were proposed against; flagged instances come back when a fix (or a dismissal of the finding)
is accepted. Through the services, the API and the corrections queue's page."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.core.failures import Conflict, Forbidden, Invalid
from app.models import AuditEvent, Instance, InstanceScore, Revision, Role, Task
from app.schemas.revisions import InstanceFixIn, RevisionDecisionIn
from app.services import corrections, instance_revisions, queues, revisions
from app.services.blinding import NONE, Blindfold
from app.services.revisions import Origin
from tests.factories import bearer, make_user, soup
from tests.review_helpers import htmx, make_qc_task, signed_in


@pytest.fixture
def people(db):
    return {"author": make_user(db, Role.author), "r1": make_user(db, Role.reviewer),
            "r2": make_user(db, Role.reviewer)}


def _first(db, task: Task) -> Instance:
    return db.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id)).first()


def _fix(db, instance: Instance, author, **values) -> Revision:
    data = InstanceFixIn(lock_version=instance.lock_version, reason=values.pop("reason", "wrong label"), **values)
    return instance_revisions.propose_fix(db, instance_id=instance.id, data=data, author_id=author.id, blindfold=NONE)


def _claim_and_decide(db, reviewer, *, accept: bool, comment: str | None = None) -> Revision:
    revision_id = queues.next_item(db, queue=queues.CORRECTIONS, user=reviewer, lease_s=600)
    revision = db.get(Revision, revision_id, populate_existing=True)
    return corrections.decide(db, revision_id=revision_id, user_id=reviewer.id, data=RevisionDecisionIn(
        decision="accept" if accept else "reject", comment=comment, lock_version=revision.lock_version))


def test_a_fix_changes_nothing_until_a_second_person_accepts_it(db, people):
    task = make_qc_task(db, "FIX+animals", instances=3)
    instance = _first(db, task)
    original = instance.raw_output
    revision = _fix(db, instance, people["author"], raw_output="dog" if original != "dog" else "bird")
    db.refresh(instance)
    assert revision.status == "proposed" and instance.raw_output == original and instance.lock_version == 0
    assert revision.changes == {"raw_output": {"before": original, "after": revision.changes["raw_output"]["after"]}}
    # its author is not offered it, and cannot decide it
    assert queues.next_item(db, queue=queues.CORRECTIONS, user=people["author"], lease_s=600) is None
    with pytest.raises(Forbidden):
        corrections.decide(db, revision_id=revision.id, user_id=people["author"].id,
                                  data=RevisionDecisionIn(decision="accept", lock_version=revision.lock_version))
    decided = _claim_and_decide(db, people["r1"], accept=True)
    db.refresh(instance)
    assert decided.status == "accepted" and decided.reviewer_id == people["r1"].id
    assert instance.raw_output == decided.changes["raw_output"]["after"] and instance.lock_version == 1
    # the imported value stays readable
    history = instance_revisions.history(db, instance_id=instance.id)
    assert revisions.original_values(instance_revisions.INSTANCES, instance, history)["raw_output"] == original
    actions = db.exec(select(AuditEvent.action).where(AuditEvent.entity_type == "instance")).all()
    assert {"revision.propose", "revision.accept"} <= set(actions)


def test_a_rejection_says_why_and_leaves_the_instance_alone(db, people):
    task = make_qc_task(db, "FIX+reject", instances=2, kind="short")
    instance = _first(db, task)
    _fix(db, instance, people["author"], raw_output="7 apples")
    with pytest.raises(Invalid, match="comment is required"):
        _claim_and_decide(db, people["r1"], accept=False, comment="  ")
    rejected = _claim_and_decide(db, people["r1"], accept=False, comment="The picture shows 3 apples.")
    db.refresh(instance)
    assert rejected.status == "rejected" and rejected.decision_comment == "The picture shows 3 apples."
    assert instance.raw_output != "7 apples" and instance.lock_version == 0
    # decided: a new proposal may follow
    assert _fix(db, instance, people["author"], raw_output="3 apples").status == "proposed"


def test_stale_edits_and_a_second_proposal_are_409s_that_write_nothing(db, people):
    task = make_qc_task(db, "FIX+stale", instances=2, kind="short")
    instance = _first(db, task)
    seen = instance.lock_version
    _fix(db, instance, people["author"], raw_output="5 apples")
    with pytest.raises(Conflict, match="already waiting"):
        _fix(db, instance, people["r2"], raw_output="6 apples")
    _claim_and_decide(db, people["r1"], accept=True)
    stale = InstanceFixIn(lock_version=seen, reason="late", raw_output="6 apples")
    with pytest.raises(Conflict, match="changed since you opened it"):
        instance_revisions.propose_fix(db, instance_id=instance.id, data=stale, author_id=people["r2"].id,
                                       blindfold=NONE)
    assert db.exec(select(Revision)).all()[-1].status == "accepted"
    db.refresh(instance)
    assert instance.raw_output == "5 apples"


def test_bad_fixes_are_refused_naming_the_field(db, people):
    task = make_qc_task(db, "FIX+bad", instances=2)
    instance = _first(db, task)
    with pytest.raises(Invalid) as outside:
        _fix(db, instance, people["author"], raw_output="horse")
    assert outside.value.fields == {"raw_output": "not one of the options"}
    with pytest.raises(Invalid, match="Nothing would change"):
        _fix(db, instance, people["author"], raw_output=instance.raw_output)
    for values, field in (({"raw_output": "c\x00t"}, "raw_output"), ({"raw_output": None}, "raw_output"),
                          ({"raw_output": ""}, "raw_output"), ({"options": ["a", "a"]}, "options"),
                          ({"input_text": "x" * (1 << 20 + 1)}, "input_text"), ({"split": "dev"}, "split"),
                          ({"status": "active"}, "status")):
        with pytest.raises(ValueError) as refused:
            InstanceFixIn(lock_version=0, reason="r", **values)
        assert refused.value.errors()[0]["loc"][0] == field
    # a label names an option too, and options and target may change together
    assert _fix(db, instance, people["author"], options=["cat", "dog", "bird", "fish"], raw_output="(d)").changes
    assert db.exec(select(Revision)).one().status == "proposed"


def test_accepting_a_fix_of_a_flagged_instance_makes_it_active_and_drops_its_scores(db, people):
    task = make_qc_task(db, "FIX+flagged", instances=3)
    instance = _first(db, task)
    instance.status = "flagged"
    db.add(instance)
    db.commit()
    db.add(InstanceScore(instance_id=instance.id, task_id=task.id, model_id=_model(db).id,
                         instruction_version_id=_version(db, task, people["author"]).id, loss=1.0,
                         greedy_matched=False))
    db.commit()
    _fix(db, instance, people["author"], raw_output="bird" if instance.raw_output != "bird" else "cat")
    _claim_and_decide(db, people["r1"], accept=True)
    db.refresh(instance)
    db.refresh(task)
    assert instance.status == "active" and task.flagged_count == 0 and task.instance_count == 3
    assert db.exec(select(InstanceScore).where(InstanceScore.instance_id == instance.id)).all() == []


def test_a_finding_is_dismissed_by_a_second_person_without_an_edit(db, people):
    task = make_qc_task(db, "FIX+dismiss", instances=2)
    instance = _first(db, task)
    with pytest.raises(Conflict, match="not flagged"):
        instance_revisions.dismiss_finding(db, instance_id=instance.id, lock_version=0, reason="fine",
                                           author_id=people["author"].id, blindfold=NONE, origin=Origin())
    instance.status = "flagged"
    db.add(instance)
    db.commit()
    target = instance.raw_output
    dismissal = instance_revisions.dismiss_finding(db, instance_id=instance.id, lock_version=0,
                                                   reason="The verdict misread the picture.",
                                                   author_id=people["author"].id, blindfold=NONE, origin=Origin())
    assert dismissal.changes == {}
    db.refresh(instance)
    assert instance.status == "flagged"
    _claim_and_decide(db, people["r1"], accept=True)
    db.refresh(instance)
    assert instance.status == "active" and instance.raw_output == target and instance.lock_version == 1


def test_nobody_fixes_or_reviews_a_target_they_must_not_see(db, people):
    task = make_qc_task(db, "FIX+blind", instances=2)
    instance = _first(db, task)
    blind = Blindfold(frozenset({instance.id}))
    with pytest.raises(Conflict, match="blind solve test"):
        instance_revisions.propose_fix(db, instance_id=instance.id, blindfold=blind, author_id=people["r1"].id,
                                       data=InstanceFixIn(lock_version=0, reason="r", raw_output="bird"))
    assert db.exec(select(Revision)).all() == []


def test_the_api_reads_proposes_lists_withdraws_and_decides(app, db, people):
    from fastapi.testclient import TestClient

    task = make_qc_task(db, "FIX+api", instances=2, kind="short")
    instance = _first(db, task)
    client = TestClient(app)
    author, reviewer = bearer(db, people["author"]), bearer(db, people["r1"])
    read = client.get(f"/api/v1/instances/{instance.id}", headers=author).json()
    assert read["raw_output"] == instance.raw_output and read["lock_version"] == 0 and read["open_revision_id"] is None
    refused = client.patch(f"/api/v1/instances/{instance.id}", headers=author,
                           json={"lock_version": 0, "reason": "x" * 2001, "raw_output": "1 apple"})
    assert refused.status_code == 422 and "reason" in refused.text
    own = client.patch(f"/api/v1/instances/{instance.id}", headers=author,
                       json={"lock_version": 0, "reason": "typo", "raw_output": "1 apple", "accept": True})
    assert own.status_code == 403 and "second person" in own.text
    proposed = client.patch(f"/api/v1/instances/{instance.id}", headers=author,
                            json={"lock_version": 0, "reason": "typo", "raw_output": "1 apple"})
    assert proposed.status_code == 201, proposed.text
    assert client.get(f"/api/v1/instances/{instance.id}", headers=author).json()["open_revision_id"] == \
        proposed.json()["id"]
    assert client.post(f"/api/v1/revisions/{proposed.json()['id']}/withdraw", headers=reviewer).status_code == 403
    withdrawn = client.post(f"/api/v1/revisions/{proposed.json()['id']}/withdraw", headers=author).json()
    assert withdrawn["status"] == "withdrawn"
    again = client.patch(f"/api/v1/instances/{instance.id}", headers=author,
                         json={"lock_version": 0, "reason": "typo", "raw_output": "1 apple"}).json()
    item = client.post("/api/v1/review/corrections/next", headers=reviewer).json()
    assert item["id"] == again["id"] and item["changes"]["raw_output"]["after"] == "1 apple"
    decided = client.post(f"/api/v1/review/corrections/{again['id']}/decision", headers=reviewer,
                          json={"decision": "accept", "lock_version": item["lock_version"]})
    assert decided.status_code == 200 and decided.json()["status"] == "accepted"
    history = client.get(f"/api/v1/instances/{instance.id}/revisions", headers=author).json()
    assert [r["status"] for r in history] == ["withdrawn", "accepted"]
    assert client.get(f"/api/v1/instances/{instance.id}", headers=author).json()["raw_output"] == "1 apple"


def test_a_small_team_may_accept_its_own_fixes_when_the_setting_says_so(db, people, settings):
    from fastapi.testclient import TestClient

    from app.main import create_app

    task = make_qc_task(db, "FIX+self", instances=1, kind="short")
    instance = _first(db, task)
    client = TestClient(create_app(settings.model_copy(update={"corrections_self_accept": True})))
    accepted = client.patch(f"/api/v1/instances/{instance.id}", headers=bearer(db, people["author"]),
                            json={"lock_version": 0, "reason": "typo", "raw_output": "1 apple", "accept": True})
    assert accepted.status_code == 201 and accepted.json()["status"] == "accepted"
    assert accepted.json()["self_accepted"] is True
    db.refresh(instance)
    assert instance.raw_output == "1 apple"


def test_the_corrections_queue_page_shows_before_and_after_and_takes_the_decision(app, db, people):
    task = make_qc_task(db, "FIX+page", instances=2, kind="short")
    instance = _first(db, task)
    revision = _fix(db, instance, people["author"], raw_output="9 apples", reason="Nine are drawn.")
    client, csrf = signed_in(app, people["r1"])
    page = soup(client.post("/review/corrections/next", headers=htmx(csrf)))
    assert page.select_one("#fix-reason").text.strip() == "Why: Nine are drawn."
    row = page.select_one('#fix-changes tr[data-field="raw_output"]')
    assert "9 apples" in row.select_one("ins").text and instance.raw_output in row.select_one("del").text
    lock = page.select_one("form.decision input[name=lock_version]")["value"]
    refused = client.post(f"/review/corrections/{revision.id}", headers=htmx(csrf),
                          data={"decision": "reject", "comment": "", "lock_version": lock})
    assert refused.status_code == 422 and "comment" in refused.text
    done = client.post(f"/review/corrections/{revision.id}", headers=htmx(csrf),
                       data={"decision": "accept", "lock_version": lock})
    assert done.status_code == 200 and "Accepted" in done.text
    db.refresh(instance)
    assert instance.raw_output == "9 apples"


def _model(db):
    from app.models import RegisteredModel

    model = RegisteredModel(name="m", path="/tmp/m", dtype="float32", device="cpu")
    db.add(model)
    db.commit()
    return model


def _version(db, task, author):
    from tests.review_helpers import submit_instruction

    return submit_instruction(db, task, author)[1]


def test_the_instance_page_proposes_a_fix_shows_it_waiting_and_lists_the_history(app, db, people):
    task = make_qc_task(db, "FIX+form", instances=2)
    instance = _first(db, task)
    client, csrf = signed_in(app, people["author"])
    page = soup(client.get(f"/instances/{instance.id}"))
    form = page.select_one("#fix-form")
    assert form.select_one("textarea[name=options]").text == "cat\ndog\nbird"
    posted = {"csrf_token": csrf, "lock_version": "0", "input_text": instance.input_text,
              "options": "cat\r\ndog\r\nbird", "raw_output": "horse", "human_preferred_output": "", "split": "train",
              "reason": "It is a horse."}
    refused = client.post(f"/instances/{instance.id}/fix", data=posted)
    assert refused.status_code == 422
    refused_page = soup(refused)
    assert "options" in refused_page.select_one("#fix-form").text and \
        refused_page.select_one("textarea[name=raw_output]").text == "horse"  # what they typed stays
    posted.update(options="cat\r\ndog\r\nbird\r\nhorse")
    done = client.post(f"/instances/{instance.id}/fix", data=posted)
    assert done.status_code == 303
    revision = db.exec(select(Revision)).one()
    assert set(revision.changes) == {"options", "raw_output"}  # the unchanged fields are not part of the fix
    page = soup(client.get(f"/instances/{instance.id}"))
    assert "It is a horse." in page.select_one("#fix-waiting").text and page.select_one("#fix-form") is None
    assert page.select_one('#fix-history tr[data-status="proposed"]')
    client.post(f"/revisions/{revision.id}/withdraw", data={"csrf_token": csrf})
    db.refresh(revision)
    assert revision.status == "withdrawn"
    assert soup(client.get(f"/instances/{instance.id}")).select_one("#fix-form") is not None


def test_a_spot_check_verdict_that_finds_a_problem_offers_the_fix_traced_to_it(app, db, people):
    from app.services import spot_checks

    task = make_qc_task(db, "FIX+spot", instances=4)
    _version(db, task, people["author"])
    spot_checks.create(db, task_id=task.id, actor_id=people["r2"].id, size=2, max_error_rate=0.5)
    db.commit()
    client, csrf = signed_in(app, people["r1"])
    item = soup(client.post("/review/spot/next", headers=htmx(csrf))).select_one("#item")
    found = client.post(f"/review/spot/{item['data-item-id']}", headers=htmx(csrf),
                        data={"verdict": "wrong_target", "note": "It is a bird.",
                              "lock_version": item["data-lock-version"]})
    page = soup(found)
    assert "flagged (wrong target)" in page.select_one("#queue-message").text
    offer = page.select_one("#fix-offer form")
    assert offer.select_one("input[name=reason]")["value"] == "It is a bird."
    from app.models import SpotCheckItem

    flagged = db.get(Instance, db.get(SpotCheckItem, int(item["data-item-id"])).instance_id)
    right = next(option for option in flagged.options if option != flagged.raw_output)
    lock = offer.select_one("[name=lock_version]")["value"]
    fixed = client.post(offer["action"], headers=htmx(csrf),
                        data={"raw_output": right, "reason": "It is a bird.", "lock_version": lock})
    assert fixed.status_code == 200 and "corrections queue" in soup(fixed).select_one("#fix-offer").text
    revision = db.exec(select(Revision)).one()
    assert (revision.origin, revision.origin_id) == ("spot_check", int(item["data-item-id"]))
    # nobody else offers a fix on that verdict's behalf
    other, other_csrf = signed_in(app, people["r2"])
    assert other.post(offer["action"], headers=htmx(other_csrf), data={
        "raw_output": "cat", "reason": "r", "lock_version": "0"}).status_code == 403
    # the second reviewer sees the verdict behind it, and accepting brings the instance back
    queue = soup(other.post("/review/corrections/next", headers=htmx(other_csrf)))
    assert "wrong target: It is a bird." in queue.select_one("#fix-finding").text
    _claim_and_decide(db, people["r2"], accept=True)
    instance = db.get(Instance, revision.record_id, populate_existing=True)
    assert instance.status == "active" and instance.raw_output == right


def test_the_models_suggestion_is_shown_and_proposed_by_one_button_traced_to_the_model(app, db, people):
    from app.models import ModelOutput

    task = make_qc_task(db, "FIX+suggest", instances=3)
    free = make_qc_task(db, "FIX+suggest_free", instances=1, kind="short")
    model, version = _model(db), _version(db, task, people["author"])
    instances = db.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id)).all()
    for instance in instances:  # the model puts 0.9 on the option after the target's
        probabilities = [0.05] * 3
        probabilities[(instance.options.index(instance.raw_output) + 1) % 3] = 0.9
        db.add(InstanceScore(instance_id=instance.id, task_id=task.id, model_id=model.id, greedy_matched=False,
                             instruction_version_id=version.id, loss=2.0, option_probabilities=probabilities))
    short = _first(db, free)
    db.add(ModelOutput(instance_id=short.id, instruction_version_id=_version(db, free, people["author"]).id,
                       model_name=model.name, output="12 apples"))
    db.add(InstanceScore(instance_id=short.id, task_id=free.id, model_id=model.id, greedy_matched=False,
                         instruction_version_id=db.exec(select(ModelOutput.instruction_version_id)).one(), loss=3.0))
    db.commit()
    client, csrf = signed_in(app, people["author"])
    grid = soup(client.get(f"/tasks/{task.id}/instances", params={"order": "doubt"}))
    cards = grid.select("article.instance-card form.suggestion")
    assert len(cards) == 3 and "(0.90)" in cards[0].text
    target = instances[0]
    wanted = target.options[(target.options.index(target.raw_output) + 1) % 3]
    page = soup(client.get(f"/instances/{target.id}"))
    assert wanted in page.select_one("#suggestion strong").text
    proposed = client.post(f"/instances/{target.id}/suggestion", headers=htmx(csrf),
                           data={"lock_version": "0", "model_id": str(model.id), "raw_output": "tampered"})
    assert proposed.status_code == 200 and "corrections queue" in proposed.text
    revision = db.exec(select(Revision)).one()
    assert revision.changes["raw_output"]["after"] == wanted and revision.origin == "model_suggestion"
    assert revision.origin_id == model.id and revision.origin_detail["probability"] == 0.9
    assert model.name in revision.reason
    # a free-text task's suggestion is the model's answer from a preview
    page = soup(client.get(f"/instances/{short.id}"))
    assert page.select_one("#suggestion strong").text == "12 apples"


def test_a_corrections_file_is_proposed_whole_or_refused_by_line(db, people, tmp_path):
    import json

    from app.ingest.corrections import CorrectionsInvalid, import_corrections

    task = make_qc_task(db, "FIX+file", instances=3)
    first, second, third = db.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id)).all()
    other = next(option for option in first.options if option != first.raw_output)
    bad = tmp_path / "fixes.jsonl"
    bad.write_text("\n".join(json.dumps(row) for row in [
        {"instance_id": first.id, "field": "raw_output", "value": other, "reason": "mislabelled"},
        {"instance_id": first.id, "field": "raw_output", "value": other, "reason": "again"},
        {"task": task.name, "source_id": second.source_id, "field": "raw_output", "value": "horse"},
        {"instance_id": 999_999, "field": "raw_output", "value": "x"},
        {"instance_id": third.id, "field": "input_text", "value": "a\u0000b"},
    ]) + "\n")
    with pytest.raises(CorrectionsInvalid) as refused:
        import_corrections(db, path=bad, actor_id=people["author"].id)
    problems = "\n".join(refused.value.problems)
    assert "fixes.jsonl:2: field: raw_output of this instance is changed on line 1 already" in problems
    assert "fixes.jsonl:3: raw_output: The target must name one of the options" in problems
    assert "fixes.jsonl:4: instance_id: no instance 999999" in problems
    assert "fixes.jsonl:5: input_text: must not contain NUL characters" in problems
    assert db.exec(select(Revision)).all() == []  # nothing half-written
    good = tmp_path / "fixes.csv"
    options = '"[""cat"", ""dog"", ""bird"", ""fox""]"'
    good.write_text(f"instance_id,task,source_id,field,value,reason\n{first.id},,,raw_output,{other},mislabelled\n"
                    f",{task.name},{second.source_id},options,{options},a missing option\n")
    report = import_corrections(db, path=good, actor_id=people["author"].id)
    assert len(report.proposed) == 2
    proposals = db.exec(select(Revision).order_by(Revision.record_id)).all()
    assert [r.origin for r in proposals] == ["file", "file"] and proposals[0].origin_detail["line"] == 2
    assert proposals[1].changes["options"]["after"] == ["cat", "dog", "bird", "fox"]


def test_a_blind_answer_that_did_not_match_offers_the_fix_starting_from_the_answer(app, db, people):
    from app.models import SolveTestItem
    from app.services import solve_tests

    task = make_qc_task(db, "FIX+solve", instances=4)
    _version(db, task, people["author"])
    solve_tests.create(db, task_id=task.id, actor_id=people["r2"].id, size=2, pass_threshold=1)
    db.commit()
    client, csrf = signed_in(app, people["r1"])
    item = soup(client.post("/review/solve/next", headers=htmx(csrf))).select_one("#item")
    instance = db.get(Instance, db.get(SolveTestItem, int(item["data-item-id"])).instance_id)
    wrong = next(option for option in instance.options if option != instance.raw_output)
    answered = soup(client.post(f"/review/solve/{item['data-item-id']}/answer", headers=htmx(csrf),
                                data={"answer": wrong, "lock_version": item["data-lock-version"]}))
    assert answered.select_one("#queue-message").text == "Did not match."
    offer = answered.select_one("#fix-offer form")
    assert offer.select_one("select[name=raw_output] option[selected]").text == wrong  # starts from the answer
    # someone else cannot offer a fix on this answer's behalf
    other, other_csrf = signed_in(app, people["r2"])
    assert other.post(offer["action"], headers=htmx(other_csrf), data={
        "raw_output": wrong, "reason": "r", "lock_version": "0"}).status_code == 403
    fixed = client.post(offer["action"], headers=htmx(csrf), data={
        "raw_output": wrong, "reason": "The picture shows it.", "lock_version": str(instance.lock_version)})
    assert fixed.status_code == 200, fixed.text
    revision = db.exec(select(Revision)).one()
    assert (revision.origin, revision.origin_detail) == ("solve_test", {"answer": wrong})
    # it waits: the reviewers who may still answer the test do not see it until the test closes
    assert queues.next_item(db, queue=queues.CORRECTIONS, user=people["r2"], lease_s=600) is None


def test_a_corrections_file_keeps_the_blind_rule_for_those_who_may_still_answer(db, people, tmp_path):
    from app.ingest.corrections import CorrectionsInvalid, import_corrections
    from app.models import SolveTestItem
    from app.services import solve_tests

    task = make_qc_task(db, "FIX+file_blind", instances=3, kind="short")
    _version(db, task, people["author"])
    solve_tests.create(db, task_id=task.id, actor_id=people["r2"].id, size=3, pass_threshold=2)
    db.commit()
    tested = db.exec(select(SolveTestItem.instance_id)).first()
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"instance_id,field,value,reason\n{tested},raw_output,99 apples,recounted\n")
    with pytest.raises(CorrectionsInvalid, match="blind solve test"):
        import_corrections(db, path=fixes, actor_id=people["r1"].id)  # a reviewer may still answer it
    assert len(import_corrections(db, path=fixes, actor_id=people["author"].id).proposed) == 1  # an author never does


def test_a_tasks_history_names_the_instances_its_events_were_done_to(app, db, people):
    task = make_qc_task(db, "FIX+named", instances=2)
    instance = _first(db, task)
    _fix(db, instance, people["author"], raw_output="bird" if instance.raw_output != "bird" else "cat")
    client, _ = signed_in(app, people["r1"])
    link = soup(client.get(f"/tasks/{task.id}")).select_one(f"table.events a[href='/instances/{instance.id}']")
    assert link is not None and link.text == f"instance {instance.source_id}"


def test_a_ranking_from_a_model_that_cannot_tell_instances_apart_says_so(app, db, people):
    task = make_qc_task(db, "FIX+blunt", instances=12)
    model, version = _model(db), _version(db, task, people["author"])
    for instance in db.exec(select(Instance).where(Instance.task_id == task.id)):  # sure, and wrong, every time
        probabilities = [0.01] * 3
        probabilities[(instance.options.index(instance.raw_output) + 1) % 3] = 0.98
        db.add(InstanceScore(instance_id=instance.id, task_id=task.id, model_id=model.id, greedy_matched=False,
                             instruction_version_id=version.id, loss=4.6, option_probabilities=probabilities))
    db.commit()
    client, _ = signed_in(app, people["author"])
    note = soup(client.get(f"/tasks/{task.id}/instances", params={"order": "doubt"})).select_one("#blunt-ranking")
    assert note is not None and note.text.startswith("12 of the 12 instances this model scored are suspects")
