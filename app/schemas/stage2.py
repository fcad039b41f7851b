"""Shapes of a conversation's review: a verdict on each gpt turn, with a fixed text or the exchange dropped where
the answer is wrong (the review page's form and the API validate through `ConversationVerdictsIn`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core import limits
from app.models.stage2 import ConversationKind, TurnVerdict
from app.models.types import LockVersion, RowIdValue
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


class Sampling(BaseModel):
    """How a generator samples: recorded with every conversation it writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=16, le=16_384, description="Most tokens one reply may have.")


class SynthesizeIn(BaseModel):
    """A synthesis as asked for: what to write about, with which prompt, by which generator, within which caps."""

    model_config = ConfigDict(extra="forbid")

    pool: str = Field(min_length=1, max_length=120, description="The synthesized pool to add to (made if missing).")
    task_id: RowIdValue = Field(description="Whose instances the conversations are about (a seeded draw).")
    conversation_kind: ConversationKind = Field(ConversationKind.conversation, description="What to write: "
                                                "LLaVA-Instruct's three kinds.")
    prompt_id: RowIdValue | None = Field(None, description="A version of the kind's prompt; default: the newest "
                                         "approved.")
    count: int = Field(20, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    backend: Literal["model", "endpoint"] = "endpoint"
    model_id: RowIdValue | None = Field(None, description="A registered model (backend model).")
    endpoint: str | None = Field(None, max_length=120, description="An endpoint the admin configured, by name "
                                 "(backend endpoint).")
    sampling: Sampling = Field(default_factory=Sampling)
    batch_size: int = Field(8, ge=1, le=64, description="Replies a registered model writes at once.")
    concurrency: int | None = Field(None, ge=1, le=256, description="Requests in flight at once; default and most: "
                                    "the endpoint's.")
    max_requests: int | None = Field(None, ge=1, description="Stop sending after this many requests.")
    max_tokens_total: int | None = Field(None, ge=1, description="Stop sending once prompts and replies reach this "
                                         "many tokens.")

    @model_validator(mode="after")
    def _one_generator(self) -> SynthesizeIn:
        if self.backend == "model" and (self.model_id is None or self.endpoint):
            raise ValueError("the model backend needs model_id (and no endpoint)")
        if self.backend == "endpoint" and (not self.endpoint or self.model_id is not None):
            raise ValueError("the endpoint backend needs endpoint (and no model_id)")
        return self


class PromptIn(BaseModel):
    """A new version of a kind's synthesis prompt (a draft, until someone else approves it)."""

    model_config = ConfigDict(extra="forbid")
    kind: ConversationKind
    text: str = Field(min_length=1, max_length=20_000)


class PromptDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    note: str | None = Field(None, max_length=limits.NOTE, description="Why (required to reject).")


class FixTurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=0, le=10_000, description="The gpt turn's index in the conversation.")
    text: RecordText | None = Field(None, description="The answer as it should read. Left out: unchanged.")
    drop: bool = Field(False, description="Drop this exchange (the question and this answer).")


class ConversationFixIn(BaseModel):
    """A fix of a conversation that review found wrong and left unfixed (its fix rejected, or none proposed)."""

    model_config = ConfigDict(extra="forbid")

    lock_version: LockVersion = Field(description="The conversation's, as it was read.")
    turns: list[FixTurnIn] = Field(min_length=1, max_length=500)
    note: str = Field(min_length=1, max_length=limits.NOTE, description="Why: the reviewer of the fix reads it.")
    accept: bool = Field(False, description="Accept it yourself (only where the team's setting allows it).")
