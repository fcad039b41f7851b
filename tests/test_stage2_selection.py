"""A version's stage 2 draws from what review passed (every answer correct, or the wrong ones fixed by an accepted
revision), unless its builder says otherwise; a pinned spec builds the same stage 2 after later reviews and fixes;
the card says how stage 2 was drawn and what review found in its pool."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.models import ConversationItem, ConversationPool, ConversationReview, Revision, Role
from app.schemas.export_spec import ExportSpec
from app.schemas.revisions import RevisionDecisionIn
from app.schemas.stage2 import ConversationVerdictsIn
from app.services import conversation_reviews, corrections, queues
from app.services import versions as version_service
from tests.factories import make_user
from tests.review_helpers import team
from tests.test_exports import _approved
from tests.test_pools import _conversation, _pool


@pytest.fixture
def pool(app, db, settings, tmp_path) -> ConversationPool:
    _pool(app, settings, tmp_path, [_conversation(k, image=True) for k in range(10)])
    return db.exec(select(ConversationPool)).one()


def _read(db, reader, second, *, wrong: dict[int, str | None]) -> None:
    """`reader` reads as many conversations as `wrong` has entries, in queue order: the k-th is judged wrong where
    `wrong[k]` is set (with that fixed text, which `second` accepts, or left unfixed when it is "")."""
    for k in sorted(wrong):
        review_id = queues.next_item(db, queue=queues.CONVERSATIONS, user=reader, lease_s=600)
        review = db.get(ConversationReview, review_id, populate_existing=True)
        judgement = {"turn": 1, "verdict": "correct"}
        if wrong[k] is not None:
            judgement = {"turn": 1, "verdict": "hallucinated_object", **({"text": wrong[k]} if wrong[k] else {})}
        decided = conversation_reviews.decide(db, review_id=review.id, user_id=reader.id,
                                              data=ConversationVerdictsIn(lock_version=review.lock_version,
                                                                          turns=[judgement]))
        if decided.revision_id:
            held = queues.next_item(db, queue=queues.CORRECTIONS, user=second, lease_s=600)
            revision = db.get(Revision, held, populate_existing=True)
            corrections.decide(db, revision_id=held, user_id=second.id,
                               data=RevisionDecisionIn(decision="accept", lock_version=revision.lock_version))


def _stage2(settings, version) -> list[dict]:
    return json.loads((settings.data_dir / "exports" / str(version.id) / "stage2.json").read_text())


def _version(db, settings, spec: ExportSpec, name: str):
    version = version_service.create(db, spec=spec, name=name, actor_id=None, enqueue=False)
    version_service.run_build(settings, version_id=version.id)
    db.refresh(version)
    return version


def test_stage2_draws_only_what_review_passed_and_the_card_says_so(app, db, settings, pool):
    people = {"r1": make_user(db, Role.reviewer), "r2": make_user(db, Role.reviewer)}
    _read(db, people["r1"], people["r2"], wrong={0: None, 1: "A red bus.", 2: "", 3: None, 4: None})
    task, _ = _approved(db, team(db), "VQA+stage1", instances=3)
    version = _version(db, settings, ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=50),
                       "reviewed")
    drawn = _stage2(settings, version)
    passed = db.exec(select(ConversationItem.position).join(ConversationReview).where(
        ConversationReview.outcome.in_(["correct", "fixed"]))).all()
    assert sorted(int(record["id"].rsplit("/", 1)[1]) for record in drawn) == sorted(passed) and len(passed) == 4
    assert any(record["conversations"][1]["value"] == "A red bus." for record in drawn)  # the fix, as accepted
    card = (settings.data_dir / "exports" / str(version.id) / "README.md").read_text()
    stage2 = card.split("## Stage 2", 1)[1]
    assert "4 conversations (at most 50 asked for) from the pool instruct" in stage2
    assert "from the conversations review passed" in stage2
    assert "Review read 5 of the pool's 10 conversations" in stage2
    assert "2 had a wrong answer (1 of them fixed)" in stage2
    assert "40.0% of the pool (95% Wilson interval" in stage2
    everything = _version(db, settings, ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=50,
                                                   stage2_unreviewed=True), "everything")
    assert len(_stage2(settings, everything)) == 10
    assert "nobody reviewed" in (settings.data_dir / "exports" / str(everything.id) / "README.md").read_text()


def test_a_pinned_spec_builds_the_same_stage2_after_later_reviews_and_fixes(app, db, settings, pool):
    people = {"r1": make_user(db, Role.reviewer), "r2": make_user(db, Role.reviewer)}
    _read(db, people["r1"], people["r2"], wrong={0: None, 1: None})
    task, _ = _approved(db, team(db), "VQA+stage1", instances=3)
    first = _version(db, settings, ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=50),
                     "first")
    pinned = ExportSpec.model_validate(first.spec)
    assert pinned.as_of is not None
    _read(db, people["r1"], people["r2"], wrong={0: "A fixed answer.", 1: None, 2: None})
    again = _version(db, settings, pinned, "again")
    assert _stage2(settings, again) == _stage2(settings, first) and len(_stage2(settings, first)) == 2
    card = (settings.data_dir / "exports" / str(again.id) / "README.md").read_text()
    assert "Review read 2 of the pool's 10 conversations" in card  # as review stood at the pin
    later = _version(db, settings, ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=50),
                     "later")
    assert len(_stage2(settings, later)) == 5


def test_specs_from_before_review_keep_their_digest():
    legacy = ExportSpec(task_ids=[1], conversation_pool_id=3, stage2_unreviewed=True)
    assert b"stage2_unreviewed" not in legacy.canonical() and b"as_of" not in legacy.canonical()
    assert b"stage2_unreviewed" not in ExportSpec(task_ids=[1]).canonical()  # no pool: nothing to draw
    assert legacy.digest() != ExportSpec(task_ids=[1], conversation_pool_id=3).digest()


def test_share_out_gives_each_group_its_proportion_and_never_more_than_it_has():
    from app.exports.sampling import share_out

    assert share_out(5, {"conversation": 6, "detail": 3, "complex_reasoning": 1}) == {
        "conversation": 3, "detail": 1, "complex_reasoning": 1}
    assert share_out(50, {"a": 6, "b": 3}) == {"a": 6, "b": 3}  # fewer than asked: all of them
    for size in range(0, 40):
        counts = {"a": 17, "b": 9, None: 2, "c": 1}
        shares = share_out(size, counts)
        assert sum(shares.values()) == min(size, 29) and all(shares[g] <= counts[g] for g in counts)


def test_a_stage2_drawn_by_kind_takes_each_kind_in_proportion_and_the_card_says_how(app, db, settings, pool):
    from sqlalchemy import update

    items = db.exec(select(ConversationItem).order_by(ConversationItem.position)).all()
    kinds = ["conversation"] * 6 + ["detail"] * 3 + ["complex_reasoning"]
    for item, kind in zip(items, kinds, strict=True):
        db.execute(update(ConversationItem).where(ConversationItem.id == item.id).values(kind=kind))
    db.commit()
    by_position = {item.position: kind for item, kind in zip(items, kinds, strict=True)}
    task, _ = _approved(db, team(db), "VQA+stage1", instances=3)
    spec = ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=5, stage2_unreviewed=True,
                      stage2_by_kind=True, seed=3)
    version = _version(db, settings, spec, "by-kind")
    drawn = [by_position[int(record["id"].rsplit("/", 1)[1])] for record in _stage2(settings, version)]
    assert sorted(drawn) == ["complex_reasoning", "conversation", "conversation", "conversation", "detail"]
    card = (settings.data_dir / "exports" / str(version.id) / "README.md").read_text()
    assert "drawn at random within each kind, in proportion to its share with seed 3" in card
    assert "By kind: complex reasoning 1, conversation 3, detail 1." in card
    assert spec.model_copy(update={"stage2_by_kind": False}).digest() == \
        ExportSpec(task_ids=[task.id], conversation_pool_id=pool.id, stage2_size=5, stage2_unreviewed=True,
                   seed=3).digest()
    at_random = _version(db, settings, spec.model_copy(update={"stage2_by_kind": False}), "at-random")
    assert len(_stage2(settings, at_random)) == 5
