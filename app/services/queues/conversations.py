"""The conversation queue: a stage-2 conversation beside its image, for a verdict on each answer (gpt turn), with
the pre-screens' findings on it as hints. Conversations come in the pools' seeded order, so what is read of a pool
is a sample of it; no running error count on screen (it would nudge the next verdicts)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, func, select
from sqlmodel import Session

from app.models import ConversationItem, ConversationPool, ConversationReview, Image, TurnVerdict
from app.qc import prescreen
from app.qc.prescreen import Finding
from app.services import conversation_reviews
from app.services.pools import BUDGET
from app.services.queues.base import Holding, ReviewItem, ReviewQueue

VERDICTS = tuple(TurnVerdict)


@dataclass(frozen=True)
class ConversationContext:
    conversation: ConversationItem
    pool: ConversationPool
    image: Image | None
    findings: list[Finding]  # what the pre-screens that need no other conversation say of this one
    verdicts: tuple[TurnVerdict, ...]


class ConversationReviews(ReviewQueue):
    name, title, table, template = "conversations", "Conversations", ConversationReview, "review/_conversation.html"

    def held_by(self):
        return conversation_reviews.held_by()

    def sources(self, user):
        return [(conversation_reviews.queue_candidates(), ConversationReview.reviewer_id)]

    def undecided(self):
        return select(func.count()).select_from(ConversationReview).where(ConversationReview.decided == false())

    def holder(self, item, user_id):
        return ConversationReview.reviewer_id if item.reviewer_id == user_id and not item.decided else None

    def holdings(self):
        return [Holding(ConversationReview.reviewer_id, ConversationReview.decided == false(), {"reviewer_id": None})]

    def context(self, session: Session, item: ConversationReview, user_id: int):
        conversation, pool, image = session.execute(
            conversation_reviews.conversation_rows(), {"conversation_id": item.conversation_id},
            execution_options={"populate_existing": True}).one()
        found = prescreen.screen([(conversation.position, conversation.conversations, conversation.image_id,
                                   prescreen.source_of(conversation.origin))], budget=BUDGET)
        return None, ConversationContext(conversation=conversation, pool=pool, image=image,
                                         findings=found.get(conversation.position, []), verdicts=VERDICTS)

    def api_fields(self, item: ReviewItem[ConversationContext]):
        c = item.context
        return {"pool_id": c.pool.id, "conversation_id": c.conversation.id,
                "conversation_lock_version": c.conversation.lock_version, "conversation": c.conversation.conversations,
                "image_url": f"/media/{c.image.sha256}" if c.image else None}

