"""Shapes of a conversation's review: a verdict on each gpt turn, with a fixed text or the exchange dropped where
the answer is wrong (the review page's form and the API validate through `ConversationVerdictsIn`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core import limits
from app.models.stage2 import TurnVerdict
from app.models.types import LockVersion
from app.schemas.revisions import RecordText


class TurnJudgementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=0, le=10_000, description="The gpt turn's index in the conversation (0 is the first turn).")
    verdict: TurnVerdict
    note: str | None = Field(None, max_length=limits.NOTE, description="What is wrong, in words.")
    text: RecordText | None = Field(None, description="The answer as it should read (a fix; only for a turn judged "
                                    "wrong). Left out: unchanged.")
    drop: bool = Field(False, description="Drop this exchange (the question and this answer) from the conversation.")


class ConversationVerdictsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lock_version: LockVersion
    turns: list[TurnJudgementIn] = Field(min_length=1, max_length=500)
    note: str | None = Field(None, max_length=limits.NOTE, description="Why the fix (kept as the revision's reason).")
