"""What a model makes of each instance, for ranking by doubt: scores belong to a model and an instruction
version (the rendering they were computed on); scoring again replaces them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, json_field


class InstanceScore(SQLModel, table=True):
    __tablename__ = "instance_score"
    __table_args__ = (
        UniqueConstraint("instance_id", "model_id", "instruction_version_id"),
        # The doubt ranking of a task: its instances' losses under one model and version.
        Index("ix_instance_score_model_id_instruction_version_id_loss", "model_id", "instruction_version_id", "loss"),
    )

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id", ondelete="CASCADE")
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE", index=True)
    model_id: int = Field(foreign_key="registered_model.id", ondelete="CASCADE")
    instruction_version_id: int = Field(foreign_key="instruction_version.id", ondelete="CASCADE")
    job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    loss: float  # mean token loss of the rendered target given the rendered prompt and image
    greedy_matched: bool  # greedy decoding would give exactly the target (every target token the argmax)
    # Option tasks: the probability of each option's rendered answer (normalised over the options), in the
    # instance's option order, and the target's margin over the best other option.
    option_probabilities: list[float] | None = json_field()
    margin: float | None = None
    created_at: datetime = created_at_field()


class ConversationScore(SQLModel, table=True):
    """What a model makes of each answer of a stage-2 conversation: the mean token loss of every gpt turn given the
    image and the turns before it, so that a pool is read least likely answers first. Scoring again with the same
    model replaces them."""

    __tablename__ = "conversation_score"
    __table_args__ = (
        UniqueConstraint("conversation_id", "model_id"),
        Index("ix_conversation_score_pool_id_model_id_worst_loss", "pool_id", "model_id", "worst_loss"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation_item.id", ondelete="CASCADE")
    pool_id: int = Field(foreign_key="conversation_pool.id", ondelete="CASCADE")
    model_id: int = Field(foreign_key="registered_model.id", ondelete="CASCADE")
    job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    turn_losses: list[float | None] = json_field(nullable=False, default_factory=list)  # per gpt turn, in order;
    # None for an answer cut off by the trainer's length
    worst_loss: float  # the least likely answer's loss: the pool's order
    worst_turn: int  # that answer's index in the conversation
    created_at: datetime = created_at_field()
