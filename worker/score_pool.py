"""The `score_pool` job: a model's loss on every answer of a stage-2 pool's conversations.

Each conversation is encoded as training encodes it (worker/training/encoding: every human turn masked, every gpt
turn scored, the image with the first), teacher-forced once, and each answer's mean token loss kept: the answer a
model that sees the image finds least likely is where a reader looks first. Scores are written per chunk,
replacing any earlier ones by the same model."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.core.storage import open_media
from app.schemas.jobs import ScorePoolPayload
from app.services import pool_scores
from app.services import registered_models as model_service
from app.services.conversation_reviews import gpt_turns
from worker.context import JobContext
from worker.preview import open_rgb
from worker.score import encoded_row, load_for_scoring, teacher_forced
from worker.training.encoding import style_of

CHUNK = 256
IGNORE = -100


def answer_spans(labels: list[int]) -> list[tuple[int, int]]:
    """Where each answer's scored tokens are: the runs of labels that are not IGNORE, in order."""
    spans, start = [], None
    for index, label in enumerate([*labels, IGNORE]):
        if label != IGNORE and start is None:
            start = index
        elif label == IGNORE and start is not None:
            spans.append((start, index))
            start = None
    return spans


def turn_losses(loaded, conversations: list[tuple[list[dict], Any]], *, max_length: int = 2048
                ) -> list[list[float | None]]:
    """Per conversation (turns, PIL image or None; all of one modality), each gpt turn's mean token loss; None for
    an answer the length cut off."""
    style = style_of(loaded.processor)
    rows = [encoded_row(loaded, turns, image, max_length=max_length, style=style) for turns, image in conversations]
    picked = teacher_forced(loaded, rows).log_probabilities  # position t - 1 predicts token t
    results = []
    for index, ((turns, _), row) in enumerate(zip(conversations, rows, strict=True)):
        answers = len(gpt_turns(turns))
        losses: list[float | None] = [-float(picked[index, start - 1:end - 1].mean())
                                      for start, end in answer_spans(list(row["labels"]))]
        results.append((losses + [None] * answers)[:answers])
    return results


def run_score_pool(settings: Settings, context: JobContext, payload: ScorePoolPayload) -> dict[str, Any]:
    media, started = open_media(settings.media_location), time.perf_counter()
    with Session(context.engine) as session:
        registered = model_service.get(session, model_id=payload.model_id)
        total = pool_scores.conversation_count(session, pool_id=payload.pool_id)
    context.progress(0.01, f"loading {registered.name}", force=True)
    loaded = load_for_scoring(registered)
    scored = skipped = 0
    after = -1
    while True:
        with Session(context.engine) as session:
            chunk = pool_scores.conversations_after(session, pool_id=payload.pool_id, after=after, limit=CHUNK)
        if not chunk:
            break
        after = chunk[-1][0].position
        rows = []
        for with_image in (True, False):  # one modality per forward pass
            group = sorted(((item, image) for item, image in chunk if (image is not None) == with_image),
                           key=lambda pair: len(str(pair[0].conversations)))  # less padding a batch
            for start in range(0, len(group), payload.batch_size):
                part = group[start:start + payload.batch_size]
                inputs = [(item.conversations, open_rgb(media.open(image.sha256)) if image else None)
                          for item, image in part]
                for (item, _), losses in zip(part, turn_losses(loaded, inputs), strict=True):
                    known = [(loss, index) for index, loss in zip(gpt_turns(item.conversations), losses, strict=True)
                             if loss is not None]
                    if not known:
                        skipped += 1
                        continue
                    worst_loss, worst_turn = max(known)
                    rows.append({"conversation_id": item.id, "turn_losses": losses, "worst_loss": worst_loss,
                                 "worst_turn": worst_turn})
        pool_scores.store(context.engine, pool_id=payload.pool_id, model_id=registered.id, job_id=context.job_id,
                          rows=rows)
        scored += len(rows)
        context.progress(min(0.99, (scored + skipped) / max(total, 1)),
                         f"{scored + skipped:,} of {total:,} conversations")
    return {"scored": scored, "skipped": skipped, "seconds": round(time.perf_counter() - started, 2),
            "model": registered.name}

