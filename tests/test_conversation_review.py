"""Reviewing stage 2: every conversation waits for one review, handed out in the pool's seeded order; a verdict on
each answer; a wrong answer fixed (or its exchange dropped) as a revision a second reviewer accepts; and the pool's
error rate from what was read."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.core.failures import Conflict, Forbidden, Invalid
from app.models import ConversationItem, ConversationPool, ConversationReview, Revision, Role
from app.schemas.revisions import RevisionDecisionIn
from app.schemas.stage2 import ConversationVerdictsIn
from app.services import conversation_reviews, corrections, queues
from tests.factories import bearer, make_user, soup
from tests.review_helpers import signed_in
from tests.test_pools import _conversation, _pool

LEASE = 600


@pytest.fixture
def pool(app, db, settings, tmp_path) -> ConversationPool:
    _pool(app, settings, tmp_path, [_conversation(k, image=k % 2 == 0, exchanges=1 + k % 3) for k in range(12)])
    return db.exec(select(ConversationPool)).one()


@pytest.fixture
def people(db):
    return {"r1": make_user(db, Role.reviewer), "r2": make_user(db, Role.reviewer)}


def _claim(db, user) -> ConversationReview:
    review_id = queues.next_item(db, queue=queues.CONVERSATIONS, user=user, lease_s=LEASE)
    assert review_id is not None
    return db.get(ConversationReview, review_id, populate_existing=True)


def _verdicts(db, review, **by_turn) -> ConversationVerdictsIn:
    """Every answer correct, except the turns given (turn index -> the judgement's fields)."""
    turns = db.get(ConversationItem, review.conversation_id).conversations
    return ConversationVerdictsIn(lock_version=review.lock_version, turns=[
        {"turn": k, "verdict": "correct", **by_turn.get(f"t{k}", {})} for k in conversation_reviews.gpt_turns(turns)])


def test_every_imported_conversation_waits_once_and_the_queue_follows_the_pools_seeded_order(app, db, settings,
                                                                                             tmp_path, pool, people):
    reviews = db.exec(select(ConversationReview).order_by(ConversationReview.rkey, ConversationReview.id)).all()
    items = {item.id: item for item in db.exec(select(ConversationItem))}
    assert len(reviews) == 12 and {r.conversation_id for r in reviews} == set(items)
    assert all(r.rkey == items[r.conversation_id].rkey and not r.decided for r in reviews)
    _pool(app, settings, tmp_path, [_conversation(k, image=k % 2 == 0, exchanges=1 + k % 3) for k in range(14)])
    assert len(db.exec(select(ConversationReview)).all()) == 14  # a rerun adds the two new ones, nothing twice
    first = _claim(db, people["r1"])
    assert first.id == min(db.exec(select(ConversationReview)), key=lambda r: (r.rkey, r.id)).id
    assert _claim(db, people["r1"]).id == first.id  # opening the queue again gives back what you hold
    assert _claim(db, people["r2"]).id != first.id


def test_a_wrong_answer_fixed_by_one_reviewer_changes_the_conversation_once_a_second_accepts(db, pool, people):
    review = _claim(db, people["r1"])
    conversation = db.get(ConversationItem, review.conversation_id)
    before = [dict(turn) for turn in conversation.conversations]
    decided = conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=_verdicts(
        db, review, t1={"verdict": "hallucinated_object", "text": "A red bus.", "note": "no dog in the picture"}))
    assert decided.decided and decided.outcome == "flagged" and decided.revision_id is not None
    assert decided.verdicts[0] == {"turn": 1, "verdict": "hallucinated_object", "note": "no dog in the picture"}
    db.refresh(conversation)
    assert conversation.conversations == before  # nothing changes before a second person accepts
    revision = db.get(Revision, decided.revision_id)
    assert revision.record_kind == "conversation" and revision.origin == "conversation_review"
    assert revision.changes["conversations"]["after"][1] == {"from": "gpt", "value": "A red bus."}
    assert revision.reason == "Review: turn 2 hallucinated object."
    with pytest.raises(Forbidden):  # nobody accepts their own fix
        corrections.decide(db, revision_id=revision.id, user_id=people["r1"].id,
                           data=RevisionDecisionIn(decision="accept", lock_version=revision.lock_version))
    held = queues.next_item(db, queue=queues.CORRECTIONS, user=people["r2"], lease_s=LEASE)
    assert held == revision.id
    item = queues.CORRECTIONS.load(db, item_id=held, user_id=people["r2"].id)
    assert item.task is None and item.context.verdicts[0]["verdict"] == "hallucinated_object"
    accepted = corrections.decide(db, revision_id=revision.id, user_id=people["r2"].id,
                                  data=RevisionDecisionIn(decision="accept", lock_version=item.item.lock_version))
    assert accepted.status == "accepted"
    db.refresh(conversation)
    assert conversation.conversations[1]["value"] == "A red bus." and conversation.lock_version == 2
    assert db.get(ConversationReview, review.id, populate_existing=True).outcome == "fixed"


