"""Shapes of bulk fixes: which instances (`BulkQuery`), what changes (`BulkChange`), the proposal (`BulkFixIn`,
the page's form and the API's body), and what the preview and the API say (`BulkPreview`, `BulkFixOut`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.core import limits
from app.models import InstanceStatus
from app.models.types import RowIdValue
from app.schemas.revisions import SPLITS, OptionText

STATUSES = tuple(InstanceStatus)


class BulkQuery(BaseModel):
    """Which instances: those of these tasks that pass every filter given."""

    model_config = ConfigDict(extra="forbid")

    task_ids: Annotated[list[RowIdValue], Field(min_length=1, max_length=1_000)]
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    split: Literal[SPLITS] | None = None  # type: ignore[valid-type]
    suspects_only: bool = Field(False, description="Only the suspects of each task's chosen scores (the doubt "
                                "ranking's confident-learning suspects).")
    q: str | None = Field(None, max_length=200, description="Text in the input or the target.")


class ReplaceChange(BaseModel):
    """Replace a value in targets (and preferred outputs) and options."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["replace"]
    find: Annotated[OptionText, Field(min_length=1, description="The value to replace.")]
    replace_with: OptionText
    whole_value: bool = Field(True, description="Replace a target or option only when it is exactly `find` "
                              "(else every occurrence of `find` inside them).")

    def describe(self) -> str:
        where = "targets and options equal to" if self.whole_value else "every occurrence in targets and options of"
        return f"replace {where} “{self.find}” with “{self.replace_with}”"


class ExcludeChange(BaseModel):
    """Exclude the instances from every export."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["exclude"]

    def describe(self) -> str:
        return "exclude from every export"


BulkChange = Annotated[ReplaceChange | ExcludeChange, Field(discriminator="action")]
CHANGES: TypeAdapter[ReplaceChange | ExcludeChange] = TypeAdapter(BulkChange)


class BulkFixIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: BulkQuery
    change: BulkChange
    reason: str = Field(min_length=1, max_length=limits.NOTE, description="Why: what was wrong.")
    include_validation: bool = Field(False, description="Also change instances that ready versions hold out for "
                                     "validation (left alone by default: a fix there moves a published yardstick).")
    accept: bool = Field(False, description="Accept your own bulk fix at once: only where the studio lets authors "
                         "accept their own (STUDIO_CORRECTIONS_SELF_ACCEPT).")


class BulkDecisionIn(BaseModel):
    decision: Literal["accept", "reject"]
    comment: str | None = Field(None, max_length=limits.COMMENT, description="Required to reject: what is wrong.")
    lock_version: int


class BulkItemOut(BaseModel):
    """One instance of the preview or the report."""

    instance_id: int
    task_name: str
    source_id: str
    changes: dict[str, Any] = Field(description='{field: {"before": value, "after": value}}')
    validation: bool
    refusal: str | None
    outcome: Literal["pending", "applied", "skipped", "left alone", "refused"]


class BulkPreview(BaseModel):
    """The counts, and the first items of each kind, as the author and the reviewer see them."""

    change_count: int
    validation_count: int
    refused_count: int
    hidden_count: int
    changes: list[BulkItemOut]
    validation: list[BulkItemOut]
    refused: list[BulkItemOut]


class BulkFixOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    reason: str
    query: dict[str, Any]
    change: dict[str, Any]
    include_validation: bool
    undoes_id: int | None
    status: str
    change_count: int
    validation_count: int
    refused_count: int
    hidden_count: int
    author_id: int | None
    created_at: datetime
    reviewer_id: int | None
    decided_at: datetime | None
    decision_comment: str | None
    self_accepted: bool
    job_id: int | None
    applied_count: int
    skipped_count: int
    applied_at: datetime | None
    lock_version: int
