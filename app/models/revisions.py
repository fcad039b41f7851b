"""Revisions: a proposed change to a record's content, kept with who, when, why and what led to it, applied only
when a second person accepts it (four eyes). Written only when someone fixes something, so imports pay nothing;
a record's original values are the `before` of its first revision. Any kind of record can be revised
(`record_kind`): instances and stage-2 conversations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, text
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, json_field, one_of, optional_time_field


class RecordKind(StrEnum):
    instance = "instance"
    conversation = "conversation"  # a stage-2 conversation (ConversationItem)


class RevisionStatus(StrEnum):
    proposed = "proposed"  # waiting for a second person
    accepted = "accepted"  # applied to the record
    rejected = "rejected"  # with the reviewer's comment
    withdrawn = "withdrawn"  # by its author, before anyone decided


class RevisionOrigin(StrEnum):
    """What led to the change."""

    manual = "manual"  # someone read the record and fixed it
    spot_check = "spot_check"  # a spot-check verdict (origin_id: the item)
    solve_test = "solve_test"  # a blind answer that did not match the target (origin_id: the item)
    model_suggestion = "model_suggestion"  # a model's answer, proposed by a person (origin_id: the model)
    conversation_review = "conversation_review"  # verdicts on a conversation's turns (origin_id: the review)
    bulk_fix = "bulk_fix"
    file = "file"  # a corrections file


class Revision(SQLModel, table=True):
    __table_args__ = (
        Index("ix_revision_record_kind_record_id_id", "record_kind", "record_id", "id"),  # a record's history
        Index("ix_revision_status_id", "status", "id"),  # the newest accepted fix; accepted fixes in order
        # A queue's open fixes of one kind of record, oldest first. Without it PostgreSQL, its statistics older
        # than the proposals, read them all through the one-per-record index below and sorted them.
        Index("ix_revision_status_record_kind_id", "status", "record_kind", "id"),
        Index("ix_revision_reviewer_id_status", "reviewer_id", "status"),  # what a reviewer holds
        Index("ix_revision_task_id_status", "task_id", "status"),  # a task's fixes on the dashboard
        Index("ix_revision_origin_origin_id", "origin", "origin_id"),  # what a bulk fix wrote (its undo, report)
        # At most one proposal waits per record: a second would be decided against values the first changes.
        Index("uq_revision_open_record", "record_kind", "record_id", unique=True,
              sqlite_where=text("status = 'proposed'"), postgresql_where=text("status = 'proposed'")),
        one_of("record_kind", RecordKind),
        one_of("status", RevisionStatus),
        one_of("origin", RevisionOrigin),
    )

    id: int | None = Field(default=None, primary_key=True)
    record_kind: str = Field(max_length=20)
    record_id: int
    task_id: int | None = Field(default=None, foreign_key="task.id", ondelete="CASCADE")
    # {field: {"before": value, "after": value}}; empty for a dismissal
    changes: dict[str, Any] = json_field(nullable=False, default_factory=dict)
    dismissal: bool = False  # the finding behind it was wrong: nothing changes but the finding's consequences
    reason: str = Field(sa_type=Text)
    origin: str = Field(default=RevisionOrigin.manual, max_length=20)
    origin_id: int | None = None  # the spot-check or solve-test item, or the model, that led to it
    origin_detail: dict[str, Any] | None = json_field()  # e.g. the model's probability for its suggestion
    base_lock_version: int  # the record's lock_version the change was made against: applied only onto that
    status: str = Field(default=RevisionStatus.proposed, max_length=20)
    author_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    reviewer_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")  # holds it in the queue
    lease_expires_at: datetime | None = optional_time_field()
    decided_at: datetime | None = optional_time_field()
    decision_comment: str | None = Field(default=None, sa_type=Text)
    self_accepted: bool = False  # accepted by its author, under STUDIO_CORRECTIONS_SELF_ACCEPT
    lock_version: int = Field(default=1)
