"""What the API says of stage-2 conversation pools."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.models.types import RowIdValue


class PoolOut(BaseModel):
    id: int
    name: str
    source: str | None = Field(description="The file it was imported from.")
    conversations: int
    with_image: int
    versions: list[str] = Field(description="The versions whose stage 2 was drawn from it.")


class FindingOut(BaseModel):
    rule: str = Field(description="The pre-screen: refusal, too_long, duplicate, near_duplicate.")
    detail: str = Field(description="Why, in words: the phrase, the length, the conversation it repeats.")


class ConversationOut(BaseModel):
    position: int = Field(description="Its place in the pool's file: the key of its page.")
    source_id: str | None
    image: str | None = Field(description="The image's sha256 (GET /media/{sha256}), or null for text only.")
    conversations: list[dict[str, str]] = Field(description="LLaVA's turns: {from: human|gpt, value}.")
    findings: list[FindingOut]


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last.")


class PoolScoreIn(BaseModel):
    """A model to score a pool's answers with."""

    model_config = ConfigDict(extra="forbid")
    model_id: RowIdValue
    batch_size: int = Field(8, ge=1, le=256)
