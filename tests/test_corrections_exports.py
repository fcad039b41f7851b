"""What fixes do to versions: a build uses the accepted values, pins the newest accepted revision so that its spec
builds the same bytes later whatever was fixed since, its card counts the fixes per task, and a record's trace
shows the chain from the import through each fix."""

from __future__ import annotations

import json

from sqlmodel import select

from app.core.storage import MediaStore
from app.exports.build import build
from app.models import Instance, Revision, Role, SolveTestItem
from app.prompts.tokens import estimate
from app.schemas.export_spec import ExportSpec
from app.schemas.revisions import InstanceFixIn, RevisionDecisionIn
from app.services import corrections, instance_revisions, queues, revisions
from app.services.blinding import NONE
from app.services.quality_figures import review_figures
from app.services.revisions import Origin
from tests.factories import make_user, soup
from tests.review_helpers import approve, make_qc_task, signed_in, submit_instruction


def _build(app, db, settings, spec: ExportSpec, folder: str) -> tuple[dict, str]:
    out = settings.data_dir / "exports" / folder
    manifest = build(app.state.engine, spec=spec, destination=out, media=MediaStore(settings.media_dir),
                     count_tokens=estimate, name=folder, review=review_figures(
                         db, task_ids=spec.task_ids, revisions_through=spec.revisions_through, as_of=spec.as_of))
    return manifest, (out / "stage1.json").read_text(encoding="ascii")


def _fix_and_accept(db, instance: Instance, author, reviewer, origin: Origin = revisions.MANUAL, **values):
    db.refresh(instance)
    instance_revisions.propose_fix(db, instance_id=instance.id, author_id=author.id, blindfold=NONE, origin=origin,
                                   data=InstanceFixIn(lock_version=instance.lock_version, reason="fix", **values))
    revision_id = queues.next_item(db, queue=queues.CORRECTIONS, user=reviewer, lease_s=600)
    revision = db.get(Revision, revision_id, populate_existing=True)
    return corrections.decide(db, revision_id=revision_id, user_id=reviewer.id, data=RevisionDecisionIn(
        decision="accept", lock_version=revision.lock_version))


def test_a_version_uses_accepted_values_pins_them_and_counts_the_fixes_on_its_card(app, db, settings):
    from app.services import versions as version_service

    author, r1, r2 = make_user(db, Role.author), make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    task = make_qc_task(db, "PIN+answers", instances=6, kind="short")
    _, _, review = submit_instruction(db, task, author)
    first, second = db.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id).limit(2)).all()
    _fix_and_accept(db, first, author, r1, raw_output="41 apples")
    _fix_and_accept(db, second, author, r2, raw_output="42 apples",
                    origin=Origin(revisions.RevisionOrigin.model_suggestion, None, {"model": "m"}))
    approve(db, review)  # after the fixes: the blind solve test it opens keeps its instances from reviewers' fixes
    pinned = version_service.create(db, spec=ExportSpec(task_ids=[task.id], seed=1), name="pinned", actor_id=None,
                                    enqueue=False)
    spec = ExportSpec.model_validate(pinned.spec)
    assert spec.revisions_through == revisions.newest_accepted_id(db)
    _, records = _build(app, db, settings, spec, "before")
    targets = _targets(records)
    assert targets[str(first.id)] == "41 apples" and targets[str(second.id)] == "42 apples"
    card = (settings.data_dir / "exports" / "before" / "README.md").read_text()
    assert "## Fixes" in card and "| PIN+answers | 2 | 1 | 0 | 0 |" in card

    # A fix accepted after the version was made does not change what its spec builds (of an instance outside the
    # blind solve test the approval opened: its reviewers may not see the targets of those in it).
    blind = db.exec(select(SolveTestItem.instance_id)).all()
    later = db.exec(select(Instance).where(Instance.task_id == task.id, Instance.id.not_in(blind))
                    .order_by(Instance.id)).first()
    _fix_and_accept(db, later, author, r1, raw_output="43 apples")
    _, again = _build(app, db, settings, spec, "again")
    assert again == records and _targets(again)[str(later.id)] != "43 apples"
    fresh = ExportSpec(task_ids=[task.id], seed=1, revisions_through=revisions.newest_accepted_id(db))
    assert _targets(_build(app, db, settings, fresh, "fresh")[1])[str(later.id)] == "43 apples"


