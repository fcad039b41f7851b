"""A model's loss on every answer of a stage-2 pool (the `score_pool` job, on the tiny model): one loss per answer,
the same as the task scorer's for a one-exchange conversation, and the pool read least likely answer first."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.models import ConversationItem, ConversationPool, ConversationScore, Job, Role
from app.services import pools as pool_service
from app.services import registered_models
from tests.factories import make_user, soup
from tests.review_helpers import signed_in
from tests.test_pools import _conversation, _pool

torch = pytest.importorskip("torch", reason="the worker's dependencies (requirements-worker.txt) are not installed")


def test_answer_spans_are_the_runs_of_scored_labels():
    from worker.score_pool import answer_spans

    assert answer_spans([-100, -100, 5, 6, -100, 7, -100, -100, 8]) == [(2, 4), (5, 6), (8, 9)]
    assert answer_spans([-100, -100]) == []


def test_a_scored_pool_keeps_a_loss_per_answer_and_reads_least_likely_first(app, db, settings, tmp_path, tiny_model):
    from worker.__main__ import Worker

    _pool(app, settings, tmp_path, [_conversation(k, image=k % 2 == 0, exchanges=1 + k % 3) for k in range(7)])
    pool = db.exec(select(ConversationPool)).one()
    author = make_user(db, Role.author)
    model = registered_models.register(db, name="tiny", path=str(tiny_model), device="cpu", actor_id=author.id)
    client, csrf = signed_in(app, author)
    page = soup(client.get(f"/pools/{pool.id}"))
    assert page.select_one("#read-doubtful") is None and page.select_one("#pool-score-form") is not None
    started = client.post(f"/pools/{pool.id}/scores", data={"csrf_token": csrf, "model_id": model.id})
    assert started.status_code == 303
    assert Worker(settings).run_once() is True
    job = db.get(Job, int(started.headers["location"].rsplit("/", 1)[1]))
    assert job.status == "succeeded" and job.result["scored"] == 7, job.error
    items = {item.id: item for item in db.exec(select(ConversationItem))}
    scores = db.exec(select(ConversationScore)).all()
    for score in scores:
        turns = items[score.conversation_id].conversations
        assert len(score.turn_losses) == len(turns) // 2 and all(loss > 0 for loss in score.turn_losses)
        assert score.worst_loss == max(score.turn_losses)
        assert turns[score.worst_turn]["from"] == "gpt"

    # A one-exchange conversation's loss is the task scorer's for the same prompt and answer (another code path).
    from worker.loading import load
    from worker.score import Question, score

    one = next(item for item in items.values() if len(item.conversations) == 2 and item.image_id is None)
    loaded = load(str(tiny_model), "float32", "cpu")
    expected = score(loaded, [Question(one.conversations[0]["value"], one.conversations[1]["value"], None, None)])
    stored = next(s for s in scores if s.conversation_id == one.id)
    assert stored.turn_losses[0] == pytest.approx(expected[0].loss, rel=1e-4)

    # The pool's page reads the least likely answer first, page by page.
    doubtful = pool_service.page(db, pool_id=pool.id, filters=pool_service.PoolFilters(order="doubt"), size=3,
                                 scored_by=model.id)
    following = pool_service.page(db, pool_id=pool.id, filters=pool_service.PoolFilters(order="doubt"), size=3,
                                  after=doubtful.next_after, scored_by=model.id)
    losses = [row.score.worst_loss for row in doubtful.rows + following.rows]
    assert doubtful.next_after == 3 and losses == sorted(losses, reverse=True) and len(losses) == 6
    shown = soup(client.get(f"/pools/{pool.id}?order=doubt"))
    cells = [float(cell.select_one("span").text) for cell in shown.select("#conversations [data-field=doubt]")]
    assert cells == sorted(cells, reverse=True) and len(cells) == 7
    assert "tiny" in shown.select_one("#pool-doubt").text
    # Scoring again replaces the scores.
    client.post(f"/pools/{pool.id}/scores", data={"csrf_token": csrf, "model_id": model.id})
    assert Worker(settings).run_once() is True
    assert len(db.exec(select(ConversationScore)).all()) == 7