def test_dropping_the_first_exchange_keeps_the_image_token_in_the_first_question(db, pool, people):
    review = _claim(db, people["r1"])
    while len(db.get(ConversationItem, review.conversation_id).conversations) < 4 or \
            db.get(ConversationItem, review.conversation_id).image_id is None:
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=_verdicts(db, review))
        review = _claim(db, people["r1"])
    decided = conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id,
                                          data=_verdicts(db, review, t1={"verdict": "refusal", "drop": True}))
    after = db.get(Revision, decided.revision_id).changes["conversations"]["after"]
    assert after[0] == {"from": "human", "value": "<image>\nMore?"} and len(after) % 2 == 0


@pytest.mark.parametrize(("change", "words"), [
    ({"t1": {"verdict": "correct", "text": "Changed."}}, "turn 2 is changed but judged correct"),
    ({"t0": {"verdict": "correct"}}, "turn 1 not an answer of this conversation"),
    ({"t1": {"verdict": "wrong", "text": "<image> twice"}}, "not one a trainer can use"),
    ({"t1": {"verdict": "wrong", "drop": True}, "t3": {"verdict": "wrong", "drop": True},
      "t5": {"verdict": "wrong", "drop": True}}, "Every exchange would be dropped"),
])
def test_verdicts_that_cannot_be_recorded_are_refused_with_the_turn_named_and_nothing_written(db, pool, people,
                                                                                              change, words):
    review = _claim(db, people["r1"])
    while len(db.get(ConversationItem, review.conversation_id).conversations) != 6 or \
            db.get(ConversationItem, review.conversation_id).image_id is None:
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=_verdicts(db, review))
        review = _claim(db, people["r1"])
    data = _verdicts(db, review, **change)
    if "t0" in change:
        data.turns.append(data.turns[0].model_copy(update={"turn": 0}))
    with pytest.raises(Invalid) as refused:
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=data)
    assert words in str(refused.value)
    assert not db.get(ConversationReview, review.id, populate_existing=True).decided
    assert db.exec(select(Revision)).first() is None


def test_a_missing_verdict_and_a_stale_page_are_refused(db, pool, people):
    review = _claim(db, people["r1"])
    data = _verdicts(db, review)
    unanswered = data.model_copy(update={"turns": [*data.turns[1:], data.turns[0].model_copy(update={"turn": 99})]})
    with pytest.raises(Invalid, match=f"turn {data.turns[0].turn + 1} needs a verdict"):
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=unanswered)
    with pytest.raises(Conflict):
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id,
                                    data=data.model_copy(update={"lock_version": review.lock_version - 1}))
    with pytest.raises(Conflict):  # not theirs
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r2"].id, data=data)
    assert not db.get(ConversationReview, review.id, populate_existing=True).decided


def test_a_pools_error_rate_is_an_interval_from_what_was_read_and_exact_once_all_were(db, pool, people):
    quality = conversation_reviews.pool_quality(db, pool_ids=[pool.id])[pool.id]
    assert (quality.conversations, quality.read, quality.error_rate) == (12, 0, None)
    for k in range(12):
        review = _claim(db, people["r1"])
        wrong = {"t1": {"verdict": "wrong_count"}} if k in (0, 5, 7) else {}
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id,
                                    data=_verdicts(db, review, **wrong))
        if k == 7:
            quality = conversation_reviews.pool_quality(db, pool_ids=[pool.id])[pool.id]
            assert (quality.read, quality.wrong, quality.exact) == (8, 3, False)
            assert quality.error_rate.low < 3 / 8 < quality.error_rate.high
    quality = conversation_reviews.pool_quality(db, pool_ids=[pool.id])[pool.id]
    assert quality.exact and quality.error_rate.low == quality.error_rate.high == 3 / 12
    assert queues.next_item(db, queue=queues.CONVERSATIONS, user=people["r1"], lease_s=LEASE) is None