def test_a_fix_proposed_before_a_version_but_accepted_after_it_stays_out_of_its_rebuild(app, db, settings):
    from app.services import versions as version_service

    author, r1, r2 = make_user(db, Role.author), make_user(db, Role.reviewer), make_user(db, Role.reviewer)
    task = make_qc_task(db, "LATE+answers", instances=8, kind="short")
    _, _, review = submit_instruction(db, task, author)
    approve(db, review)
    blind = set(db.exec(select(SolveTestItem.instance_id)).all())
    early, late = [instance for instance in db.exec(select(Instance).where(Instance.task_id == task.id)
                                                    .order_by(Instance.id)) if instance.id not in blind][:2]
    for instance, target in ((early, "7 pears"), (late, "8 pears")):
        instance_revisions.propose_fix(db, instance_id=instance.id, author_id=author.id, blindfold=NONE,
                                       data=InstanceFixIn(lock_version=instance.lock_version, reason="fix",
                                                          raw_output=target))
    held_early = queues.next_item(db, queue=queues.CORRECTIONS, user=r1, lease_s=600)  # r1 holds the older fix
    held_late = queues.next_item(db, queue=queues.CORRECTIONS, user=r2, lease_s=600)
    accept = RevisionDecisionIn(decision="accept", lock_version=db.get(Revision, held_late).lock_version)
    corrections.decide(db, revision_id=held_late, user_id=r2.id, data=accept)
    version = version_service.create(db, spec=ExportSpec(task_ids=[task.id], seed=1), name="v", actor_id=None,
                                     enqueue=False)
    spec = ExportSpec.model_validate(version.spec)
    assert spec.revisions_through == held_late > held_early and spec.as_of is not None
    _, records = _build(app, db, settings, spec, "made")
    assert _targets(records)[str(late.id)] == "8 pears" and _targets(records)[str(early.id)] != "7 pears"
    # The older fix is accepted after the version: its id is under the version's pin, its moment is not.
    revision = db.get(Revision, held_early, populate_existing=True)
    corrections.decide(db, revision_id=held_early, user_id=r1.id,
                       data=RevisionDecisionIn(decision="accept", lock_version=revision.lock_version))
    _, again = _build(app, db, settings, spec, "again")
    assert again == records
    card = (settings.data_dir / "exports" / "again" / "README.md").read_text()
    assert "| LATE+answers | 1 |" in card  # the card counts the one fix the version holds


def _targets(stage1: str) -> dict[str, str]:
    return {record["id"].split("/")[1]: record["conversations"][1]["value"] for record in json.loads(stage1)}


def test_a_records_trace_shows_the_chain_from_the_import_through_each_fix(app, db):
    author, reviewer = make_user(db, Role.author), make_user(db, Role.reviewer)
    task = make_qc_task(db, "TRACE+answers", instances=2, kind="short")
    version = submit_instruction(db, task, author)[1]
    instance = db.exec(select(Instance).where(Instance.task_id == task.id).order_by(Instance.id)).first()
    imported = instance.raw_output
    _fix_and_accept(db, instance, author, reviewer, raw_output="5 apples")
    _fix_and_accept(db, instance, author, reviewer, raw_output="6 apples")
    client, _ = signed_in(app, author)
    response = client.get("/versions/trace", params={"id": f"{task.name}/{instance.id}/v{version.id}"})
    assert response.status_code == 200, response.text
    page = soup(response)
    chain = [item.text for item in page.select("#fixes ol.chain li")]
    assert chain[0].startswith("imported") and len(chain) == 3
    assert imported in chain[1] and "5 apples" in chain[1] and "5 apples" in chain[2] and "6 apples" in chain[2]
    assert reviewer.display_name in chain[2]


def test_the_version_diff_lists_the_records_fixes_changed_between_two_versions(app, db, settings):
    from app.services import versions as version_service

    author, r1 = make_user(db, Role.author), make_user(db, Role.reviewer)
    task = make_qc_task(db, "DIFF+answers", instances=12, kind="short")
    _, _, review = submit_instruction(db, task, author)
    approve(db, review)
    blind = set(db.exec(select(SolveTestItem.instance_id)).all())
    fixed, back, *_ = db.exec(select(Instance).where(Instance.task_id == task.id, Instance.id.not_in(blind))
                              .order_by(Instance.id)).all()
    was, original = fixed.raw_output, back.raw_output
    ids = []
    for name in ("before", "after"):
        if name == "after":  # between the two versions: one target fixed, another fixed and fixed back
            _fix_and_accept(db, fixed, author, r1, raw_output="11 apples")
            _fix_and_accept(db, back, author, r1, raw_output="12 apples")
            _fix_and_accept(db, back, author, r1, raw_output=original)
        version = version_service.create(db, spec=ExportSpec(task_ids=[task.id]), name=name, actor_id=None,
                                         enqueue=False)
        version_service.run_build(settings, version_id=version.id)
        ids.append(version.id)
    client, _ = signed_in(app, author)
    page = soup(client.get(f"/versions/diff?a={ids[0]}&b={ids[1]}"))
    rows = page.select("#fixed tbody tr")
    assert [row["data-instance"] for row in rows] == [str(fixed.id)]  # the one fixed back differs in nothing
    assert [cell.text for cell in rows[0].select("td.pre")] == [was, "11 apples"]
    assert "1 instance of tasks both versions hold was fixed" in page.select_one("#fixed-records").text
    backwards = soup(client.get(f"/versions/diff?a={ids[1]}&b={ids[0]}")).select("#fixed tbody tr td.pre")
    assert [cell.text for cell in backwards] == ["11 apples", was]
    # the card reads in the browser too, rendered: its fixes table is a table
    card = soup(client.get(f"/versions/{ids[1]}/card")).select_one("#dataset-card")
    assert card.select_one("h1") is not None and "DIFF+answers" in card.select_one("table").text
    assert soup(client.get(f"/versions/{ids[1]}")).select_one("#read-card")["href"] == f"/versions/{ids[1]}/card"
