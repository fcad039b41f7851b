"""Instructions: a task's editable drafts and their frozen, numbered versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import created_at_field, one_of, optional_time_field


class OptionsStyle(StrEnum):
    paren_letters = "paren_letters"  # (a) (b): Vision-Flan's
    dot_capitals = "dot_capitals"  # A. B.
    dot_numbers = "dot_numbers"  # 1. 2.


class ImagePlacement(StrEnum):
    before = "before"  # "<image>\n" + prompt, as LLaVA's data does
    after = "after"


class InstructionStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    changes_requested = "changes_requested"
    approved = "approved"
    rejected = "rejected"


class Instruction(SQLModel, table=True):
    __table_args__ = (
        one_of("status", InstructionStatus),
        one_of("draft_options_style", OptionsStyle, name="draft_options_style"),
        one_of("draft_image_placement", ImagePlacement, name="draft_image_placement"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True, ondelete="CASCADE")
    label: str = Field(default="main", max_length=80, description="Tells several instructions of a task apart.")
    author_id: int | None = Field(default=None, foreign_key="user.id", index=True, ondelete="SET NULL")
    status: str = Field(default=InstructionStatus.draft, max_length=20)
    draft_text: str = Field(default="", sa_type=Text)
    draft_input_template: str = Field(default="", sa_type=Text)
    draft_output_template: str = Field(default="", sa_type=Text)
    draft_options_style: str = Field(default=OptionsStyle.paren_letters, max_length=20)
    draft_image_placement: str = Field(default=ImagePlacement.before, max_length=10)
    draft_saved_at: datetime | None = optional_time_field()
    lock_version: int = Field(default=1, description="Optimistic concurrency for autosave and decisions.")
    created_at: datetime = created_at_field()


class InstructionVersion(SQLModel, table=True):
    __tablename__ = "instruction_version"
    __table_args__ = (
        UniqueConstraint("instruction_id", "number"),
        one_of("status", InstructionStatus),
        one_of("options_style", OptionsStyle, name="options_style"),
        one_of("image_placement", ImagePlacement, name="image_placement"),
    )

    id: int | None = Field(default=None, primary_key=True)
    instruction_id: int = Field(foreign_key="instruction.id", ondelete="CASCADE")
    number: int = Field(description="1, 2, ... within the instruction; never reused.")
    text: str = Field(sa_type=Text)
    input_template: str = Field(default="", sa_type=Text)
    output_template: str = Field(default="", sa_type=Text)
    options_style: str = Field(default=OptionsStyle.paren_letters, max_length=20)
    image_placement: str = Field(default=ImagePlacement.before, max_length=10)
    status: str = Field(default=InstructionStatus.in_review, max_length=20)
    author_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
