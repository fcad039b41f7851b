"""Shapes of fixes: what a person proposes (`InstanceFixIn`: the page's form, the API's PATCH and the corrections
file all validate through it), how a second person decides it (`RevisionDecisionIn`), and what the API says of
a revision (`RevisionOut`) and of an instance (`InstanceOut`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.core import limits
from app.models.types import LockVersion, RowIdValue


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _options(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if any(not option.strip() for option in value):
        raise ValueError("every option needs text")
    if len(value) < 2:
        raise ValueError("offer at least two options, or none")
    if len(set(value)) != len(value):
        raise ValueError("an option is repeated")
    return value


RecordText = Annotated[str, Field(max_length=limits.RECORD_TEXT), AfterValidator(_no_nul)]
OptionText = Annotated[str, Field(max_length=limits.LONG_TEXT), AfterValidator(_no_nul)]
SPLITS = ("train", "validation", "test")
EDITABLE = ("input_text", "options", "raw_output", "human_preferred_output", "split")  # an instance's content


class InstanceFixIn(BaseModel):
    """A proposed fix: the fields to change with their new values (a field left out stays as it is; null clears
    an optional one), why, and the instance's `lock_version` as the person saw it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    lock_version: LockVersion
    reason: str = Field(min_length=1, max_length=limits.NOTE, description="Why: what was wrong.")
    input_text: RecordText | None = None
    options: Annotated[list[OptionText] | None, Field(max_length=100), AfterValidator(_options)] = None
    raw_output: Annotated[RecordText, Field(min_length=1)] | None = None
    human_preferred_output: RecordText | None = None
    split: Literal[SPLITS] | None = None  # type: ignore[valid-type]  # a tuple of literals, spelled once
    accept: bool = Field(False, description="Accept your own fix at once: only where the studio lets authors accept "
                         "their own (STUDIO_CORRECTIONS_SELF_ACCEPT); otherwise a second person decides it.")

    @field_validator("raw_output", "split")
    @classmethod
    def _required(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("cannot be cleared")
        return value

    def values(self) -> dict[str, Any]:
        """The fields given, with their new values."""
        return {name: getattr(self, name) for name in EDITABLE if name in self.model_fields_set}


class DismissalIn(BaseModel):
    """The finding that flagged an instance was wrong: nothing to change, and a second person agrees."""

    lock_version: LockVersion
    reason: str = Field(min_length=1, max_length=limits.NOTE, description="Why the finding was wrong.")


class SuggestionIn(BaseModel):
    """Propose the model's suggestion as the target (the studio works it out again from the model's scores)."""

    lock_version: LockVersion
    model_id: RowIdValue


class RevisionDecisionIn(BaseModel):
    decision: Literal["accept", "reject"]
    comment: str | None = Field(None, max_length=limits.COMMENT, description="Required to reject: what is wrong.")
    lock_version: LockVersion


class RevisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    record_kind: str
    record_id: int
    task_id: int | None
    status: str
    changes: dict[str, Any] = Field(description='{field: {"before": value, "after": value}}; empty: a dismissal.')
    reason: str
    origin: str
    origin_id: int | None
    origin_detail: dict[str, Any] | None
    author_id: int | None
    created_at: datetime
    decided_at: datetime | None
    reviewer_id: int | None
    decision_comment: str | None
    self_accepted: bool
    lock_version: int


class InstanceOut(BaseModel):
    """An instance's current (accepted) values; the target and preferred output are null while a blind solve test
    the caller may answer runs on it (`target_hidden`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    task_id: int
    source_id: str
    image_sha256: str | None = None
    input_text: str | None
    options: list[str] | None
    raw_output: str | None
    human_preferred_output: str | None
    split: str
    status: str
    lock_version: int
    target_hidden: bool = False
    open_revision_id: int | None = Field(None, description="The fix waiting for review, if any.")
