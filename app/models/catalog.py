"""What the dataset is made of: source datasets, tasks, images and instances."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, json_field, one_of


class TaskGroup(StrEnum):
    question_answering = "question answering"
    classification = "classification"
    generation = "generation"


class TaskStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    changes_requested = "changes_requested"
    accepted = "accepted"
    verified = "verified"
    checks_failed = "checks_failed"  # its latest solve test or spot check failed: held back until a new one passes
    retired = "retired"


class InstanceStatus(StrEnum):
    active = "active"
    flagged = "flagged"
    excluded = "excluded"


class SourceDataset(SQLModel, table=True):
    __tablename__ = "source_dataset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    url: str | None = Field(default=None, max_length=500)
    citation: str | None = Field(default=None, sa_type=Text, description="BibTeX.")
    licence: str | None = Field(default=None, max_length=120)
    notes: str | None = Field(default=None, sa_type=Text)
    annotator_id: int | None = Field(default=None, foreign_key="user.id", index=True, ondelete="SET NULL")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Task(SQLModel, table=True):
    __table_args__ = (one_of("status", TaskStatus), one_of("task_group", TaskGroup, name="task_group"))

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, description="DATASET+slug, e.g. GEOMETRY3K+geometry_qa.")
    source_dataset_id: int | None = Field(
        default=None, foreign_key="source_dataset.id", index=True, ondelete="SET NULL"
    )
    task_group: str = Field(default=TaskGroup.question_answering, max_length=40)
    category: str | None = Field(default=None, max_length=80, index=True, description="Perception, OCR, ...")
    status: str = Field(default=TaskStatus.draft, max_length=20, index=True)
    description: str | None = Field(default=None, sa_type=Text)
    instance_count: int = Field(
        default=0, description="Active instances. Derived, but counting 10k-row tasks on every list page costs "
        "~60 ms at 1.66M instances: recomputed by services.tasks.refresh_instance_counts after any change.")
    flagged_count: int = Field(default=0, description="Flagged instances; kept with `instance_count`.")
    solve_test_required: bool = Field(
        default=True, description="New tasks must pass a blind solve test; tasks taken from a released, already "
        "validated dataset may be exempted.")
    lock_version: int = Field(default=1, description="Optimistic concurrency: bumped on every change.")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Image(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True, description="Content address in the media store.")
    width: int
    height: int
    format: str = Field(max_length=16)
    bytes: int
    created_at: datetime = created_at_field()


class Instance(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("task_id", "source_id"),  # idempotent import
        Index("ix_instance_task_id_status_rkey", "task_id", "status", "rkey"),  # seeded sampling
        Index("ix_instance_task_id_id", "task_id", "id"),  # keyset pages within a task
        one_of("status", InstanceStatus),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")  # indexed by the composites below
    source_id: str = Field(max_length=200, description="The instance's id in its source dataset.")
    image_id: int | None = Field(default=None, foreign_key="image.id", index=True, ondelete="RESTRICT")
    input_text: str | None = Field(default=None, sa_type=Text)
    options: list[str] | None = json_field()
    raw_output: str = Field(sa_type=Text)
    human_preferred_output: str | None = Field(default=None, sa_type=Text)
    split: str = Field(default="train", max_length=20)
    status: str = Field(default=InstanceStatus.active, max_length=20)
    rkey: int = Field(description="Uniform random key in [0, 2^31): seeded samples are index range scans.")
    provenance: dict[str, Any] | None = json_field()  # e.g. the merged instruction/output it came with
    # Bumped by every accepted revision: a fix is applied only onto the values it was proposed against. The
    # import's bulk path leaves it to the server default.
    lock_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = created_at_field()
