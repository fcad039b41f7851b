"""Bulk fixes: one change (replace a value in targets and options, or exclude) made to every instance a query
picks, proposed as one, reviewed as a whole by a second person, then applied by a job in whole chunks.

The instances and their before/after values are frozen when the fix is proposed (`BulkFixItem`), so what the
author previewed, what the reviewer accepts and what the job applies are the same set; an instance that changed
meanwhile is skipped and reported, never overwritten. Applying writes one accepted `Revision` per instance
(origin `bulk_fix`), so a record's history, the exports' pinning and the trace treat it like any other fix. An
undo is another bulk fix (`undoes_id`) whose items restore what the first one wrote."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, json_field, one_of, optional_time_field


class BulkFixStatus(StrEnum):
    proposed = "proposed"  # waiting for a second person
    rejected = "rejected"  # with the reviewer's comment
    withdrawn = "withdrawn"  # by its author, before anyone decided
    accepted = "accepted"  # being applied by its job (`applied_through` says how far it got)
    applied = "applied"  # every item applied or skipped


class BulkFix(SQLModel, table=True):
    __tablename__ = "bulk_fix"
    __table_args__ = (Index("ix_bulk_fix_status_id", "status", "id"), one_of("status", BulkFixStatus))

    id: int | None = Field(default=None, primary_key=True)
    reason: str = Field(sa_type=Text)
    # What picked the instances and what changes, as the author gave them (schemas/bulk_fixes.py).
    query: dict[str, Any] = json_field(nullable=False, default_factory=dict)
    change: dict[str, Any] = json_field(nullable=False, default_factory=dict)
    include_validation: bool = False  # also change instances that ready versions hold out for validation
    undoes_id: int | None = Field(default=None, foreign_key="bulk_fix.id", ondelete="SET NULL")
    # Counted when proposed: items to apply, items left alone (validation), items refused (the change would
    # break a rule), and instances left out because their target is hidden from the author.
    change_count: int = 0
    validation_count: int = 0
    refused_count: int = 0
    hidden_count: int = 0
    status: str = Field(default=BulkFixStatus.proposed, max_length=20)
    author_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    decided_at: datetime | None = optional_time_field()
    decision_comment: str | None = Field(default=None, sa_type=Text)
    self_accepted: bool = False
    job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    applied_through: int = 0  # the last item the job has dealt with (items are applied in id order)
    applied_count: int = 0
    skipped_count: int = 0  # changed after the fix was proposed: left as they are
    applied_at: datetime | None = optional_time_field()
    lock_version: int = Field(default=1)


class BulkFixItem(SQLModel, table=True):
    """One instance of a bulk fix, with what it changes, frozen when the fix was proposed."""

    __tablename__ = "bulk_fix_item"
    __table_args__ = (Index("ix_bulk_fix_item_bulk_fix_id_id", "bulk_fix_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    bulk_fix_id: int = Field(foreign_key="bulk_fix.id", ondelete="CASCADE")
    instance_id: int = Field(foreign_key="instance.id", ondelete="CASCADE")
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    changes: dict[str, Any] = json_field(nullable=False, default_factory=dict)  # {field: {before, after}}
    base_lock_version: int  # applied only onto this version of the instance
    validation: bool = False  # in a ready version's validation split
    refusal: str | None = Field(default=None, sa_type=Text)  # why the change cannot be made here
    skipped: bool = False  # the instance changed after the fix was proposed: left alone
