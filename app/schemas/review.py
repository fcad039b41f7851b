"""Shapes of review work: the queues' decisions (instruction reviews, blind answers and judgements, spot-check
verdicts, skips), a queue item as the API gives it, and the checks an opener asks for and reads back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.core import limits
from app.models import Decision, SpotVerdict
from app.models.types import MAX_DB_INT, LockVersion, RowIdValue


class DecisionIn(BaseModel):
    decision: Decision
    comment: str | None = Field(None, max_length=limits.COMMENT, description="Required to request changes or reject.")
    lock_version: LockVersion


class AnswerIn(BaseModel):
    answer: str = Field(min_length=1, max_length=limits.COMMENT, description="For option tasks, one of the options.")
    lock_version: LockVersion


class JudgementIn(BaseModel):
    matched: bool = Field(description="Whether your free-text answer matches the target you were then shown (a "
                                      "form may say yes or no).")
    lock_version: LockVersion


class VerdictIn(BaseModel):
    verdict: SpotVerdict
    note: str | None = Field(None, max_length=limits.NOTE)
    lock_version: LockVersion


class SkipIn(BaseModel):
    skip: RowIdValue | None = Field(None, description="An item to pass over this time (the one just shown).")


class ReviewItemOut(BaseModel):
    """One queue item, with what a reviewer needs to decide it (never a solve test's target before the answer)."""

    queue: str
    id: int
    lock_version: int
    task_id: int | None = Field(None, description="None for a stage-2 conversation, or a fix of one.")
    task_name: str | None = None
    instance_id: int | None = None
    image_url: str | None = None
    prompt: str | None = None
    target: str | None = None
    options: list[str] | None = None
    answer_kind: str | None = Field(None, description="Solve tests: option, short (matched automatically) or free "
                                    "(judged by you after answering).")
    awaiting_judgement: bool = False
    instruction_text: str | None = None
    instruction_version_id: int | None = None
    second_pass: bool = False
    changes: dict[str, Any] | None = Field(None, description="Corrections: as RevisionOut's, with reason and origin.")
    reason: str | None = None
    origin: str | None = None
    pool_id: int | None = None
    conversation_id: int | None = None
    conversation_lock_version: int | None = None
    conversation: list[dict[str, str]] | None = Field(None, description="Conversations: LLaVA's turns, "
                                                      "{from: human|gpt, value}; a verdict is given on each gpt turn.")


OVERRIDE_REASON = ("Admins: why this check may be weaker than the defaults, replace a running one, or follow a failed "
                   "one with the instruction unchanged. Kept on the check; the dataset card shows it.")


class SolveTestIn(BaseModel):
    size: int | None = Field(None, ge=1, le=1000)
    pass_threshold: int | None = Field(None, ge=1, le=1000)
    seed: int | None = Field(None, ge=0, le=MAX_DB_INT, description="Chooses the sample: admins, with a reason.")
    reason: str | None = Field(None, max_length=2000, description=OVERRIDE_REASON)


class SpotCheckIn(BaseModel):
    size: int | None = Field(None, ge=1, le=10_000, description="Empty: enough to pass at the expected error rate.")
    max_error_rate: float | None = Field(None, gt=0, lt=1)
    expected_error_rate: float | None = Field(None, ge=0, lt=1)
    double_review: bool = False
    seed: int | None = Field(None, ge=0, le=MAX_DB_INT, description="Chooses the sample: admins, with a reason.")
    reason: str | None = Field(None, max_length=2000, description=OVERRIDE_REASON)
    targeted_by_model_id: RowIdValue | None = Field(
        None, description="Admins: draw by this model's doubt (the task must be scored by it); the error rate is "
                          "then weighted by each item's inclusion probability. Empty: a uniform draw.")
    uniform_share: float | None = Field(None, gt=0, le=1, description="Targeted checks: the share of the draw "
                                        "spread evenly over every instance (default 0.2).")


class CheckOut(BaseModel):
    """A solve test or spot check and its figures so far."""

    id: int
    task_id: int
    status: str
    size: int
    seed: int
    instruction_version_id: int | None
    decided: int
    matched: int | None = None
    pass_threshold: int | None = None
    errors: int | None = None
    error_rate: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None
    max_error_rate: float | None = None
    kappa: float | None = None
    method: str = Field("uniform", description="Spot checks: uniform (Wilson interval), or targeted (drawn by a "
                                               "model's doubt; Hájek-weighted rate, Wilson interval at its "
                                               "effective sample size).")
    effective_size: float | None = None
