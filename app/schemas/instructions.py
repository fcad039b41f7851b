"""Instructions in the JSON API: the draft an author edits, the versions frozen on submit, and their diffs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import ImagePlacement, InstructionStatus, OptionsStyle


class InstructionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field("main", min_length=1, max_length=80, pattern=r"\S",
                       description="Tells several instructions of a task apart.")


class DraftOut(BaseModel):
    text: str
    input_template: str
    output_template: str
    options_style: OptionsStyle
    image_placement: ImagePlacement


class InstructionOut(BaseModel):
    id: int
    task_id: int
    label: str
    author_id: int | None = Field(description="Only the author (or an admin) saves and submits the draft.")
    status: InstructionStatus
    lock_version: int = Field(description="Send it back with the next draft; a newer one on the server is a 409.")
    draft: DraftOut
    draft_saved_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, instruction) -> InstructionOut:
        draft = DraftOut(**{name: getattr(instruction, f"draft_{name}") for name in DraftOut.model_fields})
        return cls(draft=draft, **{name: getattr(instruction, name) for name in cls.model_fields if name != "draft"})


class InstructionVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    instruction_id: int
    number: int = Field(description="1, 2, ... within the instruction; never reused.")
    text: str
    input_template: str
    output_template: str
    options_style: OptionsStyle
    image_placement: ImagePlacement
    status: InstructionStatus
    author_id: int | None
    created_at: datetime


class DiffPiece(BaseModel):
    kind: Literal["same", "removed", "added"]
    text: str


class InstructionDiffOut(BaseModel):
    older: int = Field(description="The older version's number.")
    newer: int = Field(description="The newer version's number.")
    text: list[DiffPiece] = Field(description="Word-level pieces in reading order.")
    input_template: list[DiffPiece]
    output_template: list[DiffPiece]
    settings_changed: list[str] = Field(description="options_style and image_placement, where they differ.")