def test_the_review_page_records_verdicts_and_a_fix_from_its_form(app, db, pool, people):
    client, csrf = signed_in(app, people["r1"])
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    page = soup(client.post("/review/conversations/next", headers=headers))
    item = page.select_one("#item")
    answers = [int(li["data-turn"]) for li in page.select("#turns li.turn-gpt")]
    assert answers and page.select_one("[data-key=c]") is not None
    form = {"lock_version": item["data-lock-version"], "note": "the bus is red",
            **{f"verdict-{k}": "correct" for k in answers}}
    form[f"verdict-{answers[0]}"] = "hallucinated_attribute"
    form[f"text-{answers[0]}"] = "It is a red bus.\r\nIt waits."
    answered = soup(client.post(f"/review/conversations/{item['data-item-id']}", data=form, headers=headers))
    assert "1 answer wrong" in answered.select_one("#queue-message").text
    assert "second reviewer" in answered.select_one("#queue-message").text
    review = db.get(ConversationReview, int(item["data-item-id"]))
    revision = db.get(Revision, review.revision_id)
    assert revision.reason == "the bus is red"
    assert revision.changes["conversations"]["after"][answers[0]]["value"] == "It is a red bus.\nIt waits."
    following = answered.select_one("#item")
    everything = soup(client.post(f"/review/conversations/{following['data-item-id']}", headers=headers, data={
        "lock_version": following["data-lock-version"], "all": "correct",
        **{f"verdict-{li['data-turn']}": "wrong" for li in answered.select("#turns li.turn-gpt")}}))
    assert "every answer is correct" in everything.select_one("#queue-message").text
    assert db.get(ConversationReview, int(following["data-item-id"])).outcome == "correct"
    bad = client.post(f"/review/conversations/{everything.select_one('#item')['data-item-id']}", headers=headers,
                      data={"lock_version": everything.select_one("#item")["data-lock-version"]})
    assert bad.status_code == 422 and "verdict" in bad.text


def test_the_api_hands_out_a_conversation_and_takes_its_verdicts(app, db, pool, people):
    client, _ = signed_in(app, people["r1"])
    reviewer = bearer(db, people["r1"])
    item = client.post("/api/v1/review/conversations/next", headers=reviewer).json()
    assert item["queue"] == "conversations" and item["task_id"] is None and item["conversation"][0]["from"] == "human"
    answers = [k for k, turn in enumerate(item["conversation"]) if turn["from"] == "gpt"]
    decided = client.post(f"/api/v1/review/conversations/{item['id']}/decision", headers=reviewer, json={
        "lock_version": item["lock_version"],
        "turns": [{"turn": answers[0], "verdict": "wrong", "text": "Fixed."},
                  *({"turn": k, "verdict": "correct"} for k in answers[1:])]})
    assert decided.status_code == 200, decided.text
    assert decided.json()["outcome"] == "flagged" and decided.json()["revision_id"] is not None
    other = bearer(db, people["r2"])
    fix = client.post("/api/v1/review/corrections/next", headers=other).json()
    assert fix["conversation_id"] == item["conversation_id"] and fix["task_id"] is None
    assert fix["changes"]["conversations"]["after"][answers[0]]["value"] == "Fixed."


def test_the_pool_pages_say_what_review_found(app, db, pool, people):
    wrong_position = None
    for k in range(3):
        review = _claim(db, people["r1"])
        wrong = {"t1": {"verdict": "hallucinated_relation", "note": "the cup is not on the table"}} if k == 1 else {}
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id,
                                    data=_verdicts(db, review, **wrong))
        if k == 1:
            wrong_position = db.get(ConversationItem, review.conversation_id).position
    client, _ = signed_in(app, people["r2"])
    row = soup(client.get("/pools")).select_one(f"#pools tr[data-pool-id='{pool.id}']")
    assert row.select_one("[data-field=read]").text == "3"
    assert row.select_one("[data-field=error_rate]").text == "33.3%" and "from 3 read" in row.text
    detail = soup(client.get(f"/pools/{pool.id}"))
    assert "Read 3 of 12" in " ".join(detail.select_one("#pool-review").text.split())
    flagged = soup(client.get(f"/pools/{pool.id}", params={"review": "flagged"}, headers={"HX-Request": "true"}))
    assert [int(tr["data-position"]) for tr in flagged.select("#conversations tbody tr")] == [wrong_position]
    unread = soup(client.get(f"/pools/{pool.id}", params={"review": "unread"}, headers={"HX-Request": "true"}))
    assert len(unread.select("#conversations tbody tr")) == 9
    page = soup(client.get(f"/pools/{pool.id}/conversations/{wrong_position}"))
    assert "hallucinated relation" in page.select_one("#conversation-review").text
    assert "the cup is not on the table" in page.select_one("#conversation-review").text


