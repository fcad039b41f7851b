"""A model's loss on every answer of a stage-2 pool: the least likely answers are where a reader looks first (a
hallucinated object or a wrong count is unlikely to a model that sees the image). Scores belong to a model;
scoring the pool again with it replaces them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert
from sqlmodel import Session, col, select

from app.models import ConversationItem, ConversationScore, Image, Job, RegisteredModel, utcnow
from app.schemas.jobs import ScorePoolPayload
from app.services import jobs
from app.services import registered_models as model_service
from app.services.pools import get_pool


def start(session: Session, *, pool_id: int, model_id: int, batch_size: int, actor_id: int | None) -> Job:
    """Queues a `score_pool` job: every conversation of the pool under the model."""
    get_pool(session, pool_id=pool_id)
    model = model_service.get(session, model_id=model_id)
    return jobs.enqueue(session, ScorePoolPayload(pool_id=pool_id, model_id=model.id, batch_size=batch_size),
                        created_by_id=actor_id)


def conversations_after(session: Session, *, pool_id: int, after: int, limit: int
                        ) -> list[tuple[ConversationItem, Image | None]]:
    """The pool's next `limit` conversations in file order, with their images (a score job walks them)."""
    return list(session.exec(select(ConversationItem, Image).outerjoin(Image, Image.id == ConversationItem.image_id)
                             .where(ConversationItem.pool_id == pool_id, ConversationItem.position > after)
                             .order_by(ConversationItem.position).limit(limit)))


def conversation_count(session: Session, *, pool_id: int) -> int:
    return session.exec(select(func.count()).where(ConversationItem.pool_id == pool_id)).one()


def store(engine: Engine, *, pool_id: int, model_id: int, job_id: int | None, rows: list[dict]) -> None:
    """A chunk's scores ({conversation_id, turn_losses, worst_loss, worst_turn}), in place of earlier ones by the
    same model."""
    if not rows:
        return
    with engine.begin() as connection:
        connection.execute(delete(ConversationScore).where(
            ConversationScore.conversation_id.in_([row["conversation_id"] for row in rows]),
            ConversationScore.model_id == model_id))
        connection.execute(insert(ConversationScore), [
            {"pool_id": pool_id, "model_id": model_id, "job_id": job_id, "created_at": utcnow(), **row}
            for row in rows])


@dataclass(frozen=True)
class PoolScores:
    model_id: int
    model: str
    scored: int


def newest(session: Session, *, pool_id: int) -> PoolScores | None:
    """The model whose scores of the pool are the newest (the pool's order by doubt follows it)."""
    newest_id = func.max(ConversationScore.id)
    row = session.exec(select(ConversationScore.model_id, RegisteredModel.name, func.count(), newest_id)
                       .join(RegisteredModel, RegisteredModel.id == ConversationScore.model_id)
                       .where(ConversationScore.pool_id == pool_id)
                       .group_by(ConversationScore.model_id, RegisteredModel.name)
                       .order_by(newest_id.desc()).limit(1)).first()
    return None if row is None else PoolScores(row[0], row[1], row[2])


def of(session: Session, *, conversation_ids: list[int], model_id: int) -> dict[int, ConversationScore]:
    """The model's scores of these conversations, by conversation."""
    if not conversation_ids:
        return {}
    return {score.conversation_id: score for score in session.exec(select(ConversationScore).where(
        col(ConversationScore.conversation_id).in_(conversation_ids), ConversationScore.model_id == model_id))}
