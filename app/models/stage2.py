"""Reading stage 2: each conversation of a pool is reviewed once, a verdict per gpt turn.

A conversation's review row is written with the conversation (import, or a synthesis job), and the queue hands
them out in the pool's seeded random order (`rkey`): whatever number of them have been read is a uniform sample of
the pool, so its error rate has an honest interval after the first dozens and is exact once every one was read."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, json_field, one_of, optional_time_field


class ConversationKind(StrEnum):
    """LLaVA-Instruct's three kinds, one file each: what a conversation is for, and what a prompt writes."""

    conversation = "conversation"  # several questions and answers about what the image shows
    detail = "detail"  # one request for a detailed description
    complex_reasoning = "complex_reasoning"  # one question whose answer reasons beyond what is visible


class TurnVerdict(StrEnum):
    """What a reviewer says of one gpt turn (HalluciDoctor's three kinds of hallucination, and counts)."""

    correct = "correct"
    hallucinated_object = "hallucinated_object"  # names something the image does not show
    hallucinated_attribute = "hallucinated_attribute"  # a colour, size, material... the thing does not have
    hallucinated_relation = "hallucinated_relation"  # a position or interaction that is not there
    wrong_count = "wrong_count"
    wrong = "wrong"  # wrong for another reason (reasoning, facts)
    refusal = "refusal"  # declines, or apologises instead of answering
    formatting = "formatting"  # the answer's form: a broken list, a stray marker, the wrong language...


class ConversationOutcome(StrEnum):
    correct = "correct"  # every gpt turn judged correct
    flagged = "flagged"  # a turn was wrong, and no fix of it is accepted (yet)
    fixed = "fixed"  # a turn was wrong, and the reviewer's fix was accepted by a second person


class ConversationReview(SQLModel, table=True):
    __tablename__ = "conversation_review"
    __table_args__ = (
        Index("ix_conversation_review_decided_rkey_id", "decided", "rkey", "id"),  # the queue, in the pools' order
        Index("ix_conversation_review_reviewer_id_decided", "reviewer_id", "decided"),  # what a reviewer holds
        Index("ix_conversation_review_pool_id_outcome", "pool_id", "outcome"),  # a pool's counts
        one_of("outcome", ConversationOutcome),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation_item.id", ondelete="CASCADE", unique=True)
    pool_id: int = Field(foreign_key="conversation_pool.id", ondelete="CASCADE")
    rkey: int  # the conversation's: the queue's order
    decided: bool = False
    reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    lease_expires_at: datetime | None = optional_time_field()
    lock_version: int = Field(default=1)
    # [{"turn": index in the conversation, "verdict": TurnVerdict, "note": str | None}], one per gpt turn
    verdicts: list[dict[str, Any]] | None = json_field()
    outcome: str | None = Field(default=None, max_length=20)
    decided_at: datetime | None = optional_time_field()
    conversation_lock_version: int | None = None  # the conversation as it was read
    revision_id: int | None = None  # the fix the reviewer proposed with the verdicts


class PromptStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    rejected = "rejected"


class SynthesisPrompt(SQLModel, table=True):
    """The instructions a generator is given to write one kind of conversation, versioned and reviewed like a
    task's instruction: a draft is used by no job until someone other than its author approves it. Version 1 of
    each kind ships with the studio (no author) and is approved as shipped."""

    __tablename__ = "synthesis_prompt"
    __table_args__ = (
        UniqueConstraint("kind", "version"),
        one_of("kind", ConversationKind),
        one_of("status", PromptStatus),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    version: int
    text: str = Field(sa_type=Text)
    status: str = Field(default=PromptStatus.draft, max_length=20)
    author_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    review_note: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at_field()
    decided_at: datetime | None = optional_time_field()