def test_the_corrections_queue_shows_a_conversation_fix_turn_beside_turn_and_takes_its_decision(app, db, pool,
                                                                                                 people):
    review = _claim(db, people["r1"])
    while len(db.get(ConversationItem, review.conversation_id).conversations) != 6:
        conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=_verdicts(db, review))
        review = _claim(db, people["r1"])
    conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=_verdicts(
        db, review, t3={"verdict": "refusal", "drop": True, "note": "it declines"},
        t5={"verdict": "wrong", "text": "Two cups."}))
    client, csrf = signed_in(app, people["r2"])
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
    page = soup(client.post("/review/corrections/next", headers=headers))
    rows = page.select("#fix-changes tbody tr")
    assert [row.get("class") == ["changed"] for row in rows] == [False, False, True, True, False, True]
    assert [row.select("td")[2].text.strip() for row in rows][2:4] == ["dropped", "dropped"]  # not shifted
    assert "Two cups." in rows[5].select("td")[2].text and "refusal" in page.select_one("#fix-verdicts").text
    item = page.select_one("#item")
    decided = soup(client.post(f"/review/corrections/{item['data-item-id']}", headers=headers,
                               data={"decision": "accept", "lock_version": item["data-lock-version"]}))
    assert "the conversation now has the fixed values" in decided.select_one("#queue-message").text
    after = db.get(ConversationItem, review.conversation_id, populate_existing=True).conversations
    assert len(after) == 4 and after[3]["value"] == "Two cups."


def _second_decides(db, reviewer, revision_id: int, decision: str, comment: str | None = None) -> None:
    """The second reviewer takes the fix from the corrections queue and decides it."""
    held = queues.next_item(db, queue=queues.CORRECTIONS, user=reviewer, lease_s=LEASE)
    assert held == revision_id
    revision = db.get(Revision, held, populate_existing=True)
    corrections.decide(db, revision_id=held, user_id=reviewer.id, data=RevisionDecisionIn(
        decision=decision, lock_version=revision.lock_version, comment=comment))


def test_a_rejected_fix_is_followed_by_a_new_one_from_the_conversations_page(app, db, pool, people):
    review = _claim(db, people["r1"])
    conversation = db.get(ConversationItem, review.conversation_id)
    decided = conversation_reviews.decide(db, review_id=review.id, user_id=people["r1"].id, data=_verdicts(
        db, review, t1={"verdict": "wrong_count", "text": "Three buses."}))
    _second_decides(db, people["r2"], decided.revision_id, "reject", comment="there are two")
    first = db.get(Revision, decided.revision_id, populate_existing=True)
    assert first.status == "rejected"
    client, csrf = signed_in(app, people["r1"])
    page_url = f"/pools/{pool.id}/conversations/{conversation.position}"
    form = soup(client.get(page_url)).select_one("#propose-fix form")
    assert form is not None and form.select_one("textarea[name=text-1]").text == conversation.conversations[1]["value"]
    fields = {"csrf_token": csrf, "lock_version": conversation.lock_version, "text-1": "Two buses."}
    refused = client.post(f"{page_url}/fix", data=fields)  # a fix says why
    assert refused.status_code == 422 and soup(refused).select_one("#note-error") is not None
    proposed = client.post(f"{page_url}/fix", data={**fields, "note": "two buses, as the reviewer said"})
    assert proposed.status_code == 303
    shown = soup(client.get(proposed.headers["location"]))
    assert "waits for a second person" in shown.select_one("#fix-notice").text
    assert shown.select_one("#propose-fix") is None and shown.select_one("#fix-waiting") is not None
    review = db.get(ConversationReview, review.id, populate_existing=True)
    second = db.get(Revision, review.revision_id)  # the review now waits on the new fix
    assert second.id != first.id and second.status == "proposed" and second.author_id == people["r1"].id
    assert client.post(f"{page_url}/fix", data={**fields, "note": "again"}).status_code == 409  # one waits already
    _second_decides(db, people["r2"], second.id, "accept")
    assert db.get(ConversationReview, review.id, populate_existing=True).outcome == "fixed"
    assert db.get(ConversationItem, conversation.id, populate_existing=True).conversations[1]["value"] == "Two buses."
    # A conversation that is fixed (or read correct, or unread) takes no fix here.
    gone = client.post(f"{page_url}/fix", data={**fields, "lock_version": 2, "note": "more"})
    assert gone.status_code == 409 and "fixed" in soup(gone).select_one(".form-message").text
