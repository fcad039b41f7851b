"""Bulk fixes: one change to every instance a query picks, previewed, reviewed as a whole by a second person,
applied by a job in whole chunks (resumable), reported, and undone as another bulk fix. Through the services and
the real worker loop."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from app.core.failures import Conflict, Forbidden, Invalid
from app.exports.sampling import SPLIT_SALT, unit
from app.models import (
    BulkFix,
    BulkFixItem,
    DatasetVersion,
    Instance,
    Job,
    Revision,
    Role,
    Task,
)
from app.schemas.bulk_fixes import BulkDecisionIn, BulkFixIn, BulkQuery, ExcludeChange, ReplaceChange
from app.schemas.export_spec import ExportSpec
from app.schemas.revisions import InstanceFixIn, RevisionDecisionIn
from app.services import bulk_fix_apply, bulk_fixes, corrections, instance_revisions, queues
from app.services.blinding import NONE, Blindfold
from tests.factories import make_user
from tests.review_helpers import make_qc_task
from worker.__main__ import Worker


@pytest.fixture
def people(db):
    return {"author": make_user(db, Role.reviewer), "r1": make_user(db, Role.reviewer),
            "r2": make_user(db, Role.reviewer)}


def _dog_to_puppy(task: Task, **fields) -> BulkFixIn:
    return BulkFixIn(query=BulkQuery(task_ids=[task.id]), reason="The class list says puppy.",
                     change=ReplaceChange(action="replace", find="dog", replace_with="puppy"), **fields)


def _instances(db, task: Task) -> list[Instance]:
    return list(db.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id)
                        .execution_options(populate_existing=True)))


def _accept(db, fix: BulkFix, reviewer) -> BulkFix:
    return bulk_fixes.decide(db, fix_id=fix.id, user_id=reviewer.id, blindfold=NONE,
                             data=BulkDecisionIn(decision="accept", lock_version=fix.lock_version))


def test_the_preview_is_what_is_proposed_reviewed_and_applied(db, settings, people):
    task = make_qc_task(db, "BULK+animals", instances=9)
    before = {i.id: (i.raw_output, i.options) for i in _instances(db, task)}
    data = _dog_to_puppy(task)
    shown = bulk_fixes.preview(db, data=data, blindfold=NONE)
    assert db.exec(select(func.count()).select_from(BulkFix)).one() == 0  # a preview writes nothing
    # every instance offers "dog" as an option, so every one changes; three of them have it as their target
    assert shown.change_count == 9 and shown.refused_count == shown.validation_count == 0
    targets = [item for item in shown.changes if "raw_output" in item.changes]
    assert len(targets) == 3 and all(item.changes["raw_output"] == {"before": "dog", "after": "puppy"}
                                     for item in targets)
    assert shown.changes[0].changes["options"]["after"] == ["cat", "puppy", "bird"]

    fix = bulk_fixes.propose(db, data=data, author_id=people["author"].id, blindfold=NONE, self_accept_allowed=False)
    assert fix.status == "proposed" and fix.change_count == 9
    stored = bulk_fixes.stored_preview(db, fix=fix)
    assert [(i.instance_id, i.changes) for i in stored.changes] == [(i.instance_id, i.changes) for i in shown.changes]
    assert all(i.raw_output == before[i.id][0] for i in _instances(db, task))  # nothing changed yet

    # four eyes: not its author; a rejection says why
    with pytest.raises(Forbidden):
        _accept(db, fix, people["author"])
    with pytest.raises(Invalid, match="comment is required"):
        bulk_fixes.decide(db, fix_id=fix.id, user_id=people["r1"].id, blindfold=NONE,
                          data=BulkDecisionIn(decision="reject", comment=" ", lock_version=fix.lock_version))
    accepted = _accept(db, fix, people["r1"])
    assert accepted.status == "accepted" and accepted.reviewer_id == people["r1"].id
    assert db.get(Job, accepted.job_id).kind == "bulk_fix"
    with pytest.raises(Conflict):  # decided: the stale page changes nothing
        _accept(db, fix, people["r2"])

    assert Worker(settings).run_once() is True  # the real worker loop applies it
    fix = bulk_fixes.get(db, fix_id=fix.id)
    assert fix.status == "applied" and fix.applied_count == 9 and fix.skipped_count == 0
    for instance in _instances(db, task):
        assert "dog" not in instance.options and instance.lock_version == 1
        assert instance.raw_output == ("puppy" if before[instance.id][0] == "dog" else before[instance.id][0])
    written = db.exec(select(Revision).where(Revision.origin == "bulk_fix", Revision.origin_id == fix.id)).all()
    assert len(written) == 9 and {r.status for r in written} == {"accepted"}
    assert {r.author_id for r in written} == {people["author"].id} and {r.reviewer_id for r in written} == {
        people["r1"].id}
    # the report lists every item with what became of it, the same set as the preview
    assert [(i.instance_id, i.outcome) for i in bulk_fixes.report(db, fix=fix)] == [
        (item.instance_id, "applied") for item in shown.changes]


def test_an_instance_changed_after_the_proposal_is_skipped_and_reported(db, people):
    task = make_qc_task(db, "BULK+stale", instances=6)
    fix = bulk_fixes.propose(db, data=_dog_to_puppy(task), author_id=people["author"].id, blindfold=NONE,
                             self_accept_allowed=False)
    moved = _instances(db, task)[1]  # a "dog" target
    assert moved.raw_output == "dog"
    instance_revisions.propose_fix(db, instance_id=moved.id, author_id=people["r2"].id, blindfold=NONE,
                                   data=InstanceFixIn(lock_version=0, reason="it is a wolf", raw_output="cat"))
    revision_id = queues.next_item(db, queue=queues.CORRECTIONS, user=people["r1"], lease_s=600)
    corrections.decide(db, revision_id=revision_id, user_id=people["r1"].id, data=RevisionDecisionIn(
        decision="accept", lock_version=db.get(Revision, revision_id, populate_existing=True).lock_version))
    _accept(db, fix, people["r1"])
    applied = bulk_fix_apply.apply(db, fix_id=fix.id)
    assert (applied.applied, applied.skipped) == (5, 1)
    db.refresh(moved)
    assert moved.raw_output == "cat" and moved.options == ["cat", "dog", "bird"]  # not overwritten
    outcomes = {item.instance_id: item.outcome for item in bulk_fixes.report(db, fix=fix)}
    assert outcomes[moved.id] == "skipped" and list(outcomes.values()).count("applied") == 5


def test_a_killed_fix_resumes_from_its_last_whole_chunk(db, people):
    task = make_qc_task(db, "BULK+killed", instances=10)
    fix = _accept(db, bulk_fixes.propose(db, data=_dog_to_puppy(task), author_id=people["author"].id,
                                         blindfold=NONE, self_accept_allowed=False), people["r1"])

    def killed(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the process dies right after a chunk committed

    with pytest.raises(KeyboardInterrupt):
        bulk_fix_apply.apply(db, fix_id=fix.id, on_chunk=killed, chunk=4)
    fix = bulk_fixes.get(db, fix_id=fix.id)
    written = db.exec(select(Revision.record_id).where(Revision.origin_id == fix.id)).all()
    assert fix.status == "accepted" and fix.applied_count == 4 and len(written) == 4  # one whole chunk
    assert sum(i.lock_version for i in _instances(db, task)) == 4
    outcomes = [item.outcome for item in bulk_fixes.report(db, fix=fix)]
    assert outcomes == ["applied"] * 4 + ["pending"] * 6

    done = []
    assert bulk_fix_apply.apply(db, fix_id=fix.id, on_chunk=lambda d, t: done.append((d, t)), chunk=4).applied == 10
    assert done == [(8, 10), (10, 10)]
    written = db.exec(select(Revision.record_id).where(Revision.origin_id == fix.id)).all()
    assert sorted(written) == sorted(i.id for i in _instances(db, task))  # each instance exactly once
    assert {i.lock_version for i in _instances(db, task)} == {1}
    assert bulk_fixes.get(db, fix_id=fix.id).status == "applied"


def test_validation_instances_of_ready_versions_are_left_alone_unless_the_fix_says_so(db, people):
    task = make_qc_task(db, "BULK+validation", instances=20)
    spec = ExportSpec(task_ids=[task.id], seed=3, validation_ratio=0.3)
    db.add(DatasetVersion(name="v-held", spec=spec.model_dump(mode="json"), spec_hash=spec.digest(), status="ready"))
    db.commit()
    held = {i.id for i in _instances(db, task) if unit(3 ^ SPLIT_SALT, i.id) < 0.3}
    assert 0 < len(held) < 20
    shown = bulk_fixes.preview(db, data=_dog_to_puppy(task), blindfold=NONE)
    assert shown.validation_count == len(held) and shown.change_count == 20 - len(held)
    assert {item.instance_id for item in shown.validation} == held
    fix = _accept(db, bulk_fixes.propose(db, data=_dog_to_puppy(task), author_id=people["author"].id,
                                         blindfold=NONE, self_accept_allowed=False), people["r1"])
    bulk_fix_apply.apply(db, fix_id=fix.id)
    assert all(("dog" in i.options) == (i.id in held) for i in _instances(db, task))
    assert {item.outcome for item in bulk_fixes.report(db, fix=fix) if item.instance_id in held} == {"left alone"}

    # a fix that says so changes them too
    everything = BulkFixIn(query=BulkQuery(task_ids=[task.id]), reason="all of them",
                           change=ReplaceChange(action="replace", find="dog", replace_with="hound"),
                           include_validation=True)
    assert bulk_fixes.preview(db, data=everything, blindfold=NONE).change_count == len(held)


def test_an_undo_restores_what_the_fix_wrote_where_nothing_changed_since(db, people):
    task = make_qc_task(db, "BULK+undo", instances=6)
    originals = {i.id: (i.raw_output, i.options) for i in _instances(db, task)}
    fix = _accept(db, bulk_fixes.propose(db, data=_dog_to_puppy(task), author_id=people["author"].id,
                                         blindfold=NONE, self_accept_allowed=False), people["r1"])
    bulk_fix_apply.apply(db, fix_id=fix.id)
    later = _instances(db, task)[0]
    instance_revisions.propose_fix(db, instance_id=later.id, author_id=people["author"].id, blindfold=NONE,
                                   accept_now=True, data=InstanceFixIn(lock_version=later.lock_version,
                                                                       reason="typo", options=["cat", "puppy", "owl"]))
    undo = bulk_fixes.propose_undo(db, fix_id=fix.id, reason="puppy was wrong after all",
                                   author_id=people["r2"].id, blindfold=NONE)
    assert undo.undoes_id == fix.id and undo.change_count == 5 and undo.refused_count == 1
    refused = bulk_fixes.stored_preview(db, fix=undo).refused
    assert [(item.instance_id, item.refusal) for item in refused] == [
        (later.id, f"changed since bulk fix #{fix.id}: options")]
    with pytest.raises(Conflict, match="already under way"):
        bulk_fixes.propose_undo(db, fix_id=fix.id, reason="again", author_id=people["r2"].id, blindfold=NONE)
    bulk_fix_apply.apply(db, fix_id=_accept(db, undo, people["r1"]).id)
    for instance in _instances(db, task):
        if instance.id != later.id:
            assert (instance.raw_output, instance.options) == originals[instance.id]
            assert instance.lock_version == 2
    assert bulk_fixes.undone_by(db, fix_id=fix.id).id == undo.id


def test_refusals_keep_the_rules_a_fix_by_hand_keeps(db, people):
    task = make_qc_task(db, "BULK+refused", instances=3)
    clash = BulkFixIn(query=BulkQuery(task_ids=[task.id]), reason="merge the classes",
                      change=ReplaceChange(action="replace", find="dog", replace_with="cat"))
    shown = bulk_fixes.preview(db, data=clash, blindfold=NONE)
    assert shown.change_count == 0 and shown.refused_count == 3
    assert shown.refused[0].refusal == "options: an option is repeated"
    with pytest.raises(Invalid, match="Nothing would change"):
        bulk_fixes.propose(db, data=clash, author_id=people["author"].id, blindfold=NONE, self_accept_allowed=False)
    with pytest.raises(ValueError, match="NUL"):
        ReplaceChange(action="replace", find="dog", replace_with="do\x00g")
    too_long = BulkFixIn(query=BulkQuery(task_ids=[task.id]), reason="x",
                         change=ReplaceChange(action="replace", find="o", replace_with="o" * 20_000, whole_value=False))
    refused = bulk_fixes.preview(db, data=too_long, blindfold=NONE).refused
    assert refused[0].refusal == "option 2: at most 20,000 characters"
    same = BulkFixIn(query=BulkQuery(task_ids=[task.id]), reason="x",
                     change=ReplaceChange(action="replace", find="dog", replace_with="dog"))
    assert bulk_fixes.preview(db, data=same, blindfold=NONE).change_count == 0
    with pytest.raises(Invalid, match="second person"):  # the team's setting is off
        bulk_fixes.propose(db, data=_dog_to_puppy(task, accept=True), author_id=people["author"].id,
                           blindfold=NONE, self_accept_allowed=False)


def test_exclude_by_query_leaves_hidden_targets_out_and_recounts_the_task(db, people):
    task = make_qc_task(db, "BULK+exclude", instances=8)
    dogs = [i.id for i in _instances(db, task) if i.raw_output == "dog"]
    blindfold = Blindfold(frozenset(dogs[:1]))
    data = BulkFixIn(query=BulkQuery(task_ids=[task.id], q="dog"), reason="dogs are out of scope",
                     change=ExcludeChange(action="exclude"))
    shown = bulk_fixes.preview(db, data=data, blindfold=blindfold)
    assert shown.change_count == len(dogs) - 1 and shown.hidden_count == 0  # a search never matches hidden targets
    fix = bulk_fixes.propose(db, data=data, author_id=people["author"].id, blindfold=NONE, self_accept_allowed=False)
    with pytest.raises(Conflict, match="blind solve test"):
        bulk_fixes.decide(db, fix_id=fix.id, user_id=people["r1"].id, blindfold=blindfold,
                          data=BulkDecisionIn(decision="accept", lock_version=fix.lock_version))
    bulk_fix_apply.apply(db, fix_id=_accept(db, fix, people["r1"]).id)
    db.refresh(task)
    assert {i.status for i in _instances(db, task) if i.id in dogs} == {"excluded"}
    assert task.instance_count == 8 - len(dogs)
    assert db.exec(select(func.count()).select_from(BulkFixItem)).one() == len(dogs)
